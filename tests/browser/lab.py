"""Drive a real JupyterLab (4.x) in headless Chromium through Playwright.

Two layers:

* :class:`LabServer` starts and stops ``python -m jupyter lab`` on 127.0.0.1 with throwaway
  config/data/runtime/settings/workspace directories and talks to its REST API.
* :class:`Lab` (one per test) writes notebooks into the server's root directory and opens
  them in a fresh workspace; :class:`NotebookPage` is the handle on one opened notebook:
  run cells, wait for them, read outputs, record how an output changes over time, save,
  interrupt, shut the kernel down, reopen, take screenshots.

Cell indices are 0-based. Every wait is a wait-for-condition bounded by a timeout (seconds);
nothing sleeps for a fixed time.

JupyterLab is started with ``--LabApp.expose_app_in_browser=True`` so ``window.jupyterapp``
exists; the helpers use it only to find the notebook panel and its kernel connection, the
rest goes through the DOM, the keyboard and the toolbar like a person would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from playwright.sync_api import Error as PlaywrightError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from playwright.sync_api import BrowserContext, Locator, Page

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = PROJECT_ROOT / "tests" / "artifacts"
TOKEN = "ipy-stream-browser-tests"
KERNEL_NAME = "python3"
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
PROVIDER_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
FAKE_KEY = "sk-browser-test-5f1d2c3b4a59687766554433"
"""The OPENAI_API_KEY of the lab server's kernels (conftest.py); it must never be shown,
saved or sent anywhere but the test model server."""

# --- selectors that proved robust in JupyterLab 4.6 -------------------------------------------
SEL_CELL = ".jp-Notebook .jp-Cell"  # every cell (code, markdown, raw), in order
SEL_CODE_CELL = "jp-CodeCell"  # class on code cells
SEL_INPUT_PROMPT = ".jp-InputArea-prompt"  # "[ ]:", "[*]:", "[3]:"
SEL_OUTPUT_AREA = ".jp-Cell-outputArea"  # the whole output area of one cell
SEL_OUTPUT = ".jp-OutputArea-output"  # one output (stream, result, display, error)
SEL_SAVED_OUTPUT = ".jp-RenderedHTML"  # the text/html output a finished run leaves
SEL_EXEC_INDICATOR = ".jp-Notebook-ExecutionIndicator"  # has data-status="idle"|"busy"|...
SEL_INTERRUPT = '.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]'
SEL_DIALOG = ".jp-Dialog"
SEL_WIDGET = ".jupyter-widgets"  # root of any rendered ipywidget view
# product DOM contract (ipy_stream's live widget)
SEL_STREAM = ".ipy-stream"  # root, with data-status streaming|done|failed|interrupted
SEL_STREAM_BODY = ".ipy-stream-body"
SEL_STREAM_FOOTER = ".ipy-stream-footer"
SEL_STREAM_GRID = ".ipy-stream-grid"  # side-by-side panes (-m a,b)
SEL_STREAM_STOP = ".ipy-stream-stop"  # Stop button of background runs (--bg)
STREAM_STATUSES = ("streaming", "done", "failed", "interrupted")
STATUS = ":status"
"""Pseudo-attribute for :meth:`NotebookPage.record`: the live view's status, read from
``data-status`` or, failing that, from an ``ipy-stream--<status>`` class (the first
ipywidgets view had only the class)."""

_PROMPT_DONE = re.compile(r"^\[\d+\]:$")

# In-page helpers, installed into every page of the test browser context.
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------


@dataclass
class LabServer:
    """A running JupyterLab server (see :meth:`start`)."""

    base_url: str
    token: str
    root_dir: Path
    home: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls,
        home: Path,
        *,
        log_path: Path,
        extra_env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> LabServer:
        """Start ``python -m jupyter lab`` with everything throwaway under ``home``.

        ``extra_env`` is added to the server's (and so its kernels') environment after the
        provider variables (``OPENAI_*``) were removed: that is how a test model server
        and a fake key reach the notebooks, which then never hold a key themselves.

        Waits until ``/api/status`` answers and the kernelspec points at this interpreter.
        """
        root = home / "root"
        cfg, data, runtime = home / "config", home / "data", home / "runtime"
        settings, workspaces, ipython = home / "lab-settings", home / "workspaces", home / "ipython"
        for d in (root, cfg, data, runtime, settings, workspaces, ipython):
            d.mkdir(parents=True, exist_ok=True)

        # Kernel "python3" of this very interpreter (the venv); JUPYTER_DATA_DIR comes first
        # in the data path (JUPYTER_PREFER_ENV_PATH=0), so this one shadows the venv's
        # share/jupyter/kernels/python3.
        _write_json(
            data / "kernels" / KERNEL_NAME / "kernel.json",
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "interrupt_mode": "signal",
                "metadata": {"debugger": True},
            },
        )
        # User settings: no news/update toast, no autosave (saving is explicit in tests),
        # every cell attached to the DOM (no windowing), so off-screen cells stay readable.
        _write_json(
            settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
            {"fetchNews": "false", "checkForUpdates": False},
        )
        _write_json(
            settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings",
            {"autosave": False},
        )
        _write_json(
            settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
            {"windowingMode": "none"},
        )

        port = _free_port()
        _write_json(
            cfg / "jupyter_server_config.json",
            {
                "ServerApp": {
                    "ip": "127.0.0.1",
                    "port": port,
                    "port_retries": 0,
                    "open_browser": False,
                    "root_dir": str(root),
                    "allow_root": True,
                    "terminals_enabled": False,
                },
                "IdentityProvider": {"token": TOKEN},
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    "extension_manager": "readonly",
                    "expose_app_in_browser": True,
                    "user_settings_dir": str(settings),
                    "workspaces_dir": str(workspaces),
                },
            },
        )

        env = dict(os.environ)
        # nothing reaches a real provider or the developer's own data by accident (the same
        # rule as tests/conftest.py's _isolated_environment, for the kernels of this server)
        for var in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", *PROVIDER_ENV):
            env.pop(var, None)
        env.update(
            {
                # in a venv jupyter_core puts the env's dirs before the user dirs; we want our
                # throwaway user dirs first (the venv's share/jupyter stays on the path)
                "JUPYTER_PREFER_ENV_PATH": "0",
                "JUPYTER_CONFIG_DIR": str(cfg),
                "JUPYTER_DATA_DIR": str(data),
                "JUPYTER_RUNTIME_DIR": str(runtime),
                "JUPYTERLAB_SETTINGS_DIR": str(settings),
                "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
                "JUPYTER_PLATFORM_DIRS": "0",
                "IPYTHONDIR": str(ipython),
                "XDG_DATA_HOME": str(home / "xdg-data"),
                # the kernel imports the working tree's ipy_stream, whatever is installed
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra_env or {})
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("wb")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "lab"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kernels die with it
            )
        finally:
            log.close()
        server = cls(
            base_url=f"http://127.0.0.1:{port}",
            token=TOKEN,
            root_dir=root,
            home=home,
            log_path=log_path,
            process=proc,
        )
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    # -- lifecycle -----------------------------------------------------------------------------

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self.api("GET", "/api/status", timeout=2)
                break
            except (OSError, urllib.error.URLError) as exc:
                last_error = exc
                time.sleep(0.1)
        else:
            raise TimeoutError(
                f"jupyter lab not ready after {timeout}s ({last_error}):\n{self.log_tail()}"
            )
        spec = self.api("GET", "/api/kernelspecs")["kernelspecs"][KERNEL_NAME]["spec"]
        if spec["argv"][0] != sys.executable:
            raise RuntimeError(f"kernelspec {KERNEL_NAME} is not this interpreter: {spec['argv']}")
        names = {e.get("name") for e in self.page_config().get("federated_extensions", [])}
        if WIDGET_EXTENSION not in names:
            raise RuntimeError(
                f"JupyterLab does not load {WIDGET_EXTENSION} (federated extensions: {names}); "
                "is ipywidgets/jupyterlab_widgets installed in this environment?"
            )

    def page_config(self) -> dict[str, Any]:
        """The ``jupyter-config-data`` JSON that /lab serves to the browser."""
        req = urllib.request.Request(self.url("/lab"))
        with urllib.request.urlopen(req, timeout=10) as resp:
            html = resp.read().decode("utf-8")
        m = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
        )
        if not m:
            raise RuntimeError("no jupyter-config-data in /lab")
        return dict(json.loads(m.group(1)))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (jupyter server shuts its kernels down), then SIGKILL its process group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # leftovers of the group we started
        if self.process.poll() is None:
            self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- REST ----------------------------------------------------------------------------------

    def url(self, path: str, **query: str) -> str:
        """Absolute URL for ``path`` with the token (and ``query``) appended."""
        q = urllib.parse.urlencode({**query, "token": self.token})
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}{q}"

    def api(self, method: str, path: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def kernels(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/kernels"))

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/sessions"))

    def shutdown_all_kernels(self) -> None:
        for s in self.sessions():
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/sessions/{s['id']}")
        for k in self.kernels():
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/kernels/{k['id']}")

    def last_modified(self, path: str) -> str | None:
        """The contents API's ``last_modified`` of ``path`` (relative to root), or None."""
        try:
            model = self.api("GET", f"/api/contents/{urllib.parse.quote(path)}?content=0")
        except urllib.error.HTTPError:
            return None
        return str(model["last_modified"])


