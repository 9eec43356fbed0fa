// One model's side of the live view's protocol (see live.js and ipy_stream/live.py):
// the text store, fed by the kernel's custom messages and synced traits, and the
// resync requests. No DOM here: views subscribe to `store.listeners`.
//
// How a front end finds out that it missed something:
// * a missed append: the next message's offset is past what we hold (a gap), or
//   the `length` trait is;
// * a duplicated or replayed append: nothing to find, it lands where it already is;
// * a missed reset (the kernel replaced its text, maybe by a shorter one): the next
//   message, or the next state update, names a newer `epoch` than our text's.
// We then drop the stale text, take what the `checkpoint` trait holds of the new one
// (all of it when it is short), and ask for the rest:
// {type: "resync", have: <code points held>, epoch: <their epoch>}.
//
// The model's thinking is another store, apart from the answer's: it only grows (one
// epoch), from {type: "thinking", offset, text, tokens, seconds[, footer]} messages,
// and the `thinking` trait holds all of it so far (with `thinking_tokens` and
// `thinking_seconds`), which follows them within about a second. A piece after
// a gap waits for that trait: no request is ever made for the thinking.
//
// Tool calls come whole: {type: "tools", calls: [[index, name, arguments], ...]} has
// each call that changed, and the `tool_calls` trait all of them ([name, arguments]).
// A call's name and arguments only grow, so the longer of two is the newer.

import { TextStore } from "./store.js";

const RESYNC_RETRY_MS = 3000;
const THINKING_TRAITS = ["thinking", "thinking_tokens", "thinking_seconds"];

/** A trait or message field read as an epoch (absent or malformed: 0). */
function epochOf(value) {
  return Number.isInteger(value) && value >= 0 ? value : 0;
}

export class Sync {
  constructor(model, { now = Date.now } = {}) {
    this.model = model;
    this.now = now;
    this.store = new TextStore();
    this.thinking = new TextStore();
    this.thinkingTokens = 0;
    this.thinkingSeconds = 0;
    this.tools = [];
    this.askedAt = -Infinity;
    this.footer = model.get("footer") ?? "";
  }

  // Follow `model` (anywidget's model of this widget: its custom messages and traits);
  // returns the function that stops following it.
  attach(model) {
    this.model = model;
    const onMessage = (message) => this.onMessage(message);
    const onState = () => this.onState();
    const onFooter = () => this.onFooter();
    const onThinking = () => this.onThinkingState();
    const onTools = () => this.onToolsState();
    model.on("msg:custom", onMessage);
    model.on("change:footer", onFooter);
    // One update may change several of them: each handler reads them all.
    for (const trait of ["epoch", "checkpoint", "length"]) model.on(`change:${trait}`, onState);
    for (const trait of THINKING_TRAITS) model.on(`change:${trait}`, onThinking);
    model.on("change:tool_calls", onTools);
    this.onState();
    this.onThinkingState();
    this.onToolsState();
    return () => {
      model.off("msg:custom", onMessage);
      model.off("change:footer", onFooter);
      for (const trait of ["epoch", "checkpoint", "length"]) model.off(`change:${trait}`, onState);
      for (const trait of THINKING_TRAITS) model.off(`change:${trait}`, onThinking);
      model.off("change:tool_calls", onTools);
    };
  }

  // Ask the kernel for what we lack, at most once per RESYNC_RETRY_MS until answered
  // (`force`: now, as an earlier request was about a text since replaced).
  resync(force = false) {
    const now = this.now();
    if (!force && now - this.askedAt < RESYNC_RETRY_MS) return;
    this.askedAt = now;
    const { length, epoch } = this.store;
    if (globalThis.__ipyStreamDebug) console.debug("ipy_stream resync", epoch, length, this.model.get("length"));
    this.model.send({ type: "resync", have: length, epoch });
  }

