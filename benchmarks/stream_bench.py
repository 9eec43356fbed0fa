"""Benchmark ipy_stream's live view against two baselines, in JupyterLab, in Chromium.

    .venv/bin/python benchmarks/stream_bench.py           # full run, 5 to 7 minutes
    .venv/bin/python benchmarks/stream_bench.py --quick   # smoke run, under 2 minutes

Every run goes through the real ``%%stream`` magic, the real ``ChatOpenAI`` client and
real HTTP to the project's OpenAI-compatible test server (in a process of its own); only
the live view differs (``benchmarks/baselines.py`` swaps ``ipy_stream.magic.WidgetView``
inside the kernel). JupyterLab runs with throwaway directories (``tests/browser/lab.py``)
and is driven in headless Debian Chromium through Playwright. The figures are explained
in ``benchmarks/README.md``. Prints a Markdown table and writes it to
``benchmarks/results.md`` (``results-quick.md`` with ``--quick``), with the raw figures
in the ``.json`` next to it.

Exit status: 0 when every run finished, or (baselines only) was cut at its time cap;
1 when a run failed, or when ipy_stream's own view did not show a whole answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT  # noqa: E402
from tests.browser.lab import FAKE_KEY, INIT_SCRIPT, Lab, LabServer, NotebookPage  # noqa: E402
from tests.openai_server import remote_configure, remote_reset, tokenize  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from playwright.sync_api import Browser, CDPSession, Page

HERE = Path(__file__).resolve().parent
PROBE_JS = HERE / "probe.js"
VIEWS = ("ipy_stream", "throttle-50ms", "per-token")  # per-token last: it can leave a backlog
MODEL = "gpt-4o-mini"

# Cells of the benchmark notebook.
CELL_SETUP = 0
CELL_USE = {name: 1 + i for i, name in enumerate(VIEWS)}
CELL_STREAM = 1 + len(VIEWS)
CELL_OVERHEAD = CELL_STREAM + 1


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    key: str
    tokens: int
    rate: float  # tokens per second; 0 = as fast as the server can
    overhead: bool = False  # also time %%stream against the raw chain in the kernel

    @property
    def title(self) -> str:
        rate = "max rate" if self.rate == 0 else f"{self.rate:,.0f} tok/s"
        return f"({self.key}) {self.tokens:,} @ {rate}"

    @property
    def nominal(self) -> float:
        """Seconds the stream should last (a guess for rate 0)."""
        return self.tokens / self.rate if self.rate else self.tokens / 5000


FULL = (
    Scenario("a", 2_000, 100),
    Scenario("b", 20_000, 2_000),
    Scenario("c", 20_000, 5_000),
    Scenario("d", 20_000, 0, overhead=True),
)
QUICK = (
    Scenario("a", 300, 100),
    Scenario("b", 3_000, 2_000),
    Scenario("c", 3_000, 5_000),
    Scenario("d", 3_000, 0, overhead=True),
)


@dataclass(frozen=True)
class Settings:
    quick: bool
    scenarios: tuple[Scenario, ...]
    views: tuple[str, ...]
    min_cap: float  # seconds: no browser run is cut before this...
    cap_factor: float  # ...nor before cap_factor x the nominal stream time + cap_extra
    cap_extra: float
    overhead_reps: int  # for ipy_stream; the baselines get 2 (they are usually capped)
    overhead_cap: float  # seconds: a %%stream run inside the overhead cell is cut there
    overhead_settle: float  # seconds the kernel sleeps between two timed runs

    def cap(self, scenario: Scenario) -> float:
        """Time allowed to one browser run, from execute to the cell's end."""
        return max(self.min_cap, self.cap_factor * scenario.nominal + self.cap_extra)


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    figure: str  # key of Run.figures
    limit: float
    text: str


TARGETS: dict[str, tuple[Target, ...]] = {
    "a": (
        Target("latency_p50_ms", 100, "median latency ≤ 100 ms"),
        Target("ws_mb", 1, "WS ≤ 1 MB"),
        Target("longtask_ms", 200, "long tasks ≤ 200 ms"),
    ),
    "b": (
        Target("latency_p50_ms", 250, "median latency ≤ 250 ms"),
        Target("ws_mb", 3, "WS ≤ 3 MB"),
        Target("tail_s", 1, "cell ends ≤ 1 s after the stream"),
    ),
    "c": (
        Target("complete", 1, "complete"),
        Target("iopub_max_per_s", 300, "≤ 300 IOPub msgs in any second"),
        Target("kernel_bytes_ratio", 5, "kernel bytes ≤ 5x answer"),
    ),
    "d": (Target("overhead_ratio", 1.15, "overhead ≤ 1.15"),),
}


