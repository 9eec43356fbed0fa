"""The ``%%stream`` cell magic and ``%stream`` commands. The only module that knows IPython."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import (
    MagicHelpFormatter,
    argument,
    kwds,
    magic_arguments,
)

from ipy_stream.busy import kernel_stays_busy
from ipy_stream.chats import DEFAULT_THREAD, Chats
from ipy_stream.commands import configuration_report, explain_arguments, line_command
from ipy_stream.display import CellOutput, TextOutput, WidgetOutput
from ipy_stream.errors import PromptError, clause
from ipy_stream.panes import FinishedRuns
from ipy_stream.reports import DEFAULT_WIDTH
from ipy_stream.request import Options, StreamRequest, build_request
from ipy_stream.run import Run
from ipy_stream.settings import StreamSettings

__all__ = ["StreamMagics"]


class _PlainHelp(MagicHelpFormatter):
    """%%stream? as plain text: a usage line, not a reStructuredText code block."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: Any = "Usage: %%") -> None:
        super().add_usage(usage, actions, groups, prefix)


@magics_class
class StreamMagics(StreamSettings, Magics):
    """Stream LLM answers into the notebook. Configure with ``%config StreamMagics.<name>``."""

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
    @argument(
        "--reasoning-out",
        metavar="NAME",
        help="Store the model's thinking (str; a dict with several models) in this variable.",
    )
    @argument(
        "--timeout",
        type=float,
        help="Seconds without a token before giving up (models named for a server).",
    )
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

        A DataFrame or Series in {name} is sent as a Markdown table of at most
        max_rows rows and max_columns columns, with a note of its whole shape and
        what was left out; a matplotlib figure or Axes, a PIL or IPython Image, or
        PNG/JPEG bytes is sent as an image (for models that read images).

        The answer appears while it is generated and stays in the notebook, rendered
        (sanitized HTML and the plain text), so saved and exported notebooks show it;
        with -o NAME it is also stored in the variable NAME. HTML in answers is shown
        as text, never run. Interrupt the kernel to stop a stream: the partial answer
        is kept.

        A model's thinking streams in a Thinking section above the answer, folded once
        the answer starts; it is never part of the answer (--reasoning-out NAME keeps
        it). Tool calls the model streams show under the answer as they grow.

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

            %%stream -m gpt-4o-mini
            What stands out in {df}? Explain this plot: {fig}

        -m takes an OpenAI model name (needs OPENAI_API_KEY, or OPENAI_BASE_URL
        pointing at an OpenAI-compatible server such as Ollama, vLLM, llama.cpp or
        LM Studio), the name of a variable holding any LangChain chat model or
        Runnable, or demo (offline, no key).

        Line commands: %stream (configuration and commands), %stream history
        [THREAD], %stream reset [THREAD], %stream log [-n N] [TEXT].

        Configuration (%config StreamMagics.<name> = value): model, base_url,
        temperature, max_tokens, system, refresh_interval, timeout, max_retries,
        max_rows, max_columns, max_prompt_chars, view, show_reasoning, log_enabled,
        log_path.
        """
        if cell is None:
            try:
                text = line_command(
                    line,
                    chats=self.chats,
                    log_path=self.log_path,
                    width=self._width(),
                    configuration=configuration_report(self.rows(os.environ), self.chats.names()),
                )
            except PromptError as exc:
                raise UsageError(str(exc)) from None
            print(text)
            return
        with kernel_stays_busy(self.shell):
            args = self._arguments(line)
            thread: str | None = args.chat
            if thread is not None:  # before its history is read: one run per conversation
                try:
                    self.chats.claim(thread)
                except PromptError as exc:
                    raise UsageError(str(exc)) from None
            run: Run | None = None
            try:
                request = self._request(args, cell)
                run = Run(
                    request,
                    self._output_maker(request),
                    namespace=self._namespace(),
                    chats=self.chats,
                    log_path=self.log_path if self.log_enabled else None,
                    on_log_error=self._warn_log_error,
                )
                if request.background:
                    run.execute_in_background()
                else:
                    run.execute()
            except BaseException:
                # Refused, failed or interrupted at any moment: the run still ends once
                # (a no-op when it has), and the conversation is free again.
                if run is not None:
                    run.stop()
                    with suppress(Exception):
                        run.finish()
                elif thread is not None:
                    self.chats.release(thread)
                raise

    def _namespace(self) -> dict[str, Any]:
        if self.shell is None:  # pragma: no cover - magics are always registered on a shell
            raise UsageError("ipy_stream must be loaded with %load_ext ipy_stream.")
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _arguments(self, line: str) -> argparse.Namespace:
        """The cell's options, or a one-line UsageError."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            reason = clause(str(exc))
            raise UsageError(f"%%stream {line.strip()}: {reason} (check the quotes).") from None
        parser = self.stream.parser
        try:
            args: argparse.Namespace = parser.parse_args(argv)
        except UsageError as exc:
            options = [name for action in parser._actions for name in action.option_strings]
            raise UsageError(explain_arguments(str(exc), options)) from None
        return args

    def _request(self, args: argparse.Namespace, cell: str) -> StreamRequest:
        """The checked request, or a one-line UsageError (nothing is sent)."""
        defaults = self.defaults(os.environ)
        history = self.chats.messages(args.chat) if args.chat is not None else []
        try:
            return build_request(Options(**vars(args)), cell, self._namespace(), defaults, history)
        except PromptError as exc:
            raise UsageError(str(exc)) from None

    def _output_maker(
        self, request: StreamRequest
    ) -> Callable[[Callable[[], None] | None], CellOutput]:
        labels = [call.model.label for call in request.calls]
        sent = [attachment.label for attachment in request.attachments]
        if not self._use_widgets():
            return lambda _stop: TextOutput(
                len(labels), background=request.background, attachments=sent
            )

        def widgets(on_stop: Callable[[], None] | None) -> CellOutput:
            return WidgetOutput(
                labels,
                attachments=sent,
                publish=self._publish,
                kept=self._finished_runs,
                interval=self.refresh_interval,
                on_stop=on_stop,
                show_reasoning=self.show_reasoning,
            )

        return widgets

    def _use_widgets(self) -> bool:
        if self.view != "auto":
            return bool(self.view == "widget")
        return getattr(self.shell, "kernel", None) is not None

    def _width(self) -> int:
        """Columns for %stream log: the terminal's, or a notebook's usual width."""
        if getattr(self.shell, "kernel", None) is not None:
            return DEFAULT_WIDTH
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns

    def _publish(self, bundle: dict[str, Any], display_id: str, *, update: bool) -> None:
        """Show (or, with update, replace in place) one output of this cell."""
        assert self.shell is not None
        self.shell.display_pub.publish(
            data=bundle, metadata={}, transient={"display_id": display_id}, update=update
        )

    def _warn_log_error(self, exc: Exception) -> None:
        if not self._log_warned:
            self._log_warned = True
            print(
                f"ipy_stream: could not write the run log at {self.log_path} ({clause(str(exc))}); "
                "set %config StreamMagics.log_enabled = False to turn it off.",
                file=sys.stderr,
            )
