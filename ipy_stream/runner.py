"""Drive a chain's stream to its end, whatever that end is.

``run_stream`` consumes ``chain.stream(...)`` with a :class:`TokenHandler` attached,
hands every token to the view, and always finishes with an :class:`Outcome`: done,
failed (with one readable sentence) or interrupted (the kernel's stop button), with
the text received so far. Nothing here knows IPython.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import Runnable

from ipy_stream.handler import TokenHandler, Usage
from ipy_stream.outcome import Outcome, Status, TokenSink

__all__ = ["StopRequested", "run_stream"]


class StopRequested(BaseException):
    """Raised inside the stream when a Stop button (or an interrupt) asked it to end.

    A BaseException, like KeyboardInterrupt: LangChain logs every Exception a callback
    raises as an error, and a stop is not one.
    """


@dataclass
class _Collector:
    sink: TokenSink
    stop: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)
    parts: list[str] = field(default_factory=list)
    tokens: int = 0
    first_token_at: float | None = None
    usage: Usage | None = None
    internal_error: Exception | None = None
    finish_reason: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, text: str) -> None:
        if self.stop is not None and self.stop.is_set():
            raise StopRequested
        with self.lock:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self.parts.append(text)
            self.tokens += 1
        try:
            self.sink.append(text)
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
            )


def _text_of_output(output: Any) -> str:
    if isinstance(output, str):
        return output
    text = getattr(output, "text", None)
    if isinstance(text, str):
        return text
    return "" if output is None else str(output)


def run_stream(
    chain: Runnable[Any, Any],
    inputs: Mapping[str, Any],
    sink: TokenSink,
    *,
    describe_error: Callable[[BaseException, int], str],
    stop: threading.Event | None = None,
) -> Outcome:
    """Stream ``chain`` on ``inputs`` into ``sink`` and report how it ended.

    KeyboardInterrupt (the kernel's interrupt) closes the stream, which closes the
    HTTP response, and yields an ``interrupted`` outcome with the partial text. Setting
    ``stop`` (from another thread) does the same at the next token. A failure is
    described by ``describe_error(exc, tokens received)``.
    """
    collector = _Collector(sink, stop)
    handler = TokenHandler(collector.add, collector.add_usage, collector.set_finish_reason)
    outputs: list[str] = []
    stream = chain.stream(dict(inputs), config={"callbacks": [handler], "run_name": "ipy_stream"})
    try:
        for output in stream:
            if stop is not None and stop.is_set():
                raise StopRequested
            if not collector.tokens:
                # Runnables without an LLM inside stream outputs, not tokens.
                outputs.append(_text_of_output(output))
    except KeyboardInterrupt:
        return collector.outcome("interrupted", "Interrupted: the stream was stopped.")
    except StopRequested:
        return collector.outcome("interrupted", "Stopped: the stream was ended early.")
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable outcome
        if stop is not None and stop.is_set():
            # Closing the connection to stop a stalled stream makes the read fail.
            return collector.outcome("interrupted", "Stopped: the stream was ended early.")
        if collector.internal_error is not None:
            raise collector.internal_error from None
        return collector.outcome("failed", describe_error(exc, collector.tokens))
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    if not collector.tokens and outputs:
        collector.add("".join(outputs))
    return collector.outcome("done")
