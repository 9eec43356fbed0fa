"""Benchmark ipy_stream's live view against two baselines, in JupyterLab, in Chromium.

    .venv/bin/python benchmarks/stream_bench.py           # full run, 5 to 7 minutes
    .venv/bin/python benchmarks/stream_bench.py --quick   # smoke run, under 2 minutes

Every run goes through the real ``%%stream`` magic, the real ``ChatOpenAI`` client and
real HTTP to the project's OpenAI-compatible test server (in a process of its own); only
the live view differs (``benchmarks/baselines.py`` swaps ``ipy_stream.display.WidgetView``
inside the kernel). JupyterLab runs with throwaway directories (``tests/browser/lab/``)
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
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench import Bench  # noqa: E402
from benchmarks.figures import Run  # noqa: E402
from benchmarks.harness import log  # noqa: E402
from benchmarks.report import machine_info, num, report  # noqa: E402
from benchmarks.scenarios import FULL, QUICK, VIEWS, Settings, make_answer  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HERE = Path(__file__).resolve().parent


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
                    f"  -> {run.status} {run.note} p50={num(f.get('latency_p50_ms'))} ms "
                    f"ws={num(f.get('ws_mb'), 2)} MB iopub={f.get('iopub_max_per_s')}/s"
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
