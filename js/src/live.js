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
// The model's thinking comes apart from the answer: {type: "thinking", offset, text,
// tokens, seconds[, footer]} messages and the `thinking`, `thinking_tokens` and
// `thinking_seconds` traits (sync.js), shown in a section of its own (thinking.js).
//
// DOM: div.ipy-stream[data-status] > details.ipy-stream-thinking (hidden while there
// is no thinking) + div.ipy-stream-body (the rendered Markdown) + div.ipy-stream-tools
// (the tool calls as they grow, hidden while there are none) + div.ipy-stream-footer,
// as in the saved output (ipy_stream/saved.py), + button.ipy-stream-newest (shown only
// while the footer is held in sight and the reader has scrolled away: pin.js). The
// Markdown is rendered in the saved output's dialect (markdown.js) and cleaned by
// DOMPurify with the saved output's policy (ipy_stream/policy.json), by body.js.

import { BodyView } from "./body.js";
import { Pin } from "./pin.js";
import { POLICY } from "./policy.js";
import { Sync } from "./sync.js";
import { ThinkingSection } from "./thinking.js";

const STATUSES = new Set(["streaming", "done", "failed", "interrupted"]);

// The tool calls, as the saved output lists them: "Tool calls:" and one line of code
// per call, `name(arguments)`, written as text (never as HTML).
function drawTools(element, calls) {
  const key = JSON.stringify(calls);
  if (element.dataset.key === key) return;
  element.dataset.key = key;
  element.hidden = calls.length === 0;
  const list = document.createElement("ul");
  for (const [name, args] of calls) {
    const item = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = `${name}(${args})`;
    item.append(code);
    list.append(item);
  }
  element.replaceChildren("Tool calls:", list);
}

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
  const hostStyles = hostStylesMarkdown();
  const thinking = new ThinkingSection(document, { hostStyles });
  const body = document.createElement("div");
  // Math stays TeX text: MathJax skips the body but for the math spans.
  body.className = `ipy-stream-body ${POLICY.math_classes.container}`;
  if (hostStyles) body.classList.add("jp-RenderedHTMLCommon");
  const footer = document.createElement("div");
  footer.className = "ipy-stream-footer";
  const newest = document.createElement("button");
  newest.className = "ipy-stream-newest";
  newest.type = "button";
  newest.textContent = "↓ newest";
  newest.title = "Show the newest text and follow it";
  const tools = document.createElement("div");
  tools.className = "ipy-stream-tools";
  tools.hidden = true;
  root.append(thinking.element, body, tools, footer, newest);
  el.replaceChildren(root);
  const view = new BodyView(body);
  const pin = new Pin(root, footer, newest);

  let frame = 0;
  const draw = () => {
    frame = 0;
    const status = STATUSES.has(model.get("status")) ? model.get("status") : "streaming";
    if (root.dataset.status !== status) {
      root.dataset.status = status;
      root.className = `ipy-stream ipy-stream--${status}`;
    }
    if (footer.textContent !== sync.footer) footer.textContent = sync.footer;
    thinking.update({
      text: sync.thinking.text,
      generation: sync.thinking.generation,
      tokens: sync.thinkingTokens,
      seconds: sync.thinkingSeconds,
      streaming: status === "streaming",
      // Answer text has come (to this page, or to the kernel: its messages may be lost).
      answering: sync.store.length > 0 || (model.get("length") ?? 0) > 0,
    });
    view.render(sync.store.text, sync.store.generation);
    drawTools(tools, sync.tools);
    // How much of the text this front end holds (code points): for tests and debugging.
    root.dataset.length = String(sync.store.length);
    pin.update(status === "streaming");
  };
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(draw);
  };
  sync.store.listeners.add(schedule);
  sync.thinking.listeners.add(schedule);
  model.on("change:status", schedule);
  // Scrolling anywhere (captured: scroll events do not bubble) or resizing moves the
  // visible bottom the footer is held at.
  const moved = () => {
    if (model.get("status") === "streaming") schedule();
  };
  document.addEventListener("scroll", moved, { capture: true, passive: true });
  window.addEventListener("resize", moved, { passive: true });
  draw();
  // A new view (or a reloaded page) may lack text sent before it existed; ask,
  // unless a request is already on its way.
  if (sync.behind()) sync.resync();
  return () => {
    if (frame) cancelAnimationFrame(frame);
    sync.store.listeners.delete(schedule);
    sync.thinking.listeners.delete(schedule);
    model.off("change:status", schedule);
    document.removeEventListener("scroll", moved, { capture: true });
    window.removeEventListener("resize", moved);
  };
}

export default { initialize, render };