# --------------------------------------------------------------------------- the answer


_PLACEHOLDER = "wX"
_BLOCKS = (
    "## Section wX about streaming wX\n\n",
    "This paragraph wX has **bold wX text** and `code wX` with more wX words and "
    "*emphasis wX* too wX.\n\n",
    "- item wX with words wX\n- item wX and **wX** more\n- another wX item wX\n\n",
    "Another paragraph wX keeps wX the answer wX going wX.\n\n",
    "```python\nvalue = wX + 1\nprint(value, wX)\n```\n\n",
    "1. first wX step wX\n2. second wX step wX\n\n",
    "> quoted wX line wX\n\n",
)
_MARKER_TOKEN = re.compile(r"(\s*)wX")


def make_answer(tokens: int) -> tuple[str, list[int]]:
    """A Markdown-shaped answer of exactly ``tokens`` tokens (as the server splits it) in
    which a marker word ``wN`` (N = that token's index) comes at least every 4 tokens;
    returns the text and the indices of the marker tokens."""
    parts = ["wX starts the streamed answer wX.\n\n"]
    estimate = len(tokenize(parts[0]))
    i = 0
    while True:
        # a block tokenizes alone into a little more than it adds to the whole answer
        while estimate < tokens + 64:
            block = _BLOCKS[i % len(_BLOCKS)]
            parts.append(block)
            estimate += len(tokenize(block))
            i += 1
        pieces = tokenize("".join(parts))
        if len(pieces) >= tokens:
            break
        estimate = len(pieces)
    pieces = pieces[:tokens]
    markers: list[int] = []
    for index, piece in enumerate(pieces):
        match = _MARKER_TOKEN.fullmatch(piece)
        if match:
            pieces[index] = f"{match.group(1)}w{index}"
            markers.append(index)
    text = "".join(pieces)
    if tokenize(text) != pieces:
        raise AssertionError("make_answer: the answer does not tokenize back into its tokens")
    return text, markers


# --------------------------------------------------------------------------- helpers


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of ``times`` within any ``window`` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def http_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class HarnessError(RuntimeError):
    """The benchmark itself could not do what it needed (not a figure)."""


# --------------------------------------------------------------------------- model server


