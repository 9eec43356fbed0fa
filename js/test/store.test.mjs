import assert from "node:assert/strict";
import { test } from "node:test";
import { TextStore, codePointIndex, countCodePoints } from "../src/store.js";

test("code points are counted like Python's str", () => {
  assert.equal(countCodePoints("abc"), 3);
  assert.equal(countCodePoints("é😀x"), 3);
  assert.equal(countCodePoints("👩‍💻"), 3); // woman, zero-width joiner, laptop
  assert.equal(countCodePoints("\ud83d"), 1); // a lone surrogate is one code point
  assert.equal(codePointIndex("😀a😀", 2), 3);
  assert.equal(codePointIndex("ab", 5), 2);
});

test("appends in order build the text", () => {
  const store = new TextStore();
  let notified = 0;
  store.listeners.add(() => notified++);
  assert.equal(store.receive({ offset: 0, text: "Hé😀" }), false);
  assert.equal(store.receive({ offset: 3, text: "llo" }), false);
  assert.equal(store.text, "Hé😀llo");
  assert.equal(store.length, 6);
  assert.equal(notified, 2);
});

test("a gap keeps the piece aside until the missing text arrives", () => {
  const store = new TextStore();
  store.receive({ offset: 0, text: "ab" });
  assert.equal(store.receive({ offset: 4, text: "ef" }), true);
  assert.equal(store.text, "ab");
  // The resync answer: everything from what we had.
  assert.equal(store.receive({ offset: 2, text: "cdef", resync: true }), false);
  assert.equal(store.text, "abcdef");
  assert.equal(store.ahead.size, 0);
});

test("overlapping and duplicate pieces are not doubled", () => {
  const store = new TextStore();
  store.receive({ offset: 0, text: "abc" });
  store.receive({ offset: 1, text: "bc" });
  store.receive({ offset: 1, text: "bcd" });
  assert.equal(store.text, "abcd");
});

test("a checkpoint fills a gap at the start", () => {
  const store = new TextStore();
  assert.equal(store.receive({ offset: 5, text: "😀fg" }), true);
  store.adopt("abcde");
  assert.equal(store.text, "abcde😀fg");
  assert.equal(store.length, 8);
  store.adopt("abc"); // shorter: ignored
  assert.equal(store.text, "abcde😀fg");
});

test("a reset replaces the text and bumps the generation", () => {
  const store = new TextStore();
  store.receive({ offset: 0, text: "hello" });
  const generation = store.generation;
  store.receive({ offset: 0, text: "bye", reset: true });
  assert.equal(store.text, "bye");
  assert.equal(store.length, 3);
  assert.ok(store.generation > generation);
});
