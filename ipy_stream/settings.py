"""The settings of ``%%stream`` (``%config StreamMagics.<name> = value``).

Plain traitlets: the magic class inherits them, so IPython's configuration system
finds them under ``StreamMagics``. Nothing here knows IPython.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from ipy_stream.request import Defaults
from ipy_stream.runlog import default_log_path, public_url

__all__ = ["StreamSettings"]

_LIMITS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "refresh_interval": (lambda v: 0.01 <= v <= 5, "between 0.01 and 5 seconds"),
    "timeout": (lambda v: v > 0, "a positive number of seconds"),
    "max_retries": (lambda v: v >= 0, "0 or more"),
    "max_rows": (lambda v: v >= 1, "1 or more"),
    "max_columns": (lambda v: v >= 1, "1 or more"),
    "max_prompt_chars": (lambda v: v >= 1, "1 or more"),
}

_SHOWN = (
    "model",
    "base_url",
    "temperature",
    "max_tokens",
    "system",
    "refresh_interval",
    "timeout",
    "max_retries",
    "max_rows",
    "max_columns",
    "max_prompt_chars",
    "view",
    "show_reasoning",
    "log_enabled",
    "log_path",
)


class StreamSettings(Configurable):
    """Defaults for every ``%%stream`` cell, and how runs are shown and logged."""

    model = Unicode(
        "gpt-4o-mini",
        help="Default model for %%stream: an OpenAI model name, a notebook variable holding a "
        "LangChain chat model, or 'demo' (offline).",
    ).tag(config=True)
    base_url = Unicode(
        None,
        allow_none=True,
        help="Base URL of an OpenAI-compatible server (e.g. http://localhost:11434/v1 for "
        "Ollama). Defaults to the OPENAI_BASE_URL environment variable.",
    ).tag(config=True)
    temperature = Float(None, allow_none=True, help="Default sampling temperature.").tag(
        config=True
    )
    max_tokens = Int(None, allow_none=True, help="Default limit on answer tokens.").tag(config=True)
    system = Unicode(None, allow_none=True, help="Default system message (a template).").tag(
        config=True
    )
    refresh_interval = Float(
        0.1, help="Seconds between live view updates (tokens are batched in between)."
    ).tag(config=True)
    timeout = Float(
        60.0, help="Seconds to wait for the server (and for each token) before giving up."
    ).tag(config=True)
    max_retries = Int(
        2, help="Retries, with backoff, for HTTP 429 and 5xx before the stream starts."
    ).tag(config=True)
    max_rows = Int(
        50,
        help="Rows of a DataFrame or Series (and items of a long list, array or dict) sent "
        "for {name}: the first and last halves, with a note saying how many were left out.",
    ).tag(config=True)
    max_columns = Int(
        20,
        help="Columns of a DataFrame (or 2-D array) sent for {name}: the first and last "
        "halves, with a note saying how many were left out.",
    ).tag(config=True)
    max_prompt_chars = Int(
        250_000,
        help="Largest prompt sent, in characters (an image counts by its size in base64); "
        "a cell over it is refused, naming its largest variable, and nothing is sent.",
    ).tag(config=True)
    view = Enum(
        ("auto", "widget", "text"),
        default_value="auto",
        help="How answers are shown while streaming: 'widget' (live Markdown), 'text' "
        "(tokens printed as they come), or 'auto' (widget in a kernel, text in a terminal).",
    ).tag(config=True)
    show_reasoning = Bool(
        True,
        help="Show a model's thinking above its answer (folded); it is logged either way.",
    ).tag(config=True)
    log_enabled = Bool(
        True, help="Record every run (prompt, answer, timings; never the key) in the run log."
    ).tag(config=True)
    log_path = Unicode(help="SQLite file of the run log.").tag(config=True)

    @default("log_path")
    def _default_log_path(self) -> str:
        return default_log_path()

    @validate(
        "refresh_interval", "timeout", "max_retries", "max_rows", "max_columns", "max_prompt_chars"
    )
    def _check(self, proposal: dict[str, Any]) -> Any:
        name, value = proposal["trait"].name, proposal["value"]
        allowed, rule = _LIMITS[name]
        if not allowed(value):
            raise TraitError(f"StreamMagics.{name} must be {rule}")
        return value

    def defaults(self, environ: Mapping[str, str]) -> Defaults:
        """What applies to a cell's options that are not given, with the environment's
        ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``."""
        return Defaults(
            model=self.model,
            base_url=self.base_url or environ.get("OPENAI_BASE_URL") or None,
            api_key=environ.get("OPENAI_API_KEY") or None,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            system=self.system,
            timeout=self.timeout,
            max_retries=self.max_retries,
            max_rows=self.max_rows,
            max_columns=self.max_columns,
            max_prompt_chars=self.max_prompt_chars,
        )

    def rows(self, environ: Mapping[str, str]) -> list[tuple[str, object]]:
        """Each setting and its value, for ``%stream`` (the key only as set or not)."""
        rows: list[tuple[str, object]] = [(name, getattr(self, name)) for name in _SHOWN]
        base_url = public_url(self.base_url or environ.get("OPENAI_BASE_URL")) or "(OpenAI)"
        rows[1] = ("base_url", base_url)
        rows.insert(2, ("OPENAI_API_KEY", "set" if environ.get("OPENAI_API_KEY") else "not set"))
        return rows
