"""Session fixtures: the ComfyUI tree, the random InstaFlow models, and a real ComfyUI server."""
from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest

from devtools.browser import CHROMIUM, launch_chromium
from devtools.comfyui_source import comfyui_path
from devtools.memory_watch import MemoryWatch
from devtools.module_clock import ModuleClock
from devtools.pack_identity import PACK_NAME
from devtools.server import ComfyServer
from devtools.server_work import server_work

MEMORY = MemoryWatch()
CLOCK = ModuleClock()
_SERVERS: list[ComfyServer] = []
_MAIN_SERVER_LOGS: list[Path] = []  # the session server's log, read for the summary after it stopped
# After a test module, a server holding more than this lets go of its models (POST /free), so that the
# suite's peak stays under its budget; below it, the next module reuses what is loaded.
FREE_ABOVE_BYTES = int(float(os.environ.get("INSTAFLOW_FREE_ABOVE_GIB", "5")) * 2 ** 30)
BARE_SERVER_BYTES = int(1.5 * 2 ** 30)  # ComfyUI with torch imported and no model loaded: about 1 GiB

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKS = [
    (PACK_NAME, REPO_ROOT),  # the folder name a registry install uses
    ("instaflow_test_nodes", REPO_ROOT / "tests" / "comfy_test_nodes"),
]


@pytest.fixture(scope="session")
def comfyui_dir() -> Path:
    return comfyui_path()


@pytest.fixture(scope="session")
def instaflow_models():
    from devtools.random_models import ensure_random_instaflow  # written separately; import lazily

    return ensure_random_instaflow()


@pytest.fixture(scope="session")
def reduced_instaflow():
    """A reduced SD1.5 stand-in (a tenth of the UNet, loadable as a single file; devtools/reduced_sd15.py) for
    the modules whose behaviour does not depend on the UNet's size. Reads like instaflow_models."""
    from devtools.reduced_sd15 import ensure_reduced_instaflow

    return ensure_reduced_instaflow()


# Session fixtures that return an object with a `.models_root` (a folder with checkpoints/,
# controlnet/, loras/, ... subfolders) to show to the server. Add a fixture's name here to make its
# models loadable by name in server tests; each is built once and cached outside the repository.
MODEL_FIXTURES = ["instaflow_models", "reduced_instaflow"]


@pytest.fixture(scope="session")
def reduced_controlnet(reduced_instaflow):
    """A random SD1.5 ControlNet made from the reduced stand-in's UNet, in the LDM layout ComfyUI loads at any
    size (.file, .name prefixed "reduced-", .diffusers_dir for the reference). Its full-size twin
    (devtools/random_controlnet.py ensure_random_controlnet) serves the device check on a GPU."""
    from devtools.random_controlnet import ensure_reduced_controlnet

    return ensure_reduced_controlnet(reduced_instaflow)


@pytest.fixture(scope="session")
def reduced_loras(reduced_instaflow):
    """Random SD1.5 LoRAs for the reduced stand-in (.kohya, .diffusers files in loras/, names prefixed "reduced-").
    Their full-size twins (devtools/random_lora.py ensure_random_loras) serve the device check on a GPU."""
    from devtools.random_lora import ensure_reduced_loras

    return ensure_reduced_loras(reduced_instaflow)


@pytest.fixture(scope="session")
def weight_delta_models(instaflow_models):
    """Stand-in "finetune" and "SD1.5 base" single-file checkpoints (.finetune, .base)."""
    from devtools.random_weight_delta import ensure_random_weight_delta

    return ensure_random_weight_delta(instaflow_models)


@pytest.fixture(scope="session")
def reduced_weight_delta(reduced_instaflow):
    """The same stand-ins made from the reduced SD1.5 stand-in (names prefixed "reduced-")."""
    from devtools.random_weight_delta import ensure_reduced_weight_delta

    return ensure_reduced_weight_delta(reduced_instaflow)