class ModelServer:
    """``benchmarks/model_server.py`` in a subprocess (its own GIL, like a real server)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "model_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise HarnessError("the model server did not start")
        info = json.loads(line)
        self.url: str = info["url"]
        self.base_url: str = info["base_url"]
        self.offset: float = info["offset"]  # wall = monotonic + offset, in that process

    def configure(self, **knobs: Any) -> None:
        remote_reset(self.url)
        remote_configure(self.url, timeout=30, **knobs)

    def completions(self) -> list[dict[str, Any]]:
        records = http_json(self.url + "/_control/requests", timeout=30)["requests"]
        return [r for r in records if r["path"] == "/v1/chat/completions"]

    def tokens_sent(self) -> int:
        records = self.completions()
        return int(records[-1]["tokens_sent"]) if records else 0

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# --------------------------------------------------------------------------- IOPub listener


class IOPubListener:
    """A second subscriber to the kernel's IOPub socket: when each message left the kernel
    (as received here), its size in bytes (all ZMQ frames) and its type."""

    def __init__(self, connection_file: Path) -> None:
        import zmq

        info = json.loads(connection_file.read_text(encoding="utf-8"))
        self._zmq = zmq
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.connect(f"{info['transport']}://{info['ip']}:{info['iopub_port']}")
        self.messages: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="iopub-listener", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        poller = self._zmq.Poller()
        poller.register(self._socket, self._zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            while True:
                try:
                    frames = self._socket.recv_multipart(self._zmq.NOBLOCK)
                except self._zmq.Again:
                    break
                now = time.time()
                size = sum(len(f) for f in frames)
                msg_type = "?"
                with contextlib.suppress(ValueError, IndexError, KeyError, TypeError):
                    header = frames[frames.index(b"<IDS|MSG>") + 2]
                    msg_type = json.loads(header)["msg_type"]
                self.messages.append((now, size, msg_type))

    def between(self, start: float, end: float) -> list[tuple[float, int, str]]:
        return [m for m in list(self.messages) if start <= m[0] <= end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._socket.close(0)
        self._context.term()


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    view: str
    scenario: Scenario
    status: str = "error"  # done | capped | incomplete | error
    note: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        if self.status == "error":
            return False
        return self.view != "ipy_stream" or self.status == "done"


class Bench:
    """JupyterLab + Chromium + the model server + the benchmark notebook, all cleaned up by
    :meth:`close`."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.lab_server: LabServer | None = None
        self.model: ModelServer | None = None
        self.iopub: IOPubListener | None = None
        self._pw: Any = None
        self.browser: Browser | None = None
        self.page: Page | None = None
        self.cdp: CDPSession | None = None
        self.nb: NotebookPage | None = None
        self.kernel_id = ""
        self.ws_bytes = 0
        self.ws_frames = 0
        self.describe: dict[str, Any] = {}

    # -- setting up ------------------------------------------------------------------

    def start(self) -> None:
        log("starting the model server")
        self.model = ModelServer()
        log("starting JupyterLab")
        self.lab_server = LabServer.start(
            self.workdir / "lab",
            log_path=self.workdir / "jupyter-server.log",
            extra_env={"OPENAI_BASE_URL": self.model.base_url, "OPENAI_API_KEY": FAKE_KEY},
            timeout=90,
        )
        log("starting Chromium")
        if not Path(CHROMIUM).is_file():
            raise HarnessError(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        self._open_page()
        assert self.nb is not None
        log("setting up the kernel")
        self.nb.run_cell(CELL_SETUP, timeout=120)
        self.describe = json.loads((self.workdir / "describe.json").read_text(encoding="utf-8"))
        self._connect_iopub()

    def _notebook_cells(self) -> list[str]:
        arrivals = str(self.workdir / "arrivals.json")
        setup = "\n".join(
            [
                "%load_ext ipy_stream",
                "%config StreamMagics.log_enabled = False",
                "from benchmarks import baselines as _bench_views, inkernel as _bench",
                f"_bench.describe({str(self.workdir / 'describe.json')!r})",
            ]
        )
        overhead = (
            f"_bench.overhead(get_ipython(), {str(self.workdir)!r} + '/overhead-' + "
            f"_bench_views.selected() + '.json', model={MODEL!r}, "
            f"reps={self.settings.overhead_reps} if _bench_views.selected() == 'ipy_stream' "
            f"else 2, cap={self.settings.overhead_cap}, "
            f"settle={self.settings.overhead_settle})"
        )
        return [
            setup,
            *(f"_bench_views.use({name!r}, record_to={arrivals!r})" for name in VIEWS),
            f"%%stream -m {MODEL}\nbench",
            overhead,
        ]

    def _open_page(self) -> None:
        assert self.browser is not None and self.lab_server is not None
        context = self.browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        context.add_init_script(INIT_SCRIPT)
        context.add_init_script(path=str(PROBE_JS))
        context.set_default_timeout(30_000)
        page = context.new_page()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.webSocketFrameReceived", self._on_frame)
        lab = Lab(self.lab_server, context, page, folder="bench")
        path = lab.path("bench.ipynb")
        if not (self.lab_server.root_dir / path).exists():
            lab.write_notebook("bench", self._notebook_cells())
        self.page, self.cdp = page, cdp
        self.nb = lab.open(path, timeout=90)

    def _close_page(self) -> None:
        if self.page is not None:
            with contextlib.suppress(Exception):
                self.page.context.close()
        self.page = self.cdp = self.nb = None

    def _connect_iopub(self) -> None:
        assert self.lab_server is not None and self.nb is not None
        sessions = [s for s in self.lab_server.sessions() if s.get("path") == self.nb.path]
        if not sessions:
            raise HarnessError("no Jupyter session for the benchmark notebook")
        self.kernel_id = sessions[0]["kernel"]["id"]
        connection = self.lab_server.home / "runtime" / f"kernel-{self.kernel_id}.json"
        if not connection.is_file():
            raise HarnessError(f"no connection file {connection}")
        if self.iopub is not None:
            self.iopub.close()
        self.iopub = IOPubListener(connection)

    def _on_frame(self, params: dict[str, Any]) -> None:
        response = params.get("response") or {}
        payload = response.get("payloadData") or ""
        if response.get("opcode") == 2:  # binary: base64 in the protocol
            size = len(payload) * 3 // 4 - payload[-2:].count("=")
        else:
            size = len(payload.encode("utf-8"))
        self.ws_bytes += size
        self.ws_frames += 1

    def close(self) -> None:
        self._close_page()
        if self.browser is not None:
            with contextlib.suppress(Exception):
                self.browser.close()
        if self._pw is not None:
            with contextlib.suppress(Exception):
                self._pw.stop()
        if self.iopub is not None:
            with contextlib.suppress(Exception):
                self.iopub.close()
        if self.lab_server is not None:
            with contextlib.suppress(Exception):
                self.lab_server.stop()
        if self.model is not None:
            self.model.close()

    # -- driving the notebook --------------------------------------------------------

    def pump(self, seconds: float) -> None:
        """Let Playwright deliver pending events (CDP frames) for ``seconds``."""
        assert self.page is not None
        self.page.wait_for_timeout(seconds * 1000)

    def use_view(self, view: str) -> None:
        assert self.nb is not None
        self.nb.run_cell(CELL_USE[view], timeout=60)

    def clear_stream_output(self) -> None:
        assert self.nb is not None and self.page is not None
        self.nb.select_cell(CELL_STREAM)
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-cell-output')")
        self.page.wait_for_function(
            "(el) => !el.querySelector('.jp-OutputArea-output')",
            arg=self.nb.cell(CELL_STREAM).element_handle(),
            timeout=30_000,
            polling=50,
        )

    def wait_final(self, timeout: float) -> bool:
        """Wait for the stream cell's final output (no live view left); False on timeout."""
        assert self.page is not None and self.nb is not None
        try:
            self.page.wait_for_function(
                """(el) => !el.querySelector(
                              '.ipy-stream-body:not(.ipy-stream-saved .ipy-stream-body)') &&
                          Array.from(el.querySelectorAll('.jp-RenderedHTML'))
                               .some((m) => m.textContent.trim() !== '')""",
                arg=self.nb.cell(CELL_STREAM).element_handle(),
                timeout=timeout * 1000,
                polling=100,
            )
        except Exception:  # noqa: BLE001 - a timeout is an answer here
            return False
        return True

    def interrupt_kernel(self) -> None:
        assert self.lab_server is not None
        self.lab_server.api("POST", f"/api/kernels/{self.kernel_id}/interrupt")

    def kernel_state(self) -> str:
        assert self.lab_server is not None
        return str(self.lab_server.api("GET", f"/api/kernels/{self.kernel_id}")["execution_state"])

    def recover(self) -> str:
        """After a capped run: stop the kernel's work and get back a responsive page."""
        assert self.page is not None
        self.interrupt_kernel()
        deadline = time.monotonic() + 30
        next_interrupt = time.monotonic() + 5  # one SIGINT normally does it; more would
        while self.kernel_state() != "idle" and time.monotonic() < deadline:  # hit finish()
            self.pump(0.2)
            if time.monotonic() > next_interrupt:
                next_interrupt += 5
                with contextlib.suppress(Exception):
                    self.interrupt_kernel()
        if self.kernel_state() != "idle":
            log("  the kernel does not stop: restarting it")
            assert self.lab_server is not None
            self.lab_server.api("POST", f"/api/kernels/{self.kernel_id}/restart", timeout=60)
            self._close_page()
            self._open_page()
            assert self.nb is not None
            self.nb.run_cell(CELL_SETUP, timeout=120)
            self._connect_iopub()
            return "kernel restarted"
        # The kernel is idle; the browser may still be chewing on a backlog.
        try:
            self.page.wait_for_function(
                "() => true", timeout=5_000
            )  # a responsive page answers at once
            assert self.nb is not None
            self.nb.wait_kernel_idle(timeout=60)
        except Exception:  # noqa: BLE001 - any failure: start over with a fresh page
            log("  the page is stuck: opening a fresh one")
            self._close_page()
            self._open_page()
            return "page reopened"
        return "interrupted"

    # -- one measured run ------------------------------------------------------------

    def run(self, view: str, scenario: Scenario, text: str, markers: list[int]) -> Run:
        assert self.model is not None and self.iopub is not None
        run = Run(view, scenario)
        self.model.configure(text=text, rate=scenario.rate)
        self.use_view(view)
        arrivals_file = self.workdir / "arrivals.json"
        arrivals_file.unlink(missing_ok=True)
        self.clear_stream_output()
        load_before = os.getloadavg()[0]
        obs = self._execute(run, markers)
        records = self.model.completions()
        if not records:
            raise HarnessError("the model server saw no chat completion request")
        obs.record = records[-1]
        with contextlib.suppress(OSError, ValueError):
            obs.arrivals = json.loads(arrivals_file.read_text(encoding="utf-8"))
        run.figures = {
            **latency_figures(obs),
            **kernel_figures(obs),
            **page_figures(obs),
            "load_1min": [load_before, os.getloadavg()[0]],
        }
        complete = bool(
            obs.record["completed"]
            and obs.record["tokens_sent"] == scenario.tokens
            and obs.page.get("max") == markers[-1]
            and obs.final_shown
        )
        run.figures["complete"] = 1.0 if complete else 0.0
        if obs.capped:
            run.status = "capped"
        elif complete:
            run.status = "done"
        else:
            run.status = "incomplete"
            run.note = (
                f"server completed={obs.record['completed']} sent={obs.record['tokens_sent']}, "
                f"last marker seen {obs.page.get('max')} of {markers[-1]}, "
                f"final shown={obs.final_shown}"
            )
        return run

    def _execute(self, run: Run, markers: list[int]) -> Observation:
        """Run the stream cell under the probe until it ends or its cap; what was seen."""
        assert self.model is not None and self.iopub is not None
        assert self.nb is not None and self.page is not None
        cap = self.settings.cap(run.scenario)
        probe = self.nb.cell(CELL_STREAM).evaluate("(el) => window.__bench.start(el)")
        ws0 = (self.ws_bytes, self.ws_frames)
        obs = Observation(markers=markers, offset=self.model.offset, t_exec=time.time())
        self.page.keyboard.press("Control+Enter")
        try:
            self.page.wait_for_function(
                "(id) => { const s = window.__bench.state(id); return s && s.idleAt !== null; }",
                arg=probe,
                timeout=cap * 1000,
                polling=100,
            )
        except Exception:  # noqa: BLE001 - the cap
            obs.capped = True
        if obs.capped:
            state = self.page.evaluate("(id) => window.__bench.state(id)", probe) or {}
            obs.reached = {"visible": int(state.get("max", -1)), "sent": self.model.tokens_sent()}
            log(
                f"  capped at {cap:.0f} s: marker {obs.reached['visible']} visible, "
                f"{obs.reached['sent']} tokens sent; interrupting"
            )
            run.note = self.recover()
            if self.nb is None or self.page is None:
                raise HarnessError("no page after recovery")
        else:
            obs.final_shown = self.wait_final(30)
        self.pump(0.4)  # late CDP events and IOPub messages
        t_end = time.time()
        with contextlib.suppress(Exception):  # a reopened page has no probe any more
            obs.page = self.page.evaluate("(id) => window.__bench.stop(id)", probe) or {}
        obs.ws = (self.ws_bytes - ws0[0], self.ws_frames - ws0[1])
        obs.iopub = self.iopub.between(obs.t_exec - 0.05, t_end)
        return obs

    # -- warm-up and the in-kernel overhead -------------------------------------------

    def warm_up(self, view: str) -> None:
        """One short unmeasured run: imports, the widget's front end, JIT."""
        assert self.model is not None and self.nb is not None
        text, _ = make_answer(200)
        self.model.configure(text=text, rate=0)
        self.use_view(view)
        self.nb.run_cell(CELL_STREAM, timeout=60)
        if not self.wait_final(30):
            raise HarnessError(f"warm-up of {view}: no saved output")

    def overhead(self, view: str, scenario: Scenario, text: str) -> dict[str, Any]:
        assert self.model is not None and self.nb is not None
        self.model.configure(text=text, rate=scenario.rate)
        self.use_view(view)
        out = self.workdir / f"overhead-{view}.json"
        out.unlink(missing_ok=True)
        reps = self.settings.overhead_reps if view == "ipy_stream" else 2
        cap = self.settings.overhead_cap
        # each rep: one capped %%stream run and one raw run (a few seconds), plus settling
        timeout = reps * (cap + 3 * scenario.nominal + 10 + 2 * self.settings.overhead_settle) + 60
        self.nb.run_cell(CELL_OVERHEAD, timeout=timeout)
        if not out.is_file():
            raise HarnessError(
                f"overhead of {view}: no result ({self.nb.output_text(CELL_OVERHEAD)})"
            )
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result


# --------------------------------------------------------------------------- figures


@dataclass
class Observation:
    """Everything recorded about one run, for the figures."""

    markers: list[int]
    offset: float  # the model server's time.time() - time.monotonic()
    t_exec: float  # wall time of the key press that ran the cell
    capped: bool = False
    reached: dict[str, Any] = field(default_factory=dict)
    final_shown: bool = False
    page: dict[str, Any] = field(default_factory=dict)  # what probe.js recorded
    ws: tuple[int, int] = (0, 0)  # WebSocket bytes and frames received
    iopub: list[tuple[float, int, str]] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)  # the server's request record
    arrivals: list[float] = field(default_factory=list)  # tokens reaching the view

    @property
    def sent_at(self) -> list[float]:
        return [t + self.offset for t in self.record["token_times"]]


