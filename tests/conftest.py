"""Session fixtures: the ComfyUI tree, the random InstaFlow models, and a real ComfyUI server."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.comfyui_source import comfyui_path
from harness.server import ComfyServer

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKS = [
    ("comfyui-instaflow", REPO_ROOT),
    ("instaflow_test_nodes", REPO_ROOT / "tests" / "comfy_test_nodes"),
]


@pytest.fixture(scope="session")
def comfyui_dir() -> Path:
    return comfyui_path()


@pytest.fixture(scope="session")
def instaflow_models():
    from harness.random_models import ensure_random_instaflow  # written separately; import lazily

    return ensure_random_instaflow()


# Session fixtures that return an object with a `.models_root` (a folder with checkpoints/,
# controlnet/, loras/, ... subfolders) to show to the server. Add a fixture's name here to make its
# models loadable by name in server tests; each is built once and cached outside the repository.
MODEL_FIXTURES = ["instaflow_models"]


@pytest.fixture(scope="session")
def comfy_server(comfyui_dir, request, tmp_path_factory):
    roots = [request.getfixturevalue(name).models_root for name in MODEL_FIXTURES]
    packs = [(name, path) for name, path in PACKS if path.is_dir()]
    server = ComfyServer(roots, packs, tmp_path_factory.mktemp("comfy_server"), comfyui_dir=comfyui_dir)
    server.start()  # raises ServerError with the log tail if the server dies or never answers
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server log tail to the report of a failing test that used a ComfyServer."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for server in {id(v): v for v in getattr(item, "funcargs", {}).values()
                       if isinstance(v, ComfyServer)}.values():
            report.sections.append((f"ComfyUI server log (tail, {server.log_path})", server.log_tail(120)))


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests measured (ours vs reference, broken variants), for notes and CI logs."""
    from harness.measurements import RECORDED

    if RECORDED:
        terminalreporter.section("measured: |ours - reference| per graph")
        for label, value in RECORDED:
            terminalreporter.write_line(f"{label}: {value}")
