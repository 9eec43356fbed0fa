"""One run, one end: whatever interrupts it, and whenever, a cell leaves its answer in
``-o``, in the notebook and in the run log; chains keep their own output; threads,
widgets and HTTP clients do not pile up."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from ipywidgets.widgets.widget import _instances
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableLambda

from ipy_stream.chats import Chats
from ipy_stream.errors import StreamError
from ipy_stream.runlog import RunLog
from tests.openai_server import StreamServer
from tests.saved_output import saved
from tests.support import RecordingChatModel, background_threads, log_rows, run, wait_until


class GatedChatModel(BaseChatModel):
    """Streams ``before`` words, then waits for ``gate`` before the rest: a model that is
    slow to notice a stop. ``waiting`` is set when it starts waiting."""

    before: int = 3
    words: int = 40
    gate: Any = None
    waiting: Any = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    @property
    def _llm_type(self) -> str:
        return "gated-fake"

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for index in range(self.words):
            if index == self.before:
                self.waiting.set()
                assert self.gate.wait(30), "the test never opened the gate"
            yield ChatGenerationChunk(message=AIMessageChunk(content=f"w{index} "))


def interrupt_main() -> None:
    """What the kernel's interrupt does: SIGINT to the main thread."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def test_a_second_interrupt_while_side_by_side_runs_wind_down_loses_nothing(
    ip: InteractiveShell, log_path: Path, sigint_raises: None
) -> None:
    slow_to_stop = GatedChatModel()
    quick = RecordingChatModel(reply=" ".join(f"q{i}" for i in range(400)), delay=0.01)
    ip.user_ns.update(a=slow_to_stop, b=quick)

    def interrupt_twice() -> None:
        wait_until(lambda: slow_to_stop.waiting.is_set() and quick.sent >= 3)
        interrupt_main()
        wait_until(lambda: quick.closed)  # b has wound down; a has not noticed yet
        interrupt_main()
        slow_to_stop.gate.set()

    helper = threading.Thread(target=interrupt_twice)
    helper.start()
    result, captured = run(ip, "%%stream -m a,b -o both\nGo")
    helper.join()

    assert isinstance(result.error_in_exec, StreamError), result.error_in_exec
    assert result.error_in_exec.interrupted
    both = ip.user_ns["both"]
    assert both["a"] == "w0 w1 w2 "
    assert both["b"] and quick.reply.startswith(both["b"]) and both["b"] != quick.reply
    rows = log_rows(log_path)
    assert [(r["model"], r["status"]) for r in rows] == [("a", "interrupted"), ("b", "interrupted")]
    assert "── a ──\nw0 w1 w2" in captured.stdout


@pytest.mark.parametrize("where", ["run log", "chat turn"])
def test_an_interrupt_while_the_run_ends_does_not_break_the_end(
    ip: InteractiveShell,
    fake: RecordingChatModel,
    log_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sigint_raises: None,
    *,
    where: str,
) -> None:
    target, name = (RunLog, "record") if where == "run log" else (Chats, "append_turn")
    original = getattr(target, name)

    def interrupted_here(self: Any, *args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)  # handled before the next line runs
        return original(self, *args, **kwargs)

    monkeypatch.setattr(target, name, interrupted_here)
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    ip.user_ns["model"] = fake
    result, captured = run(ip, "%%stream -m model -c -o answer\nHi")

    assert result.success, result.error_in_exec
    assert ip.user_ns["answer"] == fake.reply
    (kept,) = captured.final_outputs()
    assert saved(kept["data"]).answers[0].status == "done"
    assert [r["status"] for r in log_rows(log_path)] == ["done"]
    assert "Thread 'default': 1 turn" in run(ip, "%stream history")[1].stdout


def test_a_chain_of_two_models_keeps_the_chains_answer_and_shows_every_token(
    ip: InteractiveShell, log_path: Path
) -> None:
    draft = RecordingChatModel(reply="a rough first draft")
    refine = RecordingChatModel(reply="The polished final answer.")
    to_prompt: RunnableLambda[Any, Any] = RunnableLambda(
        lambda m: [HumanMessage(f"Improve: {m.text}")]
    )
    ip.user_ns["pipeline"] = draft | to_prompt | refine
    result, captured = run(ip, "%%stream -m pipeline -o answer\nWrite")

    assert result.success, result.error_in_exec
    assert ip.user_ns["answer"] == "The polished final answer."
    assert "a rough first draft" in captured.stdout  # streamed live, as it came
    assert "The polished final answer." in captured.stdout
    (row,) = log_rows(log_path)
    assert row["answer"] == "The polished final answer."
    assert refine.calls[0][0].text == "Improve: a rough first draft"


def test_a_parser_after_the_model_gives_the_kept_answer(ip: InteractiveShell) -> None:
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    model = RecordingChatModel(reply="shout this")
    ip.user_ns["loud"] = model | RunnableLambda(lambda m: m.text.upper())
    result, captured = run(ip, "%%stream -m loud -o answer\nGo")
    assert result.success, result.error_in_exec
    assert ip.user_ns["answer"] == "SHOUT THIS"
    (kept,) = captured.final_outputs()
    assert kept["data"]["text/plain"] == "SHOUT THIS"


