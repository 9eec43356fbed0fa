// Rendered Markdown that grows: the answer's body, and the Thinking section's content.
// Both go through the same pipeline: the saved output's dialect (markdown.js), rendered
// incrementally (incremental.js), each piece cleaned by DOMPurify with the saved
// output's policy (sanitize.js) before it enters the page. Nothing is ever written as
// innerHTML.

import { IncrementalRenderer } from "./incremental.js";
import { createMarkdown } from "./markdown.js";
import { sanitize } from "./sanitize.js";

let markdown = null;
const md = () => (markdown ??= createMarkdown());

export class BodyView {
  /**
   * `element`: where the rendered Markdown goes. `fragment`: HTML -> a DocumentFragment
   * to insert (sanitize.js's; tests without a DOM pass their own).
   */
  constructor(element, { fragment = sanitize } = {}) {
    this.element = element;
    this.fragment = fragment;
    this.engine = new IncrementalRenderer(md());
    this.openNodes = [];
    this.openHtml = null;
    this.text = null;
    this.generation = -1;
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
    if (committed) this.element.insertBefore(this.fragment(committed), anchor);
    if (open === this.openHtml) return;
    for (const node of this.openNodes) node.remove();
    const fragment = this.fragment(open);
    this.openNodes = Array.from(fragment.childNodes);
    this.element.appendChild(fragment);
    this.openHtml = open;
  }
}
