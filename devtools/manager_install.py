"""ComfyUI with ComfyUI-Manager in a scratch base folder, and the pack served from a git URL on loopback.

    scenario = ManagerScenario.create(comfyui_dir, tmp_dir)   # base folder, user files, config.ini, git daemon
    scenario.start(legacy_ui=True); scenario.install_from_git_url(); scenario.stop()
    scenario.start(); seen = scenario.observe()               # what ComfyUI and the Manager show now
    scenario.run_task("disable", {...}); scenario.reboot()    # the Manager's queue and its Restart
    scenario.close()

The ComfyUI tree is never written to: everything ComfyUI and the Manager write (custom_nodes, models,
output, user/__manager with config.ini and caches) lies under `--base-directory`, a temporary folder.
The Manager is the pip package that the tree's manager_requirements.txt pins (scripts/bootstrap.sh puts it
in the test venv); ComfyUI runs it with --enable-manager (--enable-manager-legacy-ui for the git-URL install).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devtools.comfyui_source import cache_root, with_site_paths
from devtools.object_info import combo_options
from devtools.pack_snapshot import constant_keywords, git, node_class_names, snapshot_repository
from devtools.server import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]

# The Manager's config (<user dir>/__manager/config.ini). offline: it fetches no channel list or registry
# data at start-up and reads its bundled lists. security_level normal is its default. allow_git_url_install
# is off by default, and honoured only on a loopback listener (or with network_mode personal_cloud): the
# server listens on 127.0.0.1. file_logging off keeps its own log file out of the user folder.
MANAGER_CONFIG = """[default]
network_mode = offline
security_level = normal
allow_git_url_install = True
file_logging = False
"""

# A pack the user installed before ours: it must keep loading, and keep its files, whatever the Manager does to ours.
OTHER_PACK = "users_other_pack"
OTHER_PACK_NODE = "UsersOtherPackNode"
OTHER_PACK_SOURCE = f'''class {OTHER_PACK_NODE}:
    CATEGORY = "testing"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{}}}}

    def run(self):
        return {{}}


NODE_CLASS_MAPPINGS = {{"{OTHER_PACK_NODE}": {OTHER_PACK_NODE}}}
'''
# Folders (under the base folder) whose files are the user's: they must come out of every step unchanged.
USER_FOLDERS = ("models", "output", "input", f"custom_nodes/{OTHER_PACK}", "user/default/workflows")

_IMPORT_TIME = re.compile(r"[\d.]+ seconds(?: \(IMPORT FAILED\))?: (\S.*?)\s*$")
_STARTUP_PROBLEM = re.compile(r"IMPORT FAILED|Cannot import|Traceback \(most recent call last\)")


class ManagerError(RuntimeError):
    """ComfyUI or the Manager did not do what a step asked (the message carries the log of this start)."""


def repository_name() -> str:
    """The name a git-URL install gives the pack's folder: the last part of the repository URL."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["project"]["urls"]["Repository"].rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


def manager_pin(comfyui_dir: Path) -> str:
    """The comfyui_manager version the ComfyUI tree's manager_requirements.txt pins."""
    text = (comfyui_dir / "manager_requirements.txt").read_text(encoding="utf-8")
    return re.search(r"^comfyui[-_]manager\s*==\s*(\S+)", text, re.M | re.I)[1]


def installed_distributions() -> dict[str, str]:
    """The test venv's packages ({name: version}); the Manager can pip-install and 'fix' packages."""
    return {d.metadata["Name"].lower(): d.version for d in importlib.metadata.distributions()}


