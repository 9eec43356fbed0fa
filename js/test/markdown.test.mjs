import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createMarkdown } from "../src/markdown.js";
import { POLICY, attributeAllowed } from "../src/policy.js";

const md = createMarkdown();
const INLINE = `<span class="${POLICY.math_classes.inline}">`;
const DISPLAY_SPAN = `<span class="${POLICY.math_classes.display}">`;
const DISPLAY_DIV = `<div class="${POLICY.math_classes.display}">`;
const CASES = JSON.parse(readFileSync(new URL("./dialect-cases.json", import.meta.url), "utf8"));

test("inline math keeps its $ delimiters as escaped text in a math span", () => {
  assert.equal(
    md.render("Inline $a<b & c$ here."),
    `<p>Inline ${INLINE}$a&lt;b &amp; c$</span> here.</p>\n`,
  );
  assert.equal(
    md.render("If $0<x<1$, then"),
    `<p>If ${INLINE}$0&lt;x&lt;1$</span>, then</p>\n`,
  );
  assert.equal(md.render("$ a $"), `<p>${INLINE}$ a $</span></p>\n`); // allow_space
});

test("$$ inside a paragraph is a display span", () => {
  assert.equal(
    md.render("See $$x^2$$ here"),
    `<p>See ${DISPLAY_SPAN}$$x^2$$</span> here</p>\n`,
  );
});

test("a $$ block is a display div, its content stripped of newlines only", () => {
  assert.equal(md.render("$$\n  x = 1\n$$\n"), `${DISPLAY_DIV}$$  x = 1$$</div>\n`);
  assert.equal(md.render("$$a'b$$"), `${DISPLAY_DIV}$$a&#x27;b$$</div>\n`);
  // In a blockquote, the content loses the "> " of each line.
  assert.equal(
    md.render("> $$\n> a\n> b\n> $$"),
    `<blockquote>\n${DISPLAY_DIV}$$a\nb$$</div>\n</blockquote>\n`,
  );
});

test("a blank line ends a $$ block that has not closed (allow_blank_lines off)", () => {
  assert.equal(md.render("$$\na\n\nb\n$$"), "<p>$$\na</p>\n<p>b\n$$</p>\n");
});

test("a closing $$ inside the first line, not at its end, makes no block", () => {
  assert.equal(
    md.render("$$ a $$ b\n$$"),
    `<p>${DISPLAY_SPAN}$$ a $$</span> b\n$$</p>\n`,
  );
});

test("TeX that can make links, styles or macros is shown as code", () => {
  assert.equal(
    md.render("$\\href{https://x.y}{z}$ and $$\\style{color:red}{x}$$"),
    "<p><code>$\\href{https://x.y}{z}$</code> and <code>$$\\style{color:red}{x}$$</code></p>\n",
  );
  assert.equal(md.render("$$\n\\def\\a{1}\n$$"), "<code>$$\\def\\a{1}$$</code>");
  // A longer command name is another command.
  assert.equal(md.render("$\\hrefx + \\classy$"), `<p>${INLINE}$\\hrefx + \\classy$</span></p>\n`);
  for (const command of POLICY.tex_commands_shown_as_code) {
    assert.match(md.render(`$\\${command}{a}$`), /^<p><code>/, command);
  }
});

test("prices and escaped dollars are not math (allow_digits off)", () => {
  assert.equal(md.render("costs $5 and $10"), "<p>costs $5 and $10</p>\n");
  assert.equal(md.render("costs 5$ and 10$"), "<p>costs 5$ and 10$</p>\n");
  assert.equal(md.render("\\$a$ and \\$b\\$"), "<p>$a$ and $b$</p>\n");
  assert.equal(md.render("`$x$`"), "<p><code>$x$</code></p>\n");
});

test("render.py's quirks are read the same way", () => {
  // mdit-py-plugins looks at text[-1] (the last character) before a $ at the
  // very start: a paragraph that starts with math and ends with a digit or a
  // backslash has no math.
  assert.equal(md.render("$x$ is 5"), "<p>$x$ is 5</p>\n");
  assert.equal(md.render("$x$ is five"), `<p>${INLINE}$x$</span> is five</p>\n`);
  assert.equal(md.render("$x$ a\\"), "<p>$x$ a\\</p>\n");
  // str.isdigit(): superscripts are digits too.
  assert.equal(md.render("a $x$² b"), "<p>a $x$² b</p>\n");
  // A first line that ends with $$ closes the block, whatever it holds.
  assert.equal(md.render("$$a$$ b $$c$$"), `${DISPLAY_DIV}$$a$$ b $$c$$</div>\n`);
});

