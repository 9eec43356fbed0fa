"""In-page helpers (``window.__ipyTest``), installed into every page of the test browser
context: find a notebook panel and its kernel, watch a cell's run, record every DOM state of
an output, and watch outputs for anything that could run script."""

from __future__ import annotations

INIT_SCRIPT = r"""
(() => {
  if (window.__ipyTest) { return; }
  const runs = new Map();
  const recordings = new Map();
  let seq = 0;
  const promptText = (cell) => {
    const p = cell.querySelector('.jp-InputArea-prompt');
    return p ? p.textContent.trim() : null;
  };
  const streamStatus = (el) => {
    if (!el) { return null; }
    if (el.dataset && el.dataset.status) { return el.dataset.status; }
    const m = /(?:^|\s)ipy-stream--([a-z]+)(?:\s|$)/.exec(el.className || '');
    return m ? m[1] : null;
  };
  // Call fn now and on every DOM mutation below root; returns stop(), which calls fn once more.
  const observeAll = (root, fn) => {
    const obs = new MutationObserver(fn);
    obs.observe(root, {subtree: true, childList: true, characterData: true, attributes: true});
    fn();
    return () => { obs.disconnect(); fn(); };
  };
  const readValue = (root, selector, attribute, nth) => {
    let el = root;
    if (selector) {
      el = nth === null || nth === undefined ? root.querySelector(selector)
        : root.querySelectorAll(selector)[nth];
    }
    if (!el) { return null; }
    if (attribute === ':status') { return streamStatus(el); }
    if (attribute) { return el.getAttribute(attribute); }
    return el.innerText;
  };
  // Elements and attributes that would run script, load something or navigate.
  const UNSAFE_TAGS = new Set(['SCRIPT', 'IFRAME', 'FRAME', 'OBJECT', 'EMBED', 'IMG', 'SVG',
    'svg', 'MATH', 'math', 'VIDEO', 'AUDIO', 'SOURCE', 'LINK', 'META', 'BASE', 'FORM']);
  const unsafeIn = (root) => {
    const found = [];
    for (const el of root.querySelectorAll('*')) {
      // Only what outputs show: JupyterLab's own controls around them (icons are SVG)
      // are not output.
      if (!el.closest('.jp-OutputArea-output')) { continue; }
      const why = [];
      // MathJax writes MathML for screen readers inside its own container.
      if (UNSAFE_TAGS.has(el.tagName) && !el.closest('mjx-container')) { why.push('tag'); }
      for (const a of Array.from(el.attributes)) {
        const name = a.name.toLowerCase();
        const value = (a.value || '').replace(/[\s\u0000-\u001f]+/g, '').toLowerCase();
        if (name.startsWith('on')) { why.push(name); }
        if (['href', 'src', 'action', 'formaction', 'xlink:href', 'data'].includes(name)
            && /^(javascript|vbscript|data):/.test(value)) { why.push(name + '=' + value); }
      }
      if (why.length) { found.push(why.join(',') + ': ' + el.outerHTML.slice(0, 200)); }
    }
    return found;
  };
  window.__ipyTest = {
    panelFor(path) {
      const app = window.jupyterapp;
      if (!app || !app.shell) { return null; }
      for (const w of app.shell.widgets('main')) {
        if (w && w.context && w.context.path === path && w.content && w.sessionContext) {
          return w;
        }
      }
      return null;
    },
    kernelState(path) {
      const panel = window.__ipyTest.panelFor(path);
      if (!panel) { return {panel: false}; }
      const sc = panel.sessionContext;
      const kernel = sc && sc.session ? sc.session.kernel : null;
      const ind = panel.node.querySelector('.jp-Notebook-ExecutionIndicator');
      return {
        panel: true,
        id: panel.id,
        ready: panel.context.isReady,
        cells: panel.content.widgets.length,
        kernel: kernel ? kernel.status : null,
        connection: kernel ? kernel.connectionStatus : null,
        indicator: ind ? ind.getAttribute('data-status') : null,
        dirty: panel.context.model.dirty,
      };
    },
    // Watch one cell's input prompt: a run is done once "[*]:" was seen and then "[N]:".
    watchRun(cell) {
      const id = ++seq;
      const st = {sawRunning: false, done: false, prompt: promptText(cell)};
      const check = () => {
        const t = promptText(cell);
        st.prompt = t;
        if (t === '[*]:') { st.sawRunning = true; }
        else if (st.sawRunning && /^\[\d+\]:$/.test(t || '')) { st.done = true; }
      };
      const obs = new MutationObserver(check);
      obs.observe(cell, {subtree: true, childList: true, characterData: true});
      st.stop = () => obs.disconnect();
      runs.set(id, st);
      return id;
    },
    runState(id) {
      const st = runs.get(id);
      return st ? {sawRunning: st.sawRunning, done: st.done, prompt: st.prompt} : null;
    },
    forgetRun(id) {
      const st = runs.get(id);
      if (st) { st.stop(); runs.delete(id); }
    },
    streamStatus,
    unsafeIn,
    // Watch root (subtree) and keep every unsafe element or attribute that was ever in it,
    // even for one frame: see unsafeIn.
    watchUnsafe(root) {
      const id = ++seq;
      const rec = {seen: new Set(), checks: 0};
      const check = () => {
        rec.checks += 1;
        for (const f of unsafeIn(root)) { rec.seen.add(f); }
      };
      rec.stop = observeAll(root, check);
      recordings.set(id, rec);
      return id;
    },
    unsafeSeen(id, stop) {
      const rec = recordings.get(id);
      if (!rec) { return null; }
      if (stop) { rec.stop(); recordings.delete(id); }
      return {found: Array.from(rec.seen), checks: rec.checks};
    },
    // Record every distinct successive value of root.querySelector(selector) (innerText, or
    // an attribute), on every DOM mutation below root, with timestamps (ms, page clock).
    startRecording(root, selector, attribute, nth) {
      const id = ++seq;
      const rec = {samples: [], last: undefined};
      const t0 = performance.now();
      const sample = () => {
        const v = readValue(root, selector, attribute, nth);
        if (v !== rec.last) {
          rec.last = v;
          rec.samples.push({t: performance.now() - t0, value: v});
        }
      };
      rec.stop = observeAll(root, sample);
      recordings.set(id, rec);
      return id;
    },
    stopRecording(id) {
      const rec = recordings.get(id);
      if (!rec) { return null; }
      rec.stop();
      recordings.delete(id);
      return rec.samples;
    },
    peekRecording(id) {
      const rec = recordings.get(id);
      return rec ? rec.samples.slice() : null;
    },
  };
})();
"""
