// Live mode: while it is on, every edit of the open workflow (each character typed in a prompt box, each widget
// change) queues it, so the image follows the text as it is typed. Off by default; a setting, so it survives a reload.
// - Debounced (DEBOUNCE_MS), and only when the prompt the server would run differs from the last one queued.
// - At most one prompt of ours waits behind the running one: a newer edit takes the waiting one out of the queue
//   (POST /queue {"delete": [id]}) before it queues its own, so nothing piles up while one runs.
// - An execution error (or a graph the server refuses) turns Live mode off with one message: no retry loop.
// - Seeds stay as they are ("control after generate" acts on Run only), so the picture changes with the text alone.
// - The status chip (bottom centre, only while on) shows the last latency: from queuing to the image shown on its node.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import {
  deleteWaitingPrompt, nodeOfWidgetElement, onGraphEdited, shownImageSource, syncWidgetFromElement,
} from "./frontend_shim.js";

const EXTENSION = "InstaFlow.Live";
const SETTING = "InstaFlow.Live.Enabled";
const COMMAND = "InstaFlow.Live.Toggle";
const DEBOUNCE_MS = 60; // edits closer together than this share one prompt; short enough to feel immediate
const SHOWN_TIMEOUT_MS = 10_000; // an image never drawn (its node deleted, the tab hidden) stops being waited for
const KEEP_RECORDS = 500;

class LiveMode {
  constructor() {
    this.enabled = false;
    this.timer = null;
    this.queuing = false; // a POST /prompt of ours is on its way
    this.again = false; // an edit arrived while it was
    this.lastOutput = null; // JSON of the last API prompt queued
    this.waiting = null; // our prompt id still in the server's queue (not started)
    this.ours = new Map(); // prompt id -> record {promptId, queuedAt, startedAt, shownAt, latencyMs, node, state}
    this.records = []; // the same records in queuing order (read by the browser tests and bench/live_typing.py)
    this.lastLatencyMs = null;
    this.stoppedBy = null; // the error that turned Live mode off, if one did
    this.startedEarly = new Set(); // execution_start can arrive before the reply to POST /prompt
    this.chip = null;
    this.ready = false; // set at the end of the extension's setup
  }

  // ------------------------------------------------------------------ on / off
  async setEnabled(on) {
    on = !!on;
    if (on === this.enabled) return;
    this.enabled = on;
    if (on) {
      this.stoppedBy = null;
      this.lastOutput = null;
      // Turned on by the user: the current graph at once, so turning it on shows an image. On at page load (the
      // setting's first onChange, then setup): the first edit queues; the workflow is not restored yet.
      if (this.ready) this.schedule(0);
    } else {
      clearTimeout(this.timer);
      this.timer = null;
      this.again = false;
    }
    this.render();
  }

  async stop(error) {
    if (!this.enabled) return;
    this.stoppedBy = error;
    await app.extensionManager.setting.set(SETTING, false); // its onChange calls setEnabled(false)
    await this.setEnabled(false);
    const waiting = this.waiting; // queued from an edit made before the failure: it would fail the same way
    this.waiting = null;
    if (waiting) await deleteWaitingPrompt(api, waiting).catch(() => {});
    app.extensionManager.toast?.add({
      severity: "warn", summary: "Live mode is off",
      detail: `It stopped because the prompt failed: ${error}`, life: 8000,
    });
  }

