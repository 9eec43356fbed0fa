"""The benchmark harness: JupyterLab, Chromium, the model server and the benchmark notebook,
driven through one measured run at a time."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.figures import Observation, Run, kernel_figures, latency_figures, page_figures
from benchmarks.harness import HarnessError, IOPubListener, ModelServer, log
from benchmarks.scenarios import MODEL, VIEWS, Scenario, Settings, make_answer
from tests.browser.lab import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FAKE_KEY,
    INIT_SCRIPT,
    VIEWPORT,
    Lab,
    LabServer,
    NotebookPage,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, CDPSession, Page

PROBE_JS = Path(__file__).resolve().parent / "probe.js"

# Cells of the benchmark notebook.
CELL_SETUP = 0
CELL_USE = {name: 1 + i for i, name in enumerate(VIEWS)}
CELL_STREAM = 1 + len(VIEWS)
CELL_OVERHEAD = CELL_STREAM + 1


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
        """Put ``view`` in place in the kernel; a failed swap ends the run (never measure
        the product under a baseline's name)."""
        assert self.nb is not None
        self.nb.run_cell(CELL_USE[view], timeout=60)
        errors = self.nb.output(CELL_USE[view], '[data-mime-type="application/vnd.jupyter.stderr"]')
        if errors.count():
            raise HarnessError(f"could not use the {view} view: {errors.first.inner_text()}")

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
