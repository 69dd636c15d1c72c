"""The pack makes no network request and writes no file, at import or at run time.

A dedicated server runs with a test-only sitecustomize (devtools/audit_hook) that records every
Python-level network call and file write of the server process with its stack, and refuses any
network access beyond loopback. The server loads only our pack, lists its models, runs our loader,
sampler, scheduler and model patch, and fails on a broken file. Then: no network call and no file
write has a frame of our pack on its stack; nothing at all was written inside the repository or the
model folders; and the model files are byte-for-byte where they were (size and mtime unchanged).
Limits: writes made inside C/C++/Rust extensions are not seen by the audit hook (the model-folder
snapshot covers those for the model files).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devtools import robustness_models as rm
from devtools.measurements import record
from devtools.pack_identity import PACK_NAME
from devtools.robustness_graphs import checkpoint_ksampler_graph, instaflow_graph
from devtools.server import ComfyServer
from devtools.server_checks import assert_next_prompt_succeeds, failure

REPO_ROOT = Path(__file__).resolve().parent.parent
HOOK_DIR = Path(__file__).resolve().parents[1] / "devtools" / "audit_hook"
PACK_LINK_NAME = PACK_NAME


def snapshot(roots) -> dict[str, tuple[int, int]]:
    files = {}
    for root in roots:
        for current, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(current, name)
                st = os.lstat(path)
                files[path] = (st.st_size, st.st_mtime_ns)
    return files


# A positive control: a pack that does what ours must not, so the test shows the hook would catch it.
CANARY_PACK = """
import socket, urllib.request
for attempt in (lambda: urllib.request.urlopen("http://192.0.2.1/", timeout=1),  # TEST-NET-1, never routed
                lambda: socket.create_connection(("198.51.100.7", 80), timeout=1)):
    try:
        attempt()
    except Exception:
        pass
with open(__file__ + ".canary-write", "w") as f:
    f.write("written at import")
NODE_CLASS_MAPPINGS = {}
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory, comfyui_dir, instaflow_models, reduced_instaflow, robustness_models):
    root = tmp_path_factory.mktemp("audited_server")
    log = root / "audit.jsonl"
    canary = root / "canary_pack"
    canary.mkdir()
    (canary / "__init__.py").write_text(CANARY_PACK)
    model_roots = [instaflow_models.models_root, reduced_instaflow.models_root, robustness_models.models_root]
    before = snapshot(model_roots)
    server = ComfyServer(model_roots, [(PACK_LINK_NAME, REPO_ROOT), ("canary", canary)], root / "work", comfyui_dir=comfyui_dir)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HOOK_DIR), os.environ.get("PYTHONPATH")])))
        env.setenv("INSTAFLOW_AUDIT_LOG", str(log))
        server.start()  # the environment is read once, at process start
    try:
        server.object_info()  # every node's INPUT_TYPES: our model listing walks the folders
        g, _ = instaflow_graph(instaflow_models.name, prefix="audited")  # a full-size diffusers folder
        server.run(g.api(), timeout=300)
        # Single files: the reduced stand-in (the same loaders and sampling, a seventh of the UNet's cost)
        g, _ = checkpoint_ksampler_graph(reduced_instaflow.single_file.name, prefix="audited_ksampler")
        server.run(g.api(), timeout=300)
        g, _ = instaflow_graph(reduced_instaflow.single_file.name, steps=2, prefix="audited_single_file")
        server.run(g.api(), timeout=300)
        g, _ = instaflow_graph(rm.TRUNCATED, prefix="never")
        failure(server, g.api(), "InstaFlowLoader")
        assert_next_prompt_succeeds(server, reduced_instaflow.name)
        yield server, log, model_roots, before
    finally:
        server.stop()


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def pack_frames(server, stack: list[str]) -> list[str]:
    pack = (str(server.work_dir / "custom_nodes" / PACK_LINK_NAME) + os.sep, str(REPO_ROOT) + os.sep)
    return [frame for frame in stack if frame.startswith(pack) and "/tests/" not in frame]


def canary_frames(server, stack: list[str]) -> list[str]:
    return [frame for frame in stack if frame.startswith(str(server.work_dir / "custom_nodes" / "canary") + os.sep)]


def test_audit_hook_sees_and_blocks_what_a_misbehaving_pack_does(audited):
    server, log, _, _ = audited
    seen = records(log)
    canary_network = [r for r in seen if r["event"].startswith("socket.") and canary_frames(server, r["stack"])]
    assert {r["target"] for r in canary_network} >= {"'192.0.2.1'", "'198.51.100.7'"}, canary_network
    assert any(r["event"] == "open-for-write" and r["target"].endswith(".canary-write") for r in seen)
    writes = [r for r in seen if r["event"] == "open-for-write"]
    assert any(str(server.work_dir / "output") in r["target"] for r in writes), "SaveImage's writes were not seen"


def test_pack_makes_no_network_request_at_import_or_run_time(audited):
    server, log, _, _ = audited
    network = [r for r in records(log) if r["event"].startswith("socket.") and not canary_frames(server, r["stack"])]
    ours = [r for r in network if pack_frames(server, r["stack"])]
    record("network attempts (non-loopback) in the audited server",
           f"{len(network)} besides the canary pack's, {len(ours)} from the pack")
    assert not ours, json.dumps(ours, indent=1)[:3000]


def test_pack_writes_no_files(audited):
    server, log, _, _ = audited
    bytecode = [os.environ.get("PYTHONPYCACHEPREFIX", "\0"), "__pycache__"]
    writes = [r for r in records(log) if not r["event"].startswith("socket.") and not canary_frames(server, r["stack"])
              and not any(part in json.dumps(r["target"]) for part in bytecode)]  # Python's own .pyc cache
    ours = [r for r in writes if pack_frames(server, r["stack"])]
    elsewhere = sorted({os.path.dirname(r["target"]) if isinstance(r["target"], str) else str(r["target"])
                        for r in writes})
    record("file writes in the audited server", f"{len(writes)} ({len(ours)} from the pack) in {elsewhere}"[:600])
    assert not ours, json.dumps(ours, indent=1)[:3000]


def test_nothing_is_written_inside_the_repository_or_the_model_folders(audited):
    server, log, model_roots, _ = audited
    protected = [str(REPO_ROOT) + os.sep, str(server.work_dir / "custom_nodes") + os.sep] + [str(r) + os.sep for r in model_roots]
    touched = [r for r in records(log) if not r["event"].startswith("socket.") and not canary_frames(server, r["stack"])
               and any(str(target).startswith(tuple(protected))
                       for target in (r["target"] if isinstance(r["target"], list) else [r["target"]]))]
    assert not touched, json.dumps(touched, indent=1)[:3000]


def test_model_files_are_unchanged(audited):
    _, _, model_roots, before = audited
    assert snapshot(model_roots) == before
