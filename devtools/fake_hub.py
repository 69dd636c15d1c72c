"""A Hugging Face hub stand-in on loopback, speaking the part of the hub's HTTP protocol huggingface_hub uses.

    with FakeHub({"XCLiu/instaflow_0_9B_from_sd_1_5": {"unet/...safetensors": b"...", ...}}) as hub:
        env = {"HF_ENDPOINT": hub.url}      # the hub client's endpoint variable

What it serves, as the hub does (huggingface_hub's HfApi.model_info and hf_hub_download):
- GET /api/models/<repo>/revision/<rev>[?blobs=true]: the repository record with `siblings` (file name,
  size, git blob id, and for LFS files the sha256, size and pointer size) and the commit `sha`;
- HEAD/GET /<repo>/resolve/<rev>/<path>: small files (not LFS) directly, with the git blob id as ETag;
  LFS files (weights, .bin, .safetensors) answer 302 to a CDN URL with X-Linked-Etag (the sha256) and
  X-Linked-Size, as the hub redirects LFS downloads to its storage;
- GET /cdn/<sha256>: the bytes, with HTTP Range (206 + Content-Range) so downloads can resume.
Every request is logged (method, path, Range). Faults for tests: `cut_after[path] = n` closes the
connection after n bytes of the next full download of that file (a dropped connection); `corrupt[path]`
serves the file with one byte flipped.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".onnx", ".msgpack", ".h5")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    range: str | None


class FakeHub:
    def __init__(self, repos: dict[str, dict[str, bytes]]):
        self.repos = repos
        self.requests: list[Request] = []
        self.cut_after: dict[str, int] = {}
        self.corrupt: set[str] = set()
        self._by_sha: dict[str, tuple[str, str]] = {}
        for repo, files in repos.items():
            for path, data in files.items():
                if path.endswith(LFS_SUFFIXES):
                    self._by_sha[hashlib.sha256(data).hexdigest()] = (repo, path)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def downloads(self, path: str) -> list[Request]:
        """The data requests (GET of the bytes) for one repository file."""
        targets = {f"/cdn/{sha}" for sha, (_repo, p) in self._by_sha.items() if p == path}
        return [r for r in self.requests if r.method == "GET" and (r.path in targets or r.path.endswith("/" + path))]

    def requested_files(self) -> set[str]:
        """Repository files whose bytes were requested."""
        out = set()
        for r in self.requests:
            if r.method != "GET":
                continue
            if r.path.startswith("/cdn/"):
                out.add(self._by_sha[r.path.removeprefix("/cdn/")][1])
            elif "/resolve/" in r.path:
                path = r.path.split("/resolve/", 1)[1].split("/", 1)[1]
                if not path.endswith(LFS_SUFFIXES):
                    out.add(path)
        return out

    def record(self, repo: str) -> dict:
        siblings = []
        for path, data in sorted(self.repos[repo].items()):
            entry = {"rfilename": path, "size": len(data), "blobId": git_blob_id(data)}
            if path.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        return {"_id": "fake", "id": repo, "modelId": repo, "sha": COMMIT, "private": False, "disabled": False,
                "gated": False, "tags": ["diffusers", "safetensors"], "siblings": siblings}

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, headers: dict, body: bytes = b"") -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD" and body:
                    self.wfile.write(body)

            def _route(self):
                url = urlsplit(self.path)
                path = unquote(url.path)
                hub.requests.append(Request(self.command, path, self.headers.get("Range")))
                if path.startswith("/api/models/") and "/revision/" in path:
                    repo = path.removeprefix("/api/models/").split("/revision/")[0]
                    if repo not in hub.repos:
                        return self._send(404, {"Content-Length": "0", "X-Error-Code": "RepoNotFound"})
                    body = json.dumps(hub.record(repo)).encode()
                    return self._send(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)
                if "/resolve/" in path:
                    repo, rest = path.lstrip("/").split("/resolve/", 1)
                    _revision, file_path = rest.split("/", 1)
                    data = hub.repos.get(repo, {}).get(file_path)
                    if data is None:
                        return self._send(404, {"Content-Length": "0", "X-Error-Code": "EntryNotFound"})
                    common = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
                    if file_path.endswith(LFS_SUFFIXES):
                        sha = hashlib.sha256(data).hexdigest()
                        return self._send(302, {**common, "Location": f"{hub.url}/cdn/{sha}", "X-Linked-Etag": f'"{sha}"',
                                                "X-Linked-Size": str(len(data)), "ETag": f'"{git_blob_id(data)}"',
                                                "Content-Length": "0"})
                    return self._send(200, {**common, "ETag": f'"{git_blob_id(data)}"', "Content-Length": str(len(data)),
                                            "Content-Type": "application/octet-stream"}, data)
                if path.startswith("/cdn/") and path.removeprefix("/cdn/") in hub._by_sha:
                    repo, file_path = hub._by_sha[path.removeprefix("/cdn/")]
                    return self._serve_bytes(file_path, hub.repos[repo][file_path])
                return self._send(404, {"Content-Length": "0"})

            def _serve_bytes(self, file_path: str, data: bytes) -> None:
                if file_path in hub.corrupt:
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                start, status, headers = 0, 200, {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                                                  "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
                requested = self.headers.get("Range")
                if requested and requested.startswith("bytes="):
                    first, _, last = requested.removeprefix("bytes=").partition("-")
                    start = int(first)
                    end = int(last) if last else len(data) - 1
                    if start >= len(data):
                        return self._send(416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                    data_out = data[start:end + 1]
                else:
                    data_out = data
                headers["Content-Length"] = str(len(data_out))
                cut = hub.cut_after.pop(file_path, None) if self.command == "GET" and start == 0 else None
                if cut is None:
                    return self._send(status, headers, data_out)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data_out[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the connection drops mid-file

            do_GET = do_HEAD = _route

        return Handler