def registered_sampler_and_scheduler_names(pack: Path) -> tuple[list[str], list[str]]:
    """The sampler and schedulers the pack adds to ComfyUI's lists, read without importing ComfyUI: SAMPLER_NAME
    in the module that registers them, and each flow family's scheduler, named in its record
    (FlowFamily(scheduler=...) in <pack>/flow_math/flows/*.py)."""
    import ast

    samplers = []
    for path in sorted(pack.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == "SAMPLER_NAME" and isinstance(node.value, ast.Constant)):
                samplers.append(node.value.value)
    schedulers = []
    for path in sorted((pack / "flow_math" / "flows").glob("*.py")):
        schedulers += constant_keywords(path, "FlowFamily", ("scheduler",))
    if not samplers or not schedulers:
        raise ValueError(f"{pack}: no SAMPLER_NAME constant or no FlowFamily(scheduler=...) record found")
    return samplers, schedulers


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@dataclass
class Observation:
    """What one ComfyUI start shows, taken right after it answered."""
    log: str                          # this start's part of the server log
    imported: list[str]               # folders in "Import times for custom nodes" (failed ones too)
    problems: list[str]               # log lines of failed imports and tracebacks
    node_ids: set[str]
    samplers: list[str]
    schedulers: list[str]
    extensions: list[str]
    templates: dict
    manager_list: dict                # GET /v2/customnode/installed
    enabled_dirs: list[str]           # custom_nodes/*
    disabled_dirs: list[str]          # custom_nodes/.disabled/*
    user_files: dict[str, str]        # relative path -> sha256 under USER_FOLDERS
    served_js: bytes | None           # /extensions/<pack folder>/<script>, None when not served
    published_js: bytes               # that script in the served repository's working tree
    head: str | None                  # the installed clone's commit, wherever it lies
    served_head: str                  # the served repository's commit
    extra: dict = field(default_factory=dict)


