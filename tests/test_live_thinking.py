"""The live widget's thinking: sent apart from the answer, never mixed into it.

No kernel: ipywidgets gives widgets a dummy comm, and each test records what the widget
transmits by replacing its ``_send`` (custom messages and state updates alike) with a
``Recorder`` from tests/support.py. Tests wait on conditions, never for a fixed time.
"""

from __future__ import annotations

import pytest

from ipy_stream.outcome import Outcome
from ipy_stream.view import WidgetView
from tests.support import from_front_end, record_sends, recorded, wait_until

THOUGHTS = [
    "Let me",
    " think 😀",
    " 👩‍💻 about",  # a ZWJ sequence: three code points
    " **this**",
    "\n\n<img src=x onerror=alert(1)>",
    " e\u0301 \U0001d11e",
    "",
    " done.",
]
ANSWER = ["The", " answer", " is **42**."]


def test_thinking_reaches_its_trait_and_messages_while_it_streams() -> None:
    widget, sent = recorded(interval=0.01)
    for piece in THOUGHTS:
        widget.think(piece)
    thought = "".join(THOUGHTS)
    # The trait follows (at most once a second while it changes): no answer needed.
    wait_until(lambda: sent.latest("thinking") == thought)
    assert sent.thinking() == thought
    assert widget.thinking == thought
    assert sent.latest("thinking_tokens") == len(THOUGHTS)
    seconds = widget.thinking_seconds  # not sent while it is the default, 0.0
    assert seconds >= 0 and sent.latest("thinking_seconds") in (None, seconds)
    message = sent.of_type("thinking")[-1]
    assert message["tokens"] == len(THOUGHTS)
    assert message["seconds"] == seconds
    # Nothing of it in the answer.
    assert sent.of_type("append") == []
    assert widget.text == ""
    assert widget.length == 0 and widget.checkpoint == "" and widget.epoch == 0
    assert widget.seq == 0
    widget.finish("done")
    assert widget.thinking == thought and widget.text == ""


def test_the_answer_is_untouched_by_thinking() -> None:
    widget, sent = recorded(interval=0.01)
    for piece in THOUGHTS:
        widget.think(piece)
    wait_until(lambda: sent.thinking() == "".join(THOUGHTS))
    for piece in ANSWER:
        widget.append(piece)
    answer = "".join(ANSWER)
    wait_until(lambda: sent.answer() == answer)
    widget.think(" (an afterthought)")  # thinking may go on while the model answers
    widget.finish("done", footer="end")
    thought = "".join(THOUGHTS) + " (an afterthought)"
    assert sent.answer() == answer
    assert widget.text == answer
    assert widget.length == len(answer)
    assert widget.checkpoint == answer
    assert widget.epoch == 0
    assert widget.seq == len(sent.of_type("append"))
    for message in sent.of_type("append"):
        assert "think" not in message["text"]
    assert sent.thinking() == thought
    assert widget.thinking == thought
    assert widget.thinking_tokens == len(THOUGHTS) + 1
    for update in sent.updates:
        if "checkpoint" in update:
            assert "think" not in update["checkpoint"]


def test_finish_sends_and_syncs_all_the_thinking() -> None:
    widget, sent = recorded(interval=60)  # the writer flushes once, at its start
    widget.think("First ")
    widget.think("thoughts.")
    widget.append("Answer.")
    widget.think(" More.")
    widget.finish("done", footer="end")
    assert sent.thinking() == "First thoughts. More."
    assert sent.answer() == "Answer."
    assert sent.updates[-1]["status"] == "done"
    assert sent.latest("thinking") == widget.thinking == "First thoughts. More."
    assert sent.latest("thinking_tokens") == widget.thinking_tokens == 3
    assert widget.thinking_seconds >= 0
    assert sent.latest("length") == len("Answer.")
    assert sent.latest("checkpoint") == "Answer."


def test_a_replaced_answer_keeps_the_thinking() -> None:
    widget, sent = recorded(interval=60)
    widget.think("Pondering.")
    widget.append("Draft")
    widget.finish("done", text="Final answer")
    assert widget.text == "Final answer"
    assert widget.epoch == 1
    assert widget.thinking == "Pondering."
    assert sent.thinking() == "Pondering."


def test_a_resync_answers_with_the_answer_only() -> None:
    widget, sent = recorded(interval=60)
    widget.think("Secret reasoning. ")
    widget.append("Visible answer.")
    widget.flush()
    from_front_end(widget, {"type": "resync", "have": 0})
    (reply,) = [m for m in sent.of_type("append") if m.get("resync")]
    assert reply["text"] == "Visible answer."
    widget.finish("done")


def test_lone_surrogates_in_thinking_are_replaced_like_the_answers() -> None:
    widget, sent = recorded(interval=60)
    widget.think("a\ud800b")
    widget.finish("done")
    assert widget.thinking == "a\ufffdb"
    assert sent.thinking() == "a\ufffdb"


def test_think_after_finish_is_an_error() -> None:
    widget, _ = recorded(interval=60)
    widget.finish("done")
    with pytest.raises(RuntimeError):
        widget.think("late")


def test_widget_view_shows_thinking_and_counts_it_in_the_footer() -> None:
    view = WidgetView("demo", interval=0.01)
    sent = record_sends(view.widget)
    for piece in ["Hmm", ", ", "let me see"]:
        view.think(piece)
    wait_until(lambda: view.widget.thinking == "Hmm, let me see")
    wait_until(lambda: "demo · thinking… · 3 tokens" in (sent.latest("footer") or ""))
    view.append("Yes.")
    outcome = Outcome(
        text="Yes.",
        status="done",
        tokens=1,
        seconds=0.5,
        reasoning="Hmm, let me see",
        reasoning_tokens=3,
    )
    view.finish(outcome)
    assert view.widget.thinking == "Hmm, let me see"
    assert view.widget.thinking_tokens == 3
    assert view.widget.text == "Yes."
    assert view.widget.status == "done"
    view.close()


def test_widget_view_can_keep_thinking_out_of_the_view() -> None:
    view = WidgetView("demo", interval=0.01, show_thinking=False)
    sent = record_sends(view.widget)
    view.think("private")
    wait_until(lambda: "demo · thinking… · 1 token ·" in (sent.latest("footer") or ""))
    view.finish(Outcome(text="", status="done", reasoning="private", reasoning_tokens=1))
    assert view.widget.thinking == ""
    assert sent.of_type("thinking") == []
    view.close()
