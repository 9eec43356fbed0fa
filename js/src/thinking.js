// The live view's Thinking section: the model's reasoning, apart from the answer, as
// the saved output shows it (ipy_stream/saved.py):
//   details.ipy-stream-thinking > summary ("Thinking · N tokens · T s")
//                               + div.ipy-stream-thinking-body (rendered Markdown)
// above the answer's body. Hidden while there is no thinking (or only whitespace, which
// the saved output leaves out); open while the model thinks and no answer has come;
// folded once the answer starts or the stream ends. Once the person opens or closes it,
// it stays as they left it. Its content goes through the answer's pipeline (body.js):
// the same Markdown, the same sanitizer and policy.

import { BodyView } from "./body.js";
import { POLICY } from "./policy.js";

/** The summary line: `Thinking · 12 tokens · 3.4 s`. */
export function thinkingLabel(tokens, seconds) {
  const parts = ["Thinking"];
  if (Number.isFinite(tokens) && tokens > 0) parts.push(`${tokens} token${tokens === 1 ? "" : "s"}`);
  if (Number.isFinite(seconds) && seconds >= 0) parts.push(`${seconds.toFixed(1)} s`);
  return parts.join(" · ");
}

/** Whether the section opens by itself: while the model thinks and no answer has come. */
export function opensByItself({ streaming, answering }) {
  return Boolean(streaming) && !answering;
}

export class ThinkingSection {
  /**
   * `doc`: the document to make elements in. `hostStyles`: give the content the host's
   * rendered-Markdown class, as the answer's body. `fragment`: see BodyView.
   */
  constructor(doc, { hostStyles = false, fragment } = {}) {
    const details = doc.createElement("details");
    details.className = "ipy-stream-thinking";
    details.hidden = true;
    const summary = doc.createElement("summary");
    const content = doc.createElement("div");
    // Math stays TeX text: MathJax skips the content but for the math spans.
    content.className = `ipy-stream-thinking-body ${POLICY.math_classes.container}`;
    if (hostStyles) content.classList.add("jp-RenderedHTMLCommon");
    details.append(summary, content);
    this.element = details;
    this.summary = summary;
    this.body = new BodyView(content, fragment ? { fragment } : {});
    /** Set once the person opened or closed the section: from then on it is theirs. */
    this.chosen = false;
    /** The state this code last gave the section (any other is the person's doing). */
    this.given = details.open;
    // A click on the summary (or Enter or Space on it) is the person's; a toggle to
    // another state than the one given is too (the browser's find-in-page opens it).
    summary.addEventListener("click", () => {
      this.chosen = true;
    });
    details.addEventListener("toggle", () => {
      if (details.open !== this.given) this.chosen = true;
    });
  }

  /**
   * Show the thinking so far: `text` (Markdown) of `generation` (see TextStore),
   * `tokens` and `seconds` for the summary, `streaming` (the stream has not ended) and
   * `answering` (answer text has arrived).
   */
  update({ text, generation = 0, tokens = 0, seconds = 0, streaming, answering }) {
    const details = this.element;
    const shown = typeof text === "string" && text.trim() !== "";
    if (details.hidden === shown) details.hidden = !shown;
    if (!shown) return;
    const label = thinkingLabel(tokens, seconds);
    if (this.summary.textContent !== label) this.summary.textContent = label;
    this.body.render(text, generation);
    if (this.chosen) return;
    const open = opensByItself({ streaming, answering });
    this.given = open;
    if (details.open !== open) details.open = open;
  }
}