def latency_figures(obs: Observation) -> dict[str, Any]:
    sent_at = obs.sent_at
    events = sorted((e[0] / 1000.0, int(e[1]), e[2]) for e in obs.page.get("events", []))
    latencies: list[float] = []
    client_lags: list[float] = []
    final_only = 0
    pointer = 0
    for k in obs.markers:
        if k >= len(sent_at):
            break
        while pointer < len(events) and events[pointer][1] < k:
            pointer += 1
        if pointer == len(events):
            break
        seen_at, _, where = events[pointer]
        latencies.append(seen_at - sent_at[k])
        if k < len(obs.arrivals):
            client_lags.append(obs.arrivals[k] - sent_at[k])
        final_only += where == "final"
    fig: dict[str, Any] = {
        "tokens_sent": obs.record["tokens_sent"],
        "tokens_reached_view": len(obs.arrivals),
        "markers_sent": sum(1 for k in obs.markers if k < len(sent_at)),
        "markers_visible": len(latencies),
        "markers_first_seen_in_final": final_only,
        "capped": obs.capped,
        "reached": obs.reached,
    }
    if latencies:
        fig["latency_p50_ms"] = statistics.median(latencies) * 1000
        fig["latency_p95_ms"] = percentile(latencies, 0.95) * 1000
        fig["latency_max_ms"] = max(latencies) * 1000
    if client_lags:
        fig["client_lag_p50_ms"] = statistics.median(client_lags) * 1000
        fig["client_lag_p95_ms"] = percentile(client_lags, 0.95) * 1000
    if events:
        fig["first_visible_s"] = events[0][0] - obs.t_exec
    if sent_at:
        fig["first_token_s"] = sent_at[0] - obs.t_exec
    idle_at = obs.page.get("idleAt")
    if idle_at is not None and not obs.capped and len(sent_at) >= 2:
        fig["cell_s"] = idle_at / 1000.0 - obs.t_exec
        fig["stream_s"] = sent_at[-1] - sent_at[0]
        fig["cell_over_stream"] = fig["cell_s"] / fig["stream_s"]
        fig["tail_s"] = idle_at / 1000.0 - sent_at[-1]
    return fig