def test_a_second_run_on_a_busy_conversation_is_refused_and_turns_stay_in_order(
    ip: InteractiveShell,
) -> None:
    first = GatedChatModel(before=1, words=2)
    ip.user_ns["m"] = first
    assert run(ip, "%%stream -m m -c --bg\nFirst question")[0].success
    first.waiting.wait(10)
    second = RecordingChatModel(reply="Second answer.")
    ip.user_ns["n"] = second
    result, _ = run(ip, "%%stream -m n -c\nSecond question")
    assert isinstance(result.error_in_exec, UsageError)
    assert "still answering" in str(result.error_in_exec)
    assert "\n" not in str(result.error_in_exec)
    assert second.calls == []  # nothing was sent

    first.gate.set()
    wait_until(lambda: not background_threads())
    assert run(ip, "%%stream -m n -c\nSecond question")[0].success
    history = run(ip, "%stream history")[1].stdout
    assert history.index("First question") < history.index("w0 w1") < history.index("Second q")
    assert [m[-1].text for m in second.calls] == ["Second question"]
    assert [m.text for m in second.calls[0]] == ["First question", "w0 w1 ", "Second question"]


def test_a_conversation_is_never_read_while_its_background_run_may_still_add_a_turn(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = GatedChatModel(before=1, words=2)
    second = RecordingChatModel(reply="Second answer.")
    ip.user_ns.update(m=first, n=second)
    assert run(ip, "%%stream -m m -c --bg\nFirst question")[0].success
    first.waiting.wait(10)
    read = Chats.messages

    def the_first_run_ends_while_this_is_read(self: Chats, thread: str) -> list[BaseMessage]:
        history = read(self, thread)
        first.gate.set()
        wait_until(lambda: not background_threads())
        return history

    monkeypatch.setattr(Chats, "messages", the_first_run_ends_while_this_is_read)
    result, _ = run(ip, "%%stream -m n -c\nSecond question")
    # Refused while the first run could still add its turn; never sent without it.
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert second.calls == []
    monkeypatch.undo()
    first.gate.set()
    wait_until(lambda: not background_threads())
    assert run(ip, "%%stream -m n -c\nSecond question")[0].success
    assert [m.text for m in second.calls[0]] == ["First question", "w0 w1 ", "Second question"]


def test_an_interrupt_as_a_background_run_starts_still_ends_it_and_frees_its_conversation(
    ip: InteractiveShell, log_path: Path, monkeypatch: pytest.MonkeyPatch, sigint_raises: None
) -> None:
    import ipy_stream.run

    start_thread = ipy_stream.run.start_thread

    def interrupted_first(target: Any, name: str) -> threading.Thread:
        if name == "ipy-stream-background":
            signal.raise_signal(signal.SIGINT)  # handled before the next line runs
        return start_thread(target, name)

    monkeypatch.setattr(ipy_stream.run, "start_thread", interrupted_first)
    ip.user_ns["m"] = GatedChatModel(before=2, words=4)
    result, _ = run(ip, "%%stream -m m -c --bg -o answer\nFirst question")
    assert result.success, result.error_in_exec
    ip.user_ns["m"].gate.set()
    wait_until(lambda: not background_threads())
    assert [r["status"] for r in log_rows(log_path)] == ["interrupted"]
    assert isinstance(ip.user_ns["answer"], str)
    monkeypatch.undo()
    ip.user_ns["n"] = RecordingChatModel(reply="Fine.")
    assert run(ip, "%%stream -m n -c\nAgain")[0].success


def test_an_interrupt_while_the_request_is_built_frees_the_conversation(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, sigint_raises: None
) -> None:
    import ipy_stream.magic

    build = ipy_stream.magic.build_request

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)
        return build(*args, **kwargs)

    monkeypatch.setattr(ipy_stream.magic, "build_request", interrupted)
    ip.user_ns["n"] = RecordingChatModel(reply="Fine.")
    result, _ = run(ip, "%%stream -m n -c\nHi")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    monkeypatch.undo()
    assert run(ip, "%%stream -m n -c\nHi again")[0].success
    assert ip.user_ns["n"].calls[-1][-1].text == "Hi again"


def _live_widgets() -> int:
    return len(_instances)


def test_widgets_do_not_pile_up_over_many_runs_of_every_kind(
    ip: InteractiveShell, sigint_raises: None
) -> None:
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    ip.user_ns.update(
        ok=RecordingChatModel(reply="fine"),
        other=RecordingChatModel(reply="also fine"),
        broken=RecordingChatModel(reply="never", fail_after=0),
        stopped=RecordingChatModel(reply="cut short here", interrupt_after=1),
    )
    cells = [
        "%%stream -m ok\nHi",
        "%%stream -m ok,other\nHi",
        "%%stream -m ok --bg\nHi",
        "%%stream -m ok,other --bg\nHi",
        "%%stream -m broken\nHi",
        "%%stream -m stopped\nHi",
    ]

    def rounds(count: int) -> int:
        for _ in range(count):
            for cell in cells:
                run(ip, cell)
            wait_until(lambda: not background_threads())
        return _live_widgets()

    before = _live_widgets()
    after_25 = rounds(25)  # 25 runs of each kind
    after_50 = rounds(25)  # 50 of each
    assert after_50 == after_25
    assert after_50 - before <= 10 * 12  # the last ten runs' widgets, at most a dozen each


def test_every_http_client_is_closed_when_its_run_ends(
    ip: InteractiveShell, server: StreamServer, secret_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai

    made: list[Any] = []

    class Recording(openai.DefaultHttpxClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(openai, "DefaultHttpxClient", Recording)
    ip.run_line_magic("config", f"StreamMagics.base_url = {server.base_url!r}")
    server.configure(tokens=5)
    for cell in [
        "%%stream -m gpt-4o-mini\nHi",
        "%%stream -m gpt-4o-mini,gpt-4o\nHi",
        "%%stream -m gpt-4o-mini --bg\nHi",
    ]:
        assert run(ip, cell)[0].success
    # Refused after the first model was made: its client is closed too.
    result, _ = run(ip, "%%stream -m gpt-4o-mini,demo --timeout 5\nHi")
    assert isinstance(result.error_in_exec, UsageError)
    wait_until(lambda: not background_threads())
    assert len(made) == 5
    assert all(client.is_closed for client in made)
