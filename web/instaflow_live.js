// Live mode: while it is on, every edit of the open workflow (each character typed in a prompt box, each widget
// change) queues it, so the image follows the text as it is typed. Off by default; a setting, so it survives a reload.
// - Debounced (DEBOUNCE_MS), and only when the prompt the server would run differs from the last one queued.
// - Nothing piles up: while a prompt of ours is queued or running, edits only mark the graph as changed, and the
//   newest graph is queued the moment that prompt ends. No prompt of ours ever waits behind another of ours, and no
//   prompt is built, sent or deleted per key while one runs: that work would take CPU from the running prompt.
// - When typing pauses while our prompt runs a text that is no longer the newest, that prompt is interrupted (only
//   it, and only when nothing else is queued on the server) and the newest text is queued at once: the final text's
//   image then waits for the pause instead of the rest of a stale run. The pause is twice the typist's usual gap
//   between keys (PAUSE_MIN_MS-PAUSE_MAX_MS), so steady typing keeps its images.
// - An execution error (or a graph the server refuses) turns Live mode off with one message: no retry loop.
// - Seeds stay as they are ("control after generate" acts on Run only), so the picture changes with the text alone.
// - The status chip (bottom centre, only while on) shows the last latency: from queuing to the image shown on its node.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { nodeOfWidgetElement, onGraphEdited, shownImageSource, syncWidgetFromElement } from "./frontend_shim.js";

const EXTENSION = "InstaFlow.Live";
const SETTING = "InstaFlow.Live.Enabled";
const INTERRUPT_SETTING = "InstaFlow.Live.InterruptAtPause";
const COMMAND = "InstaFlow.Live.Toggle";
const DEBOUNCE_MS = 60; // edits closer together than this share one prompt; short enough to feel immediate
const SHOWN_TIMEOUT_MS = 10_000; // an image never drawn (its node deleted, the tab hidden) stops being waited for
const KEEP_RECORDS = 500;
const PAUSE_MIN_MS = 150; // a pause in typing: twice the median gap between the last edits, within these bounds
const PAUSE_MAX_MS = 500;
const GAPS_KEPT = 8;

class LiveMode {
  constructor() {
    this.enabled = false;
    this.ready = false; // set at the end of the extension's setup
    this.timer = null;
    this.dirty = false; // an edit not yet queued
    this.queuing = false; // a POST /prompt of ours is on its way
    this.inFlight = null; // our prompt id queued or running on the server
    this.lastOutput = null; // JSON of the last API prompt queued
    this.ours = new Map(); // prompt id -> record {promptId, queuedAt, startedAt, shownAt, latencyMs, node, state}
    this.records = []; // the same records in queuing order (read by the browser tests and bench/live_typing.py)
    this.early = []; // server events for a prompt id not known yet: they can arrive before the reply to POST /prompt
    this.lastLatencyMs = null;
    this.stoppedBy = null; // the error that turned Live mode off, if one did
    this.chip = null;
    this.lastEditAt = null;
    this.gaps = []; // ms between the last edits
    this.pauseTimer = null;
    this.pauseDue = false; // typing paused while our prompt was not started yet: decided when it starts
    this.lastPause = null; // what the last pause did, and why (read by the browser tests)
    this.queueRemaining = null; // the server's count of running and waiting prompts (its last status message)
    this.lastInterruptAt = -Infinity;
  }

  // ------------------------------------------------------------------ on / off
  async setEnabled(on) {
    on = !!on;
    if (on === this.enabled) return;
    this.enabled = on;
    clearTimeout(this.timer);
    this.timer = null;
    if (on) {
      this.stoppedBy = null;
      this.lastOutput = null;
      // Turned on by the user: the current graph at once, so turning it on shows an image. On at page load (the
      // setting's first onChange, then setup): the first edit queues; the workflow is not restored yet.
      if (this.ready) this.edited(0);
    } else {
      this.dirty = false;
      clearTimeout(this.pauseTimer);
      this.pauseTimer = null;
      this.pauseDue = false;
    }
    this.render();
  }

  async stop(error) {
    if (!this.enabled) return;
    this.stoppedBy = error;
    await this.setEnabled(false);
    await app.extensionManager.setting.set(SETTING, false); // stored; its onChange finds it off already
    app.extensionManager.toast?.add({
      severity: "warn", summary: "Live mode is off",
      detail: `It stopped because the prompt failed: ${error}`, life: 15000,
    });
  }