def kernel_figures(obs: Observation) -> dict[str, Any]:
    iopub = obs.iopub
    types = sorted({m[2] for m in iopub})
    answer_bytes = len(obs.record["text_sent"].encode("utf-8"))
    fig: dict[str, Any] = {
        "iopub_total": len(iopub),
        "iopub_max_per_s": max_in_window([m[0] for m in iopub]),
        "iopub_types": {t: sum(1 for m in iopub if m[2] == t) for t in types},
        "iopub_bytes_by_type": {t: sum(m[1] for m in iopub if m[2] == t) for t in types},
        "answer_bytes": answer_bytes,
        "kernel_bytes": sum(m[1] for m in iopub),
    }
    if answer_bytes:
        fig["kernel_bytes_ratio"] = fig["kernel_bytes"] / answer_bytes
    return fig


def page_figures(obs: Observation) -> dict[str, Any]:
    longtasks = obs.page.get("longtasks", [])
    fig: dict[str, Any] = {
        "ws_bytes": obs.ws[0],
        "ws_frames": obs.ws[1],
        "ws_mb": obs.ws[0] / 1e6,
        "longtask_ms": sum(d for _, d in longtasks),
        "longtask_count": len(longtasks),
        "longtask_max_ms": max((d for _, d in longtasks), default=0.0),
        "frames": obs.page.get("frames"),
    }
    # the live phase: until the kernel published the saved output (update_display_data)
    final_at = min((m[0] for m in obs.iopub if m[2] == "update_display_data"), default=None)
    if final_at is not None:
        fig["longtask_live_ms"] = sum(d for s, d in longtasks if s / 1000.0 < final_at)
    if obs.page.get("longtaskError"):
        fig["longtask_error"] = obs.page["longtaskError"]
    return fig


