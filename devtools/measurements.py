"""Figures measured by tests (e.g. ours-vs-reference differences), printed in pytest's summary."""
from __future__ import annotations

RECORDED: list[tuple[str, str]] = []


def record(label: str, value: str) -> None:
    RECORDED.append((label, value))