# ---------------------------------------------------------------------------------------------
# notebooks on disk
# ---------------------------------------------------------------------------------------------


def make_notebook(cells: Sequence[str | nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """A v4 notebook for the ``python3`` kernel (without kernelspec metadata JupyterLab asks
    for a kernel in a dialog). str cells become code cells; pass other cells ready-made, e.g.
    ``nbformat.v4.new_markdown_cell("# title")``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# ---------------------------------------------------------------------------------------------
# browser side
# ---------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One observed state: ``t`` seconds after sampling started, ``value`` (None = absent)."""

    t: float
    value: str | None


@dataclass
class Recording:
    """In-page recording of a value under one cell; filled when the ``with`` block exits."""

    samples: list[Sample] = field(default_factory=list)
    _peek: Callable[[], list[Sample]] | None = field(default=None, repr=False)

    def peek(self) -> list[Sample]:
        """The samples so far, while the ``with`` block still runs."""
        return self._peek() if self._peek else list(self.samples)

    @property
    def values(self) -> list[str]:
        """Distinct successive non-absent values, in order."""
        return distinct(self.samples)

    def distinct(self, normalize: Callable[[str], str] | None = str.strip) -> list[str]:
        """Distinct successive values after ``normalize`` (default: strip), empty ones and
        absent ones dropped."""
        return distinct(self.samples, normalize)


def distinct(samples: Sequence[Sample], normalize: Callable[[str], str] | None = None) -> list[str]:
    """The distinct successive values of ``samples`` (None dropped), each passed through
    ``normalize`` first if given (then empty results are dropped too).

    Text can reach the DOM in more pieces than the kernel printed (``print(i)`` may arrive
    as ``"1"`` then ``"\\n"``), so compare normalized values."""
    out: list[str] = []
    for s in samples:
        if s.value is None:
            continue
        v = normalize(s.value) if normalize else s.value
        if normalize and not v:
            continue
        if not out or out[-1] != v:
            out.append(v)
    return out


def sample_text(
    locator: Locator,
    *,
    until: Callable[[], bool] | None = None,
    timeout: float = 30.0,
    interval: float = 0.03,
    attribute: str | None = None,
) -> list[Sample]:
    """Poll ``locator`` (its ``inner_text()`` or ``attribute``) every ``interval`` seconds and
    return the distinct successive states, until ``until()`` is true (checked after each poll;
    one last sample is taken then) or ``timeout`` elapses (TimeoutError).  ``value`` is None
    while the locator matches nothing.  With ``until=None`` it samples for ``timeout`` seconds
    and returns without error.

    Python-side polling can miss states shorter than ``interval``; use
    :meth:`NotebookPage.record` to see every DOM state.
    """
    t0 = time.monotonic()
    samples: list[Sample] = []

    def poll() -> None:
        try:
            if locator.count() == 0:
                value = None
            elif attribute is not None:
                value = locator.first.get_attribute(attribute, timeout=1000)
            else:
                value = locator.first.inner_text(timeout=1000)
        except PlaywrightError:  # element replaced between count() and read: next round
            return
        if not samples or samples[-1].value != value:
            samples.append(Sample(time.monotonic() - t0, value))

    while True:
        poll()
        if until is not None and until():
            poll()
            return samples
        if time.monotonic() - t0 > timeout:
            if until is None:
                return samples
            seen = [s.value for s in samples]
            raise TimeoutError(f"sample_text: condition not met after {timeout}s; saw {seen!r}")
        locator.page.wait_for_timeout(interval * 1000)


class Lab:
    """Per-test entry point: a server, a browser context, a private folder under the root."""

    def __init__(self, server: LabServer, context: BrowserContext, page: Page, folder: str):
        self.server = server
        self.context = context
        self.page = page
        self.folder = folder  # relative to server.root_dir, unique per test
        (server.root_dir / folder).mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> str:
        """Server-relative path of ``name`` inside this test's folder."""
        return f"{self.folder}/{name}"

    def write_notebook(self, name: str, cells: Sequence[str | nbformat.NotebookNode]) -> str:
        """Write ``name`` (``.ipynb`` added if missing) and return its server-relative path."""
        if not name.endswith(".ipynb"):
            name += ".ipynb"
        rel = self.path(name)
        nbformat.write(make_notebook(cells), self.server.root_dir / rel)
        return rel

    def read_notebook(self, path: str) -> nbformat.NotebookNode:
        """The notebook as saved on disk."""
        return nbformat.read(self.server.root_dir / path, as_version=4)

    def open(self, path: str, *, timeout: float = 60.0) -> NotebookPage:
        """Open ``path`` in this test's page in a fresh workspace; wait for the kernel idle."""
        nb = NotebookPage(self, path)
        nb.open(timeout=timeout)
        return nb

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        out = ARTIFACTS_DIR / f"{name}.png"
        self.page.screenshot(path=str(out), full_page=full_page)
        return out


class NotebookPage:
    """One notebook opened in JupyterLab (see :meth:`Lab.open`)."""

    def __init__(self, lab: Lab, path: str):
        self.lab = lab
        self.path = path
        self.panel_id: str | None = None

    # -- locators ------------------------------------------------------------------------------

    @property
    def page(self) -> Page:
        return self.lab.page

    @property
    def panel(self) -> Locator:
        assert self.panel_id, "notebook not open"
        return self.page.locator(f"[id='{self.panel_id}']")

    def cells(self) -> Locator:
        return self.panel.locator(SEL_CELL)

    def cell(self, index: int) -> Locator:
        return self.cells().nth(index)

    def outputs(self, index: int) -> Locator:
        """All ``.jp-OutputArea-output`` of cell ``index`` (stream, result, display, error)."""
        return self.cell(index).locator(SEL_OUTPUT)

    def output(self, index: int, selector: str) -> Locator:
        """Elements matching ``selector`` inside cell ``index``'s output area."""
        return self.cell(index).locator(SEL_OUTPUT_AREA).locator(selector)

    # -- opening -------------------------------------------------------------------------------

    def open(self, *, timeout: float = 60.0) -> NotebookPage:
        workspace = f"t{uuid.uuid4().hex[:12]}"
        server = self.lab.server
        url = (
            f"{server.base_url}/lab/workspaces/{workspace}/tree/"
            f"{urllib.parse.quote(self.path)}?reset&token={server.token}"
        )
        self.page.goto(url, wait_until="domcontentloaded")
        try:
            self.page.wait_for_function(
                """(p) => { const s = window.__ipyTest && window.__ipyTest.kernelState(p);
                            return s && s.panel && s.ready && s.cells > 0; }""",
                arg=self.path,
                timeout=timeout * 1000,
                polling=100,
            )
        except Exception as exc:
            raise AssertionError(f"notebook {self.path} did not open: {self.describe()}") from exc
        self.panel_id = self.page.evaluate("(p) => window.__ipyTest.kernelState(p).id", self.path)
        self.wait_kernel_idle(timeout=timeout)
        return self

    def reopen(self, *, timeout: float = 60.0) -> NotebookPage:
        """Close this page (no unload prompt) and open the notebook in a new page + workspace."""
        self.page.close()
        self.lab.page = self.lab.context.new_page()
        self.panel_id = None
        return self.open(timeout=timeout)

    # -- kernel --------------------------------------------------------------------------------

    def kernel_state(self) -> dict[str, Any]:
        """``{kernel, connection, indicator, dirty, cells, ...}`` as the page sees it."""
        return dict(self.page.evaluate("(p) => window.__ipyTest.kernelState(p)", self.path))

    def wait_kernel_idle(self, *, timeout: float = 60.0) -> None:
        """Kernel connected and ``idle`` and the toolbar execution indicator ``idle``."""
        self._wait_kernel(
            "s.kernel === 'idle' && s.connection === 'connected' && s.indicator === 'idle'",
            "idle",
            timeout,
        )

    def wait_kernel_busy(self, *, timeout: float = 30.0) -> None:
        self._wait_kernel("s.kernel === 'busy'", "busy", timeout)

    def wait_no_kernel(self, *, timeout: float = 30.0) -> None:
        """No kernel attached to the panel and none running on the server for this path."""
        self._wait_kernel("s.kernel === null", "no kernel", timeout)
        deadline = time.monotonic() + timeout
        while any(s.get("path") == self.path for s in self.lab.server.sessions()):
            if time.monotonic() > deadline:
                raise AssertionError(f"server still has a session for {self.path}")
            self.page.wait_for_timeout(100)

    def _wait_kernel(self, condition: str, what: str, timeout: float) -> None:
        try:
            self.page.wait_for_function(
                f"(p) => {{ const s = window.__ipyTest.kernelState(p); return s.panel && "
                f"({condition}); }}",
                arg=self.path,
                timeout=timeout * 1000,
                polling=50,
            )
        except Exception as exc:
            raise AssertionError(f"kernel not {what} after {timeout}s: {self.describe()}") from exc

    def interrupt(
        self, index: int | None = None, *, timeout: float = 20.0, retry_every: float = 2.0
    ) -> None:
        """Click the toolbar's stop button; if ``index`` is given wait until that cell's run is
        over, clicking again every ``retry_every`` s (a SIGINT that lands before the cell's
        code really runs is lost otherwise)."""
        button = self.page.locator(f"[id='{self.panel_id}'] {SEL_INTERRUPT}")
        if index is None:
            button.click()
            return
        prompt = self.cell(index).locator(SEL_INPUT_PROMPT).first
        try:
            self.page.wait_for_function(
                "(el) => el.textContent.trim() === '[*]:'",
                arg=prompt.element_handle(),
                timeout=5000,
                polling=50,
            )
        except Exception as exc:
            raise AssertionError(
                f"interrupt: cell {index} is not running (prompt {self.prompt(index)!r})"
            ) from exc
        button.click()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.wait_cell_done(index, timeout=min(retry_every, timeout))
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                button.click()

    def shutdown_kernel(self, *, timeout: float = 30.0) -> None:
        """Kernel menu > Shut Down Kernel; wait until the server has no session for it."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
        self.page.locator('.lm-Menu-item[data-command="kernelmenu:shutdown"]').click()
        self.wait_no_kernel(timeout=timeout)

    # -- running cells -------------------------------------------------------------------------

    def select_cell(self, index: int) -> None:
        """Click cell ``index``'s input prompt: it becomes the only selected, active cell."""
        cell = self.cell(index)
        cell.locator(SEL_INPUT_PROMPT).first.click()
        cell.and_(self.page.locator(".jp-mod-active")).wait_for(timeout=5000)

    def is_code_cell(self, index: int) -> bool:
        return SEL_CODE_CELL in (self.cell(index).get_attribute("class") or "").split()

    def start_cell(self, index: int) -> int | None:
        """Select cell ``index`` and press Ctrl+Enter (run, stay); return a watch id for
        :meth:`wait_run_done` (None for non-code cells)."""
        self.select_cell(index)
        watch = self._watch(index) if self.is_code_cell(index) else None
        self.page.keyboard.press("Control+Enter")
        return watch

    def run_cell(self, index: int, *, timeout: float = 60.0) -> None:
        """Run cell ``index`` and wait until its prompt went ``[*]`` and then ``[N]``."""
        watch = self.start_cell(index)
        if watch is not None:
            self.wait_run_done(watch, index, timeout=timeout)

    def run_all(self, *, timeout: float = 120.0) -> None:
        """Run all cells (the ``notebook:run-all-cells`` command, as Run > Run All Cells) and
        wait until every code cell finished."""
        watches = {i: self._watch(i) for i in range(self.cells().count()) if self.is_code_cell(i)}
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline = time.monotonic() + timeout
        for i, w in watches.items():
            self.wait_run_done(w, i, timeout=max(0.1, deadline - time.monotonic()))

    def _watch(self, index: int) -> int:
        return int(self.cell(index).evaluate("(el) => window.__ipyTest.watchRun(el)"))

    def run_finished(self, watch: int) -> bool:
        """Non-blocking: has the run watched by ``watch`` (from :meth:`start_cell`) ended?"""
        return bool(
            self.page.evaluate(
                "(id) => { const s = window.__ipyTest.runState(id); return !!(s && s.done); }",
                watch,
            )
        )

    def wait_run_done(self, watch: int, index: int, *, timeout: float = 60.0) -> None:
        """Wait for the run started by :meth:`start_cell` (``watch``) of cell ``index``."""
        try:
            self.page.wait_for_function(
                "(id) => { const s = window.__ipyTest.runState(id); return s && s.done; }",
                arg=watch,
                timeout=timeout * 1000,
                polling=50,
            )
        except Exception as exc:
            state = self.page.evaluate("(id) => window.__ipyTest.runState(id)", watch)
            raise AssertionError(
                f"cell {index} not finished after {timeout}s (watch {state}): {self.describe()}"
            ) from exc
        self.page.evaluate("(id) => window.__ipyTest.forgetRun(id)", watch)

    def wait_cell_done(self, index: int, *, timeout: float = 60.0) -> None:
        """Cell ``index``'s prompt shows ``[N]:`` (not ``[*]:``/``[ ]:``) — for cells already
        started; prefer :meth:`run_cell` / :meth:`wait_run_done` which cannot see a stale
        count."""
        prompt = self.cell(index).locator(SEL_INPUT_PROMPT).first
        deadline = time.monotonic() + timeout
        while not _PROMPT_DONE.match(prompt.inner_text().strip()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"cell {index} prompt {prompt.inner_text()!r} after {timeout}s"
                )
            self.page.wait_for_timeout(50)

    def prompt(self, index: int) -> str:
        """The input prompt text of cell ``index``: ``[ ]:``, ``[*]:`` or ``[N]:``."""
        return self.cell(index).locator(SEL_INPUT_PROMPT).first.inner_text().strip()

    # -- outputs -------------------------------------------------------------------------------

    def output_text(self, index: int) -> str:
        """inner_text of every output of cell ``index``, joined by newlines ("" if none)."""
        return "\n".join(self.outputs(index).all_inner_texts())

    def wait_output_text(
        self, index: int, expected: str | re.Pattern[str], *, timeout: float = 30.0
    ) -> str:
        """Wait until :meth:`output_text` contains ``expected`` (or matches the pattern)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.output_text(index)
            ok = expected.search(text) if isinstance(expected, re.Pattern) else expected in text
            if ok:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"cell {index} output lacks {expected!r} after {timeout}s; it is {text!r}"
                )
            self.page.wait_for_timeout(50)

    @contextlib.contextmanager
    def record(
        self,
        index: int,
        selector: str | None = SEL_OUTPUT_AREA,
        *,
        attribute: str | None = None,
        nth: int | None = None,
    ) -> Iterator[Recording]:
        """Record, in the page, every distinct successive value of ``selector`` under cell
        ``index`` (``innerText``, or ``attribute``; None while absent) on every DOM mutation,
        for the duration of the ``with`` block. ``nth`` picks the nth match (0-based) instead
        of the first; ``attribute=STATUS`` records the live view's status::

            with nb.record(0, ".jp-OutputArea-output") as rec:
                nb.run_cell(0)
            assert len(rec.values) > 3

        Nothing is lost to polling: even states that lasted one frame are there.
        """
        rec_id = self.cell(index).evaluate(
            "(el, a) => window.__ipyTest.startRecording(el, a[0], a[1], a[2])",
            [selector, attribute, nth],
        )
        page = self.page

        def fetch(fn: str) -> list[Sample]:
            raw = page.evaluate(f"(id) => window.__ipyTest.{fn}(id)", rec_id) or []
            return [Sample(s["t"] / 1000.0, s["value"]) for s in raw]

        rec = Recording(_peek=lambda: fetch("peekRecording"))
        try:
            yield rec
        finally:
            rec.samples = fetch("stopRecording")
            rec._peek = None

    # -- ipy_stream's live widget (DOM contract) -------------------------------------------------

    def stream_widget(self, index: int) -> Locator:
        """The live ``.ipy-stream`` widget root in cell ``index`` (while streaming)."""
        return self.output(index, SEL_STREAM)

    def stream_status(self, index: int, nth: int = 0) -> str | None:
        """Status of the (``nth``) live view in cell ``index``, or None if there is none (any
        more): its ``data-status``, or the ``X`` of an ``ipy-stream--X`` class."""
        views = self.stream_widget(index)
        if views.count() <= nth:
            return None
        status = views.nth(nth).evaluate("(el) => window.__ipyTest.streamStatus(el)")
        return None if status is None else str(status)

    def wait_stream_status(self, index: int, status: str, *, timeout: float = 30.0) -> None:
        """Wait until cell ``index`` holds a live view with that status (``data-status`` or an
        ``ipy-stream--<status>`` class)."""
        assert status in STREAM_STATUSES, status
        selector = f'{SEL_STREAM}[data-status="{status}"], {SEL_STREAM}.ipy-stream--{status}'
        self.output(index, selector).first.wait_for(state="attached", timeout=timeout * 1000)

    def watch_unsafe(self, index: int) -> int:
        """Start watching cell ``index``'s output area for anything that could run script,
        load a resource or navigate (``script``, ``iframe``, ``img``, ``svg``..., ``on*``
        attributes, ``javascript:``/``data:`` URLs), at every DOM mutation; see
        :meth:`unsafe_seen`."""
        area = self.cell(index).locator(SEL_OUTPUT_AREA).first
        return int(area.evaluate("(el) => window.__ipyTest.watchUnsafe(el)"))

    def unsafe_seen(self, watch: int, *, stop: bool = False) -> list[str]:
        """What the :meth:`watch_unsafe` watch saw so far (``stop`` ends it)."""
        result = self.page.evaluate("(a) => window.__ipyTest.unsafeSeen(a[0], a[1])", [watch, stop])
        assert result is not None, f"no unsafe-watch {watch}"
        return [str(f) for f in result["found"]]

    def unsafe_now(self, index: int) -> list[str]:
        """Anything unsafe in cell ``index``'s output area right now (see watch_unsafe)."""
        area = self.cell(index).locator(SEL_OUTPUT_AREA).first
        return [str(f) for f in area.evaluate("(el) => window.__ipyTest.unsafeIn(el)")]

    def final_output(self, index: int) -> Locator:
        """The ``text/html`` output that replaces the widget at the end."""
        return self.output(index, SEL_SAVED_OUTPUT)

    def wait_final_output(
        self, index: int, pattern: re.Pattern[str] | None = None, *, timeout: float = 30.0
    ) -> str:
        """Wait until cell ``index`` holds no live view any more and its (first) final
        output is rendered (JupyterLab attaches the element before it renders the HTML into
        it): non-empty, and matching ``pattern`` if given. Its inner text."""
        final = self.final_output(index).first
        deadline = time.monotonic() + timeout
        while True:
            text = final.inner_text() if final.count() else ""
            done = bool(text.strip()) and not self.stream_widget(index).count()
            if done and (pattern is None or pattern.search(text)):
                return text
            if time.monotonic() > deadline:
                matching = f" matching {pattern.pattern!r}" if pattern else ""
                raise AssertionError(
                    f"cell {index}: no final output{matching} after {timeout}s; "
                    f"outputs: {self.output_text(index)!r}"
                )
            self.page.wait_for_timeout(50)

    # -- saving --------------------------------------------------------------------------------

    def save(self, *, timeout: float = 30.0) -> None:
        """Control+S, then wait until the file changed on the server and the tab is clean."""
        before = self.lab.server.last_modified(self.path)
        self.page.keyboard.press("Control+s")  # a document-wide shortcut: no focus needed
        deadline = time.monotonic() + timeout
        while True:
            state = self.kernel_state()
            if not state["dirty"] and self.lab.server.last_modified(self.path) != before:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.path} not saved after {timeout}s: {state}")
            self.page.wait_for_timeout(50)

    # -- diagnostics ---------------------------------------------------------------------------

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        """PNG into tests/artifacts/<name>.png (git-ignored)."""
        return self.lab.screenshot(name, full_page=full_page)

    def describe(self) -> str:
        """Kernel state and any open dialog, for error messages."""
        parts = []
        try:
            parts.append(
                repr(
                    self.page.evaluate(
                        "(p) => window.__ipyTest ? window.__ipyTest.kernelState(p) : 'no helpers'",
                        self.path,
                    )
                )
            )
            dialogs = self.page.locator(SEL_DIALOG)
            if dialogs.count():
                parts.append("dialog open: " + " | ".join(dialogs.all_inner_texts()))
        except PlaywrightError as exc:
            parts.append(f"(page not inspectable: {exc})")
        return "; ".join(parts)
