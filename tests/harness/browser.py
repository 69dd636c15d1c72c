"""The real ComfyUI frontend in a real browser: Debian's Chromium driven by Playwright for Python.

No browser is downloaded: Playwright launches the system Chromium (`apt-get install chromium`;
scripts/bootstrap.sh installs it when missing; INSTAFLOW_CHROMIUM points at another binary).
ComfyPage wraps one page of a running ComfyServer with what the browser tests do through the UI
(search box, Run button, template browser, menus) and, where clicking is brittle, through the
frontend's own objects (window.app, the LiteGraph graph) with page.evaluate.
Screenshots go to INSTAFLOW_SCREENSHOT_DIR if set, else to a pytest temporary folder; the test
summary prints where.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from harness.pack_identity import PACK_NAME

CHROMIUM = Path(os.environ.get("INSTAFLOW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1920, "height": 1080}  # wide enough that "fit view" keeps node text readable (zoom > 0.6)
PACK_EXTENSION_URL = f"/extensions/{PACK_NAME}/"

# The frontend is ready when the app, its canvas, node definitions, our extension (which sets
# window.InstaFlow in its setup hook) and the first workflow (blank + template browser for a new
# user, else the default graph) are all there.
_READY = ("() => !!(window.app && app.graph && app.canvas && app.extensionManager && window.InstaFlow"
          " && window.LiteGraph && LiteGraph.registered_node_types.KSampler"
          " && app.extensionManager.workflow.activeWorkflow)")


def screenshot_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("INSTAFLOW_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("browser-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


class ComfyPage:
    def __init__(self, page, url: str, shots: Path, prefix: str):
        self.page = page
        self.url = url
        self.shots = shots
        self.prefix = prefix
        self.errors: list[str] = []  # page errors and console errors, for checks on our extension
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}\n{getattr(e, 'stack', '')}"))
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)

    # --------------------------------------------------------------- page
    def open(self) -> "ComfyPage":
        self.page.goto(self.url)
        self.page.wait_for_function(_READY, timeout=90_000)
        return self

    def shot(self, name: str) -> Path:
        path = self.shots / f"{self.prefix}-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def evaluate(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def extension_errors(self) -> list[str]:
        return [e for e in self.errors if PACK_EXTENSION_URL in e or "InstaFlow" in e]

    def close_dialogs(self) -> None:
        """Close what a first visit opens (the template browser for new users) by clicking beside it.

        That dialog ignores Escape and its close button has no accessible name; a click on the
        dimmed mask around it is what closes it for a user too.
        """
        dialogs = self.page.get_by_role("dialog")
        self.page.wait_for_timeout(500)  # the new-user template browser opens just after the first workflow
        for _ in range(3):
            if not dialogs.count():
                return
            mask = self.page.locator(".p-dialog-mask")
            if mask.count():
                mask.first.click(position={"x": 5, "y": 5})
            else:
                self.page.keyboard.press("Escape")
            dialogs.first.wait_for(state="detached", timeout=10_000)

    # --------------------------------------------------------------- graph (frontend objects)
    def node_types(self) -> list[str]:
        return self.evaluate("() => app.graph.nodes.map(n => n.type)")

    def node_id(self, node_type: str) -> int:
        ids = self.evaluate("(t) => app.graph.nodes.filter(n => n.type === t).map(n => n.id)", node_type)
        assert len(ids) == 1, f"expected one {node_type}, found {ids}"
        return ids[0]

    def widgets(self, node_id: int) -> dict:
        return self.evaluate("(id) => Object.fromEntries(app.graph.getNodeById(id).widgets.map(w => [w.name, w.value]))",
                             node_id)

    def set_widgets(self, node_type: str, **values) -> None:
        """Set widget values like a user would, then let the change tracker record them (one undo step)."""
        self.evaluate("""([type, values]) => {
            for (const node of app.graph.nodes.filter(n => n.type === type))
                for (const [name, value] of Object.entries(values)) node.widgets.find(w => w.name === name).value = value;
            app.extensionManager.workflow.activeWorkflow.changeTracker.checkState();
            app.graph.setDirtyCanvas(true, true);
        }""", [node_type, values])

    def serialized_graph(self) -> dict:
        return self.evaluate("() => app.graph.serialize()")

    def api_prompt(self) -> dict:
        """What the Run button would send (the frontend's own graph-to-API conversion)."""
        return self.evaluate("async () => (await app.graphToPrompt()).output")

    # --------------------------------------------------------------- UI
    def canvas_point(self, graph_x: float, graph_y: float) -> tuple[float, float]:
        """Page coordinates of a graph position."""
        return tuple(self.evaluate("""([x, y]) => { const r = app.canvas.canvas.getBoundingClientRect();
            const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([x, y]); return [r.left + cx, r.top + cy] }""",
                                   [graph_x, graph_y]))

    def empty_canvas_point(self) -> tuple[float, float]:
        """A point on the canvas, in the viewport, that no node covers (in the graph, and on the page: with the
        "Nodes 2.0" renderer nodes are DOM elements whose size differs from the graph's)."""
        return tuple(self.evaluate("""() => {
            const r = app.canvas.canvas.getBoundingClientRect();
            const bare = (x, y) => document.elementFromPoint(x, y) === app.canvas.canvas;
            for (let y = r.bottom - 160; y > r.top + 120; y -= 40)
              for (let x = r.left + 160; x < r.right - 420; x += 40) {
                const [gx, gy] = app.canvas.ds.convertCanvasToOffset([x - r.left, y - r.top]);
                const near = [[0, 0], [-50, -50], [50, -50], [-50, 50], [50, 50]];
                if (near.every(([dx, dy]) => !app.graph.getNodeOnPos(gx + dx, gy + dy) && bare(x + dx, y + dy))) return [x, y];
              }
            throw new Error('no empty canvas point in view');
        }"""))

    def fit_view(self) -> None:
        self.page.get_by_role("button", name=re.compile(r"^Fit View")).click()
        self.page.wait_for_timeout(300)

    def canvas_menu(self, entry: str) -> None:
        """Right-click an empty spot of the canvas and pick `entry` from the context menu."""
        x, y = self.empty_canvas_point()
        self.page.mouse.click(x, y, button="right")
        self.page.locator(".litecontextmenu .litemenu-entry", has_text=entry).click()

    def top_menu(self, *path: str) -> None:
        """The ComfyUI logo menu: e.g. top_menu("Edit", "InstaFlow", "Convert to ...")."""
        self.page.locator(".comfy-menu-button-wrapper").click()
        menu = self.page.locator(".comfy-command-menu")
        for label in path[:-1]:
            menu.get_by_text(label, exact=True).hover()
        menu.get_by_text(path[-1], exact=True).click()

    def run_from_ui(self) -> None:
        self.page.get_by_role("button", name="Run", exact=True).click()

    def wait_for_image_on_node(self, node_id: int, timeout_ms: int = 300_000) -> dict:
        """Wait until the node shows an output image (loaded in the page); returns its URL and size."""
        self.page.wait_for_function("""(id) => { const n = app.graph.getNodeById(id);
            return !!(n && n.imgs && n.imgs.length && n.imgs[0].complete && n.imgs[0].naturalWidth > 0) }""",
                                    arg=node_id, timeout=timeout_ms)
        return self.evaluate("""(id) => { const img = app.graph.getNodeById(id).imgs[0];
            return {src: img.src, width: img.naturalWidth, height: img.naturalHeight} }""", node_id)