# --------------------------------------------------------------------------- report


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _mark(run: Run, figure: str) -> str:
    for target in TARGETS.get(run.scenario.key, ()):
        if target.figure == figure:
            value = run.figures.get(figure)
            if value is None:
                return " ✗"
            if figure == "complete":
                return " ✓" if value >= target.limit else " ✗"
            return " ✓" if value <= target.limit else " ✗"
    return ""


def row(run: Run) -> list[str]:
    f = run.figures
    if run.status == "error":
        return [run.view, run.scenario.title, f"**error**: {run.note}"] + ["-"] * (len(HEADER) - 3)
    status = run.status
    if run.status == "capped":
        reached = f.get("reached", {})
        status = (
            f"capped at {f.get('cap_s', 0):.0f} s: {reached.get('visible', -1) + 1:,} of "
            f"{reached.get('sent', 0):,} sent tokens visible"
        )
        status += f" ({run.note})" if run.note else ""
    elif run.status == "incomplete":
        status = f"incomplete: {run.note}"
    status += _mark(run, "complete")
    latency = (
        f"{_num(f.get('latency_p50_ms'))}{_mark(run, 'latency_p50_ms')} / "
        f"{_num(f.get('latency_p95_ms'))}"
    )
    if f.get("markers_visible") and f["markers_visible"] < f.get("markers_sent", 0):
        latency += f" ({f['markers_visible']}/{f['markers_sent']} markers)"
    cell = "-"
    if "cell_over_stream" in f:
        cell = f"{f['cell_over_stream']:.2f} (+{f['tail_s']:.2f} s){_mark(run, 'tail_s')}"
    overhead = "-"
    if "overhead_ratio" in f:
        bound = "≥ " if f.get("overhead_lower_bound") else ""
        overhead = f"{bound}{f['overhead_ratio']:.3f}{_mark(run, 'overhead_ratio')}"
    return [
        run.view,
        run.scenario.title,
        status,
        latency,
        _num(f.get("client_lag_p50_ms")),
        _num(f.get("first_visible_s"), 2),
        f"{_num(f.get('ws_mb'), 2)}{_mark(run, 'ws_mb')}",
        f"{f.get('iopub_max_per_s', 0):,}{_mark(run, 'iopub_max_per_s')} / "
        f"{f.get('iopub_total', 0):,}",
        f"{_num(f.get('longtask_live_ms'))} / {_num(f.get('longtask_ms'))}"
        f"{_mark(run, 'longtask_ms')}",
        cell,
        f"{_num(f.get('kernel_bytes_ratio'), 1)}{_mark(run, 'kernel_bytes_ratio')}",
        overhead,
    ]


