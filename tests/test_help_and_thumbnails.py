"""What the frontend shows besides the nodes: a help page per node and a picture per template.

Help pages: the frontend's node library opens `/extensions/<pack>/docs/<NodeName>.md` for a custom node's help
(ComfyUI frontend 1.32.9, NodeHelpService: `docs/<name>/<locale>.md`, then `docs/<name>.md`); ComfyUI serves the
pack's web folder there. Thumbnails: `example_workflows/<name>.jpg`, the picture the template browser shows
(square cards), made by scripts/render_template_thumbnails.py. The browser tests open both in the real frontend.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from devtools.pack_identity import PACK_NAME
from devtools.pack_snapshot import node_class_names

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "web" / "docs"
EXAMPLES = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
NODES = node_class_names(REPO_ROOT)


@pytest.mark.parametrize("node", NODES)
def test_every_node_has_a_help_page_with_the_settings_that_work(node):
    page = (DOCS / f"{node}.md").read_text(encoding="utf-8")
    assert page.startswith("# ")
    assert "## Settings that work" in page


def test_help_pages_are_only_for_nodes_of_the_pack():
    assert sorted(p.stem for p in DOCS.glob("*.md")) == sorted(NODES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_template_has_a_square_jpeg_thumbnail(path):
    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.is_file(), f"{thumbnail.name} is missing: run scripts/render_template_thumbnails.py"
    image = Image.open(thumbnail)
    assert image.format == "JPEG" and image.size == (512, 512)
    assert thumbnail.stat().st_size < 150_000


def test_thumbnails_are_made_by_the_committed_script_from_the_graph():
    script = (REPO_ROOT / "scripts" / "render_template_thumbnails.py").read_text(encoding="utf-8")
    assert "loadGraphData" in script and ".jpg" in script  # the frontend draws the template's own graph
    assert sorted(p.stem for p in (REPO_ROOT / "example_workflows").glob("*.jpg")) == [p.stem for p in EXAMPLES]


def test_server_serves_the_help_pages_and_the_thumbnails(comfy_server):
    for node in NODES:
        text = comfy_server._request("GET", f"/extensions/{PACK_NAME}/docs/{node}.md").decode()
        assert text == (DOCS / f"{node}.md").read_text(encoding="utf-8")
    for path in EXAMPLES:
        data = comfy_server._request("GET", f"/api/workflow_templates/{PACK_NAME}/{path.stem}.jpg")
        assert Image.open(io.BytesIO(data)).size == (512, 512)
        assert json.loads(comfy_server._request("GET", f"/api/workflow_templates/{PACK_NAME}/{path.name}"))["nodes"]
