// The live view's protocol end to end, without a browser: a kernel that behaves like
// ipy_stream/live.py, a model that behaves like anywidget's (custom messages, synced
// traits set together then one change event per changed trait), and the front end's
// Sync between them. Some of the kernel's messages are dropped, duplicated or
// replayed late; the state (traits) is never lost. Whatever happens, once the final
// state has arrived and the resync requests are answered, the front end holds the
// kernel's text.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Sync } from "../src/sync.js";

const points = (text) => Array.from(text);
const lengthOf = (text) => points(text).length;

/** What ipy_stream/live.py's LiveMarkdown sends: messages and trait updates. */
class Kernel {
  constructor({ checkpointLimit = 16_384 } = {}) {
    this.text = "";
    this.epoch = 0;
    this.seq = 0;
    this.limit = checkpointLimit;
    this.traits = { status: "streaming", footer: "", length: 0, seq: 0, epoch: 0, checkpoint: "", _uid: "m" };
  }

  #message(fields) {
    this.seq += 1;
    return { kind: "message", content: { type: "append", seq: this.seq, epoch: this.epoch, ...fields } };
  }

  append(piece) {
    const offset = lengthOf(this.text);
    this.text += piece;
    return this.#message({ offset, text: piece });
  }

  /** The text replaced by another (LiveMarkdown.finish(text=...) when it does not extend). */
  reset(text) {
    this.text = text;
    this.epoch += 1;
    this.resetSinceSync = true;
    return this.#message({ offset: 0, text, reset: true });
  }

  /** A trait update, as LiveMarkdown._sync_traits makes it. */
  sync(status) {
    const length = lengthOf(this.text);
    const update = { length, seq: this.seq, epoch: this.epoch };
    const reset = this.resetSinceSync;
    this.resetSinceSync = false;
    if (length <= this.limit && (reset || status || length >= 2 * lengthOf(this.traits.checkpoint))) {
      update.checkpoint = this.text;
    } else if (reset) {
      update.checkpoint = "";
    }
    if (status) update.status = status;
    Object.assign(this.traits, update);
    return { kind: "state", state: update };
  }

  /** The answer to {type: "resync", have, epoch}. */
  answer(request) {
    const have = request.have;
    const current = request.epoch === undefined || request.epoch === this.epoch;
    const tail = current && have <= lengthOf(this.text);
    const offset = tail ? have : 0;
    const message = this.#message({ offset, text: points(this.text).slice(offset).join(""), resync: true });
    if (!tail) message.content.reset = true;
    return message;
  }
}

/** anywidget's model as a front end sees it. */
class Model {
  constructor(state) {
    this.state = { ...state };
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
    this.outbox.push(structuredClone(content));
  }
  #fire(event, ...args) {
    for (const handler of [...(this.handlers.get(event) ?? [])]) handler(...args);
  }
  deliver(event) {
    if (event.kind === "message") {
      this.#fire("msg:custom", structuredClone(event.content));
      return;
    }
    // Like Backbone's set: every attribute first, then one event per changed one.
    const changed = Object.keys(event.state).filter((key) => this.state[key] !== event.state[key]);
    Object.assign(this.state, event.state);
    for (const key of changed) this.#fire(`change:${key}`);
  }
}

/** A kernel, a model of its widget in one page, and that page's Sync. */
function session(options = {}) {
  const kernel = new Kernel(options);
  const model = new Model(kernel.traits);
  const clock = { now: 0 };
  const sync = new Sync(model, { now: () => clock.now });
  sync.attach(model);
  const deliver = (...events) => {
    for (const event of events) model.deliver(event);
  };
  // The kernel answers every request, and the answers reach the page (in order).
  const settle = () => {
    for (let round = 0; round < 50 && model.outbox.length; round++) {
      const requests = model.outbox.splice(0);
      for (const request of requests) {
        assert.equal(request.type, "resync");
        deliver(kernel.answer(request));
      }
    }
    assert.equal(model.outbox.length, 0, "the front end never stops asking");
  };
  return { kernel, model, sync, clock, deliver, settle };
}

function assertInSync({ kernel, sync }, context = "") {
  assert.equal(sync.store.text, kernel.text, context);
  assert.equal(sync.store.length, lengthOf(kernel.text), context);
  assert.equal(sync.store.ahead.size, 0, context);
  assert.equal(sync.behind(), false, context);
}

