// The text of one stream as the front end knows it, rebuilt from the kernel's
// "append" messages. Offsets count Unicode code points, like Python's str
// indices, so that both sides agree on where a piece goes even with emoji.
//
// Each message names the `epoch` of the text it is about: the kernel starts a new
// one each time it replaces the text (a reset); within one epoch the text only
// grows, so a piece is placed by its offset alone:
// * a message of a newer epoch than ours: we missed a reset; what we hold is
//   another text: drop it (and the pieces kept aside), then place the piece;
// * a message of an older epoch: a replay of a replaced text: ignore it;
// * offset == what we hold: append;
// * offset < what we hold: the overlap is already here, append only the rest
//   (a resync answer or a replay); with `reset: true` drop everything from
//   `offset` on first (the kernel replaced the text);
// * offset > what we hold: a gap (a message was missed, or it arrived before
//   this front end was listening): keep the piece aside and ask for the tail.

/** Number of code points in a JS (UTF-16) string. */
export function countCodePoints(text) {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

/** UTF-16 index just after the first `points` code points of `text`. */
export function codePointIndex(text, points) {
  let index = 0;
  for (let seen = 0; seen < points && index < text.length; seen++) {
    const unit = text.charCodeAt(index);
    const next = text.charCodeAt(index + 1);
    const pair = unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
    index += pair ? 2 : 1;
  }
  return index;
}

export class TextStore {
  constructor() {
    /** The contiguous text received so far. */
    this.text = "";
    /** Its length in code points (the offset the next message should have). */
    this.length = 0;
    /** The kernel's epoch of that text (the number of times it replaced its text). */
    this.epoch = 0;
    /** Bumped when the text was cut back (a reset): renderers start over. */
    this.generation = 0;
    /** Pieces that arrived after a gap, by offset. */
    this.ahead = new Map();
    this.listeners = new Set();
  }

  /** Apply an append message; returns true when a gap means we should resync. */
  receive(message) {
    const offset = Number(message.offset);
    const text = String(message.text ?? "");
    if (!Number.isInteger(offset) || offset < 0) return false;
    const epoch = message.epoch === undefined ? this.epoch : message.epoch;
    if (!Number.isInteger(epoch) || epoch < this.epoch) return false;
    let changed = this.#enter(epoch);
    // A reset that agrees with what we hold (another page's resync answer, sent to
    // every page) only extends it; else the text from `offset` on is replaced, and
    // what was kept aside, which came before this message, is covered by it.
    if (message.reset && offset <= this.length && !this.#leadsTo(offset, text)) {
      this.ahead.clear();
      this.#truncate(offset);
      changed = true;
    }
    if (offset > this.length) {
      this.ahead.set(offset, text);
      if (changed) this.#notify();
      return true;
    }
    changed = this.#place(offset, text) || changed;
    changed = this.#drain() || changed;
    if (changed) this.#notify();
    return this.ahead.size > 0;
  }

  /**
   * Follow the kernel to `epoch` if it is newer than ours (a reset we missed): the
   * text we hold belongs to a replaced one, so drop it. True if it was newer.
   */
  enter(epoch) {
    const entered = this.#enter(epoch);
    if (entered) this.#notify();
    return entered;
  }

  #enter(epoch) {
    if (!(epoch > this.epoch)) return false;
    this.epoch = epoch;
    this.ahead.clear();
    this.#truncate(0);
    return true;
  }

  /** Adopt a checkpoint (a prefix of the text of our epoch) if it is longer than ours. */
  adopt(prefix) {
    const text = String(prefix ?? "");
    if (!text) return false;
    const changed = this.#place(0, text) && (this.#drain() || true);
    if (changed) this.#notify();
    return changed;
  }

  #truncate(offset) {
    if (offset >= this.length) return;
    this.text = this.text.slice(0, codePointIndex(this.text, offset));
    this.length = offset;
    this.generation++;
  }

  // Is what we hold from `offset` (<= this.length) on a prefix of `text`?
  #leadsTo(offset, text) {
    return text.startsWith(this.text.slice(codePointIndex(this.text, offset)));
  }

  // Put `text` at `offset` (<= this.length); keep only what extends our text.
  #place(offset, text) {
    const known = this.length - offset;
    if (known <= 0) {
      this.text += text;
      this.length += countCodePoints(text);
      return text.length > 0;
    }
    const pieceLength = countCodePoints(text);
    if (pieceLength <= known) return false;
    const rest = text.slice(codePointIndex(text, known));
    this.text += rest;
    this.length += pieceLength - known;
    return true;
  }

  #drain() {
    let changed = false;
    let progress = true;
    while (progress && this.ahead.size) {
      progress = false;
      for (const [offset, text] of this.ahead) {
        if (offset <= this.length) {
          this.ahead.delete(offset);
          changed = this.#place(offset, text) || changed;
          progress = true;
        }
      }
    }
    return changed;
  }

  #notify() {
    for (const listener of this.listeners) listener();
  }
}
