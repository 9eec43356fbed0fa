// The arithmetic of holding the footer in sight and following the newest text (pin.js).
// What the page does with it is checked in JupyterLab: tests/browser/test_pin.py.

import assert from "node:assert/strict";
import { test } from "node:test";
import { follows, lift } from "../src/pin.js";

test("a footer above the visible bottom stays where it is", () => {
  assert.equal(lift(500, 800, 400), 0);
  assert.equal(lift(800, 800, 400), 0);
});

test("a footer below the visible bottom is lifted to it, never above its own answer", () => {
  assert.equal(lift(1000, 800, 400), 200);
  assert.equal(lift(2000, 800, 400), 400); // the whole answer is below the screen
  assert.equal(lift(2000, 800, -5), 0); // an answer shorter than its footer
});

test("the end in view starts following, and growth keeps it", () => {
  const state = { following: false, away: false };
  assert.equal(follows(state, { end: 700, limit: 800, scrolledUp: false }), true);
  assert.equal(follows(state, { end: 900, limit: 800, scrolledUp: false }), true);
});

test("a run that starts below the screen is not followed until the reader gets there", () => {
  const state = { following: false, away: false };
  assert.equal(follows(state, { end: 1500, limit: 800, scrolledUp: false }), false);
  assert.equal(follows(state, { end: 790, limit: 800, scrolledUp: false }), true);
});

test("scrolling up away from the end stops following until the end is in view again", () => {
  const state = { following: true, away: false };
  assert.equal(follows(state, { end: 1400, limit: 800, scrolledUp: true }), false);
  assert.equal(follows(state, { end: 1500, limit: 800, scrolledUp: false }), false);
  assert.equal(follows(state, { end: 1600, limit: 800, scrolledUp: false }), false);
  assert.equal(follows(state, { end: 800, limit: 800, scrolledUp: false }), true);
});

test("scrolling up a little with the end still in view keeps following", () => {
  const state = { following: true, away: false };
  assert.equal(follows(state, { end: 760, limit: 800, scrolledUp: true }), true);
  assert.equal(follows(state, { end: 900, limit: 800, scrolledUp: false }), true);
});
