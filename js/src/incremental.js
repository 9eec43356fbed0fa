// Incremental Markdown rendering of a growing text.
//
// The text is cut into top-level blocks (markdown-it's block tokens and their
// `map` line ranges). Blocks are "committed" (rendered once, never again) when
// they are followed by a blank line and by a next block whose first line is
// complete: from there on, text added at the end can no longer change them. Each
// update re-parses and re-renders only the rest (the "open" tail, usually the
// last paragraph, list or code block), so the cost of a frame does not grow
// with the answer.
//
// Math blocks (`$$` on their own lines) are block tokens with a `map` like any
// other: they never span a blank line (dollarmath's allowBlankLines is off), so
// a block before a blank line stays final here too.

const NEWLINE = /\r\n?|\n/g;

/** Offsets at which each line of `text` starts (markdown-it's line breaks). */
export function lineStarts(text) {
  const starts = [0];
  NEWLINE.lastIndex = 0;
  for (let match = NEWLINE.exec(text); match; match = NEWLINE.exec(text)) {
    starts.push(match.index + match[0].length);
  }
  return starts;
}

// Blank as markdown-it sees it: spaces and tabs only (a no-break space is text).
const BLANK = /^[ \t]*(?:\r\n?|\n)?$/;

function isBlankLine(text, starts, line) {
  const end = line + 1 < starts.length ? starts[line + 1] : text.length;
  return BLANK.test(text.slice(starts[line], end));
}

/** Top-level blocks: [first token, last token + 1) and the block's line map. */
export function topLevelBlocks(tokens) {
  const blocks = [];
  let open = -1;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token.level !== 0 || !token.block) continue;
    if (token.nesting === 1) {
      open = i;
    } else if (token.nesting === -1) {
      if (open >= 0) blocks.push({ start: open, end: i + 1, map: tokens[open].map });
      open = -1;
    } else {
      blocks.push({ start: i, end: i + 1, map: token.map });
    }
  }
  return blocks.filter((block) => Array.isArray(block.map));
}

export class IncrementalRenderer {
  constructor(md) {
    this.md = md;
    this.reset();
  }

  reset() {
    /** Offset (UTF-16) where the committed part of the text ends. */
    this.committedEnd = 0;
    /** Link reference definitions found in the committed part. */
    this.references = {};
  }

  /**
   * Render `text`, which extends the text of the previous call.
   * Returns `committed`: HTML of blocks that became final with this call (or ""),
   * and `open`: HTML of the rest, which replaces the previous `open`.
   */
  update(text) {
    const md = this.md;
    const tail = text.slice(this.committedEnd);
    const env = { references: { ...this.references } };
    const tokens = md.parse(tail, env);
    const blocks = topLevelBlocks(tokens);
    const starts = lineStarts(tail);
    let cut = 0;
    for (let b = blocks.length - 1; b >= 1; b--) {
      const line = blocks[b].map[0];
      const firstLineComplete = line + 1 < starts.length;
      if (firstLineComplete && line >= 1 && isBlankLine(tail, starts, line - 1)) {
        cut = b;
        break;
      }
    }
    let committed = "";
    let openTokens = tokens;
    if (cut > 0) {
      const split = blocks[cut].start;
      committed = md.renderer.render(tokens.slice(0, split), md.options, env);
      openTokens = tokens.slice(split);
      const end = starts[blocks[cut].map[0]];
      // Remember the references the committed text defines (first definition wins).
      const refEnv = { references: this.references };
      md.block.parse(tail.slice(0, end).replace(NEWLINE, "\n"), md, refEnv, []);
      this.committedEnd += end;
    }
    const open = md.renderer.render(openTokens, md.options, env);
    return { committed, open };
  }
}