class ManagerScenario:
    def __init__(self, comfyui_dir: Path, root: Path):
        self.comfyui_dir = comfyui_dir
        self.root = root
        self.base = root / "base"
        self.served = root / "served"
        self.folder = repository_name()
        self.repository = self.served / self.folder
        self.log_path = root / "comfyui.log"
        self.daemon: subprocess.Popen | None = None
        self.daemon_port = 0
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.url = ""
        self.start_offset = 0
        self.client_id = uuid.uuid4().hex
        self.venv_before: dict[str, str] = {}  # the test venv's packages before the first step
        self._log = None

    # ------------------------------------------------------------------ setting up
    @classmethod
    def create(cls, comfyui_dir: Path, root: Path) -> "ManagerScenario":
        scenario = cls(comfyui_dir, root)
        try:
            scenario._make_base()
            snapshot_repository(REPO_ROOT, scenario.repository)
            scenario._start_daemon()
        except BaseException:
            scenario.close()
            raise
        return scenario

    def _make_base(self) -> None:
        for name in ("custom_nodes", "models/checkpoints", "output", "input", "user/__manager",
                     "user/default/workflows", f"custom_nodes/{OTHER_PACK}"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        (self.base / "user/__manager/config.ini").write_text(MANAGER_CONFIG)
        (self.base / f"custom_nodes/{OTHER_PACK}/__init__.py").write_text(OTHER_PACK_SOURCE)
        # The user's own files; their contents are never read by ComfyUI here, only listed.
        (self.base / "models/checkpoints/users_own_model.safetensors").write_bytes(os.urandom(4096))
        (self.base / "output/ComfyUI_00001_.png").write_bytes(os.urandom(2048))
        (self.base / "input/users_photo.png").write_bytes(os.urandom(1024))
        (self.base / "user/default/workflows/my_workflow.json").write_text('{"nodes": [], "links": []}')

    def _start_daemon(self) -> None:
        """`git daemon` over the served folder on 127.0.0.1 (git://127.0.0.1:<port>/<name>): the Manager's
        git-URL install wants a URL with scheme and host. Retries when another process took the port."""
        for _ in range(5):
            self.daemon_port = free_port()
            self.daemon = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={self.served}",
                 "--listen=127.0.0.1", f"--port={self.daemon_port}", str(self.served)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.root / "git-daemon.log", "ab"))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.daemon.poll() is None:
                try:
                    git("ls-remote", self.git_url, cwd=self.root)
                    return
                except subprocess.CalledProcessError:
                    time.sleep(0.2)
            self._stop_daemon()
        raise ManagerError(f"git daemon did not serve {self.served}: {(self.root / 'git-daemon.log').read_text()}")

    @property
    def git_url(self) -> str:
        return f"git://127.0.0.1:{self.daemon_port}/{self.folder}"

    def publish_commit(self, relative: str, append: str, message: str) -> str:
        """A new commit on the served repository (an update for the Manager to fetch); returns its hash."""
        path = self.repository / relative
        path.write_text(path.read_text(encoding="utf-8") + append, encoding="utf-8")
        git("commit", "-q", "-am", message, cwd=self.repository)
        return self.served_head()

    def served_head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.repository).strip()

    # ------------------------------------------------------------------ ComfyUI
    def command(self, legacy_ui: bool) -> list[str]:
        # --disable-api-nodes: ComfyUI's own paid-API nodes, which nothing here uses; leaving them out saves
        # about a tenth of each of the six starts (docs/development.md). The Manager and the packs load as usual.
        return [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                "--disable-auto-launch", "--disable-api-nodes", "--base-directory", str(self.base),
                "--database-url", "sqlite:///:memory:", "--enable-manager-legacy-ui" if legacy_ui else "--enable-manager"]

    def start(self, legacy_ui: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = with_site_paths(dict(
            os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", DO_NOT_TRACK="1",
            # bytecode outside the ComfyUI tree (never written to) and the installed pack's folder
            PYTHONPYCACHEPREFIX=str(cache_root() / "pycache")))
        env.pop("__COMFY_CLI_SESSION__", None)  # with it, the Manager's restart exits instead of restarting
        self._log = open(self.log_path, "ab")
        self.start_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(self.command(legacy_ui), cwd=self.comfyui_dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise ManagerError(f"ComfyUI exited during start-up\n{self.log_tail()}")
            try:
                self.request("GET", "/system_stats", timeout=5)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ManagerError(f"ComfyUI did not answer within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.3)

    def reboot(self) -> None:
        """The Manager's Restart (POST /v2/manager/reboot): ComfyUI re-executes itself in the same process with
        the same arguments, so the request gets no answer; then wait for the new start to answer."""
        offset = self.log_path.stat().st_size
        try:
            status, body = self.request("POST", "/v2/manager/reboot", b"")
            raise ManagerError(f"the Manager answered its restart request ({status} {body[:200]!r}) "
                               f"instead of restarting\n{self.log_tail()}")
        except urllib.error.HTTPError as error:
            raise ManagerError(f"restart refused: HTTP {error.code}\n{self.log_tail()}") from None
        except (urllib.error.URLError, ConnectionError, OSError):
            pass  # the process image was replaced under the request
        self.start_offset = offset
        self._wait_ready()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(timeout=10)
        self.daemon = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._stop_daemon()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def this_start_log(self) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self.start_offset)
            return log.read().decode("utf-8", errors="replace")

    def log_tail(self, lines: int = 80) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- ComfyUI log tail ({self.log_path}) ---\n{tail}"

    # ------------------------------------------------------------------ HTTP
    def request(self, method: str, path: str, body: bytes | None = None, *, content_type: str = "application/json",
                timeout: float = 120) -> tuple[int, bytes]:
        # The Manager refuses state-changing POSTs with a form content type (its CSRF guard): send JSON's.
        headers = {"Content-Type": content_type} if body is not None else {}
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()

    def get_json(self, path: str):
        return json.loads(self.request("GET", path)[1])

    def install_from_git_url(self) -> None:
        """The legacy UI's "Install via Git URL" (POST /v2/customnode/install/git_url, the URL as the body)."""
        try:
            self.request("POST", "/v2/customnode/install/git_url", self.git_url.encode(), content_type="text/plain",
                         timeout=300)
        except urllib.error.HTTPError as error:
            raise ManagerError(f"git-URL install refused or failed: HTTP {error.code}\n{self.log_tail()}") from None

    def run_task(self, kind: str, params: dict, timeout: float = 300) -> dict:
        """What the Manager dialog of the frontend does: queue a task, start the queue, then read the task's
        entry in the queue history. Returns the entry; raises ManagerError unless it succeeded."""
        ui_id = uuid.uuid4().hex
        item = {"ui_id": ui_id, "client_id": self.client_id, "kind": kind, "params": params}
        self.request("POST", "/v2/manager/queue/task", json.dumps(item).encode())
        self.request("POST", "/v2/manager/queue/start", b"")
        deadline = time.monotonic() + timeout
        while True:
            entry = self.get_json(f"/v2/manager/queue/history?ui_id={ui_id}").get("history") or {}
            if (entry.get("status") or {}).get("completed"):
                if entry["status"]["status_str"] not in ("success", "skip"):
                    raise ManagerError(f"Manager task {kind} {params} ended {entry['status']}: {entry.get('result')}\n"
                                       f"{self.log_tail()}")
                return entry
            if time.monotonic() > deadline:
                raise ManagerError(f"Manager task {kind} {params} not done after {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.3)

    # ------------------------------------------------------------------ what ComfyUI shows
    def pack_dir(self) -> Path | None:
        for path in (self.base / "custom_nodes" / self.folder, self.base / "custom_nodes" / ".disabled" / self.folder):
            if path.is_dir():
                return path
        return None

    def observe(self, script: str = "instaflow_convert.js") -> Observation:
        log = self.this_start_log()
        object_info = self.get_json("/object_info")
        served_js = None
        try:
            served_js = self.request("GET", f"/extensions/{urllib.parse.quote(self.folder)}/{script}")[1]
        except urllib.error.HTTPError:
            pass
        pack = self.pack_dir()

        def listing(folder: Path) -> list[str]:
            return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))) \
                if folder.is_dir() else []

        user_files = {}
        for name in USER_FOLDERS:
            user_files.update({f"{name}/{k}": v for k, v in _digest(self.base / name).items()})
        return Observation(
            log=log,
            imported=[Path(m[1]).name for m in map(_IMPORT_TIME.search, log.splitlines()) if m],
            problems=[line for line in log.splitlines() if _STARTUP_PROBLEM.search(line)],
            node_ids=set(object_info),
            samplers=combo_options(object_info, "KSampler", "sampler_name"),
            schedulers=combo_options(object_info, "KSampler", "scheduler"),
            extensions=self.get_json("/extensions"),
            templates=self.get_json("/api/workflow_templates"),
            manager_list=self.get_json("/v2/customnode/installed"),
            enabled_dirs=listing(self.base / "custom_nodes"),
            disabled_dirs=listing(self.base / "custom_nodes" / ".disabled"),
            user_files=user_files,
            served_js=served_js,
            published_js=(self.repository / "web" / script).read_bytes(),
            head=git("rev-parse", "HEAD", cwd=pack).strip() if pack else None,
            served_head=self.served_head(),
        )


def pack_declares(pack: Path) -> dict:
    """What the pack at `pack` should show in ComfyUI: node ids, sampler, schedulers, template names."""
    samplers, schedulers = registered_sampler_and_scheduler_names(pack)
    return {"nodes": node_class_names(pack), "samplers": samplers, "schedulers": schedulers,
            "templates": sorted(p.stem for p in (pack / "example_workflows").glob("*.json"))}


def tool_problem() -> str | None:
    """Why this machine cannot run the Manager scenario (None when it can)."""
    import importlib.util

    if importlib.util.find_spec("comfyui_manager") is None:
        return "the comfyui_manager package is not in the test venv (scripts/bootstrap.sh installs it)"
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip()
    if not shutil.which("git") or not (Path(exec_path) / "git-daemon").is_file():
        return "`git daemon` is not available (Debian's git package ships it)"
    with socket.socket() as s:  # loopback must be usable for both servers
        s.bind(("127.0.0.1", 0))
    return None
