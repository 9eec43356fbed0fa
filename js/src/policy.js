// What an answer may become in HTML: ipy_stream/policy.json, the file that
// ipy_stream/render.py (nh3) reads for the saved output, bundled here for the
// live view's sanitizer (DOMPurify, configured in live.js) and Markdown.

import POLICY from "../../ipy_stream/policy.json" with { type: "json" };

export { POLICY };

/** The URL schemes a link may use (no relative links). */
export const SCHEMES = new Set(POLICY.url_schemes);

// Set on every link by the sanitizer, as nh3's link_rel does for the saved
// output; target="_blank" because a link must not navigate the notebook away.
export const LINK_ATTRIBUTES = { rel: POLICY.link_rel, target: "_blank" };

// The attributes each element may keep: the policy's, and the link attributes.
const ATTRIBUTES = new Map(
  Object.entries(POLICY.attributes).map(([tag, names]) => [tag, new Set(names)]),
);
for (const name of Object.keys(LINK_ATTRIBUTES)) ATTRIBUTES.get("a").add(name);

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// A style is kept only as one alignment declaration (markdown-it writes
// style="text-align:right" on a table's cells); anything else drops it.
const STYLE = new RegExp(
  `^\\s*(?:${POLICY.style_properties.map(escapeRegExp).join("|")})\\s*:\\s*(?:left|right|center)\\s*;?\\s*$`,
  "i",
);

/** Whether element `tag` may keep attribute `name` with `value` (lowercase names). */
export function attributeAllowed(tag, name, value) {
  if (!ATTRIBUTES.get(tag)?.has(name)) return false;
  return name !== "style" || STYLE.test(String(value));
}

/** TeX commands that could make links, styles or macros: such math is shown as code. */
export const RISKY_TEX = new RegExp(
  `\\\\(?:${POLICY.tex_commands_shown_as_code.map(escapeRegExp).join("|")})(?![A-Za-z])`,
);

const allAttributes = new Set([
  ...Object.values(POLICY.attributes).flat(),
  ...Object.keys(LINK_ATTRIBUTES),
  "class",
]);

/** DOMPurify's configuration (with the hooks that live.js adds for attributeAllowed). */
export const PURIFY_CONFIG = Object.freeze({
  RETURN_DOM_FRAGMENT: true,
  ALLOWED_TAGS: [...POLICY.tags],
  ALLOWED_ATTR: [...allAttributes],
  // Only the policy's schemes: no relative URLs, no data:, no javascript:.
  ALLOWED_URI_REGEXP: new RegExp(`^(?:${POLICY.url_schemes.map(escapeRegExp).join("|")}):`, "i"),
  // DOMPurify checks every other attribute's value against ALLOWED_URI_REGEXP
  // too (ol's start="3" would fail): only href holds a URL here.
  ADD_URI_SAFE_ATTR: [...allAttributes].filter((name) => name !== "href"),
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
});