test("table alignment is a text-align style, nothing else", () => {
  const html = md.render("| l | r | c | n |\n|:--|--:|:-:|---|\n| 1 | 2 | 3 | 4 |");
  const styles = [...html.matchAll(/<(t[hd])( style="[^"]*")?>/g)].map((m) => [m[1], m[2] ?? ""]);
  assert.deepEqual(
    styles.map(([, style]) => style),
    [
      ' style="text-align:left"', ' style="text-align:right"', ' style="text-align:center"', "",
      ' style="text-align:left"', ' style="text-align:right"', ' style="text-align:center"', "",
    ], // prettier-ignore
  );
  for (const [tag, style] of styles) {
    if (style) assert.ok(attributeAllowed(tag, "style", style.slice(8, -1)), style);
  }
});

test("code blocks are pre.highlight; known languages highlighted, the rest escaped", () => {
  assert.equal(
    md.render("```python\nx = 'a'  # c\n```"),
    '<pre class="highlight"><code class="hljs language-python">x = <span class="hljs-string">&#x27;a&#x27;</span>  <span class="hljs-comment"># c</span>\n</code></pre>\n',
  );
  assert.equal(
    md.render("```\n<b>&'\n```"),
    '<pre class="highlight"><code>&lt;b&gt;&amp;&#x27;\n</code></pre>\n',
  );
  assert.equal(
    md.render("    <i>\n"),
    '<pre class="highlight"><code>&lt;i&gt;\n</code></pre>\n',
  );
  // render.py's language names; highlight.js's own aliases are not used.
  assert.match(md.render("```C++ extra words\nint a;\n```"), /<code class="hljs language-cpp">/);
  assert.match(md.render("```pycon\n>>> 1\n```"), /<code class="hljs language-python-repl">/);
  assert.match(md.render("```console\n$ ls\n```"), /<code class="hljs language-shell">/);
  assert.match(md.render("```jsx\nx\n```"), /<pre class="highlight"><code>x\n/);
  // The info string never reaches the markup.
  assert.match(md.render('```"><script>\nx\n```'), /<pre class="highlight"><code>x\n/);
});

test("images are links (nothing is fetched), unsafe ones are text", () => {
  assert.equal(
    md.render('![alt *x*](https://example.com/a.png "t")'),
    '<p><a href="https://example.com/a.png">🖼 alt *x*</a></p>\n',
  );
  assert.equal(
    md.render("![](https://example.com/i.png)"),
    '<p><a href="https://example.com/i.png">🖼 https://example.com/i.png</a></p>\n',
  );
  assert.equal(md.render("![r](i.png)"), "<p>![r](i.png)</p>\n");
});

test("only http, https and mailto links are clickable; autolinks too", () => {
  assert.equal(
    md.render("<https://example.com/docs>"),
    '<p><a href="https://example.com/docs">https://example.com/docs</a></p>\n',
  );
  const html = md.render("[a](/rel) [b](#x) [c](ftp://f.org) [d](javascript:x) <ftp://f.org>");
  assert.doesNotMatch(html, /<a /);
  // Bare URLs stay text (no linkify), raw HTML is text.
  assert.equal(md.render("https://e.com <b>x</b>"), "<p>https://e.com &lt;b&gt;x&lt;/b&gt;</p>\n");
  assert.equal(md.render("\\<div>"), "<p>&lt;div&gt;</p>\n");
});

// Every tag and attribute in `html` (markdown-it's output: no raw HTML in it).
function* elements(html) {
  for (const [, tag, rest] of html.matchAll(/<([a-z][a-z0-9]*)([^>]*)>/g)) {
    const attributes = [...rest.matchAll(/([a-z-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]);
    yield { tag, attributes };
  }
}

test("the dialect cases render only what the policy allows", () => {
  assert.ok(CASES.length >= 30);
  for (const text of CASES) {
    const html = md.render(text);
    assert.ok(html.length > 0, text);
    for (const { tag, attributes } of elements(html)) {
      assert.ok(POLICY.tags.includes(tag), `${tag} in ${JSON.stringify(text)}`);
      for (const [name, value] of attributes) {
        assert.ok(attributeAllowed(tag, name, value), `${tag} ${name}="${value}"`);
        if (name === "href") assert.match(value, /^(?:https?|mailto):/, text);
      }
    }
    // Raw HTML in the text is escaped: these can only be text, never elements.
    assert.doesNotMatch(html, /<(?:script|img|iframe|style|div onclick)\b/i, text);
  }
});

test("render-cases.mjs prints every dialect case, rendered", () => {
  const script = fileURLToPath(new URL("./render-cases.mjs", import.meta.url));
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const printed = JSON.parse(execFileSync(process.execPath, [script], { cwd: root, encoding: "utf8" }));
  assert.deepEqual(Object.keys(printed), CASES);
  for (const text of CASES) assert.equal(printed[text], md.render(text), text);
});
