// Python's string semantics, where the saved output (ipy_stream/render.py, which
// runs markdown-it-py and mdit-py-plugins) depends on them: the live view must
// read the same text the same way, so these follow Python, not JavaScript.

// What str.isspace() accepts: JavaScript's \s lacks \x1c-\x1f and \x85, and
// has \ufeff, which Python does not count as space.
const SPACE = new Set(
  "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000",
);

/** str.isspace() of one character. */
export const isSpace = (ch) => SPACE.has(ch);

/** str.strip(): whitespace removed from both ends. */
export function strip(text) {
  let start = 0;
  let end = text.length;
  while (start < end && SPACE.has(text[start])) start++;
  while (end > start && SPACE.has(text[end - 1])) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/** str.split() with no separator: the words between runs of whitespace. */
export function split(text) {
  const words = [];
  let word = "";
  for (const ch of text) {
    if (SPACE.has(ch)) {
      if (word) words.push(word);
      word = "";
    } else {
      word += ch;
    }
  }
  if (word) words.push(word);
  return words;
}

// str.isdigit(): decimal digits (\p{Nd}) and the characters Unicode types as
// "Digit" (superscripts, subscripts, circled and parenthesized digits, ...).
const DIGIT =
  /^[\p{Nd}\u{b2}\u{b3}\u{b9}\u{1369}-\u{1371}\u{19da}\u{2070}\u{2074}-\u{2079}\u{2080}-\u{2089}\u{2460}-\u{2468}\u{2474}-\u{247c}\u{2488}-\u{2490}\u{24ea}\u{24f5}-\u{24fd}\u{24ff}\u{2776}-\u{277e}\u{2780}-\u{2788}\u{278a}-\u{2792}\u{10a40}-\u{10a43}\u{10e60}-\u{10e68}\u{11052}-\u{1105a}\u{1f100}-\u{1f10a}]$/u;

/** str.isdigit() of one character (a code point; "" is not a digit). */
export const isDigit = (ch) => DIGIT.test(ch);

/** The character (code point) at UTF-16 offset `i`, or "" past the end. */
export function charAt(text, i) {
  if (i < 0 || i >= text.length) return "";
  return String.fromCodePoint(text.codePointAt(i));
}

/**
 * The character (code point) before UTF-16 offset `i`, like Python's text[i - 1]:
 * before the start, that is the last character (a negative index counts from the end).
 */
export function charBefore(text, i) {
  const end = i > 0 ? i : text.length;
  if (end === 0) return "";
  const low = text.charCodeAt(end - 1);
  if (end >= 2 && low >= 0xdc00 && low <= 0xdfff) {
    const high = text.charCodeAt(end - 2);
    if (high >= 0xd800 && high <= 0xdbff) return text.slice(end - 2, end);
  }
  return text[end - 1];
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;" };

/** html.escape(text, quote=True). */
export const escape = (text) => String(text).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);

