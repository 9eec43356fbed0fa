"""Plain-text reports for the ``%stream`` line commands (configuration, history, log)."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from ipy_stream.runlog import LoggedRun

__all__ = ["SUBCOMMANDS", "format_history", "format_log", "format_rows", "shorten"]

SUBCOMMANDS = """\
Commands:
  %%stream [options]        stream the cell's answer (%%stream? for every option)
  %stream                   this summary
  %stream history [THREAD]  show a conversation kept with %%stream -c [THREAD]
  %stream reset [THREAD]    forget a conversation
  %stream log [-n N] [TEXT] the latest runs in the run log (only those containing TEXT)"""


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def format_rows(title: str, rows: Sequence[tuple[str, object]]) -> str:
    """``name  value`` lines under a title, names aligned."""
    width = max(len(name) for name, _ in rows)
    return "\n".join([title, *(f"  {name.ljust(width)}  {value!s}" for name, value in rows)])


def format_history(thread: str, messages: Sequence[BaseMessage], others: Sequence[str]) -> str:
    """A conversation, one message per paragraph."""
    if not messages:
        known = f" Threads with messages: {', '.join(others)}." if others else ""
        return f"Thread '{thread}' is empty.{known}"
    turns = sum(1 for message in messages if message.type == "ai")
    lines = [f"Thread '{thread}': {turns} turn{'s' if turns != 1 else ''}"]
    for message in messages:
        role = {"human": "user", "ai": "assistant"}.get(message.type, message.type)
        mark = ""
        if message.response_metadata.get("ipy_stream_status") == "interrupted":
            mark = " (interrupted)"
        lines += ["", f"[{role}]{mark}", message.text]
    return "\n".join(lines)


def format_log(runs: Sequence[LoggedRun], path: str, search: str | None) -> str:
    """The latest runs as a table, newest first."""
    where = f" matching '{search}'" if search else ""
    if not runs:
        return f"No runs{where} in the run log ({path})."
    header = (
        f"{'id':>5}  {'started (UTC)':19}  {'model':16}  {'status':11}  "
        f"{'tokens':>6}  {'secs':>6}  prompt → answer"
    )
    lines = [f"Latest runs{where} (newest first), from {path}:", header]
    for run in runs:
        started = run.started_at[:19].replace("T", " ")
        seconds = "" if run.seconds is None else f"{run.seconds:.1f}"
        tokens = "" if run.tokens is None else str(run.tokens)
        text = f"{shorten(run.prompt, 40)} → {shorten(run.answer, 50)}"
        lines.append(
            f"{run.id:>5}  {started:19}  {shorten(run.model, 16):16}  {run.status:11}  "
            f"{tokens:>6}  {seconds:>6}  {text}"
        )
    return "\n".join(lines)
