"""The benchmark's parts that run in the kernel still fit the product.

``benchmarks/stream_bench.py`` swaps the live view for its baselines and times the raw
chain that ``%%stream`` builds; if either stopped fitting the product, the benchmark
would measure the product under a baseline's name, or nothing.
"""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from ipywidgets import HTML
from ipywidgets.widgets.widget import _instances

import ipy_stream.display
from benchmarks import baselines, inkernel
from tests.saved_output import saved
from tests.support import RecordingChatModel, run

REPLY = "Hello **there** friend"


@pytest.mark.parametrize("name", ["per-token", "throttle-50ms"])
def test_a_baseline_view_takes_the_products_place_in_a_real_run(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Set to itself so that monkeypatch puts the product's view back after use() swaps it.
    monkeypatch.setattr(ipy_stream.display, "WidgetView", ipy_stream.display.WidgetView)
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    ip.user_ns["model"] = RecordingChatModel(reply=REPLY)
    before = set(_instances)
    baselines.use(name)
    result, captured = run(ip, "%%stream -m model\nHi")
    assert result.success, captured.stderr
    shown = [
        w
        for key, w in list(_instances.items())
        if key not in before and isinstance(w, HTML) and "ipy-stream-body" in w._dom_classes
    ]
    assert [w.value for w in shown] == ["<p>Hello <strong>there</strong> friend</p>\n"]
    (final,) = captured.final_outputs()
    assert "<strong>there</strong>" in saved(final["data"]).answer.body_html
    assert baselines.selected() == name


def test_the_raw_chain_is_the_one_the_magic_streams(ip: InteractiveShell) -> None:
    ip.user_ns["model"] = RecordingChatModel(reply=REPLY)
    ip.user_ns["who"] = "Ada"
    chain, inputs = inkernel._raw_chain(ip, "Say hi to {who}", "model")
    text = "".join(chunk.content for chunk in chain.stream(inputs))
    assert text == REPLY
    assert ip.user_ns["model"].calls[-1][-1].content == "Say hi to Ada"