MODEL_FIXTURES += ["reduced_controlnet", "reduced_loras", "weight_delta_models", "reduced_weight_delta"]


@pytest.fixture(scope="session")
def robustness_models(reduced_instaflow):
    """Broken, foreign and hostile model files (devtools/robustness_models.py)."""
    from devtools.robustness_models import ensure_robustness_models

    return ensure_robustness_models(reduced_instaflow.single_file)


@pytest.fixture(scope="session")
def scratch_models(tmp_path_factory):
    """An empty, writable models root that tests fill while the server runs (links, replaced files)."""
    from devtools.scratch_models import ScratchModels

    return ScratchModels.create(tmp_path_factory.mktemp("scratch_models"))


MODEL_FIXTURES += ["robustness_models", "scratch_models"]


@pytest.fixture(scope="session")
def sdxl_refiner_models():
    """A random-weight SDXL-refiner stand-in checkpoint (devtools/random_sdxl_refiner.py)."""
    from devtools.random_sdxl_refiner import ensure_random_sdxl_refiner

    return ensure_random_sdxl_refiner()


MODEL_FIXTURES += ["sdxl_refiner_models"]


@pytest.fixture(scope="session")
def tiny_foreign_model():
    """A tiny, loadable SD3-architecture diffusion model (devtools/tiny_foreign_model.py)."""
    from devtools.tiny_foreign_model import ensure_tiny_sd3

    return ensure_tiny_sd3()


MODEL_FIXTURES += ["tiny_foreign_model"]


@pytest.fixture(scope="session")
def perflow_sd15_models(instaflow_models):
    """A PeRFlow SD1.5 diffusers folder in perflow/ and the same as a single file in checkpoints/ (.folder, .name, .single_file)."""
    from devtools.random_perflow_sd15 import ensure_random_perflow_sd15

    return ensure_random_perflow_sd15(instaflow_models)


@pytest.fixture(scope="session")
def reduced_perflow_sd15(reduced_instaflow):
    """The PeRFlow SD1.5 recipe on the reduced stand-in: a single file in checkpoints/ (.name, .single_file) and
    the reference's diffusers folder (.folder)."""
    from devtools.random_perflow_sd15 import ensure_reduced_perflow_sd15

    return ensure_reduced_perflow_sd15(reduced_instaflow)


@pytest.fixture(scope="session")
def perflow_delta_models(instaflow_models):
    """Random perflow-sd15-delta-weights stand-in in perflow/ (.folder, .name, .variant_file(v), .single_file)."""
    from devtools.random_perflow_delta import ensure_random_perflow_delta

    return ensure_random_perflow_delta(instaflow_models)


@pytest.fixture(scope="session")
def reduced_perflow_delta(reduced_instaflow):
    """The same delta for the reduced stand-in: LDM-layout files in perflow/ (.name, .single_file) and the
    reference's diffusers folder (.folder, .variant_file(v))."""
    from devtools.random_perflow_delta import ensure_reduced_perflow_delta

    return ensure_reduced_perflow_delta(reduced_instaflow)


@pytest.fixture(scope="session")
def perflow_sdxl_models():
    """An SDXL-architecture PeRFlow diffusers folder stand-in in perflow/ (devtools/random_perflow_sdxl.py)."""
    from devtools.random_perflow_sdxl import ensure_random_perflow_sdxl

    return ensure_random_perflow_sdxl()


MODEL_FIXTURES += ["perflow_sd15_models", "reduced_perflow_sd15", "perflow_delta_models", "reduced_perflow_delta",
                   "perflow_sdxl_models"]


@pytest.fixture(scope="session")
def comfy_server(comfyui_dir, request, tmp_path_factory):
    roots = [request.getfixturevalue(name).models_root for name in MODEL_FIXTURES]
    packs = [(name, path) for name, path in PACKS if path.is_dir()]
    server = ComfyServer(roots, packs, tmp_path_factory.mktemp("comfy_server"), comfyui_dir=comfyui_dir)
    server.start()  # raises ServerError with the log tail if the server dies or never answers
    _SERVERS.append(server)
    _MAIN_SERVER_LOGS.append(server.log_path)
    try:
        yield server
    finally:
        _SERVERS.remove(server)
        server.stop()


