"""The real ComfyUI frontend in a real browser: Debian's Chromium driven by Playwright for Python.

No browser is downloaded: Playwright launches the system Chromium (`apt-get install chromium`;
scripts/bootstrap.sh installs it when missing; INSTAFLOW_CHROMIUM points at another binary).
ComfyPage wraps one page of a running ComfyServer with what the browser tests do through the UI
(search box, Run button, template browser, menus) and, where clicking is brittle, through the
frontend's own objects (window.app, the LiteGraph graph) with page.evaluate.
Screenshots go to INSTAFLOW_SCREENSHOT_DIR if set, else to a pytest temporary folder; the test
summary prints where.

The tests run on three frontends (1.32.9 with ComfyUI 0.3.75, 1.48.7 with 0.33.0, 1.58.1 by INSTAFLOW_FRONTEND).
Where their UIs differ, the difference lives here, found by what the page has, not by version number.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from devtools.pack_identity import PACK_NAME

CHROMIUM = Path(os.environ.get("INSTAFLOW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1920, "height": 1080}  # wide enough that "fit view" keeps node text readable (zoom > 0.6)
PACK_EXTENSION_URL = f"/extensions/{PACK_NAME}/"
SD15_GRAPH = Path(__file__).resolve().parents[1] / "tests" / "graphs" / "sd15_txt2img.json"  # a user's own SD1.5 txt2img graph

# The queue ("Run") button has this test id in all three frontends: on 1.32.9 it is on a split button (the main half
# runs, the other opens the queue-mode menu), on 1.48.7 and later on the button itself. Its accessible name does not
# tell it apart: from 1.48.7 the queue-mode menu is named "Run" too.
QUEUE_BUTTON = '[data-testid="queue-button"]'
# The ComfyUI logo menu: a test id from 1.58 (a Reka menu), the wrapper's class before (a PrimeVue TieredMenu).
MENU_BUTTON = '[data-testid="comfy-menu-button"], .comfy-menu-button-wrapper'
# Toasts: PrimeVue's before 1.58, the frontend's own Reka toasts from 1.58.
TOAST = '.p-toast-message, [data-testid="toast"]'
TOAST_CLOSE = '.p-toast-close-button, [data-testid="toast-close"]'
# The node search a double click on the canvas opens: its input (placeholder "Search Nodes..." up to 1.32, the
# search box v2 of 1.48+ in a role=search container); its results are options in both.
NODE_SEARCH_INPUT = 'input[placeholder="Search Nodes..."], [role="search"] input'
# ComfyUI's report of a loaded workflow's missing model files. Up to 1.32: the "Missing Models" dialog (a row per
# file: "folder / name", its URL as the row's title, a message where it cannot be downloaded). From 1.48: an error
# overlay whose "See errors" opens the Errors tab of the right side panel, with a "Missing Models" group (a row per
# file: its name, its folder as the row's caption, a Download button where the frontend downloads it).
MISSING_MODELS_DIALOG = '.p-dialog:has(.comfy-missing-models)'
ERROR_OVERLAY = '[data-testid="error-overlay"]'
MISSING_MODELS_GROUP = '[data-testid="error-group-missing-model"]'
PROPERTIES_PANEL = '[data-testid="properties-panel"]'

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
        self.external_requests: list[tuple[str, str]] = []  # (method, URL) the page asked the internet for, if recorded
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

    def watch_pack_deprecations(self) -> None:
        """Record LiteGraph's deprecation warnings raised from this pack's code, every time (LiteGraph warns once per
        page, and the frontend's own code may have used up that once: 1.58.1 reads input.link on load)."""
        self.evaluate("""(url) => { window.__packDeprecations = [];
            LiteGraph.alwaysRepeatWarnings = true;
            LiteGraph.onDeprecationWarning.push((message) => {
                if ((new Error().stack ?? '').includes(url)) window.__packDeprecations.push(message) }) }""",
                      PACK_EXTENSION_URL)

    def pack_deprecations(self) -> list[str]:
        return self.evaluate("() => window.__packDeprecations")

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

    # --------------------------------------------------------------- missing models
    def missing_models_shown(self) -> bool:
        """Whether the page reports missing models now (the dialog, or the Errors tab's group behind the overlay)."""
        if self.page.locator(MISSING_MODELS_DIALOG).count():
            return True
        if not self.page.locator(ERROR_OVERLAY).count():
            return False
        self.page.get_by_test_id("error-overlay-see-errors").click()  # the overlay may stand for other errors
        self.page.locator(PROPERTIES_PANEL).wait_for()
        self.page.wait_for_timeout(300)
        shown = bool(self.page.locator(MISSING_MODELS_GROUP).count())
        self.close_missing_models()
        return shown

    def missing_models_rows(self) -> list[dict]:
        """The reported files, waited for: label ("folder / name"), url, error (None where it can be downloaded)."""
        self.page.locator(f"{MISSING_MODELS_DIALOG}, {ERROR_OVERLAY}").first.wait_for()
        if self.page.locator(MISSING_MODELS_DIALOG).count():
            return self.evaluate("""() => [...document.querySelectorAll('.comfy-missing-models [role=option]')].map(row => ({
                label: row.querySelector('span[title]')?.textContent.trim(),
                url: row.querySelector('span[title]')?.getAttribute('title'),
                error: row.querySelector('.p-message')?.textContent.trim() ?? null}))""")
        self.page.get_by_test_id("error-overlay-see-errors").click()
        group = self.page.locator(MISSING_MODELS_GROUP)
        group.wait_for()
        return self._missing_model_rows(group)

    def _missing_model_rows(self, group) -> list[dict]:
        """Rows of the Errors tab's group. The URL is not on the page: the row's Download button opens it in a new
        tab, whose request for it (refused by the test's route, recorded in external_requests) names it."""
        names = group.evaluate("""(g) => [...g.querySelectorAll('[title]')]
            .filter(e => !e.matches('button[aria-label]') && e.getAttribute('title') === e.textContent.trim())
            .map(e => { const row = e.closest('.flex.w-full.flex-col');
                        const caption = e.parentElement.nextElementSibling;
                        return {name: e.textContent.trim(), folder: caption?.textContent.split('·')[0].trim() ?? null} })""")
        rows = []
        for entry in names:
            download = group.get_by_test_id("missing-model-download").filter(
                has=self.page.locator(f'xpath=self::*[@aria-label="Download {entry["name"]}"]'))
            url, error = None, "no Download button"
            if download.count():
                error = None
                asked = len(self.external_requests)
                with self.page.context.expect_page() as popup:
                    download.first.click()
                popup.value.wait_for_load_state()
                self.page.wait_for_timeout(200)
                opened = [u for m, u in self.external_requests[asked:] if m == "GET"]
                url = opened[-1] if opened else None
                popup.value.close()
            rows.append({"label": f"{entry['folder']} / {entry['name']}", "url": url, "error": error})
        return rows

    def close_missing_models(self) -> None:
        dialog = self.page.locator(MISSING_MODELS_DIALOG)
        if dialog.count():
            dialog.locator(".p-dialog-close-button").click()
            dialog.wait_for(state="detached")
            return
        overlay = self.page.locator(ERROR_OVERLAY)
        if overlay.count():
            overlay.get_by_test_id("error-overlay-dismiss").click()
            overlay.wait_for(state="detached")
        self.close_properties_panel()

    def close_properties_panel(self) -> None:
        """Closes the right side panel (1.48+) where it is open: the Errors tab, a node's Info."""
        panel = self.page.locator(PROPERTIES_PANEL)
        if panel.count():
            panel.get_by_role("button", name="Toggle properties panel").click()
            panel.wait_for(state="detached")

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
        """Set widget values like a user would, then let the change tracker record them (one undo step).
        captureCanvasState from 1.48 (checkState, which it replaces, warns there), checkState before."""
        self.evaluate("""([type, values]) => {
            for (const node of app.graph.nodes.filter(n => n.type === type))
                for (const [name, value] of Object.entries(values)) node.widgets.find(w => w.name === name).value = value;
            const tracker = app.extensionManager.workflow.activeWorkflow.changeTracker;
            (tracker.captureCanvasState ?? tracker.checkState).call(tracker);
            app.graph.setDirtyCanvas(true, true);
        }""", [node_type, values])

    def load_sd15_graph(self, checkpoint: str, size: int) -> None:
        """Open tests/graphs/sd15_txt2img.json as a user opens a saved workflow (app.loadGraphData), with its
        checkpoint and image size set to the test's (so no frontend reports the checkpoint as missing)."""
        graph = json.loads(SD15_GRAPH.read_text())
        for node in graph["nodes"]:
            if node["type"] == "CheckpointLoaderSimple":
                node["widgets_values"][0] = checkpoint
            elif node["type"] == "EmptyLatentImage":
                node["widgets_values"][:2] = [size, size]
        self.evaluate("async (graph) => { await app.loadGraphData(graph); }", graph)
        types = sorted(node["type"] for node in graph["nodes"])
        self.page.wait_for_function(
            "(types) => JSON.stringify(app.graph.nodes.map(n => n.type).sort()) === JSON.stringify(types)", arg=types)

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

    def node_title_point(self, node_id: int) -> tuple[float, float]:
        """Page coordinates of a point on a node's title bar (classic canvas renderer)."""
        x, y = self.evaluate("""(id) => { const n = app.graph.getNodeById(id);
            return [n.pos[0] + 30, n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT / 2] }""", node_id)
        return self.canvas_point(x, y)

    def select_node(self, node_id: int) -> None:
        """Click the node's title bar until the canvas has it selected (a click landing while the node search
        closes is lost)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        for _attempt in range(3):
            self.page.mouse.click(*self.node_title_point(node_id))
            try:
                self.page.wait_for_function("(id) => !!app.canvas.selected_nodes?.[id]", arg=node_id, timeout=3_000)
                return
            except PlaywrightTimeout:
                pass
        # Seen on 1.58.1 after a node placed from the search: three clicks on the title left it unselected. The tests
        # that call this are about what a selection shows, so the canvas selects it the way a click ends up doing.
        self.evaluate("""(id) => { const node = app.graph.getNodeById(id);
            app.canvas.deselectAll?.(); app.canvas.select ? app.canvas.select(node) : app.canvas.selectNode(node);
            app.canvas.setDirty(true, true); }""", node_id)
        self.page.wait_for_function("(id) => !!app.canvas.selected_nodes?.[id]", arg=node_id, timeout=5_000)

    def node_search(self):
        return self.page.locator(NODE_SEARCH_INPUT)

    def open_node_search(self) -> tuple[float, float]:
        """Double-click an empty spot of the canvas; returns when the search input has the keyboard focus (keys typed
        before that reach the canvas's shortcuts: seen opening the logs panel). Returns the spot."""
        from playwright.sync_api import Error as PlaywrightError, TimeoutError as PlaywrightTimeout

        search = self.node_search().first
        missed = []
        for attempt in range(3):
            if attempt:
                # Seen once on 1.58.1 in CI, on a first visit: the double click opened nothing. A new user's template
                # browser opening late (after close_dialogs looked) takes the click on its mask.
                self.close_dialogs()
            try:
                point = self.empty_canvas_point()
            except PlaywrightError as error:  # the canvas is covered
                missed.append(str(error).splitlines()[0])
                continue
            self.page.mouse.dblclick(*point)
            try:
                search.wait_for(timeout=10_000)
                break
            except PlaywrightTimeout:
                missed.append(self.evaluate("""([x, y]) => { const e = document.elementFromPoint(x, y);
                    return `under the cursor: ${e?.tagName}.${e?.className}`; }""", list(point)))
        else:
            raise AssertionError(f"a double click on the empty canvas opened no node search: {missed}")
        if missed:
            print(f"node search opened after {len(missed)} tries that did not: {missed}")
        self.page.wait_for_function("(e) => document.activeElement === e", arg=search.element_handle())
        return point

    def add_node_by_search(self, query: str, option_text: str) -> None:
        """Double-click an empty spot of the canvas, type `query` in the node search, click the option showing
        `option_text`."""
        point = self.open_node_search()
        self.page.keyboard.type(query)
        self.page.get_by_role("option").filter(has_text=option_text).first.click()
        self.place_picked_node(point)

    def place_picked_node(self, point: tuple[float, float]) -> None:
        """From 1.48 a node picked in the search follows the cursor, half transparent (a "ghost"), until a click
        places it; before, it is placed at once. Clicks at `point` where there is a ghost."""
        self.page.wait_for_timeout(200)
        if self.evaluate("() => app.canvas.state?.ghostNodeId != null"):
            self.page.mouse.click(*point)
            self.page.wait_for_function("() => app.canvas.state.ghostNodeId == null")

    # --------------------------------------------------------------- node library
    # Its tree: PrimeVue's (1.32; items nested, each named by aria-label) or, from 1.48, the new design's (a flat,
    # virtualized list of Reka tree items: only rows near the view exist). Both give each row role=treeitem and an
    # aria-level, and list rows in tree order, so a folder's children are the rows after it one level deeper.
    _TREE_ROWS = """(panel) => [...panel.querySelectorAll('[role=treeitem]')].map(e => ({
        level: +e.getAttribute('aria-level'), label: (e.getAttribute('aria-label') ?? e.innerText).trim(),
        expanded: e.getAttribute('aria-expanded') === 'true'}))"""

    def open_node_library(self) -> None:
        self.page.get_by_role("button", name=re.compile(r"^Node Library")).click()

    def _library_row(self, label: str, level: int):
        """The tree row (label, level), in view; the panel is scrolled down (wheel) until it exists."""
        panel = self.page.locator(".side-bar-panel")
        for _ in range(40):
            rows = panel.evaluate(self._TREE_ROWS)
            index = next((i for i, r in enumerate(rows) if r["label"] == label and r["level"] == level), None)
            if index is not None:
                row = panel.locator("[role=treeitem]").nth(index)
                row.scroll_into_view_if_needed()
                return row
            box = panel.bounding_box()
            self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            self.page.mouse.wheel(0, 300)
            self.page.wait_for_timeout(150)
        raise AssertionError(f"no node library row {label!r} at level {level}")

    def _toggle_library_folder(self, label: str, level: int, expanded: bool) -> None:
        row = self._library_row(label, level)
        if (row.get_attribute("aria-expanded") == "true") != expanded:
            row.get_by_text(label, exact=True).first.click()
            self.page.wait_for_function("([e, x]) => (e.getAttribute('aria-expanded') === 'true') === x",
                                        arg=[row.element_handle(), expanded])

    def library_folder_children(self, *path: str) -> list[str]:
        """Open the folders of `path` (top level first), return the labels of the last one's children, close it again
        (a short list: the new design's list, scrolled to its end, jumps as its title bar hides and shows)."""
        for level, label in enumerate(path, start=1):
            self._toggle_library_folder(label, level, True)
        self.page.mouse.move(0, 0)  # no hover preview over the list
        rows = self.page.locator(".side-bar-panel").evaluate(self._TREE_ROWS)
        start = next(i for i, r in enumerate(rows) if r["label"] == path[-1] and r["level"] == len(path))
        children = []
        for r in rows[start + 1:]:
            if r["level"] <= len(path):
                break
            if r["level"] == len(path) + 1:
                children.append(r["label"])
        if len(path) > 1:
            self._toggle_library_folder(path[-1], len(path), False)
        return children

    def fit_view(self) -> None:
        self.page.get_by_role("button", name=re.compile(r"^Fit View")).click()
        self.page.wait_for_timeout(300)

    def canvas_menu(self, entry: str) -> None:
        """Right-click an empty spot of the canvas and pick `entry` from the context menu."""
        x, y = self.empty_canvas_point()
        self.page.mouse.click(x, y, button="right")
        self.page.locator(".litecontextmenu .litemenu-entry", has_text=entry).click()

    def top_menu(self, *path: str) -> None:
        """The ComfyUI logo menu: e.g. top_menu("Edit", "InstaFlow", "Convert to ..."). Its entries are menu items
        in both menu implementations; a submenu opens on hover."""
        self.page.locator(MENU_BUTTON).first.click()
        for label in path[:-1]:
            self.page.get_by_role("menuitem", name=label, exact=True).hover()
        self.page.get_by_role("menuitem", name=path[-1], exact=True).click()

    def run_from_ui(self) -> None:
        """Click the queue button (on 1.32.9 the main half of its split button)."""
        self.page.locator(QUEUE_BUTTON).locator("xpath=descendant-or-self::button").first.click()

    def toast(self, text: str):
        return self.page.locator(TOAST, has_text=text)

    def close_toasts(self) -> None:
        """Close the toasts shown, by their close buttons. At the top right they cover the error overlay's dismiss
        button on a 1280 px wide page: a click there waits until the toast's own time is up (seen: 14 s)."""
        closes = self.page.locator(TOAST_CLOSE)
        for _ in range(10):
            count = closes.count()
            if not count:
                return
            closes.first.click()
            self.page.wait_for_function("([selector, count]) => document.querySelectorAll(selector).length < count",
                                        arg=[TOAST_CLOSE, count])

    def wait_for_image_on_node(self, node_id: int, timeout_ms: int = 300_000) -> dict:
        """Wait until the node shows an output image (loaded in the page); returns its URL and size."""
        self.page.wait_for_function("""(id) => { const n = app.graph.getNodeById(id);
            return !!(n && n.imgs && n.imgs.length && n.imgs[0].complete && n.imgs[0].naturalWidth > 0) }""",
                                    arg=node_id, timeout=timeout_ms)
        return self.evaluate("""(id) => { const img = app.graph.getNodeById(id).imgs[0];
            return {src: img.src, width: img.naturalWidth, height: img.naturalHeight} }""", node_id)