  // ------------------------------------------------------------------ queuing
  edited(delay = DEBOUNCE_MS) {
    if (!this.enabled) return;
    this.dirty = true;
    if (delay > 0) this.noteEdit();
    if (this.inFlight || this.queuing) return; // queued when our prompt ends (or is interrupted at a pause)
    // A pending timer is kept, not restarted: edits within DEBOUNCE_MS share one prompt, and a fast typist still
    // gets updates while typing (a restarted timer would fire only at a pause).
    if (this.timer && delay > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }

  // An edit by the user: its gap from the last one, and the pause timer restarted.
  noteEdit() {
    const now = performance.now();
    const gap = this.lastEditAt == null ? null : now - this.lastEditAt;
    if (gap != null && gap < 15) return; // the same key reported twice (its input event, then the graph's change)
    if (gap != null && gap < 1000) {
      this.gaps.push(gap);
      if (this.gaps.length > GAPS_KEPT) this.gaps.shift();
    }
    this.lastEditAt = now;
    this.pauseDue = false;
    clearTimeout(this.pauseTimer);
    this.pauseTimer = setTimeout(() => this.paused(), this.pauseMs());
  }

  pauseMs() {
    const gaps = [...this.gaps].sort((a, b) => a - b);
    const median = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0;
    return Math.min(PAUSE_MAX_MS, Math.max(PAUSE_MIN_MS, 2 * median));
  }

  // Typing paused. If our running prompt is of an older text and nothing else is queued, interrupt it: its end
  // (execution_interrupted) queues the newest text. The server interrupts only that prompt where /interrupt takes an
  // id (ComfyUI 0.3.75 does, 0.3.52 does not); an older one interrupts whatever runs: ours, as nothing else is queued.
  async paused() {
    this.pauseTimer = null;
    this.pauseDue = false;
    const skip = (why) => { this.lastPause = why; };
    if (!this.enabled || !this.dirty) return skip("nothing changed");
    const record = this.ours.get(this.inFlight);
    // Our prompt on its way or not started yet: decide when it starts (started()), if no key has come since.
    if (this.queuing || record?.state === "queued") {
      this.pauseDue = true;
      return skip("prompt not started yet");
    }
    if (!record || record.state !== "running") return skip("no prompt of ours running");
    if (this.queueRemaining !== 1) return skip(`the server has ${this.queueRemaining} prompts`);
    if (!app.extensionManager.setting.get(INTERRUPT_SETTING)) return skip("interrupt at a pause is off");
    // "Changed" can be the graph's own change event for the edit the running prompt already has: compare.
    const output = JSON.stringify((await app.graphToPrompt()).output);
    if (output === record.output) return skip("the running prompt has the newest graph");
    if (this.inFlight !== record.promptId || record.state !== "running") return skip("the prompt ended meanwhile");
    skip("interrupted");
    record.interruptAsked = this.lastInterruptAt = performance.now();
    try {
      await api.fetchApi("/interrupt", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt_id: record.promptId }) });
    } catch (error) {
      record.interruptAsked = null; // it runs to its end, as without the interrupt
    }
  }

  async flush() {
    this.timer = null;
    if (!this.enabled || !this.dirty || this.inFlight || this.queuing) return;
    this.queuing = true;
    this.dirty = false;
    try {
      const prompt = await app.graphToPrompt();
      const output = JSON.stringify(prompt.output);
      if (!this.enabled || output === this.lastOutput) return;
      const queuedAt = performance.now();
      const reply = await api.queuePrompt(0, prompt);
      this.lastOutput = output;
      const record = { promptId: reply.prompt_id, queuedAt, startedAt: null, shownAt: null, latencyMs: null, state: "queued",
        output, interruptAsked: null };
      this.ours.set(record.promptId, record);
      this.records.push(record);
      if (this.records.length > KEEP_RECORDS) this.ours.delete(this.records.shift().promptId);
      this.inFlight = record.promptId;
    } catch (error) {
      // The server refused the graph (node_errors) or could not be reached: stop instead of re-sending it per key.
      await this.stop(error?.response?.error?.message ?? error?.message ?? String(error));
    } finally {
      this.queuing = false;
      const early = this.early;
      this.early = [];
      for (const [handler, promptId, ...args] of early) if (this.ours.has(promptId)) this[handler](promptId, ...args);
      if (!this.inFlight && this.dirty) this.edited(0);
    }
  }

  // ------------------------------------------------------------------ server events
  known(handler, promptId, ...args) {
    if (this.ours.has(promptId)) return true;
    if (this.queuing && promptId) this.early.push([handler, promptId, ...args]);
    return false;
  }

  started(promptId) {
    if (!this.known("started", promptId)) return;
    const record = this.ours.get(promptId);
    record.startedAt = performance.now();
    record.state = "running";
    if (this.pauseDue && promptId === this.inFlight) this.paused();
  }

  ended(promptId, state) {
    if (!this.known("ended", promptId, state)) return;
    const record = this.ours.get(promptId);
    if (record.state !== "shown") record.state = state;
    if (this.inFlight !== promptId) return;
    this.inFlight = null;
    if (state === "failed") return;
    if (state === "interrupted" && record.interruptAsked == null && performance.now() - this.lastInterruptAt < 2000) {
      // Our interrupt of the prompt before reached an older server (no targeted interrupt) after this one started.
      this.lastOutput = null;
      this.dirty = true;
    }
    if (this.dirty) this.edited(0); // the newest text, at once
  }

  failed(promptId, detail) {
    if (!this.known("failed", promptId, detail)) return;
    this.ended(promptId, "failed");
    const where = detail.node_type ? `${detail.node_type}: ` : "";
    this.stop(`${where}${detail.exception_message ?? "execution error"}`.trim());
  }

  // Nothing runs or waits on the server (its status message): a prompt of ours whose end was not seen is over.
  idle() {
    if (!this.inFlight || this.queuing) return;
    this.inFlight = null;
    if (this.dirty) this.edited(0);
  }

  // The first image of one of our prompts reached the page for `nodeId`: wait until the node shows it.
  imageArrived(promptId, nodeId) {
    if (!this.known("imageArrived", promptId, nodeId)) return;
    const record = this.ours.get(promptId);
    if (record.node != null) return;
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
    // pending: an edit not yet run (waiting for the debounce, for the running prompt, or on its way to the server)
    const pending = !!(this.dirty || this.queuing || this.inFlight || this.timer);
    return { enabled: this.enabled, pending, inFlight: this.inFlight, lastLatencyMs: this.lastLatencyMs,
      stoppedBy: this.stoppedBy, lastPause: this.lastPause, records: this.records.map(({ output, ...r }) => r) };
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
    tooltip: "Every edit of a prompt box or widget queues the open workflow (the newest edit, as soon as the prompt " +
      "running ends). Use a one-step model and Live Preview (fast); the template instaflow_live is set up for it.",
    type: "boolean",
    defaultValue: false,
    onChange: (value) => live.setEnabled(value),
  }, {
    id: INTERRUPT_SETTING,
    category: ["InstaFlow", "Live mode", "Interrupt at a pause"],
    name: "Live mode: interrupt a prompt of an older text when typing pauses",
    tooltip: "When you stop typing while Live mode's prompt still runs a text you have changed since, that prompt is " +
      "interrupted and the newest text runs at once (the queue history lists it as interrupted). Off: it runs to " +
      "its end first.",
    type: "boolean",
    defaultValue: false,
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
      live.edited();
    }, true);
    onGraphEdited(api, () => live.edited()); // any other recorded edit: combos, numbers, links
    api.addEventListener("execution_start", ({ detail }) => live.started(detail?.prompt_id));
    api.addEventListener("execution_success", ({ detail }) => live.ended(detail?.prompt_id, "done"));
    api.addEventListener("execution_interrupted", ({ detail }) => live.ended(detail?.prompt_id, "interrupted"));
    api.addEventListener("execution_error", ({ detail }) => live.failed(detail?.prompt_id, detail ?? {}));
    api.addEventListener("status", ({ detail }) => {
      live.queueRemaining = detail?.exec_info?.queue_remaining ?? null;
      if (live.queueRemaining === 0) live.idle();
    });
    api.addEventListener("executed", ({ detail }) => {
      if (detail?.output?.images?.length) live.imageArrived(detail.prompt_id, detail.display_node ?? detail.node);
    });
    api.addEventListener("b_preview_with_metadata", ({ detail }) => live.imageArrived(detail?.jobId, detail?.displayNodeId));
    window.InstaFlowLive = { state: () => live.state(), toggle, setting: SETTING, command: COMMAND };
    await live.setEnabled(app.extensionManager.setting.get(SETTING));
    live.ready = true;
  },
});
