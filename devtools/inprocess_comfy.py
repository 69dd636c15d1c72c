"""The in-process ComfyUI worker (devtools/comfy_inprocess.py) driven from another process: ComfyUI reads its command
line at import, so the worker runs in its own process and answers JSON lines (the benchmark's components, and the
pack's cost per prompt in tests/test_per_prompt_cost.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from devtools.comfyui_source import REPO, comfyui_path, with_repository, with_site_paths
from devtools.pack_identity import PACK_NAME


class InProcessComfy:
    """devtools/comfy_inprocess.py in a subprocess: the same workflow with no HTTP, and the components."""

    def __init__(self, models_root, work, comfy_args, packs=(), env=None):
        roots = models_root if isinstance(models_root, (list, tuple)) else [models_root]
        pack_dir = work / "custom_nodes"
        pack_dir.mkdir()
        for name, path in [(PACK_NAME, REPO), *packs]:
            (pack_dir / name).symlink_to(path)
        self.pack_dir = pack_dir / PACK_NAME
        paths = work / "paths.yaml"
        folders = "\n".join(f"  {k}: {k}" for k in ("checkpoints", "diffusers", "instaflow", "perflow", "vae", "vae_approx",
                                                    "embeddings", "loras", "controlnet"))
        sections = [f"bench{i}:\n  base_path: {root}\n{folders}\n" for i, root in enumerate(roots)]
        paths.write_text("".join(sections) + f"bench_nodes:\n  custom_nodes: {pack_dir}\n")
        (work / "output").mkdir()
        self.log = work / "inprocess.log"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.comfy_inprocess", "--comfyui", str(comfyui_path()),
             "--pack", str(pack_dir), "--paths-config", str(paths), "--output", str(work / "output"), "--",
             *comfy_args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.log, "w"), text=True,
            cwd=str(comfyui_path()), env=with_repository(with_site_paths(os.environ if env is None else env)))
        self._started, self.start_seconds, self.ready = t0, None, None

    def wait_ready(self):
        """Blocks until ComfyUI is imported and the pack loaded in the worker; returns the seconds since launch."""
        if self.ready is None:
            self.ready = self.ask(cmd="ping")
            self.start_seconds = time.perf_counter() - self._started
        return self.start_seconds

    def ask(self, **msg):
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"the in-process ComfyUI worker died:\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"in-process worker: {reply['error']}")
        return reply

    def close(self):
        if self.proc.poll() is None:  # still running: ask it to quit
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=30)
