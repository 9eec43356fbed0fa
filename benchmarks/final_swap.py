"""What the end of a run costs the kernel: building the saved output of a long answer.

    .venv/bin/python benchmarks/final_swap.py [--tokens 20000] [--rate 5000]

When a stream ends, the kernel replaces the live view with the saved output: the answer
rendered from Markdown to HTML and sanitized (``ipy_stream.render``), laid out with its
footer (``ipy_stream.saved``) and encoded for the wire. The live view renders an answer's
finished blocks while it streams (``AnswerRenderer``, on the widget's writer thread), so
at the end only the rest is left. This measures, on the benchmark's own answer
(``scenarios.make_answer``), in this process:

* ``at the end``: the time from the last token to the bytes of the final output, with
  the blocks rendered during the stream (what the product does);
* ``baseline``: the same, rendering the whole answer at the end;
* ``during the stream``: the rendering done on the writer thread while the answer
  arrived, fed as the writer feeds it (one piece per 0.1 s flush at ``--rate``), in total
  and for the longest single flush;
* the size of the final output against the answer's.

Prints the median of ``--runs`` runs of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scenarios import make_answer
from ipy_stream.outcome import Outcome
from ipy_stream.render import AnswerRenderer, render_markdown
from ipy_stream.saved import SavedAnswer, final_bundle

FLUSH_INTERVAL = 0.1
CHARS_PER_TOKEN = 4.5


def final_bytes(text: str, html: Callable[[str], str]) -> bytes:
    outcome = Outcome(text=text, status="done", tokens=20_000, seconds=4.0)
    answer = SavedAnswer.of("gpt-4o-mini", outcome, html(text))
    return json.dumps(final_bundle([answer])).encode()


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=5_000, help="tokens per second")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    text, _ = make_answer(args.tokens)
    piece = max(1, int(args.rate * CHARS_PER_TOKEN * FLUSH_INTERVAL))

    at_end: list[float] = []
    baseline: list[float] = []
    during: list[float] = []
    worst_flush: list[float] = []
    size = 0
    for _ in range(args.runs):
        renderer = AnswerRenderer()
        flushes = []
        for start in range(0, len(text), piece):
            began = time.perf_counter()
            renderer.add(text[start : start + piece])
            flushes.append(time.perf_counter() - began)
        during.append(sum(flushes))
        worst_flush.append(max(flushes))

        began = time.perf_counter()
        size = len(final_bytes(text, renderer.html))
        at_end.append(time.perf_counter() - began)

        began = time.perf_counter()
        final_bytes(text, render_markdown)
        baseline.append(time.perf_counter() - began)

    answer_bytes = len(json.dumps(text).encode())
    print(f"answer: {args.tokens:,} tokens, {len(text):,} characters; flushes of {piece:,}")
    print(f"at the end (blocks rendered while streaming): {median_ms(at_end)}")
    print(f"baseline (whole answer rendered at the end):  {median_ms(baseline)}")
    print(
        f"during the stream, on the writer thread:      {median_ms(during)} in all, "
        f"{median_ms(worst_flush)} at most in one flush"
    )
    print(f"final output: {size:,} bytes = {size / answer_bytes:.2f} x the answer")


if __name__ == "__main__":
    main()
