"""The ``%%stream`` cell magic and ``%stream`` commands. The only module that knows IPython."""

from __future__ import annotations

import difflib
import keyword
import math
import os
import re
import shlex
import sqlite3
import sys
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import (
    MagicHelpFormatter,
    argument,
    kwds,
    magic_arguments,
)
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, default, validate

from ipy_stream.chain import HISTORY, build_chain, build_template, message_dicts, turn_messages
from ipy_stream.chats import DEFAULT_THREAD, Chats
from ipy_stream.errors import PromptError, StreamError, describe_error, redact
from ipy_stream.jobs import Job, run_jobs, start_thread, stop_all
from ipy_stream.models import ModelSettings, ResolvedModel, resolve_model
from ipy_stream.outcome import Outcome
from ipy_stream.panes import FinishedRuns, Panes, QuietTextView
from ipy_stream.prompt import fill, parse_cell
from ipy_stream.reports import SUBCOMMANDS, format_history, format_log, format_rows
from ipy_stream.runlog import RunLog, default_log_path, public_url
from ipy_stream.saved import final_bundle
from ipy_stream.view import StdoutView, View, WidgetView

__all__ = ["StreamMagics"]


@dataclass
class _Run:
    """Everything one ``%%stream`` cell started, needed again when it ends."""

    jobs: list[Job]
    out: str | None
    thread: str | None
    turn: list[Any]
    messages: list[dict[str, str]]
    params: dict[str, Any]
    panes: Panes | None = None
    display_id: str | None = None


