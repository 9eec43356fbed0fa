import assert from "node:assert/strict";
import { test } from "node:test";
import { IncrementalRenderer, lineStarts } from "../src/incremental.js";
import { createMarkdown, isSafeUrl } from "../src/markdown.js";

const md = createMarkdown();

const DOC = `# A title

Some *emphasis*, a [link](https://example.com) and \`code\`.

\`\`\`python
def f(x):
    return x * 2  # twice
\`\`\`

- one
- two
  continued

1. first
2. second

> quoted
> text

| a | b |
|---|---|
| 1 | 2 |

Text with a reference [ref] and an emoji 😀.

[ref]: https://example.org

Inline math $E = mc^2$, a display $$a^2 + b^2$$ and a block:

$$
\\sum_{i=1}^n i
$$

> $$
> x = 1
> $$

$$

not math: a blank line ends it
$$

---

Last paragraph, no newline`;

// Feed `text` in pieces; return the committed HTML pieces and the final open HTML.
function stream(text, sizes) {
  const renderer = new IncrementalRenderer(md);
  const committed = [];
  let open = "";
  let position = 0;
  let i = 0;
  while (position < text.length) {
    position = Math.min(text.length, position + sizes[i++ % sizes.length]);
    const result = renderer.update(text.slice(0, position));
    if (result.committed) committed.push(result.committed);
    open = result.open;
  }
  return { committed, open, renderer };
}

for (const sizes of [[1], [3, 1, 7], [50], [DOC.length]]) {
  test(`pieces of ${sizes.join(",")} render like the whole text`, () => {
    const { committed, open } = stream(DOC, sizes);
    assert.equal(committed.join("") + open, md.render(DOC));
  });
}

test("committed blocks are final and the open part stays small", () => {
  const { renderer } = stream(DOC, [2]);
  assert.ok(renderer.committedEnd > DOC.length - 40, `committed up to ${renderer.committedEnd}`);
});

test("a block is not committed while the next line could still join it", () => {
  const renderer = new IncrementalRenderer(md);
  // "#" alone is an empty heading, but "#x" is text: nothing may be final yet.
  assert.equal(renderer.update("para\n\n#").committed, "");
  assert.equal(renderer.update("para\n\n#x").committed, "");
  assert.equal(renderer.update("para\n\n#x\n").committed, "<p>para</p>\n");
});

test("an open code fence stays open and highlighted", () => {
  const renderer = new IncrementalRenderer(md);
  const { open } = renderer.update("Intro\n\n```js\nconst a = 1;\n");
  assert.match(
    open,
    /^<pre class="highlight"><code class="hljs language-javascript"><span class="hljs-keyword">const<\/span>/,
  );
});

test("a math block is one block: committed once closed and followed by more", () => {
  const renderer = new IncrementalRenderer(md);
  assert.equal(renderer.update("$$\nx = 1\n").committed, "");
  assert.match(renderer.update("$$\nx = 1\n").open, /^<p>\$\$/); // not closed yet: text
  assert.match(renderer.update("$$\nx = 1\n$$").open, /^<div class="ipy-math ipy-math-display/);
  const { committed, open } = renderer.update("$$\nx = 1\n$$\n\nAfter\n");
  assert.equal(
    committed,
    '<div class="ipy-math ipy-math-display mathjax_process tex2jax_process">$$x = 1$$</div>\n',
  );
  assert.equal(open, "<p>After</p>\n");
});

test("a line of no-break spaces is not blank: nothing is committed at it", () => {
  const renderer = new IncrementalRenderer(md);
  assert.equal(renderer.update("para\n\u00a0\nnext\n\n").committed, "");
});

test("raw HTML is text, unsafe links and images are inert", () => {
  const html = md.render(
    '<script>alert(1)</script> <img src=x onerror=alert(1)>\n\n[x](javascript:alert(1)) [y](JaVa&#115;cript:alert(1)) [z](data:text/html,hi)\n\n![alt](https://example.com/a.png)',
  );
  assert.doesNotMatch(html, /<script|<img|href="javascript|href="data/i);
  assert.match(html, /&lt;script&gt;/);
  assert.match(html, /<a href="https:\/\/example.com\/a.png">🖼 alt<\/a>/);
});

test("isSafeUrl agrees with render.py's is_safe_url: http, https and mailto only", () => {
  for (const url of ["https://a", "http://a", "HTTPS://a", "mailto:x@y", "http&#58;//a", "ht\ttp://a"]) {
    assert.equal(isSafeUrl(url), true, url);
  }
  for (const url of [
    "ftp://f", "ftps://f", "/rel", "rel", "#frag", "?q", "//host/x", "", "http%3A//a",
    "javascript:x", "JAVASCRIPT:x", "java\nscript:x", "data:x", "vbscript:x",
    "java&#115;cript:x", "java%73cript:x", "file:///etc", "http&COLON;//a",
  ]) {
    assert.equal(isSafeUrl(url), false, url);
  }
});

test("line starts follow markdown-it's line breaks", () => {
  assert.deepEqual(lineStarts("a\nb\r\nc\rd"), [0, 2, 5, 7]);
});
