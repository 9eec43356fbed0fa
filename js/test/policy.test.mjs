// The sanitizer's configuration, built from ipy_stream/policy.json. The tests have
// no DOM, so DOMPurify itself does not run here: these check the configuration
// and the attribute rule that live.js's DOMPurify hooks apply.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { LINK_ATTRIBUTES, POLICY, PURIFY_CONFIG, RISKY_TEX, attributeAllowed } from "../src/policy.js";

test("the bundled policy is ipy_stream/policy.json", () => {
  const file = new URL("../../ipy_stream/policy.json", import.meta.url);
  assert.deepEqual(POLICY, JSON.parse(readFileSync(file, "utf8")));
});

test("DOMPurify allows the policy's tags and attributes, and returns a fragment", () => {
  assert.equal(PURIFY_CONFIG.RETURN_DOM_FRAGMENT, true);
  assert.deepEqual(PURIFY_CONFIG.ALLOWED_TAGS, POLICY.tags);
  const expected = new Set([...Object.values(POLICY.attributes).flat(), "target", "rel", "class"]);
  assert.deepEqual(new Set(PURIFY_CONFIG.ALLOWED_ATTR), expected);
  for (const tag of ["img", "script", "style", "iframe", "svg", "math", "form", "input"]) {
    assert.ok(!PURIFY_CONFIG.ALLOWED_TAGS.includes(tag), tag);
  }
  assert.equal(PURIFY_CONFIG.ALLOW_DATA_ATTR, false);
  assert.equal(PURIFY_CONFIG.ALLOW_ARIA_ATTR, false);
  // Only href is checked as a URL (ol's start="3" must not be).
  assert.ok(!PURIFY_CONFIG.ADD_URI_SAFE_ATTR.includes("href"));
  assert.ok(PURIFY_CONFIG.ADD_URI_SAFE_ATTR.includes("start"));
});

test("URLs: only the policy's schemes, no relative ones", () => {
  const allowed = PURIFY_CONFIG.ALLOWED_URI_REGEXP;
  for (const url of ["https://a.b/c", "http://a", "HTTPS://A", "mailto:x@y.z"]) {
    assert.ok(allowed.test(url), url);
  }
  for (const url of [
    "javascript:alert(1)", "JavaScript:x", "data:text/html,x", "vbscript:x", "ftp://f",
    "/relative", "relative", "#frag", "//host/x", "https", "xhttps://a",
  ]) {
    assert.ok(!allowed.test(url), url);
  }
});

test("each attribute only on the elements the policy gives it", () => {
  assert.ok(attributeAllowed("a", "href", "https://x"));
  assert.ok(attributeAllowed("a", "title", "t"));
  assert.ok(attributeAllowed("ol", "start", "3"));
  assert.ok(attributeAllowed("code", "class", "hljs language-python"));
  assert.ok(attributeAllowed("span", "class", "hljs-keyword"));
  assert.ok(attributeAllowed("div", "class", "highlight"));
  for (const [name, value] of Object.entries(LINK_ATTRIBUTES)) {
    assert.ok(attributeAllowed("a", name, value), name);
  }
  assert.equal(LINK_ATTRIBUTES.rel, "noopener noreferrer nofollow");
  assert.equal(LINK_ATTRIBUTES.target, "_blank");
  for (const [tag, name] of [
    ["ul", "start"], ["p", "class"], ["a", "class"], ["span", "href"], ["p", "style"],
    ["a", "style"], ["span", "style"], ["div", "style"], ["img", "src"], ["a", "onclick"],
    ["td", "onerror"], ["div", "id"], ["a", "data-x"], ["a", "ping"],
  ]) {
    assert.ok(!attributeAllowed(tag, name, "x"), `${tag} ${name}`);
  }
});

test("style survives only as one text-align declaration on th and td", () => {
  for (const value of ["text-align:left", "text-align: right;", " TEXT-ALIGN : center "]) {
    assert.ok(attributeAllowed("td", "style", value), value);
    assert.ok(attributeAllowed("th", "style", value), value);
  }
  for (const value of [
    "text-align:justify", "color:red", "text-align:left; color:red",
    "text-align:left;background:url(javascript:alert(1))", "text-align:left !important",
    "position:fixed", "text-align:expression(alert(1))", "",
  ]) {
    assert.ok(!attributeAllowed("td", "style", value), value);
  }
});

test("onerror, style and javascript: never get through", () => {
  // The attribute rule and the URL rule together: what DOMPurify would keep.
  const keeps = (tag, name, value) =>
    PURIFY_CONFIG.ALLOWED_TAGS.includes(tag) &&
    PURIFY_CONFIG.ALLOWED_ATTR.includes(name) &&
    attributeAllowed(tag, name, value) &&
    (PURIFY_CONFIG.ADD_URI_SAFE_ATTR.includes(name) ||
      PURIFY_CONFIG.ALLOWED_URI_REGEXP.test(value.replace(/[\u0000-\u0020]/g, "")));
  assert.ok(!keeps("img", "onerror", "alert(1)"));
  assert.ok(!keeps("a", "onmouseover", "alert(1)"));
  assert.ok(!keeps("p", "style", "background:url(x)"));
  assert.ok(!keeps("td", "style", "color:red"));
  assert.ok(!keeps("a", "href", "javascript:alert(1)"));
  assert.ok(!keeps("a", "href", " java\tscript:alert(1)"));
  assert.ok(!keeps("a", "href", "/relative"));
  assert.ok(keeps("a", "href", "https://example.com"));
  assert.ok(keeps("td", "style", "text-align:right"));
  assert.ok(keeps("ol", "start", "3"));
});

test("risky TeX: a listed command not followed by a letter", () => {
  assert.ok(RISKY_TEX.test("\\href{x}{y}"));
  assert.ok(RISKY_TEX.test("a \\def\\b"));
  assert.ok(RISKY_TEX.test("\\cssId1"));
  assert.ok(RISKY_TEX.test("\\data"));
  assert.ok(!RISKY_TEX.test("\\hrefx"));
  assert.ok(!RISKY_TEX.test("\\classy"));
  assert.ok(!RISKY_TEX.test("href{x}"));
  assert.ok(!RISKY_TEX.test("\\Href"));
});
