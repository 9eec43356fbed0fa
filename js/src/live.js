// ipy_stream's live view: an anywidget front end.
//
// The kernel sends only new text, as custom messages
//   {type: "append", seq, offset, text[, footer][, reset][, resync]}
// (offsets in code points; `footer` is the progress line to show). Synced traits,
// updated about once a second while streaming and at the end, carry `status`,
// `footer`, `length` (code points sent so far), `seq` and `checkpoint` (a prefix
// of the text that the kernel refreshes while the answer is short, so that
// messages sent before this module was listening are not lost). The footer shown
// is the latest one, from a message or the trait. The text lives in one store per
// model, shared by all views of it; each view renders at most once per
// animation frame and only the part of the Markdown that changed. A view that
// finds the store behind `length` asks the kernel: {type: "resync", have}.
//
// DOM: div.ipy-stream[data-status] > div.ipy-stream-body (the rendered Markdown)
// + div.ipy-stream-footer, as in the saved output (ipy_stream/saved.py). The
// Markdown is rendered in the saved output's dialect (markdown.js) and cleaned
// by DOMPurify with the saved output's policy (ipy_stream/policy.json).

import { IncrementalRenderer } from "./incremental.js";
import { createMarkdown } from "./markdown.js";
import { POLICY } from "./policy.js";
import { sanitize } from "./sanitize.js";
import { TextStore } from "./store.js";

const STATUSES = new Set(["streaming", "done", "failed", "interrupted"]);
const RESYNC_RETRY_MS = 3000;

let markdown = null;
const md = () => (markdown ??= createMarkdown());

// In JupyterLab and Notebook 7 the saved output is shown inside an element of
// class jp-RenderedHTMLCommon, whose styles (the host's rendered Markdown) it
// takes; the live view takes them too where the host defines them, and its own
// fallbacks elsewhere (live.css).
function hostStylesMarkdown() {
  try {
    const style = getComputedStyle(document.documentElement);
    return style.getPropertyValue("--jp-content-font-family").trim() !== "";
  } catch {
    return false;
  }
}

// One store per model, found again by its `_uid` trait (anywidget hands each
// callback its own model proxy, so the proxy cannot be the key).
const STORES = new Map();

class Sync {
  constructor(model) {
    this.model = model;
    this.store = new TextStore();
    this.askedAt = -Infinity;
    this.footer = model.get("footer") ?? "";
  }

  // Ask the kernel for what we lack, at most once per RESYNC_RETRY_MS until answered.
  resync(force = false) {
    const now = Date.now();
    if (!force && now - this.askedAt < RESYNC_RETRY_MS) return;
    this.askedAt = now;
    if (globalThis.__ipyStreamDebug) console.debug("ipy_stream resync", this.store.length, this.model.get("length"));
    this.model.send({ type: "resync", have: this.store.length });
  }

  behind() {
    return this.store.length < (this.model.get("length") ?? 0) || this.store.ahead.size > 0;
  }

  onMessage(message) {
    if (!message || message.type !== "append") return;
    if (message.resync) this.askedAt = -Infinity;
    if (typeof message.footer === "string" && message.footer !== this.footer) {
      this.footer = message.footer;
      this.redraw();
    }
    if (globalThis.__ipyStreamDebug) console.debug("ipy_stream append", message.offset, message.text.length, this.store.length, !!message.resync);
    const gap = this.store.receive(message);
    if (gap) this.resync();
  }

  onFooter() {
    this.footer = this.model.get("footer") ?? "";
    this.redraw();
  }

  // Views draw at their next animation frame (several calls, one draw).
  redraw() {
    for (const listener of this.store.listeners) listener();
  }

  onCheckpoint() {
    this.store.adopt(this.model.get("checkpoint"));
  }

  onLength() {
    this.onCheckpoint();
    if (this.behind()) this.resync();
  }
}

function syncFor(model) {
  const uid = model.get("_uid") || "";
  let sync = STORES.get(uid);
  if (!sync) {
    sync = new Sync(model);
    STORES.set(uid, sync);
  }
  return sync;
}

class BodyView {
  constructor(element) {
    this.element = element;
    this.engine = new IncrementalRenderer(md());
    this.openNodes = [];
    this.openHtml = null;
    this.text = null;
    this.generation = -1;
  }

  #fragment(html) {
    return sanitize(html);
  }

  render(text, generation) {
    if (generation !== this.generation) {
      this.element.replaceChildren();
      this.engine.reset();
      this.openNodes = [];
      this.openHtml = null;
      this.text = null;
      this.generation = generation;
    }
    if (text === this.text) return;
    this.text = text;
    const { committed, open } = this.engine.update(text);
    const anchor = this.openNodes[0] ?? null;
    if (committed) this.element.insertBefore(this.#fragment(committed), anchor);
    if (open === this.openHtml) return;
    for (const node of this.openNodes) node.remove();
    const fragment = this.#fragment(open);
    this.openNodes = Array.from(fragment.childNodes);
    this.element.appendChild(fragment);
    this.openHtml = open;
  }
}

function initialize({ model }) {
  const sync = syncFor(model);
  sync.model = model;
  const onMessage = (message) => sync.onMessage(message);
  const onCheckpoint = () => sync.onCheckpoint();
  const onLength = () => sync.onLength();
  const onFooter = () => sync.onFooter();
  model.on("msg:custom", onMessage);
  model.on("change:footer", onFooter);
  model.on("change:checkpoint", onCheckpoint);
  model.on("change:length", onLength);
  sync.onLength();
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:checkpoint", onCheckpoint);
    model.off("change:length", onLength);
    model.off("change:footer", onFooter);
    STORES.delete(model.get("_uid") || "");
  };
}

function render({ model, el }) {
  const sync = syncFor(model);
  const root = document.createElement("div");
  root.className = "ipy-stream";
  const body = document.createElement("div");
  // Math stays TeX text: MathJax skips the body but for the math spans.
  body.className = `ipy-stream-body ${POLICY.math_classes.container}`;
  if (hostStylesMarkdown()) body.classList.add("jp-RenderedHTMLCommon");
  const footer = document.createElement("div");
  footer.className = "ipy-stream-footer";
  root.append(body, footer);
  el.replaceChildren(root);
  const view = new BodyView(body);

  let frame = 0;
  const draw = () => {
    frame = 0;
    const status = STATUSES.has(model.get("status")) ? model.get("status") : "streaming";
    if (root.dataset.status !== status) {
      root.dataset.status = status;
      root.className = `ipy-stream ipy-stream--${status}`;
    }
    if (footer.textContent !== sync.footer) footer.textContent = sync.footer;
    view.render(sync.store.text, sync.store.generation);
    // How much of the text this front end holds (code points): for tests and debugging.
    root.dataset.length = String(sync.store.length);
  };
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(draw);
  };
  sync.store.listeners.add(schedule);
  model.on("change:status", schedule);
  draw();
  // A new view (or a reloaded page) may lack text sent before it existed; ask,
  // unless a request is already on its way.
  if (sync.behind()) sync.resync();
  return () => {
    if (frame) cancelAnimationFrame(frame);
    sync.store.listeners.delete(schedule);
    model.off("change:status", schedule);
  };
}

export default { initialize, render };
