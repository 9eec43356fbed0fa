// The live view's Thinking section (thinking.js) and the thinking's side of the protocol
// (sync.js). The tests have no DOM: the section gets a small fake document, and a fake
// sanitizer that records every piece of HTML it is given (DOMPurify itself needs a
// browser: tests/browser/test_thinking.py checks it there).

import assert from "node:assert/strict";
import { test } from "node:test";
import { Sync } from "../src/sync.js";
import { ThinkingSection, opensByItself, thinkingLabel } from "../src/thinking.js";

// -- a fake DOM: just what thinking.js and body.js use -----------------------------------

class FakeNode {
  constructor(html = "") {
    this.ownHtml = html;
    this.parent = null;
  }
  get html() {
    return this.ownHtml;
  }
  remove() {
    if (!this.parent) return;
    const siblings = this.parent.children;
    siblings.splice(siblings.indexOf(this), 1);
    this.parent = null;
  }
}

class FakeFragment {
  constructor(nodes) {
    this.childNodes = nodes;
  }
}

class FakeElement extends FakeNode {
  constructor(tagName) {
    super();
    this.tagName = tagName.toUpperCase();
    this.children = [];
    this.className = "";
    this.hidden = false;
    this.open = false;
    this.textContent = "";
    this.listeners = new Map();
    this.classList = { add: (name) => (this.className += ` ${name}`) };
  }
  get html() {
    return this.children.map((child) => child.html).join("");
  }
  set innerHTML(_value) {
    throw new Error("innerHTML is never written");
  }
  append(...nodes) {
    for (const node of nodes) this.insertBefore(node, null);
  }
  appendChild(node) {
    this.insertBefore(node, null);
  }
  insertBefore(node, anchor) {
    const nodes = node instanceof FakeFragment ? node.childNodes.splice(0) : [node];
    let index = anchor ? this.children.indexOf(anchor) : this.children.length;
    assert.ok(index >= 0, "the anchor is a child");
    for (const child of nodes) {
      child.parent = this;
      this.children.splice(index++, 0, child);
    }
  }
  replaceChildren() {
    for (const child of this.children) child.parent = null;
    this.children = [];
  }
  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(listener);
  }
  dispatch(type) {
    for (const listener of this.listeners.get(type) ?? []) listener({ type });
  }
}

const fakeDocument = { createElement: (tag) => new FakeElement(tag) };

/** A section with a recording sanitizer. */
function section() {
  const sanitized = [];
  const fragment = (html) => {
    sanitized.push(html);
    return new FakeFragment([new FakeNode(html)]);
  };
  const thinking = new ThinkingSection(fakeDocument, { fragment });
  const [summary, content] = thinking.element.children;
  return { thinking, details: thinking.element, summary, content, sanitized };
}

const THINKING = { tokens: 3, seconds: 0.4, streaming: true, answering: false };

/** What a person's click on the summary does: the click, then the browser's toggle. */
function click({ details, summary }) {
  summary.dispatch("click");
  details.open = !details.open;
  details.dispatch("toggle");
}

// -- the section ---------------------------------------------------------------------

test("the section's parts, as the saved output has them", () => {
  const { details, summary, content } = section();
  assert.equal(details.tagName, "DETAILS");
  assert.equal(details.className, "ipy-stream-thinking");
  assert.equal(summary.tagName, "SUMMARY");
  assert.match(content.className, /^ipy-stream-thinking-body /);
  const hosted = new ThinkingSection(fakeDocument, { hostStyles: true });
  assert.match(hosted.element.children[1].className, /\bjp-RenderedHTMLCommon\b/);
});

test("hidden while there is no thinking, or only whitespace", () => {
  const s = section();
  assert.equal(s.details.hidden, true);
  s.thinking.update({ ...THINKING, text: "" });
  assert.equal(s.details.hidden, true);
  s.thinking.update({ ...THINKING, text: " \n\n " });
  assert.equal(s.details.hidden, true);
  assert.deepEqual(s.sanitized, []);
  s.thinking.update({ ...THINKING, text: " \n\n Hmm" });
  assert.equal(s.details.hidden, false);
});

