// ipy_stream's live view: an anywidget front end.
//
// The kernel sends only new text, as custom messages
//   {type: "append", seq, epoch, offset, text[, footer][, reset][, resync]}
// (offsets in code points; `footer` is the progress line to show; `epoch` counts
// the times the kernel replaced its text). Synced traits, updated about once a
// second while streaming and at the end, carry `status`, `footer`, `length` (code
// points sent so far), `seq`, `epoch` and `checkpoint` (a prefix of the text that
// the kernel refreshes while the answer is short, so that messages sent before
// this module was listening are not lost). The footer shown is the latest one,
// from a message or the trait. The text lives in one store per model, shared by
// all views of it; each view renders at most once per animation frame and only
// the part of the Markdown that changed. A store that finds itself behind
// `length`, or holding the text of an older epoch, asks the kernel
// {type: "resync", have, epoch} (sync.js).
//
// DOM: div.ipy-stream[data-status] > div.ipy-stream-body (the rendered Markdown)
// + div.ipy-stream-footer, as in the saved output (ipy_stream/saved.py). The
// Markdown is rendered in the saved output's dialect (markdown.js) and cleaned
// by DOMPurify with the saved output's policy (ipy_stream/policy.json).

import { IncrementalRenderer } from "./incremental.js";
import { createMarkdown } from "./markdown.js";
import { POLICY } from "./policy.js";
import { sanitize } from "./sanitize.js";
import { Sync } from "./sync.js";

const STATUSES = new Set(["streaming", "done", "failed", "interrupted"]);

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
  const detach = syncFor(model).attach(model);
  return () => {
    detach();
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
