"""Exploration features: chats, side by side, background runs, any Runnable, usage, run log."""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableLambda

from ipy_stream.panes import Panes
from ipy_stream.runlog import RunLog
from tests.saved_output import saved
from tests.support import (
    RecordingChatModel,
    ScriptedChatModel,
    background_threads,
    log_rows,
    run,
    wait_until,
)


class SlowModel(RecordingChatModel):
    """Streams one word every ``delay`` seconds and reports token usage at the end."""

    delay: float = 0.02
    usage: bool = False
    barrier: Any = None

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in super()._stream(messages, stop, run_manager, **kwargs):
            if self.barrier is not None:
                # Both side-by-side streams must be running at the same time to pass.
                self.barrier.wait(timeout=5)
            yield chunk
        if self.usage:
            usage = {"input_tokens": 7, "output_tokens": 4, "total_tokens": 11}
            yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))


def wait_for_background() -> None:
    for thread in background_threads():
        thread.join(timeout=30)
    assert not background_threads()


# -- conversations ----------------------------------------------------------------------


def test_chat_sends_earlier_turns_and_keeps_the_new_one(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns["model"] = fake
    fake.reply = "Paris {not a variable}"
    assert run(ip, "%%stream -m model -c -s 'Be brief.'\nCapital of {country}?")[0].success is False
    ip.user_ns["country"] = "France"
    assert run(ip, "%%stream -m model -c -s 'Be brief.'\nCapital of {country}?")[0].success
    fake.reply = "About 2 million."
    assert run(ip, "%%stream -m model -c\nAnd its population?")[0].success
    second = fake.calls[-1]
    assert [(m.type, m.text) for m in second] == [
        ("human", "Capital of France?"),
        ("ai", "Paris {not a variable}"),
        ("human", "And its population?"),
    ]
    _, shown = run(ip, "%stream history")
    assert "Thread 'default': 2 turns" in shown.stdout
    assert "[assistant]\nAbout 2 million." in shown.stdout


def test_threads_are_separate_and_reset_forgets_one(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns["model"] = fake
    run(ip, "%%stream -m model -c math\nOne")
    run(ip, "%%stream -m model -c poems\nTwo")
    run(ip, "%%stream -m model -c math\nThree")
    assert [m.text for m in fake.calls[-1]][:2] == ["One", fake.reply]
    assert "Two" not in [m.text for m in fake.calls[-1]]
    _, shown = run(ip, "%stream reset math")
    assert "Cleared thread 'math' (4 messages)." in shown.stdout
    run(ip, "%%stream -m model -c math\nFour")
    assert [m.text for m in fake.calls[-1]] == ["Four"]
    _, shown = run(ip, "%stream history poems")
    assert "[user]\nTwo" in shown.stdout


def test_interrupted_turn_is_kept_and_marked(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns["model"] = fake
    fake.reply = "a b c d"
    fake.interrupt_after = 2
    run(ip, "%%stream -m model -c\nStart")
    _, shown = run(ip, "%stream history")
    assert "[assistant] (interrupted)\na b " in shown.stdout


def test_failed_turn_is_not_added(ip: InteractiveShell, fake: RecordingChatModel) -> None:
    ip.user_ns["model"] = fake
    fake.fail_after = 0
    run(ip, "%%stream -m model -c\nStart")
    _, shown = run(ip, "%stream history")
    assert "Thread 'default' is empty." in shown.stdout


# -- any Runnable ------------------------------------------------------------------------


def test_tokens_of_every_llm_inside_a_chain_are_streamed(ip: InteractiveShell) -> None:
    first = RecordingChatModel(reply="draft one")
    second = RecordingChatModel(reply="final two")
    pipeline = first | StrOutputParser() | RunnableLambda(lambda text: [("user", text)]) | second
    ip.user_ns["pipeline"] = pipeline
    result, captured = run(ip, "%%stream -m pipeline -o out\nGo")
    assert result.success
    assert captured.stdout.startswith("draft onefinal two\n")
    assert second.calls[0][0].text == "draft one"


# -- side by side ------------------------------------------------------------------------


def test_side_by_side_runs_concurrently_and_out_is_a_dict(ip: InteractiveShell) -> None:
    barrier = threading.Barrier(2)
    ip.user_ns["a"] = SlowModel(reply="alpha " * 10, delay=0, barrier=barrier)
    ip.user_ns["b"] = SlowModel(reply="beta " * 10, delay=0, barrier=barrier)
    result, captured = run(ip, "%%stream -m a,b -o both\nCompare")
    assert result.success, captured.stdout
    assert ip.user_ns["both"] == {"a": "alpha " * 10, "b": "beta " * 10}
    assert "── a ──\nalpha" in captured.stdout
    assert "── b ──\nbeta" in captured.stdout


def test_side_by_side_widgets_form_a_grid_and_persist_labelled(
    ip: InteractiveShell, panes: list[Panes]
) -> None:
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    ip.user_ns["a"] = RecordingChatModel(reply="# From A")
    ip.user_ns["b"] = RecordingChatModel(reply="<b>from b</b>")
    result, captured = run(ip, "%%stream -m a,b\nCompare")
    assert result.success
    grid = panes[0].widget
    assert "ipy-stream-grid" in grid._dom_classes
    assert len(grid.children) == 2
    (kept,) = captured.final_outputs()
    shown = saved(kept["data"])
    assert shown.columns
    first, second = shown.answers
    assert first.footer.split(" · ")[0] == "a"
    assert first.body_html == '<h1 class="jp-toc-ignore">From A</h1>\n'
    assert second.footer.split(" · ")[0] == "b"
    assert second.text.strip() == "<b>from b</b>"  # shown as text, not as an element


def test_one_failing_model_does_not_hide_the_others(ip: InteractiveShell) -> None:
    broken = RecordingChatModel(reply="x y z", fail_after=1)
    ip.user_ns.update(good=RecordingChatModel(reply="fine"), broken=broken)
    result, captured = run(ip, "%%stream -m good,broken -o both\nGo")
    assert "broken failed: RuntimeError: boom" in captured.stdout
    assert ip.user_ns["both"] == {"good": "fine", "broken": "x "}
    assert result.success is False


@pytest.mark.parametrize(
    ("options", "expected"),
    [("-m a,a", "named twice"), ("-m a,", "empty"), ("-m a,b -c", "one model")],
)
def test_bad_model_lists_are_usage_errors(
    ip: InteractiveShell, fake: RecordingChatModel, options: str, expected: str
) -> None:
    ip.user_ns.update(a=fake, b=fake)
    result, _ = run(ip, f"%%stream {options}\nhi")
    assert isinstance(result.error_in_exec, UsageError)
    assert expected in str(result.error_in_exec)
    assert fake.calls == []


# -- background runs ---------------------------------------------------------------------


def test_background_run_returns_at_once_and_sets_out_when_done(ip: InteractiveShell) -> None:
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    gate = threading.Semaphore(0)
    words = [AIMessageChunk(content="word ") for _ in range(20)]
    ip.user_ns["held"] = ScriptedChatModel(chunks=words, gate=gate)
    # The model sends nothing until the test lets it: the cell returns all the same.
    result, captured = run(ip, "%%stream -m held --bg -o essay\nWrite")
    assert result.success
    assert "essay" not in ip.user_ns
    for _ in words:
        gate.release()
    wait_for_background()
    assert ip.user_ns["essay"] == "word " * 20
    assert captured.displays  # the live view was shown


def test_stop_button_ends_a_background_run_keeping_partial_text(
    ip: InteractiveShell, panes: list[Panes]
) -> None:
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    slow = SlowModel(reply="word " * 200, delay=0.02)
    ip.user_ns["slow"] = slow
    run(ip, "%%stream -m slow --bg -o essay\nWrite")
    (button,) = [c for c in panes[0].widget.children if "ipy-stream-stop" in c._dom_classes]
    wait_until(lambda: slow.sent >= 5)
    button.click()
    wait_for_background()
    essay = ip.user_ns["essay"]
    assert 0 < len(essay) < len("word " * 200)
    assert slow.closed


def test_background_runs_do_not_mix_their_texts(ip: InteractiveShell) -> None:
    for index in range(5):
        ip.user_ns[f"m{index}"] = SlowModel(reply=f"text{index} " * 15, delay=0.005)
        assert run(ip, f"%%stream -m m{index} --bg -o out{index}\nGo")[0].success
    wait_for_background()
    for index in range(5):
        assert ip.user_ns[f"out{index}"] == f"text{index} " * 15


def test_finished_widgets_stay_open_for_reloaded_pages_up_to_a_bound(
    ip: InteractiveShell, panes: list[Panes]
) -> None:
    # A page reloaded during a run never gets the final Markdown: it keeps the live
    # view, so the widget outlives the run; only the last runs' widgets are kept.
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    ip.user_ns["model"] = RecordingChatModel(reply="kept answer")
    magics = ip.magics_manager.registry["StreamMagics"]
    magics._finished_runs._keep = 3
    for _ in range(5):
        assert run(ip, "%%stream -m model\nhi")[0].success
    widgets = [made.views[0].widget for made in panes]
    assert [w.comm is not None for w in widgets] == [False, False, True, True, True]
    assert all(w.status == "done" and w.text == "kept answer" for w in widgets[2:])
    assert len(magics._finished_runs) == 3


# -- usage -------------------------------------------------------------------------------


def test_footer_shows_reported_token_usage(ip: InteractiveShell) -> None:
    ip.user_ns["model"] = SlowModel(reply="a b c", delay=0, usage=True)
    _, captured = run(ip, "%%stream -m model\nhi")
    assert "7 prompt + 4 completion tokens" in captured.stdout


# -- run log -----------------------------------------------------------------------------


def test_every_run_is_logged_with_messages_answer_status_and_timings(
    ip: InteractiveShell, fake: RecordingChatModel, log_path: Path, secret_key: str
) -> None:
    ip.user_ns.update(model=fake, topic="owls")
    run(ip, "%%stream -m model -t 0.3 -s 'Be kind.'\nTell me about {topic}")
    fake.fail_after = 1
    run(ip, "%%stream -m model\nAgain")
    done, failed = log_rows(log_path)
    assert done["status"] == "done"
    assert done["model"] == "model"
    assert json.loads(done["messages"]) == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Tell me about owls"},
    ]
    assert done["answer"] == fake.reply
    assert json.loads(done["params"])["temperature"] == 0.3
    assert done["seconds"] >= 0
    assert done["tokens"] == len(fake.reply.split())
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: boom."
    assert secret_key not in log_path.read_bytes().decode("utf-8", "replace")


def test_percent_stream_log_shows_and_searches_recent_runs(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns["model"] = fake
    for word in ("apples", "pears", "plums"):
        run(ip, f"%%stream -m model\nTell me about {word}")
    _, shown = run(ip, "%stream log -n 2")
    assert "plums" in shown.stdout
    assert "pears" in shown.stdout
    assert "apples" not in shown.stdout
    _, shown = run(ip, "%stream log apples")
    assert "apples" in shown.stdout
    assert "plums" not in shown.stdout
    result, _ = run(ip, "%stream log -n many")
    assert isinstance(result.error_in_exec, UsageError)


def test_percent_stream_log_finds_prompts_with_quotes_backslashes_and_newlines(
    ip: InteractiveShell, fake: RecordingChatModel, log_path: Path
) -> None:
    # The prompt is stored as JSON, where these characters are escaped; the answer is not.
    fake.reply = "fine"
    ip.user_ns["model"] = fake
    run(ip, '%%stream -m model\nWhat does "C:\\temp" mean?\nAnd tabs\tor "quotes"?')
    run(ip, "%%stream -m model\nSomething else")
    for search in ['"C:\\temp"', 'tabs\tor "quotes"']:
        _, shown = run(ip, "%stream log " + shlex.quote(search))
        assert "What does" in shown.stdout, (search, shown.stdout)
        assert "Something else" not in shown.stdout, search
    # A line magic cannot hold a newline; the log's own search can.
    (found,) = RunLog(log_path).recent(search="mean?\nAnd")
    assert found.prompt.startswith('What does "C:\\temp" mean?')


def test_percent_stream_log_searches_what_was_said_not_how_it_is_stored(
    ip: InteractiveShell, fake: RecordingChatModel, log_path: Path
) -> None:
    fake.reply = "fine"
    ip.user_ns["model"] = fake
    run(ip, "%%stream -m model -s 'Be brief.'\nOwls?")
    run(ip, "%%stream -m model\nWhich user roles exist?")
    for search, found in [("user", 1), ("role", 1), ("content", 0), ("brief", 1), ("Owls", 1)]:
        rows = RunLog(log_path).recent(search=search)
        assert len(rows) == found, (search, rows)
    assert "Owls?" not in run(ip, "%stream log user")[1].stdout


def test_percent_stream_log_on_a_file_that_is_not_a_run_log_says_so_in_one_line(
    ip: InteractiveShell, log_path: Path
) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_bytes(b"this is not an SQLite database" * 100)
    result, shown = run(ip, "%stream log")
    assert isinstance(result.error_in_exec, UsageError)
    message = str(result.error_in_exec)
    assert "\n" not in message
    assert str(log_path) in message
    assert "Traceback" not in shown.stdout + shown.stderr


def test_every_run_log_object_for_one_file_shares_one_lock(tmp_path: Path) -> None:
    # Background runs each write through their own RunLog: the lock must be the file's.
    first, second = RunLog(tmp_path / "runs.sqlite3"), RunLog(str(tmp_path / "runs.sqlite3"))
    assert first._lock is second._lock
    assert RunLog(tmp_path / "other.sqlite3")._lock is not first._lock


def test_log_can_be_switched_off(
    ip: InteractiveShell, fake: RecordingChatModel, log_path: Path
) -> None:
    ip.run_line_magic("config", "StreamMagics.log_enabled = False")
    ip.user_ns["model"] = fake
    run(ip, "%%stream -m model\nhi")
    assert not log_path.exists()


def test_an_unwritable_log_warns_once_and_keeps_the_answer(
    ip: InteractiveShell, fake: RecordingChatModel, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    ip.run_line_magic("config", f"StreamMagics.log_path = {str(blocker / 'runs.sqlite3')!r}")
    ip.user_ns["model"] = fake
    result, captured = run(ip, "%%stream -m model -o out\nhi")
    assert result.success
    assert ip.user_ns["out"] == fake.reply
    assert "could not write the run log" in captured.stderr
    _, again = run(ip, "%%stream -m model\nhi")
    assert "could not write the run log" not in again.stderr


def test_percent_stream_lists_configuration_and_commands(ip: InteractiveShell) -> None:
    _, shown = run(ip, "%stream")
    for text in ("log_path", "%stream history [THREAD]", "%stream reset", "%stream log"):
        assert text in shown.stdout
    result, _ = run(ip, "%stream frobnicate")
    assert isinstance(result.error_in_exec, UsageError)