test("open while the model thinks, with the text growing and its count and time", () => {
  const s = section();
  s.thinking.update({ ...THINKING, text: "Let me" });
  assert.equal(s.details.hidden, false);
  assert.equal(s.details.open, true);
  assert.equal(s.summary.textContent, "Thinking · 3 tokens · 0.4 s");
  assert.equal(s.content.html, "<p>Let me</p>\n");
  s.details.dispatch("toggle"); // the browser's event for the section opened above
  s.thinking.update({ ...THINKING, tokens: 9, seconds: 1.25, text: "Let me **think** it over" });
  assert.equal(s.details.open, true);
  assert.equal(s.summary.textContent, "Thinking · 9 tokens · 1.3 s");
  assert.equal(s.content.html, "<p>Let me <strong>think</strong> it over</p>\n");
});

test("it folds once the answer starts, and stays folded to the end", () => {
  const s = section();
  s.thinking.update({ ...THINKING, text: "Thinking hard." });
  s.details.dispatch("toggle");
  assert.equal(s.details.open, true);
  s.thinking.update({ ...THINKING, text: "Thinking hard.", answering: true });
  assert.equal(s.details.open, false);
  s.details.dispatch("toggle"); // the browser's event for the fold: not the person's
  assert.equal(s.thinking.chosen, false);
  s.thinking.update({ ...THINKING, text: "Thinking hard.", answering: true, streaming: false });
  assert.equal(s.details.open, false);
  assert.equal(s.details.hidden, false);
});

test("a stream that ends without an answer leaves it folded, as saved", () => {
  const s = section();
  s.thinking.update({ ...THINKING, text: "Thinking…" });
  s.thinking.update({ ...THINKING, text: "Thinking…", streaming: false });
  assert.equal(s.details.open, false);
});

test("opened by the person after the fold, it stays open", () => {
  const s = section();
  s.thinking.update({ ...THINKING, text: "Reasons." });
  s.thinking.update({ ...THINKING, text: "Reasons.", answering: true });
  assert.equal(s.details.open, false);
  click(s);
  assert.equal(s.details.open, true);
  s.thinking.update({ ...THINKING, text: "Reasons.", answering: true });
  assert.equal(s.details.open, true);
  s.thinking.update({ ...THINKING, text: "Reasons.", answering: true, streaming: false });
  assert.equal(s.details.open, true);
});

test("closed by the person while the model thinks, it stays closed", () => {
  const s = section();
  s.thinking.update({ ...THINKING, text: "Step one" });
  click(s);
  assert.equal(s.details.open, false);
  s.thinking.update({ ...THINKING, text: "Step one, step two" });
  assert.equal(s.details.open, false);
  assert.equal(s.content.html, "<p>Step one, step two</p>\n", "the text still follows");
  s.thinking.update({ ...THINKING, text: "Step one, step two", answering: true });
  s.thinking.update({ ...THINKING, text: "Step one, step two", answering: true, streaming: false });
  assert.equal(s.details.open, false);
});

test("a toggle without a click (find in page opens it) is the person's too", () => {
  const s = section();
  s.thinking.update({ ...THINKING, text: "Hidden words" });
  s.thinking.update({ ...THINKING, text: "Hidden words", answering: true });
  s.details.open = true;
  s.details.dispatch("toggle");
  s.thinking.update({ ...THINKING, text: "Hidden words", answering: true });
  assert.equal(s.details.open, true);
});

test("raw HTML in the thinking shows as text, and all of it goes through the sanitizer", () => {
  const s = section();
  const text =
    'Try <img src=x onerror="alert(1)"> first.\n\n<script>alert(2)</script>\n\n' +
    "[link](javascript:alert(3)) and `<b>`";
  s.thinking.update({ ...THINKING, text });
  const html = s.content.html;
  assert.doesNotMatch(html, /<img|<script|<b>|href="javascript/i);
  assert.match(html, /&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt;/);
  assert.match(html, /&lt;script&gt;alert\(2\)&lt;\/script&gt;/);
  assert.match(html, /<code>&lt;b&gt;<\/code>/);
  // Every node in the section's content came out of the sanitizer.
  for (const node of s.content.children) assert.ok(s.sanitized.includes(node.html), node.html);
  assert.ok(s.sanitized.length > 0);
});

test("the summary line", () => {
  assert.equal(thinkingLabel(12, 3.44), "Thinking · 12 tokens · 3.4 s");
  assert.equal(thinkingLabel(1, 0.5), "Thinking · 1 token · 0.5 s");
  assert.equal(thinkingLabel(0, 0), "Thinking · 0.0 s");
  assert.equal(thinkingLabel(undefined, Number.NaN), "Thinking");
  assert.equal(opensByItself({ streaming: true, answering: false }), true);
  assert.equal(opensByItself({ streaming: true, answering: true }), false);
  assert.equal(opensByItself({ streaming: false, answering: false }), false);
});

// -- the protocol: messages and traits -------------------------------------------------

class Model {
  constructor(state) {
    this.state = {
      status: "streaming", footer: "", length: 0, seq: 0, epoch: 0, checkpoint: "",
      thinking: "", thinking_tokens: 0, thinking_seconds: 0, _uid: "m", ...state,
    };
    this.handlers = new Map();
    this.outbox = [];
  }
  get(key) {
    return this.state[key];
  }
  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
  }
  off(event, handler) {
    this.handlers.get(event)?.delete(handler);
  }
  send(content) {
    this.outbox.push(content);
  }
  #fire(event, ...args) {
    for (const handler of [...(this.handlers.get(event) ?? [])]) handler(...args);
  }
  message(content) {
    this.#fire("msg:custom", content);
  }
  set(state) {
    const changed = Object.keys(state).filter((key) => this.state[key] !== state[key]);
    Object.assign(this.state, state);
    for (const key of changed) this.#fire(`change:${key}`);
  }
}

