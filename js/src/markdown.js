// Markdown for the live view, in the dialect of the saved output
// (ipy_stream/render.py): CommonMark with tables and strikethrough, raw HTML
// shown as text, no bare-URL linking, no typographer, `$…$` and `$$…$$` math
// (dollarmath.js) kept as text in the spans the notebook's MathJax typesets,
// math that uses risky TeX commands shown as code, links only to the policy's
// schemes (http, https, mailto), images shown as links (nothing is fetched),
// and code blocks as <pre class="highlight">, highlighted by highlight.js.
//
// Everything but the code blocks' highlighting renders to the same HTML as
// render.py before its sanitizer (test/dialect-cases.json, test/render-cases.mjs);
// the sanitizer (sanitize.js) then adds the links' rel and target, as nh3 adds rel.

import MarkdownIt from "markdown-it";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import cpp from "highlight.js/lib/languages/cpp";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import ini from "highlight.js/lib/languages/ini";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdown from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import pythonRepl from "highlight.js/lib/languages/python-repl";
import rust from "highlight.js/lib/languages/rust";
import shell from "highlight.js/lib/languages/shell";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { dollarmath } from "./dollarmath.js";
import { POLICY, RISKY_TEX, SCHEMES } from "./policy.js";
import { escape, split } from "./pycompat.js";
import { countCodePoints } from "./store.js";

const GRAMMARS = {
  bash,
  c,
  cpp,
  diff,
  go,
  ini,
  java,
  javascript,
  json,
  markdown,
  python,
  "python-repl": pythonRepl,
  rust,
  shell,
  sql,
  typescript,
  xml,
  yaml,
};
for (const [name, grammar] of Object.entries(GRAMMARS)) hljs.registerLanguage(name, grammar);

// A fence's language (its info string's first word, any case) -> the grammar.
// The same names as render.py's _LANGUAGES, so that the same blocks are
// highlighted live and saved; highlight.js's own aliases are not used.
const LANGUAGES = new Map(
  Object.entries({
    bash: "bash", sh: "bash", shell: "bash", console: "shell", shellsession: "shell",
    c: "c", cpp: "cpp", "c++": "cpp", diff: "diff", go: "go", ini: "ini", toml: "ini",
    java: "java", javascript: "javascript", js: "javascript", json: "json",
    markdown: "markdown", md: "markdown", python: "python", py: "python",
    python3: "python", ipython: "python", pycon: "python-repl", rust: "rust",
    rs: "rust", sql: "sql", typescript: "typescript", ts: "typescript", xml: "xml",
    html: "xml", yaml: "yaml", yml: "yaml",
  }), // prettier-ignore
);

/** Longer code blocks are shown plain, as in render.py: highlighting is decoration. */
const HIGHLIGHT_LIMIT = 100_000;

export { hljs };

// Control characters, spaces and backslashes, which browsers drop inside a scheme.
// eslint-disable-next-line no-control-regex
const URL_NOISE = /[\u0000-\u0020\u007f\\]/g;
const SCHEME = /^([a-z][a-z0-9+.-]*):/;
const NAMED = { "&colon;": ":", "&Tab;": "\t", "&NewLine;": "\n" };

function decodeEntities(text) {
  // Enough of html.unescape to see a scheme hidden behind &#58; or &colon;.
  return text
    .replace(/&#[xX]([0-9a-fA-F]+);?/g, (_, hex) => codePoint(parseInt(hex, 16)))
    .replace(/&#([0-9]+);?/g, (_, dec) => codePoint(parseInt(dec, 10)))
    .replace(/&(?:colon|Tab|NewLine);/g, (name) => NAMED[name]);
}

// As html.unescape: invalid numbers become U+FFFD, noncharacters nothing.
function codePoint(n) {
  if (!(n > 0 && n <= 0x10ffff) || (n >= 0xd800 && n <= 0xdfff)) return "\ufffd";
  if ((n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe) return "";
  return String.fromCodePoint(n);
}

/**
 * Whether a link may point at `url`, like render.py's is_safe_url: only the
 * policy's schemes (http, https, mailto); a relative URL has none, so it is not.
 */
export function isSafeUrl(url) {
  const decoded = decodeEntities(String(url)).replace(URL_NOISE, "").toLowerCase();
  const match = SCHEME.exec(decoded);
  return match !== null && SCHEMES.has(match[1]);
}

/** A fenced or indented code block, as <pre class="highlight"> (render.py's _code_block). */
function codeBlock(code, info) {
  const word = split(info)[0];
  const language = word === undefined ? undefined : LANGUAGES.get(word.toLowerCase());
  let body = escape(code);
  let attributes = "";
  if (language !== undefined && countCodePoints(code) <= HIGHLIGHT_LIMIT) {
    try {
      body = hljs.highlight(code, { language, ignoreIllegals: true }).value;
      attributes = ` class="hljs language-${escape(language)}"`;
    } catch {
      // Highlighting is decoration: keep the plain, escaped code.
    }
  }
  return `<pre class="highlight"><code${attributes}>${body}</code></pre>\n`;
}

function renderCode(tokens, idx) {
  const token = tokens[idx];
  return codeBlock(token.content, token.type === "fence" ? token.info : "");
}

// An image would make the page fetch its address: show a link to it instead.
function renderImage(tokens, idx) {
  const token = tokens[idx];
  const source = token.attrGet("src") || "";
  const alt = escape(token.content || source);
  if (!isSafeUrl(source)) return alt;
  return `<a href="${escape(source)}">🖼 ${alt}</a>`;
}

/** Math kept as TeX text, with its delimiters, for the notebook's MathJax. */
export function renderMath(content, { display, inline = false }) {
  const delimiter = display ? "$$" : "$";
  const source = escape(delimiter + content + delimiter);
  if (RISKY_TEX.test(content)) return `<code>${source}</code>`;
  const classes = POLICY.math_classes[display ? "display" : "inline"];
  if (display && !inline) return `<div class="${classes}">${source}</div>\n`;
  return `<span class="${classes}">${source}</span>`;
}

/** A heading, marked for JupyterLab's table of contents to leave out (render.py's too). */
function renderHeading(tokens, idx, options, _env, renderer) {
  tokens[idx].attrSet("class", POLICY.heading_class);
  return renderer.renderToken(tokens, idx, options);
}

/** A markdown-it configured like render.py's (the HTML still needs the sanitizer). */
export function createMarkdown() {
  const md = new MarkdownIt("commonmark", { html: false, linkify: false, typographer: false });
  md.enable(["table", "strikethrough"]);
  md.use(dollarmath, {
    allowDigits: false,
    allowBlankLines: false,
    doubleInline: true,
  });
  md.validateLink = isSafeUrl;
  const rules = md.renderer.rules;
  rules.fence = renderCode;
  rules.code_block = renderCode;
  rules.image = renderImage;
  rules.heading_open = renderHeading;
  rules.math_inline = (tokens, idx) => renderMath(tokens[idx].content, { display: false });
  rules.math_inline_double = (tokens, idx) =>
    renderMath(tokens[idx].content, { display: true, inline: true });
  rules.math_block = (tokens, idx) =>
    renderMath(tokens[idx].content.replace(/^\n+|\n+$/g, ""), { display: true });
  return md;
}