const LONG = "Hello, this is a long first draft 😀 of the answer.";

for (const [what, replacement] of [
  ["a shorter text", "Bye 👋"],
  ["an equal-length different text", "X".repeat(lengthOf(LONG))],
  ["a longer text", `${"Z".repeat(lengthOf(LONG))} and more`],
  ["the empty text", ""],
]) {
  test(`a missed reset to ${what} is repaired by the final state alone`, () => {
    const s = session();
    s.deliver(s.kernel.append(LONG.slice(0, 20)), s.kernel.sync(), s.kernel.append(LONG.slice(20)));
    assert.equal(s.sync.store.text, LONG);
    const generation = s.sync.store.generation;
    s.kernel.reset(replacement); // lost
    s.deliver(s.kernel.sync("done"));
    // The checkpoint holds the whole (short) text: no request to the kernel needed.
    assertInSync(s);
    assert.deepEqual(s.model.outbox, []);
    // The views start over rather than patch a text that was not extended.
    if (replacement) assert.ok(s.sync.store.generation > generation);
  });
}

test("a missed reset beyond the checkpoint is detected at the final state and resynced", () => {
  const s = session({ checkpointLimit: 8 });
  s.deliver(s.kernel.append(LONG), s.kernel.sync());
  s.kernel.reset("Shorter, but past the checkpoint limit."); // lost
  s.deliver(s.kernel.sync("done"));
  assert.notEqual(s.sync.store.text, LONG, "the stale text is not shown once known to be stale");
  assert.equal(s.model.outbox.length, 1);
  assert.equal(s.model.outbox[0].have, 0);
  s.settle();
  assertInSync(s);
});

test("a missed reset is detected from the next message, before any state", () => {
  const s = session({ checkpointLimit: 8 });
  s.deliver(s.kernel.append(LONG), s.kernel.sync());
  s.kernel.reset("New"); // lost
  s.deliver(s.kernel.append(" text"), s.kernel.append(" goes on"));
  assert.ok(!s.sync.store.text.startsWith("Hello"), s.sync.store.text);
  assert.equal(s.model.outbox.length, 1);
  s.settle();
  assertInSync(s);
  s.deliver(s.kernel.append("!"), s.kernel.sync("done"));
  assertInSync(s);
  assert.equal(s.sync.store.text, "New text goes on!");
});

test("several missed resets in a row", () => {
  const s = session();
  s.deliver(s.kernel.append(LONG), s.kernel.sync());
  s.kernel.reset("one");
  s.kernel.append(" and two");
  s.kernel.reset("three");
  s.deliver(s.kernel.sync("done"));
  assertInSync(s);
  assert.equal(s.sync.store.text, "three");
});

test("a resync request names the text it counts from; a stale one gets everything", () => {
  const s = session({ checkpointLimit: 4 });
  s.deliver(s.kernel.append("abcdefgh"));
  s.kernel.append("ijkl"); // lost
  s.deliver(s.kernel.sync());
  assert.equal(s.model.outbox.length, 1);
  const [request] = s.model.outbox;
  assert.equal(request.have, 8);
  assert.equal(request.epoch, 0);
  // The kernel replaced the text before the request reached it: the answer is all of it.
  s.kernel.reset("xyz"); // lost too
  s.settle();
  assertInSync(s);
  assert.equal(s.sync.store.text, "xyz");
});

test("a state older than what the messages brought does not bring the old text back", () => {
  const s = session();
  s.deliver(s.kernel.append(LONG));
  const old = s.kernel.sync();
  const reset = s.kernel.reset("Bye");
  const final = s.kernel.sync("done");
  // The custom message overtook the state update sent before it.
  s.deliver(reset, old);
  assert.equal(s.sync.store.text, "Bye");
  s.deliver(final);
  assertInSync(s);
});

test("a replayed message of an older text is ignored", () => {
  const s = session();
  const first = s.kernel.append(LONG);
  s.deliver(first, s.kernel.reset("Bye"), first, s.kernel.sync("done"));
  assertInSync(s);
  assert.equal(s.sync.store.text, "Bye");
});

