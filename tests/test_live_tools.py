"""Tool calls in the live view: each shows as it grows (name, then arguments).

The widget is recorded by a ``Recorder`` from tests/support.py (its ``_send`` replaced); the
magic's part runs a notebook-variable model that streams tool-call chunks, with each
chunk held until the test has seen the previous one in the widget. What a browser makes
of the messages is checked in tests/browser/test_tools.py.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from langchain_core.messages import AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk

from ipy_stream.panes import Panes
from tests.support import Recorder, ScriptedChatModel, recorded, run, wait_until

WEATHER = '{"city": "Paris"}'


def test_a_call_is_sent_as_it_grows_and_the_trait_ends_with_every_call() -> None:
    widget, sent = recorded(interval=0.01)
    steps = [
        (0, "get_weather", ""),
        (0, "get_weather", '{"city": '),
        (1, "get_time", ""),
        (0, "get_weather", WEATHER),
        (1, "get_time", '{"tz": "UTC"}'),
    ]
    for index, name, arguments in steps:
        widget.tool(index, name, arguments)
        wait_until(partial(sent_calls_include, sent, [index, name, arguments]))
    widget.tool(1, "get_time", '{"tz": "\ud800"}')  # a lone surrogate from a bad decoder
    widget.finish("done")
    # One message per step, in order, each with only the call that changed, whole so far.
    assert [m["calls"] for m in sent.of_type("tools")] == [
        [[index, name, arguments]] for index, name, arguments in steps
    ] + [[[1, "get_time", '{"tz": "\ufffd"}']]]
    assert widget.tool_calls == [["get_weather", WEATHER], ["get_time", '{"tz": "\ufffd"}']]
    assert sent.latest("tool_calls") == widget.tool_calls
    assert widget.text == ""  # never part of the answer


def call_piece(**fields: Any) -> AIMessageChunk:
    return AIMessageChunk(content="", tool_call_chunks=[tool_call_chunk(index=0, **fields)])


def test_the_magic_shows_a_streamed_tool_call_growing_and_keeps_the_text_in_o(
    ip: InteractiveShell, panes: list[Panes]
) -> None:
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    go = threading.Semaphore(0)
    ip.user_ns["tooly"] = ScriptedChatModel(
        gate=go,
        chunks=[
            AIMessageChunk(content="Let me check."),
            call_piece(id="call_1", name="get_weather", args=""),
            call_piece(args='{"city": '),
            call_piece(args='"Paris"}'),
        ],
    )
    # The magic runs on this test's thread; the pieces are released from another, each
    # once the widget has sent the one before to the front end.
    sent = Recorder()

    def release() -> None:
        wait_until(lambda: bool(panes), timeout=30)
        widget = panes[0].views[0].widget
        original = widget._send

        def both(msg: dict[str, Any], buffers: Any = None) -> None:
            sent(msg, buffers)
            original(msg, buffers)

        widget._send = both
        go.release()
        wait_until(lambda: "Let me check." in sent.answer(), timeout=30)
        for shown in ["", '{"city": ', WEATHER]:
            go.release()
            wait_until(partial(sent_calls_include, sent, [0, "get_weather", shown]))

    helper = threading.Thread(target=release, daemon=True)
    helper.start()
    result, captured = run(ip, "%%stream -m tooly -o answer\nWeather in Paris?")
    helper.join(timeout=60)
    assert not helper.is_alive()
    assert result.error_in_exec is None
    assert ip.user_ns["answer"] == "Let me check."
    assert panes[0].views[0].widget.tool_calls == [["get_weather", WEATHER]]
    # Each state was shown: the name alone, then the arguments as they grew.
    states = [m["calls"] for m in sent.of_type("tools")]
    assert states == [[[0, "get_weather", ""]], [[0, "get_weather", '{"city": ']],
                      [[0, "get_weather", WEATHER]]]  # fmt: skip
    saved = captured.final_outputs()[-1]["data"]["text/html"]
    assert "get_weather(" in saved and "Paris" in saved


def sent_calls_include(sent: Recorder, call: list[Any]) -> bool:
    """Whether a tools message has carried ``[index, name, arguments]``."""
    return any(call in message["calls"] for message in sent.of_type("tools"))
