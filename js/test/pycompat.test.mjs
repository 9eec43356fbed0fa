import assert from "node:assert/strict";
import { test } from "node:test";
import { charAt, charBefore, escape, isDigit, isSpace, split, strip } from "../src/pycompat.js";

test("whitespace as Python's str.isspace, strip and split", () => {
  for (const ch of ["\t", "\n", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "\u3000"]) {
    assert.ok(isSpace(ch), JSON.stringify(ch));
  }
  assert.ok(!isSpace("\ufeff")); // JavaScript's trim() drops it; Python keeps it
  assert.equal(strip("\x1c a b \x85"), "a b");
  assert.equal(strip("\ufeffa"), "\ufeffa");
  assert.equal(strip("   "), "");
  assert.deepEqual(split("  py\x1cthon  extra "), ["py", "thon", "extra"]);
  assert.deepEqual(split(""), []);
});

test("digits as Python's str.isdigit", () => {
  for (const ch of ["0", "9", "٣", "²", "①", "𝟏"]) assert.ok(isDigit(ch), ch);
  for (const ch of ["", "a", "½", "Ⅳ", " ", "$"]) assert.ok(!isDigit(ch), ch);
});

test("characters by code point, with Python's text[-1] before the start", () => {
  assert.equal(charAt("a😀b", 1), "😀");
  assert.equal(charAt("ab", 2), "");
  assert.equal(charBefore("a😀$", 3), "😀");
  assert.equal(charBefore("$x 5", 0), "5");
  assert.equal(charBefore("$x 𝟏", 0), "𝟏");
});

test("escape as html.escape(quote=True)", () => {
  assert.equal(escape(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;");
});
