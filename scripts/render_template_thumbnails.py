"""Render each example workflow's thumbnail (example_workflows/<name>.jpg): its graph as ComfyUI's frontend draws it.

ComfyUI's template browser shows <name>.jpg beside <name>.json as the template's picture (square cards). Each
picture is an honest one: a screenshot of the template's graph, loaded into the real frontend (the one this
ComfyUI serves) in Chromium, with the template's name and settings as a caption. No generated image is shown:
the test models have random weights, and a picture of their output would be noise passed off as a result.

    bash scripts/test.sh --co -q >/dev/null   # (any command that builds the environment once)
    ~/.cache/comfyui-instaflow/venv/bin/python -m scripts.render_template_thumbnails [--only NAME ...]

Needs the test environment (ComfyUI, Playwright, Debian's chromium); no model files (the missing-models dialog
is switched off for the rendering). Run it again after changing a template.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from devtools.browser import ComfyPage, launch_chromium  # noqa: E402
from devtools.pack_identity import PACK_NAME  # noqa: E402
from devtools.server import ComfyServer  # noqa: E402

EXAMPLES = REPO / "example_workflows"
SIZE = 512  # the saved thumbnail (square, as the template browser's cards are)
VIEWPORT = {"width": 2000, "height": 1000}  # wide, so the graph is drawn near zoom 1 before scaling down
TITLE_PX, TEXT_PX = 22, 15  # caption font sizes
FOOTER = 64
FOLDER_LOADERS = {"InstaFlowLoader": "instaflow", "PeRFlowLoader": "perflow"}
# Everything but the graph canvas is hidden, and LiteGraph's info text is off, for the screenshot.
ONLY_THE_CANVAS = """
  body * { visibility: hidden !important; }
  #graph-canvas { visibility: visible !important; }
"""


def caption(workflow: dict) -> tuple[str, str]:
    """(title, subtitle) from the template's note: its heading and its first "Settings:" sentence."""
    notes = [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] == "MarkdownNote"]
    text = notes[0] if notes else ""
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
    settings = ""
    if "Settings:" in text:
        sentence = re.split(r"\.(?:\s|$)", text.split("Settings:", 1)[1].split("\n", 1)[0], maxsplit=1)[0]
        settings = sentence.replace("**", "").replace("`", "").strip()  # to the sentence's end, not to a decimal point ("cfg 1.5")
    return title, settings


def models_line(workflow: dict) -> str:
    """What the template needs, in a few words: its declared files, a diffusers folder, the user's own LoRA."""
    declared = [m for n in workflow["nodes"] for m in (n.get("properties") or {}).get("models") or []]
    folders = [(FOLDER_LOADERS[n["type"]], n["widgets_values"][0]) for n in workflow["nodes"] if n["type"] in FOLDER_LOADERS]
    parts = []
    if declared:
        parts.append(f"{len(declared)} model file{'' if len(declared) == 1 else 's'}, offered by the download dialog")
    for family, name in folders:
        parts.append(f"the diffusers folder models/{family}/{name}")
    if any(n["type"] == "LoraLoader" for n in workflow["nodes"]):
        parts.append("your own SD1.5 LoRA")
    return "Needs: " + " + ".join(parts)


