// In-page probe of the benchmark (installed as an init script in every page).
//
// window.__bench.start(cell) watches one notebook cell:
// * visibility: a MutationObserver on the cell schedules one check per animation frame;
//   the check reads only the tail of the text of the last `.ipy-stream-body` in the
//   cell's outputs (or, once the live view is gone, of the saved output's body)
//   and records [Date.now(), highest marker number wN seen, "live"|"final"] whenever the
//   highest marker grows. The answer only grows at its end, so marker N visible means
//   every token up to N is.
// * the cell's end: Date.now() when its prompt turns from [*]: to [N]:.
// * long tasks: every PerformanceObserver 'longtask' entry (start in ms since the epoch,
//   duration in ms).
// window.__bench.stop(id) ends the watch and returns everything recorded.
(() => {
  if (window.__bench) { return; }
  const MARKER = /\bw(\d+)\b/g;
  const TAIL_CHARS = 3000;
  const watches = new Map();
  let seq = 0;

  // The last `limit` characters (at least) of root's text, walking text nodes backwards.
  const tailText = (root, limit) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const parts = [];
    let size = 0;
    for (let node = walker.lastChild(); node && size < limit; node = walker.previousNode()) {
      parts.push(node.data);
      size += node.data.length;
    }
    return parts.reverse().join('');
  };

  const lastOf = (root, selector) => {
    const all = root.querySelectorAll(selector);
    return all.length ? all[all.length - 1] : null;
  };

  window.__bench = {
    start(cell) {
      const id = ++seq;
      const area = cell.querySelector('.jp-Cell-outputArea') || cell;
      const prompt = () => {
        const p = cell.querySelector('.jp-InputArea-prompt');
        return p ? p.textContent.trim() : '';
      };
      const st = {
        events: [], max: -1, checks: 0, frames: 0, longtasks: [],
        sawRunning: false, runningAt: null, idleAt: null, liveSeen: false,
        t0: Date.now(),
      };
      let pending = 0;
      const check = () => {
        pending = 0;
        st.frames += 1;
        if (!st.sawRunning) { return; }  // outputs of an earlier run
        const now = Date.now();
        let body = lastOf(area, '.ipy-stream-body:not(.ipy-stream-saved .ipy-stream-body)');
        let where = 'live';
        if (body) { st.liveSeen = true; } else {
          body = lastOf(area, '.ipy-stream-saved .ipy-stream-body');
          where = 'final';
        }
        if (!body) { return; }
        st.checks += 1;
        const tail = tailText(body, TAIL_CHARS);
        let max = -1;
        MARKER.lastIndex = 0;
        for (let m = MARKER.exec(tail); m; m = MARKER.exec(tail)) {
          const n = Number(m[1]);
          if (n > max) { max = n; }
        }
        if (max > st.max) {
          st.max = max;
          st.events.push([now, max, where]);
        }
      };
      const onMutation = () => {
        const p = prompt();
        if (p === '[*]:') {
          if (!st.sawRunning) { st.sawRunning = true; st.runningAt = Date.now(); }
        } else if (st.sawRunning && st.idleAt === null && /^\[\d+\]:$/.test(p)) {
          st.idleAt = Date.now();
        }
        if (!pending) { pending = requestAnimationFrame(check); }
      };
      st.observer = new MutationObserver(onMutation);
      st.observer.observe(cell, {subtree: true, childList: true, characterData: true});
      try {
        st.longObserver = new PerformanceObserver((list) => {
          for (const e of list.getEntries()) {
            st.longtasks.push([performance.timeOrigin + e.startTime, e.duration]);
          }
        });
        st.longObserver.observe({type: 'longtask'});
      } catch (err) {
        st.longObserver = null;
        st.longtaskError = String(err);
      }
      st.cancel = () => { if (pending) { cancelAnimationFrame(pending); pending = 0; } };
      watches.set(id, st);
      return id;
    },
    state(id) {
      const st = watches.get(id);
      if (!st) { return null; }
      return {max: st.max, idleAt: st.idleAt, sawRunning: st.sawRunning, events: st.events.length,
              liveSeen: st.liveSeen};
    },
    stop(id) {
      const st = watches.get(id);
      if (!st) { return null; }
      st.observer.disconnect();
      if (st.longObserver) {
        for (const e of st.longObserver.takeRecords()) {
          st.longtasks.push([performance.timeOrigin + e.startTime, e.duration]);
        }
        st.longObserver.disconnect();
      }
      st.cancel();
      watches.delete(id);
      return {
        events: st.events, max: st.max, checks: st.checks, frames: st.frames,
        longtasks: st.longtasks, longtaskError: st.longtaskError || null,
        runningAt: st.runningAt, idleAt: st.idleAt, liveSeen: st.liveSeen, t0: st.t0,
      };
    },
  };
})();
