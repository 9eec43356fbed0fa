"""The run log: every ``%%stream`` run recorded in a local SQLite database.

One row per model run in the table ``runs``; query it with any SQLite tool::

    sqlite3 ~/.local/share/ipy_stream/runs.sqlite3 \\
        "SELECT started_at, model, status, answer FROM runs ORDER BY id DESC LIMIT 5"

Columns: ``id``, ``started_at`` (ISO 8601, UTC), ``batch`` (shared by the runs of one
side-by-side cell), ``model`` (as given with ``-m``), ``label``, ``base_url`` (without
credentials), ``params`` (JSON: temperature, max_tokens, timeout, thread, background),
``messages`` (JSON list of ``{"role", "content"}`` exactly as sent), ``answer``,
``status`` (``done``, ``failed``, ``interrupted``), ``error``, ``seconds``,
``first_token_seconds``, ``tokens``, ``prompt_tokens``, ``completion_tokens``,
``reasoning`` (the model's thinking, kept apart from the answer), ``tool_calls``
(JSON list of ``{"name", "arguments", "id"}``), ``cost`` (estimated US dollars,
NULL when the price of the server's model is not known) and ``attachments`` (JSON list
of the tables, cut values and images sent, each with its ``kind``, ``name``, ``label``
and ``chars``; a table's row and column counts; an image's ``mime_type``, ``width``,
``height``, ``bytes`` and ``sha256``, never the image itself; NULL when none).
The API key is never stored.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ipy_stream.outcome import Outcome

__all__ = ["LoggedRun", "RunLog", "default_log_path", "public_url"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    batch TEXT NOT NULL,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    base_url TEXT,
    params TEXT NOT NULL,
    messages TEXT NOT NULL,
    answer TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    seconds REAL,
    first_token_seconds REAL,
    tokens INTEGER,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    reasoning TEXT,
    tool_calls TEXT,
    cost REAL,
    attachments TEXT
);
CREATE INDEX IF NOT EXISTS runs_started_at ON runs (started_at);
"""
# Columns added since the first version: a log written before gets them on first use.
_ADDED = {"reasoning": "TEXT", "tool_calls": "TEXT", "cost": "REAL", "attachments": "TEXT"}


def default_log_path() -> str:
    """``runs.sqlite3`` in the user's data directory (e.g. ``~/.local/share/ipy_stream``)."""
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("ipy_stream", appauthor=False)) / "runs.sqlite3")


def public_url(url: str | None) -> str | None:
    """The URL without any ``user:password@`` part."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class LoggedRun:
    """One row of the run log, as shown by ``%stream log``."""

    id: int
    started_at: str
    model: str
    status: str
    tokens: int | None
    seconds: float | None
    prompt: str
    answer: str
    error: str | None = None
    """Why a failed run failed (or how an interrupted one was stopped), as shown then."""
    cost: float | None = None
    """Estimated US dollars, when the price was known."""


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    """One lock per file, whichever RunLog object (and thread) writes to it."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path.resolve(), threading.Lock())


def _like(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') that finds ``text`` anywhere."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class RunLog:
    """Appends runs to, and reads them from, one SQLite file (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = _lock_for(self.path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            connection.executescript(_SCHEMA)
            have = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
            for column, kind in _ADDED.items():
                if column not in have:
                    connection.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
            yield connection
            connection.commit()
        finally:
            connection.close()

    def record(
        self,
        *,
        batch: str,
        started_at: datetime,
        model: str,
        label: str,
        base_url: str | None,
        params: Mapping[str, Any],
        messages: Sequence[Mapping[str, str]],
        outcome: Outcome,
        attachments: Sequence[Mapping[str, Any]] = (),
    ) -> int:
        """Store one finished run; return its id. ``attachments``: what the prompt carried
        besides text (see the module's docstring)."""
        usage = outcome.usage or {}
        row = (
            started_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            batch,
            model,
            label,
            public_url(base_url),
            json.dumps(dict(params), default=str),
            json.dumps(list(messages), ensure_ascii=False),
            outcome.text,
            outcome.status,
            outcome.message or None,
            round(outcome.seconds, 4),
            None if outcome.first_token_seconds is None else round(outcome.first_token_seconds, 4),
            outcome.tokens,
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            outcome.reasoning or None,
            json.dumps([asdict(call) for call in outcome.tool_calls])
            if outcome.tool_calls
            else None,
            outcome.cost,
            json.dumps([dict(a) for a in attachments], ensure_ascii=False) if attachments else None,
        )
        with self._lock, self._connect() as connection:
            cursor = connection.execute(
                "INSERT INTO runs (started_at, batch, model, label, base_url, params, messages,"
                " answer, status, error, seconds, first_token_seconds, tokens, prompt_tokens,"
                " completion_tokens, reasoning, tool_calls, cost, attachments)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid or 0)

    def recent(self, limit: int = 10, search: str | None = None) -> list[LoggedRun]:
        """The latest runs, newest first; ``search`` matches prompt or answer text."""
        if not self.path.exists():
            return []
        query = (
            "SELECT id, started_at, model, status, tokens, seconds, messages, answer, error,"
            " cost FROM runs"
        )
        args: list[Any] = []
        if search:
            # The messages are stored as JSON: look in their texts only, never in the
            # keys and roles around them.
            query += (
                " WHERE answer LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM json_tree(messages)"
                " AS node WHERE node.type = 'text' AND node.key IN ('content', 'text')"
                " AND node.atom LIKE ? ESCAPE '\\')"
            )
            args += [_like(search), _like(search)]
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock, self._connect() as connection:
            rows = connection.execute(query, args).fetchall()
        return [
            LoggedRun(
                id=row[0],
                started_at=row[1],
                model=row[2],
                status=row[3],
                tokens=row[4],
                seconds=row[5],
                prompt=_last_user(row[6]),
                answer=row[7],
                error=row[8],
                cost=row[9],
            )
            for row in rows
        ]


def _last_user(messages_json: str) -> str:
    messages = json.loads(messages_json)
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""