def _free_servers_above(threshold: int) -> None:
    for server in _SERVERS:
        if server.rss_bytes() > threshold:
            server.free_models()
            _wait_until_freed(server, max(threshold, BARE_SERVER_BYTES))


def _wait_until_freed(server, target: int, settle_s: float = 1.0, limit_s: float = 20.0) -> None:
    """The server frees as soon as its idle worker wakes (POST /free notifies it): wait until its RSS is under
    `target` or has stopped falling for `settle_s`. A freed server rarely gets back under the target (the
    allocator keeps part of what was freed), so waiting for the target alone cost the whole limit after most
    modules (about 20 s each)."""
    start = time.monotonic()
    lowest, lowest_at = server.rss_bytes(), start
    while time.monotonic() - start < limit_s:
        time.sleep(0.2)
        rss, now = server.rss_bytes(), time.monotonic()
        if rss <= target:
            return
        if rss < lowest - 64 * 2 ** 20:
            lowest, lowest_at = rss, now
        elif now - lowest_at >= settle_s:
            return


@pytest.fixture(scope="module", autouse=True)
def free_memory_between_modules():
    """After each module (its own fixtures are finalized first), the test process collects the module's
    reference models (diffusers modules hold reference cycles, which only the cyclic collector frees), and a
    server holding more than FREE_ABOVE_BYTES frees its models."""
    yield
    gc.collect()
    _free_servers_above(FREE_ABOVE_BYTES)


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs a server, the ComfyUI tree or a model fixture (directly or through
    another fixture), so `-m "not server"` selects the fast, pure tests."""
    heavy = {"comfy_server", "comfyui_dir", *MODEL_FIXTURES}
    for item in items:
        if heavy & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


def pytest_sessionstart(session):
    MEMORY.start()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    MEMORY.current_test = item.nodeid
    CLOCK.enter(item.path.name)  # before the fixtures: a module's time includes the session fixtures it builds


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """After a failed test, stop whatever it left queued or running on every server (nothing may outlive it),
    and attach the server log tail to the report of a failing test that used a ComfyServer."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        used = {id(v): v for v in getattr(item, "funcargs", {}).values() if isinstance(v, ComfyServer)}
        for server in {**{id(s): s for s in _SERVERS}, **used}.values():
            if server.rss_bytes():  # still running
                try:
                    server.stop_all_work()
                except Exception as error:  # noqa: BLE001 - the test's own failure is the one to report
                    report.sections.append(("stopping the server's work after the failure", str(error)))
        for server in used.values():
            report.sections.append((f"ComfyUI server log (tail, {server.log_path})", server.log_tail(120)))


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests measured (ours vs reference, broken variants), for notes and CI logs."""
    from devtools.measurements import RECORDED

    if RECORDED:
        terminalreporter.section("measured: |ours - reference| per graph")
        for label, value in RECORDED:
            terminalreporter.write_line(f"{label}: {value}")
    MEMORY.sample()
    MEMORY.stop()
    terminalreporter.section("memory")
    for line in MEMORY.summary():
        terminalreporter.write_line(line)
    for log_path in _MAIN_SERVER_LOGS:
        line = server_work(log_path)
        if line:
            terminalreporter.section("main server's work")
            terminalreporter.write_line(line)
    CLOCK.stop()
    if CLOCK.seconds:
        terminalreporter.section("time per test module")
        for line in CLOCK.summary():
            terminalreporter.write_line(line)


# Chromium for the browser modules (one per module; Playwright's sync API)
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's chromium (scripts/bootstrap.sh does) or set INSTAFLOW_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
