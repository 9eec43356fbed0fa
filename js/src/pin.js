// Keeps a streaming run's progress in sight, and follows its newest text.
//
// While an answer grows past the bottom of the screen, its footer (and the Stop button
// of a background run) stays at the bottom of what is visible, over the text: a person
// always sees that the run goes on and can stop it. And while the end of the answer is
// in view, the page scrolls along as it grows; scrolling up to read stops that, and
// scrolling back down to the end (or the "newest" button on the footer) starts it again.
//
// JupyterLab's output areas and ipywidgets' boxes set `overflow`, so CSS
// `position: sticky` never sticks inside them. Instead, at each frame, the run's bottom
// is measured against the bottom of what is visible (the nearest of the window's and of
// every clipping ancestor's), and the footer and the button are moved up by the
// difference with a transform, which changes no layout (so the measure is stable).
//
// The arithmetic is in pure functions (tested in node); `Pin` does the DOM.

/** How far to lift an element whose natural bottom is `bottom` so that it ends at
 * `limit`, without leaving its container (`room`: how far it can go up). */
export function lift(bottom, limit, room) {
  return Math.max(0, Math.min(bottom - limit, Math.max(0, room)));
}

/**
 * Whether the reader follows the newest text, after one look at the page.
 * `state`: {following, away}; `end`: the run's bottom; `limit`: the visible bottom;
 * `scrolledUp`: the reader scrolled up since the last look.
 */
export function follows(state, { end, limit, scrolledUp }) {
  const inView = end <= limit + 2;
  if (scrolledUp) state.away = !inView;
  else if (inView) state.away = false;
  state.following = !state.away && (state.following || inView);
  return state.following;
}

function clips(style) {
  return style.overflowY !== "visible" || style.overflowX !== "visible";
}

/** The bottom of what is visible of `el` (viewport coordinates), and the element that
 * scrolls it (null: the document). */
export function visibleBottom(el, win) {
  let limit = win.innerHeight;
  let scroller = null;
  for (let node = el.parentElement; node; node = node.parentElement) {
    // Boxes that grow with their content (most of them, in an output area) hide nothing.
    if (node.scrollHeight <= node.clientHeight + 2) continue;
    const style = win.getComputedStyle(node);
    if (!clips(style)) continue;
    limit = Math.min(limit, node.getBoundingClientRect().bottom);
    if (!scroller && /(auto|scroll)/.test(style.overflowY)) scroller = node;
  }
  return { limit, scroller };
}

// Follow state, shared by the panes of one run (keyed by the run's element).
const STATES = new WeakMap();

export class Pin {
  /**
   * `root`: the view's `.ipy-stream`; `footer`: its footer; `newest`: its "newest"
   * button (shown on a lifted footer when the reader is not following).
   */
  constructor(root, footer, newest, win = window) {
    this.root = root;
    this.footer = footer;
    this.newest = newest;
    this.win = win;
    this.lastTop = null;
    this.scroller = null;
    newest.addEventListener("click", () => this.jump());
  }

  /** The run this view belongs to: its panes and Stop button, or the view alone. */
  run() {
    const root = this.root;
    return root.closest(".ipy-stream-run") ?? root.closest(".ipy-stream-grid") ?? root;
  }

  state() {
    const run = this.run();
    let state = STATES.get(run);
    if (!state) {
      state = { following: false, away: false };
      STATES.set(run, state);
    }
    return state;
  }

  stopButton(run) {
    if (run === this.root) return null;
    const button = run.querySelector(":scope > .ipy-stream-stop");
    return button && button.offsetParent !== null ? button : null;
  }

  /** Measure and move; called once per frame while anything may have moved. */
  update(streaming) {
    const run = this.run();
    if (!streaming || !this.root.isConnected) {
      this.release(run);
      return;
    }
    const { limit, scroller } = visibleBottom(this.root, this.win);
    this.scroller = scroller;
    const top = scroller ? scroller.scrollTop : this.win.scrollY;
    const scrolledUp = this.lastTop !== null && top < this.lastTop - 1;
    this.lastTop = top;
    const state = this.state();
    const runBox = run.getBoundingClientRect();
    if (follows(state, { end: runBox.bottom, limit, scrolledUp }) && runBox.bottom > limit + 1) {
      this.scrollBy(runBox.bottom - limit);
      this.lastTop = scroller ? scroller.scrollTop : this.win.scrollY;
      this.pinAll(run, this.root.getBoundingClientRect(), run.getBoundingClientRect(), limit);
      return;
    }
    this.pinAll(run, this.root.getBoundingClientRect(), runBox, limit);
  }

  pinAll(run, rootBox, runBox, limit) {
    const button = this.stopButton(run);
    let reserve = 0;
    if (button) {
      const height = button.offsetHeight;
      const shift = lift(runBox.bottom, limit, runBox.height - height);
      button.style.transform = shift ? `translateY(${-shift}px)` : "";
      button.classList.toggle("ipy-stream-pinned", shift > 0);
      reserve = shift > 0 ? height + 3 : 0;
    }
    const footerHeight = this.footer.offsetHeight;
    const shift = lift(rootBox.bottom, limit - reserve, rootBox.height - footerHeight);
    const moved = shift ? `translateY(${-shift}px)` : "";
    this.footer.style.transform = moved;
    this.newest.style.transform = moved;
    if (shift > 0) this.root.dataset.pinned = this.state().following ? "following" : "away";
    else delete this.root.dataset.pinned;
  }

  scrollBy(delta) {
    if (this.scroller) this.scroller.scrollTop += delta;
    else this.win.scrollBy(0, delta);
  }

  /** The "newest" button: show the end of the answer and follow it again. */
  jump() {
    const state = this.state();
    state.away = false;
    state.following = true;
    const run = this.run();
    const { limit, scroller } = visibleBottom(this.root, this.win);
    this.scroller = scroller;
    const bottom = run.getBoundingClientRect().bottom;
    if (bottom > limit) this.scrollBy(bottom - limit);
    this.lastTop = scroller ? scroller.scrollTop : this.win.scrollY;
  }

  release(run) {
    this.footer.style.transform = "";
    this.newest.style.transform = "";
    delete this.root.dataset.pinned;
    const button = run === this.root ? null : run.querySelector(":scope > .ipy-stream-stop");
    if (button) {
      button.style.transform = "";
      button.classList.remove("ipy-stream-pinned");
    }
  }
}
