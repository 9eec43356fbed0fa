"""What the live view benchmark runs: the views, the scenarios, the settings of a run, the
targets, and the answer the model server streams."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.openai_server import tokenize

VIEWS: tuple[str, ...] = ("ipy_stream", "throttle-50ms", "per-token")
"""The views compared, in the order they run (per-token last: it can leave a backlog)."""
MODEL = "gpt-4o-mini"


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


FULL: tuple[Scenario, ...] = (
    Scenario("a", 2_000, 100),
    Scenario("b", 20_000, 2_000),
    Scenario("c", 20_000, 5_000),
    Scenario("d", 20_000, 0, overhead=True),
)
QUICK: tuple[Scenario, ...] = (
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
