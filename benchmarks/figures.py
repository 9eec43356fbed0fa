"""The figures of one run: what was observed, and latency, kernel and page figures from it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from benchmarks.scenarios import Scenario


@dataclass
class Run:
    """One view on one scenario: how it ended, and its figures."""

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