HEADER = [
    "view",
    "scenario",
    "result",
    "latency p50 / p95 (ms)",
    "of which before the view got it, p50 (ms)",
    "first visible (s)",
    "WS recv (MB)",
    "IOPub max/s / total",
    "long tasks live / total (ms)",
    "cell ÷ stream (+ tail)",
    "kernel bytes ÷ answer",
    "%%stream ÷ raw",
]


def report(
    runs: list[Run], settings: Settings, info: dict[str, Any], elapsed: float
) -> tuple[str, bool]:
    lines = [
        f"# ipy_stream live view benchmark{' (quick)' if settings.quick else ''}",
        "",
        f"- command: `{shlex.join(sys.orig_argv)}` (in {ROOT})",
        f"- date: {info['date']}; wall time of the benchmark: {elapsed / 60:.1f} min",
        f"- machine: {info['machine']}; {_load(runs)}",
        f"- software: {info['software']}",
        f"- `ipy_stream` view: {info['view']}",
        "- baselines (`benchmarks/baselines.py`): `per-token` sets an `ipywidgets.HTML` "
        "value to the whole answer rendered (markdown-it-py) on every token; "
        "`throttle-50ms` does the same at most once per 50 ms.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row(r)) + " |" for r in runs]
    lines += ["", "Targets (✓/✗ next to the figure; not asserted):", ""]
    for scenario in settings.scenarios:
        targets = "; ".join(t.text for t in TARGETS.get(scenario.key, ()))
        lines.append(f"- {scenario.title}: {targets}")
    if settings.quick:
        lines.append(
            "- (`--quick` streams are shorter than those the targets were set for: "
            "a smoke run, not a measurement.)"
        )
    lines += [
        "",
        "Latency: a marker word's first appearance in the page (`.ipy-stream-body`, or "
        "the saved output once the live view is gone) minus the moment the server flushed "
        "that token. IOPub counted by a second subscriber to the kernel; WS bytes by CDP. "
        "See benchmarks/README.md for every figure.",
    ]
    ok = all(r.ok for r in runs)
    failed = [f"{r.view} {r.scenario.title}: {r.status}" for r in runs if not r.ok]
    if failed:
        lines += ["", "FAILED: " + "; ".join(failed)]
    return "\n".join(lines) + "\n", ok


def _load(runs: list[Run]) -> str:
    loads = [x for r in runs for x in r.figures.get("load_1min", [])]
    if not loads:
        return "load unknown"
    return f"1-min load average during the runs {min(loads):.1f} to {max(loads):.1f}"


def machine_info(browser_version: str) -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import ipykernel
    import jupyterlab

    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}",
        "software": (
            f"Python {platform.python_version()}, JupyterLab {jupyterlab.__version__}, "
            f"ipykernel {ipykernel.__version__}, Chromium {browser_version} (headless)"
        ),
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short streams: a smoke run")
    parser.add_argument(
        "--scenarios", default=None, help="only these scenarios, e.g. a,d (default: all)"
    )
    parser.add_argument("--views", default=None, help=f"only these views ({', '.join(VIEWS)})")
    args = parser.parse_args(argv)
    scenarios = QUICK if args.quick else FULL
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        scenarios = tuple(s for s in scenarios if s.key in wanted)
    views = VIEWS
    if args.views:
        views = tuple(v for v in VIEWS if v in set(args.views.split(",")))
    if not scenarios or not views:
        parser.error("nothing to run")
    return Settings(
        quick=args.quick,
        scenarios=scenarios,
        views=views,
        min_cap=12 if args.quick else 20,
        cap_factor=1.5 if args.quick else 2,
        cap_extra=10 if args.quick else 15,
        overhead_reps=3 if args.quick else 5,
        overhead_cap=5 if args.quick else 12,
        overhead_settle=0.5 if args.quick else 1.0,
    )


