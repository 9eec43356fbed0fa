"""Conversation threads for ``%%stream -c``: earlier turns sent with the next prompt."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage

from ipy_stream.errors import PromptError

__all__ = ["DEFAULT_THREAD", "Chats"]

DEFAULT_THREAD = "default"


class Chats:
    """Named threads of messages, kept for the kernel's lifetime."""

    def __init__(self) -> None:
        self._threads: dict[str, list[BaseMessage]] = {}
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, thread: str) -> None:
        """Mark ``thread`` as answering; PromptError if a run on it has not ended.

        Two runs on one thread would both read the same earlier turns and both add
        theirs, interleaved; the second is refused instead.
        """
        with self._lock:
            if thread in self._busy:
                raise PromptError(
                    f"-c {thread}: an earlier run in this conversation is still answering "
                    "(in the background); wait for it to end or press its Stop button, "
                    "or start another conversation with -c NAME."
                )
            self._busy.add(thread)

    def release(self, thread: str) -> None:
        """The run on ``thread`` has ended (its turn, if any, is added)."""
        with self._lock:
            self._busy.discard(thread)

    def messages(self, thread: str) -> list[BaseMessage]:
        """A copy of the thread's messages, oldest first (empty for a new thread)."""
        with self._lock:
            return list(self._threads.get(thread, []))

    def append_turn(
        self, thread: str, asked: Sequence[BaseMessage], answer: str, *, interrupted: bool
    ) -> None:
        """Add the messages of one turn and its answer (marked when it was cut short)."""
        reply = AIMessage(content=answer)
        if interrupted:
            reply.response_metadata["ipy_stream_status"] = "interrupted"
        with self._lock:
            self._threads.setdefault(thread, []).extend([*asked, reply])

    def reset(self, thread: str) -> int:
        """Forget a thread; return how many messages it had."""
        with self._lock:
            return len(self._threads.pop(thread, []))

    def names(self) -> list[str]:
        """Threads that have messages."""
        with self._lock:
            return sorted(name for name, messages in self._threads.items() if messages)
