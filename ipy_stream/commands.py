"""The ``%stream`` line commands: configuration, ``history``, ``reset`` and ``log``.

Each returns the text to print, or raises PromptError with one line saying what to do.
Nothing here knows IPython.
"""

from __future__ import annotations

import difflib
import re
import shlex
import sqlite3
from collections.abc import Sequence

from ipy_stream.chats import DEFAULT_THREAD, Chats
from ipy_stream.errors import PromptError, clause, sentence
from ipy_stream.reports import SUBCOMMANDS, format_history, format_log, format_rows
from ipy_stream.runlog import RunLog

__all__ = ["configuration_report", "explain_arguments", "line_command"]


def line_command(line: str, *, chats: Chats, log_path: str, width: int, configuration: str) -> str:
    """Run ``%stream LINE``; ``configuration`` is what ``%stream`` alone prints."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        reason = clause(str(exc))
        raise PromptError(f"%stream {line.strip()}: {reason} (check the quotes).") from None
    if not words:
        return configuration
    command, rest = words[0], words[1:]
    if command in ("history", "reset"):
        if len(rest) > 1:
            raise PromptError(f"%stream {command} takes at most one thread name.")
        thread = rest[0] if rest else DEFAULT_THREAD
        if command == "history":
            others = [name for name in chats.names() if name != thread]
            return format_history(thread, chats.messages(thread), others)
        count = chats.reset(thread)
        return f"Cleared thread '{thread}' ({count} messages)."
    if command == "log":
        limit, search = _log_arguments(rest)
        try:
            runs = RunLog(log_path).recent(limit, search)
        except (OSError, sqlite3.Error) as exc:
            raise PromptError(
                f"%stream log: could not read the run log at {log_path} ({clause(str(exc))}); "
                "point %config StreamMagics.log_path at another file."
            ) from None
        return format_log(runs, log_path, search, width=width)
    close = difflib.get_close_matches(command, ["history", "reset", "log"], n=1, cutoff=0.5)
    hint = f"did you mean %stream {close[0]}?" if close else "use history, reset or log"
    raise PromptError(f"%stream {command}: unknown command ({hint}); %stream alone lists them.")


def configuration_report(rows: Sequence[tuple[str, object]], threads: Sequence[str]) -> str:
    """What ``%stream`` alone prints: the settings, the conversations, the commands."""
    return "\n".join(
        [
            format_rows("ipy_stream configuration (%config StreamMagics.<name> = value):", rows),
            f"  conversations     {', '.join(threads) or 'none'}",
            "",
            SUBCOMMANDS,
        ]
    )


def _log_arguments(words: list[str]) -> tuple[int, str | None]:
    limit = 10
    terms: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "-n":
            if index + 1 >= len(words) or not words[index + 1].isdigit():
                raise PromptError("%stream log -n takes a whole number, e.g. %stream log -n 20.")
            limit = int(words[index + 1])
            index += 2
            continue
        terms.append(word)
        index += 1
    return limit, " ".join(terms) or None


_KINDS = {"float": "a number, such as 0.2", "int": "a whole number, such as 500"}


def explain_arguments(message: str, options: Sequence[str]) -> str:
    """argparse's complaint as one sentence: which option, what it takes or what was meant."""
    value = re.match(r"argument (\S+): invalid (float|int) value: (.*)", message)
    if value is not None:
        flags, kind, given = value.groups()
        return f"%%stream: {flags} takes {_KINDS[kind]}, not {given}."
    missing = re.match(r"argument (\S+): expected one argument", message)
    if missing is not None:
        return f"%%stream: {missing.group(1)} needs a value (%%stream? says what each takes)."
    match = re.match(r"unrecognized arguments: (\S+)", message)
    if match is None:
        return sentence(f"%%stream: {message}")
    word = match.group(1)
    if not word.startswith("-"):
        return f"%%stream: unexpected {word!r}; options start with - (%%stream? lists them)."
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "%%stream? lists the options."
    return f"%%stream: unknown option {word}; {hint}"