  // ------------------------------------------------------------------ queuing
  // A pending timer is kept, not restarted: it reads the graph when it fires, so edits within DEBOUNCE_MS share one
  // prompt, and a fast typist still gets updates while typing (a restarted timer would fire only at a pause).
  schedule(delay = DEBOUNCE_MS) {
    if (!this.enabled) return;
    if (this.timer && delay > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }

  async flush() {
    this.timer = null;
    if (!this.enabled) return;
    if (this.queuing) {
      this.again = true; // queued right after: the newest text wins
      return;
    }
    this.queuing = true;
    try {
      const prompt = await app.graphToPrompt();
      const output = JSON.stringify(prompt.output);
      if (!this.enabled || output === this.lastOutput) return;
      const waiting = this.waiting;
      if (waiting) {
        this.waiting = null;
        await deleteWaitingPrompt(api, waiting);
        const replaced = this.ours.get(waiting);
        if (replaced && !replaced.startedAt) replaced.state = "replaced";
      }
      const queuedAt = performance.now();
      const reply = await api.queuePrompt(0, prompt);
      this.lastOutput = output;
      const record = { promptId: reply.prompt_id, queuedAt, startedAt: null, shownAt: null, latencyMs: null, state: "queued" };
      this.ours.set(record.promptId, record);
      this.records.push(record);
      if (this.records.length > KEEP_RECORDS) this.ours.delete(this.records.shift().promptId);
      if (this.startedEarly.delete(record.promptId)) this.started(record.promptId);
      else this.waiting = record.promptId;
    } catch (error) {
      // The server refused the graph (node_errors) or could not be reached: stop instead of re-sending it per key.
      await this.stop(error?.response?.error?.message ?? error?.message ?? String(error));
    } finally {
      this.queuing = false;
      this.startedEarly.clear();
      if (this.again) {
        this.again = false;
        this.schedule(0);
      }
    }
  }

  // ------------------------------------------------------------------ server events
  started(promptId) {
    const record = this.ours.get(promptId);
    if (!record) {
      if (this.queuing && promptId) this.startedEarly.add(promptId);
      return;
    }
    record.startedAt = performance.now();
    record.state = "running";
    if (this.waiting === promptId) this.waiting = null;
  }

  ended(promptId, state) {
    const record = this.ours.get(promptId);
    if (!record) return;
    if (record.state !== "shown") record.state = state;
    if (this.waiting === promptId) this.waiting = null;
  }

  failed(detail) {
    this.ended(detail.prompt_id, "failed");
    if (!this.ours.has(detail.prompt_id) || !this.enabled) return;
    const where = detail.node_type ? `${detail.node_type}: ` : "";
    this.stop(`${where}${detail.exception_message ?? "execution error"}`.trim());
  }

  // The first image of one of our prompts reached the page for `nodeId`: wait until the node shows it.
  imageArrived(promptId, nodeId) {
    const record = this.ours.get(promptId);
    if (!record || record.node != null) return;
    const graph = app.canvas?.graph ?? app.graph;
    const node = graph?.getNodeById?.(nodeId);
    if (!node) return;
    record.node = String(nodeId);
    const before = shownImageSource(app, node);
    const deadline = performance.now() + SHOWN_TIMEOUT_MS;
    const look = () => {
      const now = performance.now();
      const shown = shownImageSource(app, node);
      if (shown && shown !== before) {
        record.shownAt = now;
        record.latencyMs = now - record.queuedAt;
        record.state = "shown";
        this.lastLatencyMs = record.latencyMs;
        this.render();
      } else if (now < deadline) {
        requestAnimationFrame(look);
      }
    };
    requestAnimationFrame(look);
  }

  // ------------------------------------------------------------------ the status chip
  render() {
    if (!this.chip) {
      this.chip = document.createElement("div");
      this.chip.dataset.testid = "instaflow-live-status";
      this.chip.title = "InstaFlow Live mode: the workflow is queued as you type. Click to turn it off.";
      Object.assign(this.chip.style, {
        position: "fixed", bottom: "12px", left: "50%", transform: "translateX(-50%)", zIndex: 1000,
        padding: "2px 10px", borderRadius: "999px", font: "12px sans-serif", cursor: "pointer",
        background: "rgba(20, 20, 24, 0.85)", color: "#9fe6a0", border: "1px solid #3a5",
        pointerEvents: "auto", userSelect: "none",
      });
      this.chip.addEventListener("click", () => app.extensionManager.command.execute(COMMAND));
      document.body.appendChild(this.chip);
    }
    this.chip.style.display = this.enabled ? "" : "none";
    const latency = this.lastLatencyMs == null ? "" : ` · ${Math.round(this.lastLatencyMs)} ms`;
    this.chip.textContent = `● Live${latency}`;
  }

  state() {
    return { enabled: this.enabled, waiting: this.waiting, lastLatencyMs: this.lastLatencyMs,
      stoppedBy: this.stoppedBy, records: this.records.map((r) => ({ ...r })) };
  }
}

const live = new LiveMode();

function toggle() {
  const setting = app.extensionManager.setting;
  return setting.set(SETTING, !setting.get(SETTING));
}

app.registerExtension({
  name: EXTENSION,
  settings: [{
    id: SETTING,
    category: ["InstaFlow", "Live mode", "Enabled"],
    name: "Live mode: queue the workflow as you type",
    tooltip: "Every edit of a prompt box or widget queues the open workflow (at most one waiting behind the running " +
      "one). Use a one-step model and Live Preview (fast); the template instaflow_live is set up for it.",
    type: "boolean",
    defaultValue: false,
    onChange: (value) => live.setEnabled(value),
  }],
  commands: [{
    id: COMMAND,
    label: "Toggle Live mode (queue as you type)",
    icon: "pi pi-bolt",
    tooltip: "InstaFlow Live mode: queue the open workflow on every edit",
    function: toggle,
  }],
  menuCommands: [{ path: ["Edit", "InstaFlow"], commands: [COMMAND] }],
  // The action bar beside the Run button shows these from frontend 1.48 (earlier ones ignore the key; the command is
  // in Edit > InstaFlow and the setting in the settings dialog there).
  actionBarButtons: [{
    icon: "pi pi-bolt", label: "Live", tooltip: "InstaFlow Live mode: queue as you type (on / off)", onClick: toggle,
  }],
  async setup() {
    // Typing: input events on a node's widget element, in either renderer (change events come after blur only).
    document.addEventListener("input", (event) => {
      if (!live.enabled) return;
      const node = nodeOfWidgetElement(app, event.target);
      if (!node) return;
      syncWidgetFromElement(app, node, event.target);
      live.schedule();
    }, true);
    onGraphEdited(api, () => live.schedule()); // any other recorded edit: combos, numbers, links
    api.addEventListener("execution_start", ({ detail }) => live.started(detail?.prompt_id));
    api.addEventListener("execution_success", ({ detail }) => live.ended(detail?.prompt_id, "done"));
    api.addEventListener("execution_interrupted", ({ detail }) => live.ended(detail?.prompt_id, "interrupted"));
    api.addEventListener("execution_error", ({ detail }) => live.failed(detail ?? {}));
    api.addEventListener("executed", ({ detail }) => {
      if (detail?.output?.images?.length) live.imageArrived(detail.prompt_id, detail.display_node ?? detail.node);
    });
    api.addEventListener("b_preview_with_metadata", ({ detail }) => live.imageArrived(detail?.jobId, detail?.displayNodeId));
    window.InstaFlowLive = { state: () => live.state(), toggle, setting: SETTING, command: COMMAND };
    await live.setEnabled(app.extensionManager.setting.get(SETTING));
    live.ready = true;
  },
});
