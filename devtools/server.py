"""A real ComfyUI server in a subprocess, for end-to-end tests.

    with ComfyServer(models_root_or_roots, [("my_pack", pack_dir)], work_dir) as server:
        outputs = server.run(api_prompt)
        image = server.images(outputs, "9")[0]

Everything the server writes (output, input, temp, user dirs, log) goes under work_dir; custom
node packs are loaded from a folder of symlinks named by the `custom_nodes:` key of the
extra_model_paths yaml (ComfyUI's folder_paths treats "custom_nodes" as one more folder key).
Only the standard library, numpy and Pillow are used for HTTP and images.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from devtools.comfyui_source import cache_root, comfyui_path, with_site_paths

# Folder keys mapped to same-named subfolders of models_root. ComfyUI maps the legacy keys "unet"
# and "clip" onto "diffusion_models" and "text_encoders", so both subfolder names work.
MODEL_FOLDERS = {name: name for name in (
    "checkpoints", "diffusers", "vae", "loras", "controlnet", "clip", "unet", "diffusion_models",
    "embeddings", "upscale_models", "instaflow", "perflow", "text_encoders")}


class ServerError(RuntimeError):
    """The server process died, did not start, or answered unexpectedly."""


class PromptRejected(RuntimeError):
    """POST /prompt answered 400 (validation failed). `.body` is the JSON reply."""

    def __init__(self, body: dict):
        self.body = body
        self.error = body.get("error") or {}
        self.node_errors: dict = body.get("node_errors") or {}
        lines = [f"prompt rejected: {self.error.get('message', '')} {self.error.get('details', '')}".rstrip()]
        for node_id, entry in self.node_errors.items():
            for err in entry.get("errors", []):
                lines.append(f"  node {node_id} ({entry.get('class_type')}): {err.get('message')}: {err.get('details')}")
        super().__init__("\n".join(lines))


class PromptFailed(RuntimeError):
    """The prompt ran and ended with status "error" (an exception in a node, or an interrupt)."""

    def __init__(self, prompt_id: str, status: dict):
        self.prompt_id = prompt_id
        self.status = status
        self.interrupted = False
        info: dict = {}
        for event, data in status.get("messages", []):
            if event == "execution_error":
                info = data
            elif event == "execution_interrupted" and not info:
                info, self.interrupted = data, True
        self.node_id = info.get("node_id")
        self.node_type = info.get("node_type")
        self.exception_type = info.get("exception_type", "")
        self.exception_message = (info.get("exception_message") or "").strip()
        self.traceback = "".join(info.get("traceback") or [])
        if self.interrupted:
            message = f"prompt {prompt_id} interrupted at node {self.node_id} ({self.node_type})"
        elif info:
            message = (f"node {self.node_id} ({self.node_type}) failed: {self.exception_type}: "
                       f"{self.exception_message}\n{self.traceback}")
        else:
            message = f"prompt {prompt_id} failed: {json.dumps(status)[:2000]}"
        super().__init__(message)


def _proc_status_bytes(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, models_root: Path | list[Path], custom_nodes: list[tuple[str, Path]], work_dir: Path, *,
                 comfyui_dir: Path | None = None, extra_args: list[str] = (), cpu: bool = True,
                 startup_timeout: float = 240.0, extra_model_folders: tuple[str, ...] = ()):
        roots = models_root if isinstance(models_root, (list, tuple)) else [models_root]
        self.models_roots = [Path(r).resolve() for r in roots]  # each is one section of the yaml
        self.model_folders = {**MODEL_FOLDERS, **{name: name for name in extra_model_folders}}
        self.custom_nodes = [(name, Path(path).resolve()) for name, path in custom_nodes]
        self.work_dir = Path(work_dir).resolve()
        self.comfyui_dir = Path(comfyui_dir) if comfyui_dir else comfyui_path()
        self.extra_args = list(extra_args)
        self.cpu = cpu  # the tests always run on the CPU; the benchmark and demo use a GPU when there is one
        self.startup_timeout = startup_timeout
        self.port = 0
        self.start_seconds: float | None = None
        self.url = ""
        self.client_id = uuid.uuid4().hex
        self.log_path = self.work_dir / "server.log"
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    # ----------------------------------------------------------------- lifecycle
    def _write_config(self) -> Path:
        nodes_dir = self.work_dir / "custom_nodes"
        nodes_dir.mkdir(parents=True, exist_ok=True)
        for name, path in self.custom_nodes:
            link = nodes_dir / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(path, target_is_directory=path.is_dir())
        config = {
            **{f"instaflow_test_models_{i}": {"base_path": str(root), **self.model_folders}
               for i, root in enumerate(self.models_roots)},
            "instaflow_test_nodes": {"custom_nodes": str(nodes_dir)},
        }
        path = self.work_dir / "extra_model_paths.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _supports(self, flag: str) -> bool:
        return flag in (self.comfyui_dir / "comfy" / "cli_args.py").read_text(encoding="utf-8")

    def command(self) -> list[str]:
        dirs = {name: self.work_dir / name for name in ("output", "input", "temp", "user")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "main.py", *(["--cpu"] if self.cpu else []), "--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch", "--extra-model-paths-config", str(self._write_config())]
        for name, d in dirs.items():
            cmd += [f"--{name}-directory", str(d)]
        if self._supports("--database-url"):
            cmd += ["--database-url", "sqlite:///:memory:"]
        return cmd + self.extra_args

    def start(self) -> "ComfyServer":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   # keep bytecode out of the ComfyUI tree and the repo (and reuse it across runs)
                   PYTHONPYCACHEPREFIX=str(cache_root() / "pycache"),
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DO_NOT_TRACK="1")
        if self.comfyui_dir == comfyui_path():  # the tree's own pins and import stand-ins come first
            env = with_site_paths(env)
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), cwd=self.comfyui_dir, env=env,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.start_seconds = self._wait_ready()
        failed = self.failed_custom_nodes()
        if failed:
            self.stop()
            raise ServerError(f"custom node pack(s) failed to import: {', '.join(failed)}\n"
                              f"--- server log tail ---\n{self.log_tail(150)}")
        return self

    def failed_custom_nodes(self) -> list[str]:
        """Names of our packs that ComfyUI logged as "(IMPORT FAILED)" (it keeps running without them)."""
        nodes_dir = str(self.work_dir / "custom_nodes")
        return [name for name, _ in self.custom_nodes
                if any("(IMPORT FAILED)" in line and line.rstrip().endswith(f"{nodes_dir}/{name}")
                       for line in self.log_text().splitlines())]

    def _wait_ready(self) -> float:
        t0 = time.monotonic()
        while True:
            self._check_alive("during startup")
            try:
                self._request("GET", "/system_stats", timeout=5)
                return time.monotonic() - t0
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() - t0 > self.startup_timeout:
                self.stop()
                raise ServerError(f"ComfyUI did not answer within {self.startup_timeout:.0f}s\n"
                                  f"--- server log tail ---\n{self.log_tail()}")
            time.sleep(0.5)

    def _check_alive(self, when: str) -> None:
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            raise ServerError(f"ComfyUI process is not running ({when}; exit code {rc})\n"
                              f"--- server log tail ---\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # ----------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, body: dict | None = None, timeout: float = 60) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()

    def get_json(self, path: str, timeout: float = 60):
        return json.loads(self._request("GET", path, timeout=timeout))

    def free_models(self, timeout: float = 60) -> None:
        """POST /free: the server drops its loaded models and its node-output cache, then collects
        garbage (its prompt worker acts on the flags as soon as it is idle)."""
        self._request("POST", "/free", {"unload_models": True, "free_memory": True}, timeout=timeout)

    def rss_bytes(self) -> int:
        """The server process's resident memory now (0 when it is not running)."""
        return _proc_status_bytes(self.proc.pid, "VmRSS") if self.proc is not None and self.proc.poll() is None else 0

    def object_info(self, node_class: str | None = None) -> dict:
        if node_class:
            return self.get_json(f"/object_info/{urllib.parse.quote(node_class)}")
        return self.get_json("/object_info")

    def queue(self, prompt: dict) -> str:
        """POST /prompt; returns the prompt id, raises PromptRejected on a validation failure."""
        try:
            reply = self._request("POST", "/prompt", {"prompt": prompt, "client_id": self.client_id})
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", errors="replace")
            if e.code == 400:
                try:
                    body = json.loads(text)
                except ValueError:
                    body = {"error": {"message": text}, "node_errors": {}}
                raise PromptRejected(body) from None
            raise ServerError(f"POST /prompt -> HTTP {e.code}: {text}") from None
        return json.loads(reply)["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict:
        """Poll /history/<id> until the prompt is done; returns the history entry."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            self._check_alive(f"waiting for prompt {prompt_id}")
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry is not None:
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    raise PromptFailed(prompt_id, status)
                if status.get("completed", True):
                    return entry
            if time.monotonic() > deadline:
                self.interrupt()
                raise TimeoutError(f"prompt {prompt_id} not finished after {timeout:.0f}s\n"
                                   f"--- server log tail ---\n{self.log_tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def run(self, prompt: dict, timeout: float = 300.0) -> dict:
        """Queue, wait, and return the outputs: {node_id: {"images": [...], ...}}."""
        return self.wait(self.queue(prompt), timeout)["outputs"]

    def images(self, outputs: dict, node_id: str) -> list[np.ndarray]:
        """The images a node reported in `outputs`, as uint8 HxWx3 arrays."""
        result = []
        for ref in outputs[str(node_id)]["images"]:
            query = urllib.parse.urlencode({"filename": ref["filename"], "subfolder": ref.get("subfolder", ""),
                                            "type": ref.get("type", "output")})
            data = self._request("GET", f"/view?{query}")
            result.append(np.array(Image.open(io.BytesIO(data)).convert("RGB")))
        return result

    def interrupt(self) -> None:
        self._request("POST", "/interrupt", {})

    def queue_state(self) -> tuple[list, list]:
        """GET /queue: (running, pending) prompt entries."""
        state = self.get_json("/queue")
        return state["queue_running"], state["queue_pending"]

    def stop_all_work(self, timeout: float = 120.0) -> None:
        """Empty the waiting queue and interrupt the running prompt until the server is idle. A failed test
        calls it (conftest.py): a prompt it left behind would make every later test wait behind it."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive("stopping its work")
            running, pending = self.queue_state()
            if not running and not pending:
                return
            if pending:
                self._request("POST", "/queue", {"clear": True})
            if running:
                self.interrupt()
            if time.monotonic() > deadline:
                raise ServerError(f"still busy {timeout:.0f}s after interrupting: {len(running)} running, "
                                  f"{len(pending)} waiting\n--- server log tail ---\n{self.log_tail()}")
            time.sleep(0.1)

    @contextlib.contextmanager
    def stopping_work_on_failure(self):
        """A block whose failure stops what it queued (and everything else) before the error goes on."""
        try:
            yield self
        except BaseException:
            self.stop_all_work()
            raise
