"""Ready for the Comfy Registry and ComfyUI-Manager: the metadata, the published zip, and an install
from a clean clone into a fresh custom_nodes folder of a real ComfyUI.

comfy-cli (pinned in tests/requirements.txt) is the registry's own tool: `comfy node validate` runs
the checks `comfy node publish` runs, and `comfy node pack` builds the zip that publish uploads (the
git-tracked files minus the patterns in .comfyignore).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from devtools.pack_identity import PACK_NAME
from devtools.pack_snapshot import clone, node_class_names, publishable_files, snapshot_repository
from devtools.server import ComfyServer

REPO_ROOT = Path(__file__).resolve().parent.parent
COMFY = Path(sys.executable).with_name("comfy")  # comfy-cli, installed in the test venv
RAW_GITHUB = re.compile(r"^https://raw\.githubusercontent\.com/(?P<repo>[^/]+/[^/]+)/(?P<ref>[^/]+)/(?P<path>.+)$")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    return snapshot_repository(REPO_ROOT, tmp_path_factory.mktemp("publish") / PACK_NAME)


def comfy_cli(*args, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    # Its config goes to a throwaway HOME; no telemetry, no prompts.
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), DO_NOT_TRACK="1",
               COMFY_NO_TELEMETRY="1", NO_COLOR="1", COLUMNS="200")
    return subprocess.run([str(COMFY), "--skip-prompt", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


# ------------------------------------------------------------------------------ metadata


def test_project_name_is_a_valid_registry_node_id(pyproject):
    name = pyproject["project"]["name"]
    # docs.comfy.org/registry/specifications: < 100 chars, alphanumerics - _ ., no doubled specials,
    # starts with a letter.
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name)


def test_node_id_follows_the_registry_best_practice_of_no_comfyui_in_it(pyproject):
    assert "comfyui" not in pyproject["project"]["name"].lower()


def test_requires_comfyui_is_the_oldest_version_the_tests_run(pyproject):
    oldest = re.search(r'OLDEST, NEWEST = "([^"]+)"', (REPO_ROOT / "compat" / "comfyui_versions.py").read_text())[1]
    assert pyproject["tool"]["comfy"]["requires-comfyui"] == f">={oldest}"


def test_licence_of_the_code_and_of_the_model_weights_are_stated():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    licence = readme.split("## Licence", 1)[1]
    assert "GPL-3.0" in licence
    for model_licence in ("CC-BY-NC-4.0", "CreativeML OpenRAIL-M", "OpenRAIL++-M"):
        assert model_licence in licence, model_licence
    assert "GNU GENERAL PUBLIC LICENSE" in (REPO_ROOT / "LICENSE").read_text()


def test_version_is_semver_and_description_and_license_are_set(pyproject):
    project = pyproject["project"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert len(project["description"]) > 40
    assert (REPO_ROOT / project["license"]["file"]).is_file()


def test_pack_depends_on_nothing_beyond_comfyui(pyproject):
    assert pyproject["project"]["dependencies"] == []
    assert not (REPO_ROOT / "requirements.txt").exists()
    assert not (REPO_ROOT / "install.py").exists()  # ComfyUI-Manager would run it on install


def test_repository_publisher_and_display_name_are_set(pyproject):
    assert pyproject["project"]["urls"]["Repository"].startswith("https://github.com/")
    comfy = pyproject["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]


def test_icon_is_the_raw_url_of_a_square_image_in_this_repository(pyproject):
    icon = pyproject["tool"]["comfy"]["Icon"]
    match = RAW_GITHUB.match(icon)
    assert match, f"Icon {icon!r} is not a raw.githubusercontent.com URL"
    assert pyproject["project"]["urls"]["Repository"].rstrip("/").endswith("/" + match["repo"])
    path = REPO_ROOT / match["path"]
    assert path.suffix in {".svg", ".png", ".jpg", ".gif"} and path.is_file()
    svg = ET.parse(path).getroot()
    width, height = int(svg.get("width")), int(svg.get("height"))
    assert width == height <= 400  # the registry's icon rule: square, at most 400x400


def test_web_directory_is_exported_and_holds_the_extension_and_rules():
    assert 'WEB_DIRECTORY = "./web"' in (REPO_ROOT / "__init__.py").read_text()
    assert {"instaflow_convert.js", "instaflow_conversion_rules.json"} <= {p.name for p in (REPO_ROOT / "web").iterdir()}


# ------------------------------------------------------------------------------ comfy-cli


def test_comfy_node_validate_passes(snapshot, tmp_path):
    result = comfy_cli("node", "validate", cwd=snapshot, home=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All validation checks passed" in output and "Security warnings" not in output, output


# What the registry zip must leave out: the development folders and git's own files. Everything else the
# repository tracks is the pack at run time (code, web files, templates and their thumbnails, help pages,
# licence, metadata), so the zip must hold every such file; a pattern added to .comfyignore that catches
# one of them is a broken release.
DEVELOPMENT_FOLDERS = {"tests", "devtools", "bench", "scripts", "demo_output", ".ci", ".github"}
GIT_FILES = {".comfyignore", ".gitignore", ".gitattributes"}


def is_development_file(name: str) -> bool:
    return name.split("/")[0] in DEVELOPMENT_FOLDERS or name in GIT_FILES


def zip_problems(snapshot: Path, zip_path: Path) -> dict[str, list[str]]:
    """Run-time files the zip lacks, and development files it holds."""
    names = set(zipfile.ZipFile(zip_path).namelist())
    runtime = {name for name in publishable_files(snapshot)
               if not is_development_file(name) and name != zip_path.relative_to(snapshot).as_posix()}
    return {"missing": sorted(runtime - names), "development": sorted(n for n in names if is_development_file(n))}


def test_published_zip_holds_the_pack_and_not_the_tests(snapshot, tmp_path):
    result = comfy_cli("node", "pack", cwd=snapshot, home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    names = set(zipfile.ZipFile(snapshot / "node.zip").namelist())
    for needed in ["__init__.py", "__main__.py", "pyproject.toml", "LICENSE", "README.md",
                   "nodes/__init__.py", "flow_math/flows/instaflow.py", "model_loaders/checkpoint.py",
                   "web/instaflow_convert.js", "web/frontend_shim.js", "web/instaflow_conversion_rules.json", "web/instaflow_icon.svg",
                   "workflow_conversion/convert_api.py", "example_workflows/instaflow_one_step_txt2img.json",
                   "web/docs/InstaFlowLoader.md", "web/docs/PeRFlowLoader.md",
                   "example_workflows/instaflow_one_step_txt2img_split_files.jpg"]:
        assert needed in names, needed
    left_out = sorted(n for n in names if n.split("/")[0] in DEVELOPMENT_FOLDERS)
    assert not left_out, left_out
    assert zip_problems(snapshot, snapshot / "node.zip") == {"missing": [], "development": []}


def test_zip_check_catches_a_run_time_file_left_out_by_comfyignore(snapshot, tmp_path):
    # The check above must be able to fail: a copy of the repository whose .comfyignore also leaves out a
    # file the pack reads at run time (the conversion rules its frontend command and convert_api load) gives
    # a zip the check rejects, naming that file.
    left_out = "web/instaflow_conversion_rules.json"
    copy = clone(snapshot, tmp_path / "left_out")
    with open(copy / ".comfyignore", "a", encoding="utf-8") as ignore:
        ignore.write(f"\n{left_out}\n")
    result = comfy_cli("node", "pack", cwd=copy, home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    assert zip_problems(copy, copy / "node.zip") == {"missing": [left_out], "development": []}


# ------------------------------------------------------------------------------ install from a clean clone


@pytest.fixture(scope="module")
def cloned_pack_server(snapshot, tmp_path_factory, comfyui_dir):
    root = tmp_path_factory.mktemp("clean_install")
    pack = clone(snapshot, root / "custom_nodes" / PACK_NAME)
    models = root / "models"
    models.mkdir()
    with ComfyServer(models, [(PACK_NAME, pack)], root / "work", comfyui_dir=comfyui_dir) as server:
        yield server, pack


def test_clean_clone_imports_without_errors(cloned_pack_server):
    server, pack = cloned_pack_server
    log = server.log_text()
    assert not server.failed_custom_nodes()
    places = (str(server.work_dir / "custom_nodes" / PACK_NAME), str(pack))  # the link ComfyUI loads, the clone
    pack_lines = [line for line in log.splitlines() if any(place in line for place in places)]
    assert any("seconds:" in line for line in pack_lines), "the pack is missing from ComfyUI's import times"
    assert not [line for line in pack_lines if "IMPORT FAILED" in line or "Cannot import" in line or 'File "' in line]


def test_clean_clone_lists_every_node_of_the_mapping(cloned_pack_server):
    server, pack = cloned_pack_server
    listed = server.object_info()
    missing = [name for name in node_class_names(pack) if name not in listed]
    assert not missing


def test_clean_clone_serves_the_frontend_extension_and_the_templates(cloned_pack_server):
    server, pack = cloned_pack_server
    assert f"/extensions/{PACK_NAME}/instaflow_convert.js" in server.get_json("/extensions")
    templates = server.get_json("/api/workflow_templates")[PACK_NAME]
    assert sorted(templates) == sorted(p.stem for p in (pack / "example_workflows").glob("*.json"))
