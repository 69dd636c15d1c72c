"""Test-only: records the network and file-writing calls of the ComfyUI server it is loaded into.

Put on PYTHONPATH of the server process (tests/test_safety.py does); Python imports sitecustomize at
start-up, before ComfyUI or any node pack, so everything from import time on is covered. Uses
sys.addaudithook (PEP 578):
- socket.connect / socket.sendto / socket.getaddrinfo to anything but loopback: recorded, then refused
  (PermissionError), so a test run can never reach the network;
- open() for writing (any mode with w, a, x or +, or os.open write flags) and os.remove / rename /
  replace / rmdir / mkdir / truncate / symlink / link / shutil.rmtree: recorded.
Each record has the Python stack (file:line of every frame) so a test can tell whose code asked.
Only Python-level calls are seen: writes done inside C/C++/Rust extensions are not.
Records are JSON lines appended to the file named by INSTAFLOW_AUDIT_LOG.
"""
import ipaddress
import json
import os
import sys
import threading

_PATH = os.environ.get("INSTAFLOW_AUDIT_LOG")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_FILE_EVENTS = {"os.remove", "os.rename", "os.replace", "os.rmdir", "os.mkdir", "os.truncate", "os.symlink", "os.link",
                "shutil.rmtree"}
_local = threading.local()


def _is_loopback(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]")
    if host in ("localhost", "", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _stack():
    frame, out = sys._getframe(2), []
    while frame is not None:  # no traceback module: it would read source files (more open events)
        out.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
        frame = frame.f_back
    return out


def _write(record):
    line = (json.dumps(record, default=repr) + "\n").encode()
    os.write(_FD, line)  # os.write raises no audit event


def _hook(event, args):
    if getattr(_local, "busy", False):
        return
    _local.busy = True
    try:
        if event in ("socket.connect", "socket.sendto"):
            address = args[1]
            host = address[0] if isinstance(address, tuple) else None  # AF_UNIX paths are local
            if not _is_loopback(host):
                _write({"event": event, "target": repr(address), "stack": _stack()})
                raise PermissionError(f"network access blocked by the test audit hook: {address!r}")
        elif event == "socket.getaddrinfo":
            if not _is_loopback(args[0]):
                _write({"event": event, "target": repr(args[0]), "stack": _stack()})
                raise PermissionError(f"name lookup blocked by the test audit hook: {args[0]!r}")
        elif event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and not isinstance(path, int):
                _write({"event": "open-for-write", "target": os.fsdecode(path), "stack": _stack()})
        elif event in _FILE_EVENTS:
            _write({"event": event, "target": [os.fsdecode(a) if isinstance(a, (str, bytes)) else repr(a) for a in args[:2]],
                    "stack": _stack()})
    finally:
        _local.busy = False


if _PATH:
    _FD = os.open(_PATH, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.addaudithook(_hook)
