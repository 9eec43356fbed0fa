"""Errors a person can understand, in one line.

Two kinds leave this package:

* :class:`PromptError`: the cell or its options are wrong and nothing was sent.
  The magic turns it into IPython's ``UsageError`` (one line, no traceback).
* :class:`StreamError`: the stream started, or was about to, and then failed or was
  interrupted. It renders as one line in the notebook (IPython calls
  ``_render_traceback_``) and still marks the cell as failed, so "Run All" stops there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

__all__ = [
    "PromptError",
    "StreamError",
    "clause",
    "describe_error",
    "join_text",
    "redact",
    "sentence",
]

_SENTENCE_ENDS = (".", "!", "?", "…")
_JOINING_MARKS = (";", ":", ",")
_CLOSERS = ")]\"'\u2019\u201d"  # brackets and quotes, straight and curly


class PromptError(ValueError):
    """The cell text or an option is invalid; the message says what to do."""


class StreamError(Exception):
    """A stream that did not finish normally (failed or interrupted)."""

    def __init__(self, message: str, *, interrupted: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.interrupted = interrupted

    def _render_traceback_(self) -> list[str]:
        """Show one line instead of a traceback (IPython's hook for this)."""
        return [self.message]


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each non-trivial secret in ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def clause(text: str) -> str:
    """``text`` made ready to sit inside a longer sentence: without trailing spaces, a
    final full stop, or a dangling ``;``, ``:`` or ``,``.

    ``"Connection error."`` becomes ``"Connection error"``, so ``f"({clause(cause)})."``
    reads ``(Connection error).``; ``…``, ``?``, ``!`` and ``...`` are kept, since they
    carry meaning.
    """
    text = text.rstrip()
    while text.endswith(_JOINING_MARKS) or (text.endswith(".") and not text.endswith("...")):
        text = text[:-1].rstrip()
    return text


def sentence(text: str) -> str:
    """``text`` ending with exactly one sentence mark: a full stop is added unless it
    already ends with ``.``, ``!``, ``?`` or ``…``, also just inside a closing bracket or
    quote, as in ``(see the docs.)`` (a dangling ``;``, ``:`` or ``,`` is replaced).
    Empty text stays empty."""
    text = text.rstrip()
    if text.rstrip(_CLOSERS).endswith(_SENTENCE_ENDS):
        return text
    text = clause(text)
    return f"{text}." if text else ""


def join_text(text: str, suffix: str) -> str:
    """``text + suffix`` without doubled punctuation where they meet.

    When ``suffix`` starts with a full stop, ``text`` is ended as a :func:`sentence`
    (``"boom." + "."`` gives ``"boom."``, ``"cut…" + ". More"`` gives ``"cut… More"``).
    When it starts with ``;``, ``:`` or ``,``, ``text`` loses its final full stop first
    (``"boom." + "; the rest"`` gives ``"boom; the rest"``). Otherwise the two are
    simply concatenated.
    """
    if suffix.startswith(".") and not suffix.startswith("..."):
        ended = sentence(text)
        return ended + suffix[1:] if ended else suffix[1:].lstrip()
    if suffix.startswith(_JOINING_MARKS):
        return clause(text) + suffix
    return text + suffix


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def describe_error(
    exc: BaseException, *, model: str, base_url: str | None = None, tokens: int = 0
) -> str:
    """One readable sentence for an exception raised while streaming, after ``tokens``
    tokens of the answer had arrived.

    Server messages are not echoed for authentication failures, since some servers
    quote part of the key back.
    """
    import openai

    where = f" at {base_url}" if base_url else ""
    if isinstance(exc, openai.AuthenticationError):
        return (
            f"The server{where} refused the API key (HTTP 401). "
            "Check OPENAI_API_KEY, or point OPENAI_BASE_URL at a server that accepts it."
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return f"The server{where} refused access to model '{model}' (HTTP 403)."
    if isinstance(exc, openai.NotFoundError):
        return (
            f"Model '{model}' was not found{where} (HTTP 404). "
            "Check the name with -m, or the server's base URL."
        )
    if isinstance(exc, openai.RateLimitError):
        return (
            f"Rate limited{where} (HTTP 429) even after retries. "
            "Wait a moment and run the cell again, or raise StreamMagics.max_retries."
        )
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"No token arrived{where} within the timeout; the stream was stopped. "
            "Raise it with --timeout SECONDS or StreamMagics.timeout."
        )
    if isinstance(exc, openai.APIConnectionError) and tokens:
        return (
            f"The connection to the model server{where} dropped after {tokens} token"
            f"{'s' if tokens != 1 else ''} of the answer ({clause(_cause(exc))}); "
            "the text received before it is kept."
        )
    if isinstance(exc, openai.APIConnectionError):
        return (
            f"Could not reach the model server{where}, or the connection dropped "
            f"mid-stream ({clause(_cause(exc))})."
        )
    if isinstance(exc, openai.BadRequestError):
        from ipy_stream.compat import describe_refused, refused_parameter

        param = refused_parameter(exc)
        if param is not None:
            return describe_refused(param, model)
    if isinstance(exc, openai.APIStatusError):
        return sentence(
            f"The model server{where} answered HTTP {_status_of(exc)}: {_server_said(exc)}"
        )
    if isinstance(exc, openai.APIError):
        return sentence(
            f"The model server{where} sent a response that could not be read: {_cause(exc)}"
        )
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"The model server{where} sent a chunk that is not valid JSON, so the stream "
            "was stopped; the text received before it is kept."
        )
    return sentence(f"{type(exc).__name__}: {_first_line(str(exc)) or 'the stream failed'}")


def _server_said(exc: BaseException) -> str:
    """The server's own message: the ``message`` of its JSON error body, else the SDK's
    text without its ``Error code: 500 -`` prefix (the status is said already)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        said = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(said, str) and said.strip():
            return _first_line(said)
    text = getattr(exc, "message", "") or str(exc)
    return _first_line(re.sub(r"^Error code: \d+\s*-\s*", "", text))


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    text = _first_line(str(inner)) if inner is not None else ""
    return text or _first_line(str(exc)) or type(exc).__name__


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(line) <= limit:
        return line
    # No "….", "…;" or "… …" where the cut falls after punctuation or a space.
    return line[: limit - 1].rstrip(" .;:,…") + "…"
