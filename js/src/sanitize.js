// The live view's sanitizer: DOMPurify with the saved output's policy
// (ipy_stream/policy.json, see policy.js), as nh3 applies it in render.py.

import DOMPurify from "dompurify";
import { LINK_ATTRIBUTES, PURIFY_CONFIG, attributeAllowed } from "./policy.js";

// A DOMPurify of our own (hooks belong to an instance): the policy's elements and
// attributes, each attribute only on the elements the policy gives it (a style
// only as a table cell's alignment), and every link opening in a new tab with
// rel="noopener noreferrer nofollow".
let purifier = null;

function purify() {
  if (purifier) return purifier;
  purifier = DOMPurify(window);
  purifier.addHook("uponSanitizeAttribute", (node, data) => {
    if (!attributeAllowed(node.nodeName.toLowerCase(), data.attrName, data.attrValue)) {
      data.keepAttr = false;
    }
  });
  purifier.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName === "A" && node.hasAttribute("href")) {
      for (const [name, value] of Object.entries(LINK_ATTRIBUTES)) node.setAttribute(name, value);
    }
  });
  return purifier;
}

/** `html` (markdown.js's output) as a sanitized DocumentFragment. */
export function sanitize(html) {
  return purify().sanitize(html, PURIFY_CONFIG);
}