def _interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ipy-stream-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_all(settings: Settings, bench: Bench, on_run: Callable[[Run], None]) -> list[Run]:
    runs: list[Run] = []
    for view in settings.views:
        log(f"warm-up: {view}")
        bench.warm_up(view)
    for scenario in settings.scenarios:
        text, markers = make_answer(scenario.tokens)
        # the baselines last: a hopeless one can leave a busy page behind
        for view in settings.views:
            log(f"{scenario.title}: {view}")
            try:
                run = bench.run(view, scenario, text, markers)
                run.figures["cap_s"] = settings.cap(scenario)
                if scenario.overhead:
                    log(f"{scenario.title}: {view}: %%stream vs raw chain, in the kernel")
                    over = bench.overhead(view, scenario, text)
                    run.figures["overhead"] = over
                    run.figures["overhead_ratio"] = over["ratio"]
                    run.figures["overhead_lower_bound"] = over["ratio_is_lower_bound"]
            except Exception as exc:  # noqa: BLE001 - one failed run does not end the benchmark
                traceback.print_exc()
                run = Run(view, scenario, status="error", note=f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):
                    bench.recover()
            on_run(run)
            runs.append(run)
    return runs


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    _interrupt_on_sigterm()
    started = time.monotonic()
    stem = "results-quick" if settings.quick else "results"
    with _workdir() as workdir:
        bench = Bench(settings, workdir)
        try:
            bench.start()
            assert bench.browser is not None
            info = machine_info(bench.browser.version)
            d = bench.describe
            info["view"] = (
                f"`{d['view']}` showing `{d['widget']}` ({d['widget_kind']}; "
                f"ipywidgets {d['ipywidgets']}, anywidget {d['anywidget']})"
            )
            log(f"ipy_stream's view: {info['view']}")

            def on_run(run: Run) -> None:
                f = run.figures
                log(
                    f"  -> {run.status} {run.note} p50={_num(f.get('latency_p50_ms'))} ms "
                    f"ws={_num(f.get('ws_mb'), 2)} MB iopub={f.get('iopub_max_per_s')}/s"
                )

            runs = run_all(settings, bench, on_run)
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        except Exception:  # noqa: BLE001 - report, clean up, exit 1
            traceback.print_exc()
            if bench.lab_server is not None:
                print(bench.lab_server.log_tail(), file=sys.stderr)
            return 1
        finally:
            bench.close()
    elapsed = time.monotonic() - started
    text, ok = report(runs, settings, info, elapsed)
    print(text)
    (HERE / f"{stem}.md").write_text(text, encoding="utf-8")
    raw = {
        "info": info,
        "runs": [
            {
                "view": r.view,
                "scenario": r.scenario.title,
                "status": r.status,
                "note": r.note,
                "figures": r.figures,
            }
            for r in runs
        ],
    }
    (HERE / f"{stem}.json").write_text(json.dumps(raw, indent=1, default=str), encoding="utf-8")
    log(f"wrote benchmarks/{stem}.md and .json in {elapsed / 60:.1f} min")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
