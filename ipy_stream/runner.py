"""Drive one chain's stream to its end, whatever that end is.

:class:`ModelStream` consumes ``chain.stream(...)`` with a :class:`TokenHandler`
attached, hands every token to the live view, and always finishes with an
:class:`Outcome`: done, failed (with one readable sentence) or interrupted, with the
answer received so far. Nothing here knows IPython.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import Runnable

from ipy_stream.channels import ChunkReader, ToolCallDelta
from ipy_stream.handler import StopRequested, TokenHandler, Usage
from ipy_stream.outcome import Outcome, Status, ToolCall

__all__ = ["ModelStream", "StopRequested"]


@dataclass
class _Collector:
    on_token: Callable[[str], None]
    on_reasoning: Callable[[str], None] | None = None
    on_tool: Callable[[int, str, str], None] | None = None
    stop: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)
    parts: list[str] = field(default_factory=list)
    tokens: int = 0
    first_token_at: float | None = None
    usage: Usage | None = None
    internal_error: Exception | None = None
    finish_reason: str | None = None
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, text: str) -> None:
        self._check_stop()
        with self.lock:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self.parts.append(text)
            self.tokens += 1
        self._tell(lambda: self.on_token(text))

    def add_reasoning(self, text: str) -> None:
        self._check_stop()
        with self.lock:
            self.reasoning.append(text)
        on_reasoning = self.on_reasoning
        if on_reasoning is not None:
            self._tell(lambda: on_reasoning(text))

    def add_tool_call(self, delta: ToolCallDelta) -> None:
        self._check_stop()
        with self.lock:
            call = self.tool_calls.setdefault(delta.index, {"id": None, "name": "", "args": ""})
            call["id"] = call["id"] or delta.id
            call["name"] += delta.name
            call["args"] += delta.arguments
            name, arguments = call["name"], call["args"]
        on_tool = self.on_tool
        if on_tool is not None:
            self._tell(lambda: on_tool(delta.index, name, arguments))

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise StopRequested

    def _tell(self, notify: Callable[[], None]) -> None:
        try:
            notify()
        except Exception as exc:
            # A failing view is our bug, not the model's: remember it to re-raise.
            self.internal_error = exc
            raise

    def add_usage(self, usage: Usage) -> None:
        with self.lock:
            if self.usage is None:
                self.usage = dict(usage)
            else:
                for key, value in usage.items():
                    self.usage[key] = self.usage.get(key, 0) + value

    def set_finish_reason(self, reason: str) -> None:
        self.finish_reason = reason

    def outcome(self, status: Status, message: str = "") -> Outcome:
        now = time.perf_counter()
        with self.lock:
            first = None if self.first_token_at is None else self.first_token_at - self.started
            return Outcome(
                text="".join(self.parts),
                status=status,
                message=message,
                tokens=self.tokens,
                seconds=now - self.started,
                first_token_seconds=first,
                usage=self.usage,
                finish_reason=self.finish_reason,
                reasoning="".join(self.reasoning),
                reasoning_tokens=len(self.reasoning),
                tool_calls=tuple(
                    ToolCall(name=call["name"], arguments=call["args"], id=call["id"])
                    for _, call in sorted(self.tool_calls.items())
                ),
            )


class _ChainOutput:
    """What the chain itself yields: text pieces joined, or its latest object.

    For ``prompt | model`` this is the tokens again; for a chain with two models, or a
    parser after the model, it is the chain's answer, which is what is kept.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.last: Any = None
        self.seen = False
        # A model's own output is read like its tokens: thinking is not the answer.
        self._reader = ChunkReader()

    def add(self, output: Any) -> None:
        self.seen = True
        if isinstance(output, str):  # a parser's text: a leading <think> is taken out too
            output = AIMessageChunk(content=output)
        if isinstance(output, BaseMessageChunk):
            self.parts.append(self._reader.feed(None, ChatGenerationChunk(message=output)).text)
        elif isinstance(getattr(output, "text", None), str):
            self.parts.append(output.text)
        elif output is not None:
            self.last = output

    def text(self) -> str:
        held = self._reader.end().text
        if held:
            self.parts.append(held)
        if self.last is not None and not self.parts:
            return str(self.last)
        return "".join(self.parts)


class ModelStream:
    """One model's stream: run it to its end in one thread, stop it from any other.

    Every piece goes to the live view as it arrives: answer text to ``on_token``,
    thinking to ``on_reasoning``, each tool call as it grows to ``on_tool`` (its index,
    its name and its arguments so far).
    The answer kept is the chain's output; for a plain ``prompt | model`` chain that is
    the same text.
    """

    def __init__(
        self,
        chain: Runnable[Any, Any],
        inputs: Mapping[str, Any],
        on_token: Callable[[str], None],
        *,
        explain: Callable[[BaseException, int], str],
        abort: Callable[[], None] | None = None,
        on_reasoning: Callable[[str], None] | None = None,
        on_tool: Callable[[int, str, str], None] | None = None,
    ) -> None:
        self._chain = chain
        self._inputs = inputs
        self._explain = explain
        self._abort = abort
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._collector = _Collector(on_token, on_reasoning, on_tool, self._stop)
        self._output = _ChainOutput()

    def stop(self) -> None:
        """End the stream: at once where its connection can be cut, else at its next
        token. Safe to call from any thread, any number of times."""
        self._stop.set()
        if self._abort is not None and not self._ended.is_set():
            self._abort()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def so_far(self) -> Outcome:
        """The answer received until now, marked interrupted (for a stream that was
        stopped and has not ended)."""
        return self._outcome("interrupted", "Stopped: the stream was ended early.")

    def run(self) -> Outcome:
        """Stream to the end and report how it ended.

        KeyboardInterrupt raised inside the stream, or :meth:`stop`, yields an
        ``interrupted`` outcome with the partial answer. A failure is described by
        ``explain(exc, tokens received)``; a bug in ``on_token`` is raised.
        """
        try:
            return self._run()
        finally:
            self._ended.set()

    def _run(self) -> Outcome:
        collector = self._collector
        handler = TokenHandler(
            collector.add,
            collector.add_usage,
            collector.set_finish_reason,
            on_reasoning=collector.add_reasoning,
            on_tool_call=collector.add_tool_call,
        )
        config: Any = {"callbacks": [handler], "run_name": "ipy_stream"}
        stream = self._chain.stream(dict(self._inputs), config=config)
        try:
            for output in stream:
                if self._stop.is_set():
                    raise StopRequested
                self._output.add(output)
        except KeyboardInterrupt:
            return self._outcome("interrupted", "Interrupted: the stream was stopped.")
        except StopRequested:
            return self.so_far()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable outcome
            if self._stop.is_set():
                # Closing the connection to stop a stalled stream makes the read fail.
                return self.so_far()
            if collector.internal_error is not None:
                raise collector.internal_error from None
            return self._outcome("failed", self._explain(exc, collector.tokens))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if not collector.tokens and self._output.seen:
            # Runnables without an LLM inside stream outputs, not tokens.
            collector.add(self._output.text())
        return self._outcome("done")

    def _outcome(self, status: Status, message: str = "") -> Outcome:
        outcome = self._collector.outcome(status, message)
        if not self._output.seen:
            return outcome
        answer = self._output.text()
        if status != "done" and outcome.text.startswith(answer):
            # Stopped between a token and the chain's output of it: keep every token.
            return outcome
        return replace(outcome, text=answer)