function attached(state = {}) {
  const model = new Model(state);
  const sync = new Sync(model);
  sync.attach(model);
  let redraws = 0;
  sync.store.listeners.add(() => redraws++);
  sync.thinking.listeners.add(() => redraws++);
  return { model, sync, redraws: () => redraws };
}

const thought = (offset, text, tokens, seconds, extra = {}) => ({
  type: "thinking", offset, text, tokens, seconds, ...extra,
});

test("thinking messages build the thinking, apart from the answer", () => {
  const { model, sync, redraws } = attached();
  model.message(thought(0, "Let 😀", 2, 0.1, { footer: "m · thinking… · 2 tokens · 0.5 s" }));
  model.message(thought(5, " me think", 4, 0.3));
  assert.equal(sync.thinking.text, "Let 😀 me think");
  assert.equal(sync.thinkingTokens, 4);
  assert.equal(sync.thinkingSeconds, 0.3);
  assert.equal(sync.footer, "m · thinking… · 2 tokens · 0.5 s");
  assert.equal(sync.store.text, "");
  assert.equal(sync.store.length, 0);
  assert.ok(redraws() >= 2);
  // The answer's own messages do not touch the thinking.
  model.message({ type: "append", seq: 1, epoch: 0, offset: 0, text: "Answer" });
  assert.equal(sync.store.text, "Answer");
  assert.equal(sync.thinking.text, "Let 😀 me think");
  assert.deepEqual(model.outbox, []);
});

test("missed thinking messages are made good by the trait, without a request", () => {
  const { model, sync } = attached();
  // The first messages came before this front end listened; a later one waits aside.
  model.message(thought(10, " more", 5, 0.6));
  assert.equal(sync.thinking.text, "");
  model.set({ thinking: "0123456789", thinking_tokens: 4, thinking_seconds: 0.5 });
  assert.equal(sync.thinking.text, "0123456789 more");
  assert.equal(sync.thinkingTokens, 5, "counts only grow: the message's is later");
  assert.equal(sync.thinkingSeconds, 0.6);
  // A replayed or older state changes nothing.
  model.message(thought(0, "0123", 2, 0.2));
  model.set({ thinking: "01234", thinking_tokens: 2, thinking_seconds: 0.2 });
  assert.equal(sync.thinking.text, "0123456789 more");
  assert.equal(sync.thinkingTokens, 5);
  assert.deepEqual(model.outbox, [], "no resync is ever asked for the thinking");
});

test("a view created later takes the thinking from the traits", () => {
  const { sync } = attached({ thinking: "All **of it**", thinking_tokens: 7, thinking_seconds: 2 });
  assert.equal(sync.thinking.text, "All **of it**");
  assert.equal(sync.thinkingTokens, 7);
  assert.equal(sync.thinkingSeconds, 2);
});

test("malformed thinking messages are ignored", () => {
  const { model, sync } = attached();
  model.message(thought(-1, "x", 1, 0));
  model.message(thought("a", "x", 1, 0));
  model.message(thought(0, null, 1, 0));
  model.message(thought(0, "ok", "many", "long"));
  assert.equal(sync.thinking.text, "ok");
  assert.equal(sync.thinkingTokens, 0);
  assert.equal(sync.thinkingSeconds, 0);
});