class _PlainHelp(MagicHelpFormatter):
    """%%stream? as plain text: a usage line, not a reStructuredText code block."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: Any = "Usage: %%") -> None:
        super().add_usage(usage, actions, groups, prefix)


@magics_class
class StreamMagics(Magics):
    """Stream LLM answers into the notebook. Configure with ``%config StreamMagics.<name>``."""

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
    view = Enum(
        ("auto", "widget", "text"),
        default_value="auto",
        help="How answers are shown while streaming: 'widget' (live Markdown), 'text' "
        "(tokens printed as they come), or 'auto' (widget in a kernel, text in a terminal).",
    ).tag(config=True)
    log_enabled = Bool(
        True, help="Record every run (prompt, answer, timings; never the key) in the run log."
    ).tag(config=True)
    log_path = Unicode(help="SQLite file of the run log.").tag(config=True)

    @default("log_path")
    def _default_log_path(self) -> str:
        return default_log_path()

    @validate("refresh_interval")
    def _check_interval(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not 0.01 <= value <= 5:
            raise TraitError("StreamMagics.refresh_interval must be between 0.01 and 5 seconds")
        return value

    @validate("timeout")
    def _check_timeout(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if value <= 0:
            raise TraitError("StreamMagics.timeout must be a positive number of seconds")
        return value

    @validate("max_retries")
    def _check_retries(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if value < 0:
            raise TraitError("StreamMagics.max_retries must be 0 or more")
        return value

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.chats = Chats()
        self._finished_runs = FinishedRuns()
        self._log_warned = False

    @magic_arguments()
    @kwds(formatter_class=_PlainHelp)
    @argument(
        "-m",
        "--model",
        help="Model name, a variable holding a chat model or Runnable, or 'demo'. "
        "Several, comma-separated (-m a,b), stream side by side.",
    )
    @argument("-s", "--system", help="System message (a template, like the cell).")
    @argument("-t", "--temperature", type=float, help="Sampling temperature.")
    @argument("--max-tokens", type=int, help="Limit on the answer's length in tokens.")
    @argument(
        "-o",
        "--out",
        help="Store the answer (str) in this variable; a dict model -> answer with several models.",
    )
    @argument("--timeout", type=float, help="Seconds without a token before giving up.")
    @argument(
        "-c",
        "--chat",
        nargs="?",
        const=DEFAULT_THREAD,
        metavar="THREAD",
        help="Continue a conversation: earlier turns of THREAD (default: 'default') are sent "
        "too, and this turn is added when it ends.",
    )
    @argument(
        "--bg",
        action="store_true",
        help="Run in the background: the cell returns at once; a Stop button ends the stream.",
    )
    @no_var_expand
    @line_cell_magic
    def stream(self, line: str, cell: str | None = None) -> None:
        """Stream a model's answer to the cell's prompt, live, as Markdown.

        The cell is a prompt template: {name} is replaced by the notebook variable
        name; write {{ and }} for literal braces. Lines that are exactly system:,
        user: or assistant: start messages of that role.

        The answer appears while it is generated and stays in the notebook, rendered
        (sanitized HTML and the plain text), so saved and exported notebooks show it;
        with -o NAME it is also stored in the variable NAME. HTML in answers is shown
        as text, never run. Interrupt the kernel to stop a stream: the partial answer
        is kept.

        Examples:

            %%stream -m demo
            Tell me a joke about {animal}

            %%stream -m gpt-4o-mini -o summary -t 0.2
            Summarize this in three bullet points: {text}

            %%stream -m my_model -s "You are a terse reviewer."
            Review this code: {source}

            %%stream -c
            And what about {other_animal}?

            %%stream -m gpt-4o-mini,llama -o answers
            Compare quicksort and mergesort.

            %%stream --bg -o essay
            Write a long essay about {topic}.

        -m takes an OpenAI model name (needs OPENAI_API_KEY, or OPENAI_BASE_URL
        pointing at an OpenAI-compatible server such as Ollama, vLLM, llama.cpp or
        LM Studio), the name of a variable holding any LangChain chat model or
        Runnable, or demo (offline, no key).

        Line commands: %stream (configuration and commands), %stream history
        [THREAD], %stream reset [THREAD], %stream log [-n N] [TEXT].

        Configuration (%config StreamMagics.<name> = value): model, base_url,
        temperature, max_tokens, system, refresh_interval, timeout, max_retries, view,
        log_enabled, log_path.
        """
        if cell is None:
            self._line_command(line)
            return
        run = self._prepare(line, cell)
        if run.params["background"]:
            start_thread(lambda: self._run_in_background(run), "ipy-stream-background")
            return
        run_jobs(run.jobs)
        self._finish(run)
        self._raise_for(run)

    # -- preparing a run -------------------------------------------------------------

    def _namespace(self) -> dict[str, Any]:
        if self.shell is None:  # pragma: no cover - magics are always registered on a shell
            raise UsageError("ipy_stream must be loaded with %load_ext ipy_stream.")
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _parse(self, line: str) -> Any:
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%%stream {line.strip()}: {exc} (check the quotes).") from None
        parser = self.stream.parser
        try:
            args = parser.parse_args(argv)
        except UsageError as exc:
            options = [name for action in parser._actions for name in action.option_strings]
            raise UsageError(_explain_arguments(str(exc), options)) from None
        if args.out is not None and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
            raise UsageError(f"-o {args.out}: not a valid variable name.")
        if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
            raise UsageError("--timeout must be a positive number of seconds.")
        if args.temperature is not None and not math.isfinite(args.temperature):
            raise UsageError("-t must be a finite number, such as 0.2.")
        if args.max_tokens is not None and args.max_tokens <= 0:
            raise UsageError("--max-tokens must be a positive whole number.")
        return args

    def _model_names(self, args: Any) -> list[str]:
        names = [name.strip() for name in (args.model or self.model).split(",")]
        if any(not name for name in names):
            raise UsageError(f"-m {args.model}: a model name is empty (write -m a,b).")
        if len(set(names)) != len(names):
            raise UsageError(f"-m {args.model}: a model is named twice.")
        if len(names) > 1 and args.chat is not None:
            raise UsageError("-c continues one conversation: use it with one model, not -m a,b.")
        return names

    def _prepare(self, line: str, cell: str) -> _Run:
        args = self._parse(line)
        names = self._model_names(args)
        namespace = self._namespace()
        api_key = os.environ.get("OPENAI_API_KEY") or None
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or None
        params: dict[str, Any] = {
            "temperature": args.temperature if args.temperature is not None else self.temperature,
            "max_tokens": args.max_tokens if args.max_tokens is not None else self.max_tokens,
            "timeout": args.timeout if args.timeout is not None else self.timeout,
            "thread": args.chat,
            "background": bool(args.bg),
        }
        system = args.system if args.system is not None else self.system
        try:
            prompt = parse_cell(cell, system=system)
            inputs = fill(prompt, namespace)
            models = [
                resolve_model(
                    ModelSettings(
                        name=name,
                        base_url=base_url,
                        api_key=api_key,
                        temperature=params["temperature"],
                        max_tokens=params["max_tokens"],
                        timeout=params["timeout"],
                        max_retries=self.max_retries,
                        from_default=args.model is None,
                    ),
                    namespace,
                )
                for name in names
            ]
        except PromptError as exc:
            raise UsageError(str(exc)) from None
        template = build_template(prompt, history=args.chat is not None)
        if args.chat is not None:
            inputs[HISTORY] = self.chats.messages(args.chat)
        try:
            sent = message_dicts(template.format_messages(**inputs))
            turn = turn_messages(prompt, inputs) if args.chat is not None else []
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"The prompt could not be filled: {exc}") from None
        run = _Run(
            jobs=[],
            out=args.out,
            thread=args.chat,
            turn=turn,
            messages=sent,
            params=params,
        )
        views = self._views(models, background=bool(args.bg))
        for name, model, view in zip(names, models, views, strict=True):
            run.jobs.append(
                Job(
                    model=name,
                    label=model.label,
                    base_url=model.base_url,
                    chain=build_chain(template, model.runnable),
                    inputs=inputs,
                    view=view,
                    explain=self._explainer(name, model, api_key),
                    abort=model.abort,
                )
            )
        if all(isinstance(view, WidgetView) for view in views):
            widget_views = [view for view in views if isinstance(view, WidgetView)]
            stop = (lambda: stop_all(run.jobs)) if args.bg else None
            run.panes = Panes(widget_views, on_stop=stop)
            run.display_id = uuid.uuid4().hex
            self._publish(run.panes.widget._repr_mimebundle_(), run.display_id)
        return run

    @staticmethod
    def _explainer(
        name: str, model: ResolvedModel, api_key: str | None
    ) -> Callable[[BaseException, int], str]:
        def explain(exc: BaseException, tokens: int) -> str:
            message = describe_error(
                exc, model=name, base_url=public_url(model.base_url), tokens=tokens
            )
            return redact(message, [api_key, _password(model.base_url)])

        return explain

    def _use_widgets(self) -> bool:
        if self.view != "auto":
            return bool(self.view == "widget")
        return getattr(self.shell, "kernel", None) is not None

    def _views(self, models: Sequence[ResolvedModel], *, background: bool) -> list[View]:
        if self._use_widgets():
            return [WidgetView(m.label, interval=self.refresh_interval) for m in models]
        # A blocking cell shows a failure on its own line; a background one cannot.
        if len(models) == 1:
            return [StdoutView(models[0].label, with_message=background)]
        return [QuietTextView(m.label, with_message=background) for m in models]

    # -- finishing a run -------------------------------------------------------------

    def _run_in_background(self, run: _Run) -> None:
        try:
            run_jobs(run.jobs)
            self._finish(run)
        except Exception:  # noqa: BLE001 - a bug must not vanish silently in a thread
            traceback.print_exc(file=sys.stderr)

    def _finish(self, run: _Run) -> None:
        outcomes = [job.outcome for job in run.jobs if job.outcome is not None]
        if run.out is not None:
            namespace = self._namespace()
            if len(run.jobs) == 1:
                namespace[run.out] = outcomes[0].text
            else:
                namespace[run.out] = {
                    job.model: job.outcome.text for job in run.jobs if job.outcome
                }
        if run.thread is not None and outcomes[0].status in ("done", "interrupted"):
            self.chats.append_turn(
                run.thread,
                run.turn,
                outcomes[0].text,
                interrupted=outcomes[0].status == "interrupted",
            )
        # The variables are set before the answer shows as done, so a person who sees
        # it finished can use them at once.
        if run.panes is not None and run.display_id is not None:
            run.panes.finished()
            # A blocking cell shows a failure on its own line; a background one cannot.
            answers = [
                view.saved(
                    job.outcome or Outcome(text="", status="failed", message="did not finish"),
                    with_message=run.params["background"],
                )
                for job, view in zip(run.jobs, run.panes.views, strict=True)
            ]
            self._publish(final_bundle(answers), run.display_id, update=True)
            self._finished_runs.add(run.panes)
        self._log(run)

    def _log(self, run: _Run) -> None:
        if not self.log_enabled:
            return
        batch = uuid.uuid4().hex[:12]
        try:
            log = RunLog(self.log_path)
            for job in run.jobs:
                if job.outcome is not None:
                    log.record(
                        batch=batch,
                        started_at=job.started_at,
                        model=job.model,
                        label=job.label,
                        base_url=job.base_url,
                        params=run.params,
                        messages=run.messages,
                        outcome=job.outcome,
                    )
        except (OSError, sqlite3.Error) as exc:
            if not self._log_warned:
                self._log_warned = True
                print(
                    f"ipy_stream: could not write the run log at {self.log_path} ({exc}); "
                    "set %config StreamMagics.log_enabled = False to turn it off.",
                    file=sys.stderr,
                )

    @staticmethod
    def _raise_for(run: _Run) -> None:
        outcomes = [(job, job.outcome) for job in run.jobs if job.outcome is not None]
        interrupted = [job for job, outcome in outcomes if outcome.status == "interrupted"]
        failed = [(job, outcome) for job, outcome in outcomes if outcome.status == "failed"]
        kept = f" (kept in '{run.out}')" if run.out else ""
        if interrupted:
            tokens = sum(outcome.tokens for _, outcome in outcomes)
            raise StreamError(
                f"Interrupted after {tokens} tokens; the partial answer is shown above{kept}.",
                interrupted=True,
            )
        if len(failed) == 1 and len(outcomes) == 1:
            raise StreamError(failed[0][1].message)
        if failed:
            raise StreamError(
                "; ".join(f"{job.model} failed: {outcome.message}" for job, outcome in failed)
            )

    def _publish(self, bundle: dict[str, Any], display_id: str, *, update: bool = False) -> None:
        """Show (or, with update, replace in place) one output of this cell."""
        assert self.shell is not None
        self.shell.display_pub.publish(
            data=bundle, metadata={}, transient={"display_id": display_id}, update=update
        )

    # -- %stream line commands -------------------------------------------------------

    def _line_command(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%stream {line.strip()}: {exc}") from None
        if not words:
            print(self._configuration())
            return
        command, rest = words[0], words[1:]
        if command in ("history", "reset"):
            if len(rest) > 1:
                raise UsageError(f"%stream {command} takes at most one thread name.")
            thread = rest[0] if rest else DEFAULT_THREAD
            if command == "history":
                others = [name for name in self.chats.names() if name != thread]
                print(format_history(thread, self.chats.messages(thread), others))
            else:
                count = self.chats.reset(thread)
                print(f"Cleared thread '{thread}' ({count} messages).")
            return
        if command == "log":
            limit, search = _log_arguments(rest)
            try:
                runs = RunLog(self.log_path).recent(limit, search)
            except (OSError, sqlite3.Error) as exc:
                raise UsageError(
                    f"%stream log: could not read the run log at {self.log_path} ({exc}); "
                    "point %config StreamMagics.log_path at another file."
                ) from None
            print(format_log(runs, self.log_path, search))
            return
        raise UsageError(
            f"%stream {command}: unknown command. Use history, reset or log; "
            "%stream alone lists them."
        )

    def _configuration(self) -> str:
        base_url = public_url(self.base_url or os.environ.get("OPENAI_BASE_URL")) or "(OpenAI)"
        rows: list[tuple[str, object]] = [
            ("model", self.model),
            ("base_url", base_url),
            ("OPENAI_API_KEY", "set" if os.environ.get("OPENAI_API_KEY") else "not set"),
            ("temperature", self.temperature),
            ("max_tokens", self.max_tokens),
            ("system", self.system),
            ("refresh_interval", self.refresh_interval),
            ("timeout", self.timeout),
            ("max_retries", self.max_retries),
            ("view", self.view),
            ("log_enabled", self.log_enabled),
            ("log_path", self.log_path),
        ]
        threads = ", ".join(self.chats.names()) or "none"
        return "\n".join(
            [
                format_rows(
                    "ipy_stream configuration (%config StreamMagics.<name> = value):", rows
                ),
                f"  conversations     {threads}",
                "",
                SUBCOMMANDS,
            ]
        )


def _password(url: str | None) -> str | None:
    """The password in a ``user:password@host`` URL, to keep it out of messages."""
    return urlsplit(url).password if url else None


def _explain_arguments(message: str, options: Sequence[str]) -> str:
    """argparse's complaint about unknown arguments, saying which and what was meant."""
    match = re.match(r"unrecognized arguments: (\S+)", message)
    if match is None:
        return message
    word = match.group(1)
    if not word.startswith("-"):
        return f"%%stream: unexpected {word!r}; options start with - (%%stream? lists them)."
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "%%stream? lists the options."
    return f"%%stream: unknown option {word}; {hint}"


def _log_arguments(words: list[str]) -> tuple[int, str | None]:
    limit = 10
    terms: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "-n":
            if index + 1 >= len(words) or not words[index + 1].isdigit():
                raise UsageError("%stream log -n takes a whole number, e.g. %stream log -n 20.")
            limit = int(words[index + 1])
            index += 2
            continue
        terms.append(word)
        index += 1
    return limit, " ".join(terms) or None
