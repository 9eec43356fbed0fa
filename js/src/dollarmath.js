// `$…$` and `$$…$$` math for markdown-it, read exactly as the saved output reads
// it: ipy_stream/render.py uses mdit-py-plugins' dollarmath plugin (0.7), and
// what counts as math here must be what counts as math there, or the answer
// would change its look when the stream ends. So the rules below follow that
// plugin's behaviour, with Python's string semantics (see pycompat.js), its
// quirks included (they are marked). executablebooks' JS port on npm
// (markdown-it-dollarmath 0.5) is not used: it is a port of an older version
// (no `allow_blank_lines`, other block rules) and needs markdown-it 12 or 13.
//
// Options, named after the Python plugin's: allowSpace (allow_space),
// allowDigits (allow_digits), doubleInline (double_inline), allowBlankLines
// (allow_blank_lines); same defaults. Equation labels (allow_labels) are not
// supported: they are always off, as in render.py.
//
// Tokens: math_inline (`$a$`), math_inline_double (`$$a$$` inside a paragraph,
// with doubleInline) and math_block (`$$` on its own lines; a block token with a
// `map`). The plugin only parses: the caller adds the render rules.

import { charAt, charBefore, isDigit, strip } from "./pycompat.js";

const DOLLAR = 0x24;

/** Whether the `$` at `pos` is escaped: an odd number of backslashes before it. */
function escaped(src, pos) {
  let count = 0;
  // Python quirk: the plugin looks one character before the start too, and
  // src[-1] there is the last character of the text.
  for (let i = pos - 1; i >= -1; i--) {
    const ch = i >= 0 ? src[i] : src[src.length - 1];
    if (ch !== "\\") break;
    count++;
  }
  return count % 2 === 1;
}

function mathInline({ allowSpace, allowDigits, doubleInline }) {
  return function math_inline(state, silent) {
    const src = state.src;
    const start = state.pos;
    if (src.charCodeAt(start) !== DOLLAR) return false;
    const isWhiteSpace = state.md.utils.isWhiteSpace;
    if (!allowSpace && (start + 1 >= src.length || isWhiteSpace(src.charCodeAt(start + 1)))) {
      return false;
    }
    // No digit just before the opening `$` ("costs 5$"). Python quirk: at the
    // start of the text, "before" is the last character of the text.
    if (!allowDigits && isDigit(charBefore(src, start))) return false;
    if (escaped(src, start)) return false;

    const double = doubleInline && src.charCodeAt(start + 1) === DOLLAR;
    let from = start + (double ? 2 : 1);
    let end;
    for (;;) {
      end = src.indexOf("$", from);
      if (end < 0) return false;
      if (escaped(src, end) || (double && src.charCodeAt(end + 1) !== DOLLAR)) {
        from = end + 1;
        continue;
      }
      if (double) end += 1;
      break;
    }
    if (!allowSpace && isWhiteSpace(src.charCodeAt(end - 1))) return false;
    // No digit just after the closing `$` ("$5 and $10").
    if (!allowDigits && isDigit(charAt(src, end + 1))) return false;

    const content = double ? src.slice(start + 2, end - 1) : src.slice(start + 1, end);
    if (!content) return false;
    if (!silent) {
      const token = state.push(double ? "math_inline_double" : "math_inline", "math", 0);
      token.content = content;
      token.markup = double ? "$$" : "$";
    }
    state.pos = end + 1;
    return true;
  };
}

/** The text between the `$$` markers, without the containers' prefixes (`> `). */
function blockContent(state, firstLine, firstPos, lastLine, end) {
  const src = state.src;
  if (firstLine === lastLine) return src.slice(firstPos + 2, end);
  const parts = [src.slice(firstPos + 2, state.eMarks[firstLine]), "\n"];
  for (let line = firstLine + 1; line < lastLine; line++) {
    parts.push(src.slice(state.bMarks[line], state.eMarks[line]), "\n");
  }
  parts.push(src.slice(state.bMarks[lastLine], end));
  return parts.join("");
}

// The offset just before the closing `$$` of `text` (a line from `start` to
// `lineEnd` whose stripped text ends with `$$`). Python quirk kept: it takes off
// the whitespace of both ends, though only the trailing one follows the `$$`.
const closingEnd = (lineEnd, text, stripped) => lineEnd - 2 - (text.length - stripped.length);

function mathBlock({ allowBlankLines }) {
  return function math_block(state, startLine, endLine) {
    // Indented by four or more: an indented code block (the code rule is on).
    if (state.sCount[startLine] - state.blkIndent >= 4) return false;
    const src = state.src;
    const startPos = state.bMarks[startLine] + state.tShift[startLine];
    let end = state.eMarks[startLine];
    if (startPos + 2 > end) return false;
    if (src.charCodeAt(startPos) !== DOLLAR || src.charCodeAt(startPos + 1) !== DOLLAR) {
      return false;
    }

    let line = startLine;
    let closed = false;
    let text = src.slice(startPos, end);
    let stripped = strip(text);
    if (stripped.length > 3) {
      if (stripped.endsWith("$$")) {
        closed = true;
        end = closingEnd(end, text, stripped);
      } else if (text.slice(2).includes("$$")) {
        // A closing `$$` inside the first line, not at its end: not a block.
        return false;
      }
    }
    while (!closed) {
      line += 1;
      if (line >= endLine) return false;
      const lineStart = state.bMarks[line] + state.tShift[line];
      end = state.eMarks[line];
      text = src.slice(lineStart, end);
      stripped = strip(text);
      if (stripped.endsWith("$$")) {
        closed = true;
        end = closingEnd(end, text, stripped);
      } else if (stripped === "" && !allowBlankLines) {
        return false;
      }
    }

    state.line = line + 1;
    const token = state.push("math_block", "math", 0);
    token.block = true;
    token.content = blockContent(state, startLine, startPos, line, end);
    token.markup = "$$";
    token.map = [startLine, state.line];
    return true;
  };
}

/** The plugin: `md.use(dollarmath, {allowDigits: false, ...})`. */
export function dollarmath(md, options = {}) {
  const settings = {
    allowSpace: true,
    allowDigits: true,
    doubleInline: false,
    allowBlankLines: true,
    ...options,
  };
  md.inline.ruler.before("escape", "math_inline", mathInline(settings));
  md.block.ruler.before("fence", "math_block", mathBlock(settings));
}

export default dollarmath;