  behind() {
    if (this.store.ahead.size > 0) return true;
    // The traits of an older epoch than our text's say nothing about it.
    return (
      epochOf(this.model.get("epoch")) === this.store.epoch &&
      this.store.length < (this.model.get("length") ?? 0)
    );
  }

  onMessage(message) {
    if (message && message.type === "thinking") {
      this.onThinking(message);
      return;
    }
    if (message && message.type === "tools") {
      this.onFooterOf(message);
      if (Array.isArray(message.calls)) {
        for (const call of message.calls) {
          if (Array.isArray(call)) this.#tool(call[0], call[1], call[2]);
        }
      }
      return;
    }
    if (!message || message.type !== "append") return;
    if (message.resync) this.askedAt = -Infinity;
    if (typeof message.footer === "string" && message.footer !== this.footer) {
      this.footer = message.footer;
      this.redraw();
    }
    if (globalThis.__ipyStreamDebug) console.debug("ipy_stream append", message.epoch, message.offset, message.text.length, this.store.length, !!message.resync);
    const epoch = this.store.epoch;
    const gap = this.store.receive(message);
    if (gap) this.resync(this.store.epoch !== epoch);
  }

  // A piece of thinking: placed by its offset (a piece after a gap is kept aside until
  // the `thinking` trait brings what came before it). Counts only grow: the latest of
  // the messages' and the trait's is the largest.
  onThinking(message) {
    if (!Number.isInteger(message.offset) || message.offset < 0) return;
    if (typeof message.text !== "string") return;
    if (typeof message.footer === "string" && message.footer !== this.footer) {
      this.footer = message.footer;
      this.redraw();
    }
    if (this.#count(message.tokens, message.seconds)) this.redraw();
    this.thinking.receive({ offset: message.offset, text: message.text });
  }

  onToolsState() {
    const calls = this.model.get("tool_calls");
    if (!Array.isArray(calls)) return;
    calls.forEach((call, index) => {
      if (Array.isArray(call)) this.#tool(index, call[0], call[1]);
    });
  }

  // Keep call `index` unless what we hold is already as long (a late trait, a replay).
  #tool(index, name, args) {
    if (!Number.isInteger(index) || index < 0 || index > 1000) return;
    if (typeof name !== "string" || typeof args !== "string") return;
    const held = this.tools[index];
    if (held && held[0].length >= name.length && held[1].length >= args.length) return;
    for (let i = this.tools.length; i < index; i++) this.tools[i] = ["", ""];
    this.tools[index] = [name, args];
    this.redraw();
  }

  onFooterOf(message) {
    if (typeof message.footer === "string" && message.footer !== this.footer) {
      this.footer = message.footer;
      this.redraw();
    }
  }

  onThinkingState() {
    if (this.#count(this.model.get("thinking_tokens"), this.model.get("thinking_seconds"))) {
      this.redraw();
    }
    this.thinking.adopt(this.model.get("thinking"));
  }

  #count(tokens, seconds) {
    let changed = false;
    if (Number.isInteger(tokens) && tokens > this.thinkingTokens) {
      this.thinkingTokens = tokens;
      changed = true;
    }
    if (Number.isFinite(seconds) && seconds > this.thinkingSeconds) {
      this.thinkingSeconds = seconds;
      changed = true;
    }
    return changed;
  }

  onFooter() {
    this.footer = this.model.get("footer") ?? "";
    this.redraw();
  }

  // Views draw at their next animation frame (several calls, one draw).
  redraw() {
    for (const listener of this.store.listeners) listener();
  }

  // The traits changed: `epoch`, `length` and `checkpoint` always describe one text.
  onState() {
    const epoch = epochOf(this.model.get("epoch"));
    // A state older than the messages we got (one overtook the other): wait for the next.
    if (epoch < this.store.epoch) return;
    const entered = this.store.enter(epoch);
    this.store.adopt(this.model.get("checkpoint"));
    if (this.behind()) this.resync(entered);
  }
}