test("another page's answer, sent to every page, does not make an up-to-date view start over", () => {
  const s = session();
  s.deliver(s.kernel.append(LONG), s.kernel.reset("Bye"), s.kernel.append(" now"));
  const generation = s.sync.store.generation;
  // A page that still held the first text asked; its answer is the whole text, as a reset.
  s.deliver(s.kernel.answer({ type: "resync", have: 3, epoch: 0 }));
  assert.equal(s.sync.store.generation, generation);
  s.deliver(s.kernel.append("!"), s.kernel.sync("done"));
  assertInSync(s);
  assert.equal(s.sync.store.text, "Bye now!");
});

test("a duplicated reset, after the text grew, is repaired by the next state", () => {
  const s = session({ checkpointLimit: 4 });
  s.deliver(s.kernel.append(LONG));
  const reset = s.kernel.reset("Bye");
  s.deliver(reset, s.kernel.append(" now"), reset, s.kernel.sync("done"));
  s.settle();
  assertInSync(s);
  assert.equal(s.sync.store.text, "Bye now");
});

test("missed, duplicated and late appends within one text still converge", () => {
  const s = session({ checkpointLimit: 4 });
  const a = s.kernel.append("one ");
  const b = s.kernel.append("two ");
  const c = s.kernel.append("three ");
  const d = s.kernel.append("four");
  s.deliver(a, a, c, a); // b lost: c waits aside, a request goes out
  assert.equal(s.sync.store.text, "one ");
  s.deliver(d, s.kernel.sync());
  s.settle();
  s.deliver(b); // late
  assertInSync(s);
  s.deliver(s.kernel.append("."), s.kernel.sync("done"));
  assertInSync(s);
});

test("a page that opens after a reset starts from the state", () => {
  const kernel = new Kernel();
  kernel.append(LONG);
  kernel.sync();
  kernel.reset("Final");
  kernel.sync("done");
  const model = new Model(kernel.traits);
  const sync = new Sync(model, { now: () => 0 });
  sync.attach(model);
  assertInSync({ kernel, sync });
  // The reset message, if it still arrives, changes nothing.
  model.deliver({ kind: "message", content: { type: "append", seq: 2, epoch: 1, offset: 0, text: "Final", reset: true } });
  assertInSync({ kernel, sync });
});

// A small deterministic generator (mulberry32), so a failure can be replayed.
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("random streams with resets, lost, duplicated and late messages converge", () => {
  const words = ["a", "bc", "😀", " ", "déf", "\n", "👩‍💻", "xyz "];
  for (let seed = 1; seed <= 400; seed++) {
    const rand = random(seed);
    const pick = (list) => list[Math.floor(rand() * list.length)];
    const s = session({ checkpointLimit: pick([0, 4, 32, 16_384]) });
    const late = [];
    const send = (event) => {
      const roll = rand();
      if (roll < 0.15) return; // lost
      s.deliver(event);
      if (roll > 0.9) late.push(event); // delivered again later
    };
    const steps = 5 + Math.floor(rand() * 40);
    for (let step = 0; step < steps; step++) {
      const roll = rand();
      if (roll < 0.6) {
        let piece = "";
        for (let n = Math.floor(rand() * 4); n >= 0; n--) piece += pick(words);
        send(s.kernel.append(piece));
      } else if (roll < 0.7) {
        const text = s.kernel.text;
        const cut = Math.floor(rand() * (lengthOf(text) + 1));
        const kind = pick(["prefix", "other shorter", "same length", "longer"]);
        const head = points(text).slice(0, cut);
        const next =
          kind === "prefix" ? head.join("")
          : kind === "other shorter" ? head.map((c) => (c === "q" ? "r" : "q")).join("")
          : kind === "same length" ? points(text).map(() => "x").join("")
          : `${text.replaceAll("a", "b")}+tail`;
        send(s.kernel.reset(next));
      } else if (roll < 0.8) {
        s.clock.now += 1000; // STATE_INTERVAL: the state is never lost
        s.deliver(s.kernel.sync());
      } else if (roll < 0.9 && s.model.outbox.length) {
        // The kernel gets to a request, maybe late: it answers from the text it has now.
        s.deliver(s.kernel.answer(s.model.outbox.shift()));
      } else if (late.length) {
        s.deliver(late.splice(Math.floor(rand() * late.length), 1)[0]);
      }
    }
    s.clock.now += 1000;
    s.deliver(s.kernel.sync("done"));
    s.settle();
    assertInSync(s, `seed ${seed}`);
  }
});