def compose(graph_png: bytes, title: str, subtitle: str, footer: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.new("RGB", (SIZE, SIZE), (24, 24, 27))
    draw = ImageDraw.Draw(picture)
    big, small = ImageFont.load_default(size=TITLE_PX), ImageFont.load_default(size=TEXT_PX)
    # Title and settings wrap (a template's whole name and its settings sentence, as the card's text is cut short).
    lines = [(line, big, (240, 240, 240)) for line in _wrap(draw, title, big, SIZE - 32, 2)]
    lines += [(line, small, (170, 200, 255)) for line in _wrap(draw, subtitle, small, SIZE - 32, 3)]
    y = 12
    for i, (line, font, colour) in enumerate(lines):
        if i and font is small and lines[i - 1][1] is big:
            y += 6
        draw.text((16, y), line, font=font, fill=colour)
        y += (TITLE_PX if font is big else TEXT_PX) + 6
    caption_bottom = y + 8
    draw.line([(0, caption_bottom - 1), (SIZE, caption_bottom - 1)], fill=(70, 70, 80), width=2)
    draw.line([(0, SIZE - FOOTER), (SIZE, SIZE - FOOTER)], fill=(70, 70, 80), width=2)
    for i, line in enumerate(_wrap(draw, footer, small, SIZE - 32, 2)):
        draw.text((16, SIZE - FOOTER + 10 + 22 * i), line, font=small, fill=(200, 200, 200))

    graph = Image.open(io.BytesIO(graph_png)).convert("RGB")
    bbox = Image.eval(graph.convert("L"), lambda v: 255 if v > 40 else 0).getbbox()  # the drawn nodes and links
    if bbox:
        graph = graph.crop((max(bbox[0] - 20, 0), max(bbox[1] - 20, 0), min(bbox[2] + 20, graph.width),
                            min(bbox[3] + 20, graph.height)))
    room = (SIZE - 16, SIZE - caption_bottom - FOOTER - 16)
    scale = min(room[0] / graph.width, room[1] / graph.height)
    graph = graph.resize((max(int(graph.width * scale), 1), max(int(graph.height * scale), 1)), Image.LANCZOS)
    picture.paste(graph, ((SIZE - graph.width) // 2, caption_bottom + 8 + (room[1] - graph.height) // 2))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def _wrap(draw, text: str, font, width: int, most: int) -> list[str]:
    """`text` in lines of at most `width` pixels, at most `most` of them (the last one cut short with an ellipsis)."""
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=font) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    lines.append(current)
    if len(lines) > most:
        last = " ".join(lines[most - 1:]) + "…"
        while draw.textlength(last, font=font) > width:
            last = last[:-2].rstrip() + "…"
        lines = lines[:most - 1] + [last]
    return lines


def render_graph(page: ComfyPage, workflow: dict) -> bytes:
    """The graph (notes left out) fitted into the square canvas, as a PNG."""
    graph = {**workflow, "nodes": [n for n in workflow["nodes"] if n["type"] != "MarkdownNote"]}
    page.evaluate("async (g) => { await app.loadGraphData(g, true, true, 'thumbnail'); }", graph)
    page.page.wait_for_timeout(300)
    page.evaluate("() => app.extensionManager.command.execute('Comfy.Canvas.FitView')")
    page.evaluate("() => { const c = app.canvas; c.show_info = false;"  # full detail (text) at any zoom:
                  " c._min_font_size_for_lod = 0; c.updateLowQualityThreshold?.(); c.setDirty(true, true); }")
    page.page.wait_for_timeout(500)
    box = page.evaluate("() => { const r = app.canvas.canvas.getBoundingClientRect();"
                        " return {x: r.left, y: r.top, width: r.width, height: r.height}; }")
    return page.page.screenshot(clip=box)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="template names (default: all)")
    args = parser.parse_args()
    names = args.only or sorted(p.stem for p in EXAMPLES.glob("*.json"))
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="instaflow-thumbnails-") as work:
        models = Path(work) / "models"
        models.mkdir()
        with ComfyServer(models, [(PACK_NAME, REPO)], Path(work) / "server") as server, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            context = browser.new_context(viewport=VIEWPORT)
            page = ComfyPage(context.new_page(), server.url, Path(work), "thumb").open()
            page.close_dialogs()
            page.evaluate("async () => { const s = app.extensionManager.setting;"
                          " await s.set('Comfy.Workflow.ShowMissingModelsWarning', false);"
                          " await s.set('Comfy.Minimap.Visible', false); }")
            page.page.add_style_tag(content=ONLY_THE_CANVAS)
            page.page.wait_for_timeout(500)
            for name in names:
                workflow = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
                jpg = compose(render_graph(page, workflow), *caption(workflow), models_line(workflow))
                (EXAMPLES / f"{name}.jpg").write_bytes(jpg)
                print(f"wrote example_workflows/{name}.jpg ({len(jpg) // 1024} KB)", flush=True)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
