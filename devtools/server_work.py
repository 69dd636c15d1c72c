"""What the suite's main ComfyUI server spent its time on, read from its log after the run: how many prompts it
executed and in how many seconds ("Prompt executed in ..." lines), and how many diffusion models it loaded
("model weight dtype ..." lines, logged once per diffusion model ComfyUI builds). Printed in the summary so that a CI log shows how much of
the run is server work and how often models are reloaded."""
from __future__ import annotations

import re
from pathlib import Path

_EXECUTED = re.compile(r"Prompt executed in ([0-9.]+) seconds")
_MODEL_LOAD = "model weight dtype"


def server_work(log_path: Path) -> str | None:
    """One line for the log at log_path, or None when the log is gone or unreadable."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    seconds = [float(s) for s in _EXECUTED.findall(text)]
    loads = text.count(_MODEL_LOAD)
    return (f"{len(seconds)} prompts executed in {sum(seconds):.0f} s; {loads} diffusion-model loads "
            f"(log: {log_path})")
