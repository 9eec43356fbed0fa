// Markdown for the live view, with the same guarantees as ipy_stream/safe.py:
// raw HTML is shown as text (html: false), only http(s), mailto and ftp(s) links
// (or relative ones) are clickable, images are never loaded (an image becomes a
// link), and fenced code is highlighted by highlight.js (a few common languages).

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
import plaintext from "highlight.js/lib/languages/plaintext";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

const LANGUAGES = {
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
  plaintext,
  python,
  rust,
  sql,
  typescript,
  xml,
  yaml,
};
for (const [name, language] of Object.entries(LANGUAGES)) {
  hljs.registerLanguage(name, language);
}
hljs.registerAliases(["shell", "console", "shellsession", "sh"], { languageName: "bash" });
hljs.registerAliases(["py", "python3", "ipython", "pycon"], { languageName: "python" });
hljs.registerAliases(["text", "txt"], { languageName: "plaintext" });

export { hljs };

const SAFE_SCHEMES = new Set(["http", "https", "mailto", "ftp", "ftps"]);
const SCHEME = /^([a-z][a-z0-9+.-]*):/;
// Control characters, spaces and backslashes that browsers drop inside a scheme.
// eslint-disable-next-line no-control-regex
const URL_NOISE = /[\u0000-\u0020\u007f\\]/g;

function decodeEntities(text) {
  // Enough of HTML's entity decoding to see a scheme hidden behind &#58; or &colon;.
  return text
    .replace(/&#x([0-9a-f]+);?/gi, (_, hex) => String.fromCodePoint(parseInt(hex, 16) || 0xfffd))
    .replace(/&#([0-9]+);?/g, (_, dec) => String.fromCodePoint(parseInt(dec, 10) || 0xfffd))
    .replace(/&colon;?/gi, ":")
    .replace(/&tab;?/gi, "\t")
    .replace(/&newline;?/gi, "\n");
}

/** Whether a link destination may be clickable: no scheme, or an allowed one. */
export function isSafeUrl(url) {
  let decoded = String(url);
  try {
    decoded = decodeURIComponent(decoded);
  } catch {
    // Not valid percent-encoding: judge it as written.
  }
  decoded = decodeEntities(decoded).replace(URL_NOISE, "").toLowerCase();
  const match = SCHEME.exec(decoded);
  return match === null || SAFE_SCHEMES.has(match[1]);
}

const escapeHtml = (text) =>
  text.replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);

function highlight(code, info) {
  const lang = (info || "").trim().split(/\s+/)[0].toLowerCase();
  let body = escapeHtml(code);
  let language = "";
  if (lang && hljs.getLanguage(lang)) {
    try {
      body = hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
      language = ` language-${escapeHtml(lang)}`;
    } catch {
      // Highlighting is decoration: fall back to plain, escaped code.
    }
  }
  return `<pre><code class="hljs${language}">${body}</code></pre>`;
}

function renderImageAsLink(tokens, idx) {
  const token = tokens[idx];
  const src = token.attrGet("src") || "";
  const alt = escapeHtml(token.content || src);
  if (!isSafeUrl(src)) return alt;
  return `<a href="${escapeHtml(src)}" rel="noopener noreferrer" target="_blank">🖼 ${alt}</a>`;
}

/** A markdown-it configured like ipy_stream.safe.render_html. */
export function createMarkdown() {
  const md = new MarkdownIt("commonmark", {
    html: false,
    linkify: false,
    typographer: false,
    highlight,
  });
  md.enable(["table", "strikethrough"]);
  md.validateLink = isSafeUrl;
  md.renderer.rules.image = renderImageAsLink;
  const defaultLinkOpen =
    md.renderer.rules.link_open ||
    ((tokens, idx, options, env, self) => self.renderToken(tokens, idx, options));
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx].attrSet("rel", "noopener noreferrer");
    tokens[idx].attrSet("target", "_blank");
    return defaultLinkOpen(tokens, idx, options, env, self);
  };
  return md;
}
