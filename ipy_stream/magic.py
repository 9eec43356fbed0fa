"""The ``%%stream`` cell magic. The only module that knows IPython."""

from __future__ import annotations

import os
import shlex
import uuid
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Enum, Float, Int, TraitError, Unicode, validate

from ipy_stream.chain import build_chain
from ipy_stream.errors import PromptError, StreamError, describe_error, redact
from ipy_stream.models import ModelSettings, resolve_model
from ipy_stream.outcome import Outcome, footer_text
from ipy_stream.prompt import fill, parse_cell
from ipy_stream.runner import run_stream
from ipy_stream.safe import safe_markdown
from ipy_stream.view import StdoutView, WidgetView

__all__ = ["StreamMagics"]


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

    @magic_arguments()
    @argument("-m", "--model", help="Model name, a variable holding a chat model, or 'demo'.")
    @argument("-s", "--system", help="System message (a template, like the cell).")
    @argument("-t", "--temperature", type=float, help="Sampling temperature.")
    @argument("--max-tokens", type=int, help="Limit on the answer's length in tokens.")
    @argument("-o", "--out", help="Store the answer (str) in this variable.")
    @argument("--timeout", type=float, help="Seconds without a token before giving up.")
    @no_var_expand
    @line_cell_magic
    def stream(self, line: str, cell: str | None = None) -> None:
        """Stream a model's answer to the cell's prompt, live, as Markdown.

        The cell is a prompt template: ``{name}`` is replaced by the notebook
        variable ``name``; write ``{{`` and ``}}`` for literal braces. Lines that are
        exactly ``system:``, ``user:`` or ``assistant:`` start messages of that role.

        The answer appears while it is generated, stays in the notebook as Markdown
        (so saved and exported notebooks show it), and with ``-o NAME`` is stored in
        the variable ``NAME``. Raw HTML in answers is shown as text, never run.
        Interrupt the kernel to stop a stream: the partial answer is kept.

        Examples::

            %%stream -m demo
            Tell me a joke about {animal}

            %%stream -m gpt-4o-mini -o summary -t 0.2
            Summarize this in three bullet points: {text}

            %%stream -m my_model -s "You are a terse reviewer."
            Review this code: {source}

        ``-m`` takes an OpenAI model name (needs ``OPENAI_API_KEY``, or
        ``OPENAI_BASE_URL`` pointing at an OpenAI-compatible server such as Ollama,
        vLLM, llama.cpp or LM Studio), the name of a variable holding any LangChain
        chat model or Runnable, or ``demo`` (offline, no key).

        Configuration (``%config StreamMagics.<name> = value``): model, base_url,
        temperature, max_tokens, system, refresh_interval, timeout, max_retries, view.
        ``%stream`` on its own line shows the current configuration.
        """
        if cell is None:
            self._show_config(line)
            return
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%%stream {line.strip()}: {exc} (check the quotes).") from None
        args = self.stream.parser.parse_args(argv)
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"-o {args.out}: not a valid variable name.")
        api_key = os.environ.get("OPENAI_API_KEY") or None
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or None
        timeout = args.timeout if args.timeout is not None else self.timeout
        if timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds.")
        namespace = self._namespace()
        settings = ModelSettings(
            name=args.model or self.model,
            base_url=base_url,
            api_key=api_key,
            temperature=args.temperature if args.temperature is not None else self.temperature,
            max_tokens=args.max_tokens if args.max_tokens is not None else self.max_tokens,
            timeout=timeout,
            max_retries=self.max_retries,
        )
        try:
            prompt = parse_cell(
                cell, system=args.system if args.system is not None else self.system
            )
            inputs = fill(prompt, namespace)
            resolved = resolve_model(settings, namespace)
        except PromptError as exc:
            raise UsageError(str(exc)) from None

        chain = build_chain(prompt, resolved.runnable)

        def explain(exc: BaseException) -> str:
            message = describe_error(exc, model=settings.name, base_url=resolved.base_url)
            return redact(message, [api_key])

        outcome = self._run(chain, inputs, resolved.label, explain)
        if args.out is not None:
            namespace[args.out] = outcome.text
        if outcome.status == "interrupted":
            kept = f" (kept in '{args.out}')" if args.out else ""
            raise StreamError(
                f"Interrupted after {outcome.tokens} tokens; "
                f"the partial answer is shown above{kept}.",
                interrupted=True,
            )
        if outcome.status == "failed":
            raise StreamError(outcome.message)

    def _namespace(self) -> dict[str, Any]:
        if self.shell is None:  # pragma: no cover - magics are always registered on a shell
            raise UsageError("ipy_stream must be loaded with %load_ext ipy_stream.")
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _use_widgets(self) -> bool:
        if self.view != "auto":
            return bool(self.view == "widget")
        return getattr(self.shell, "kernel", None) is not None

    def _run(self, chain: Any, inputs: dict[str, Any], label: str, explain: Any) -> Outcome:
        if not self._use_widgets():
            text_view = StdoutView(label)
            outcome = run_stream(chain, inputs, text_view, describe_error=explain)
            text_view.finish(outcome)
            return outcome
        view = WidgetView(label, interval=self.refresh_interval)
        display_id = uuid.uuid4().hex
        self._publish(view.widget._repr_mimebundle_(), display_id)
        outcome = run_stream(chain, inputs, view, describe_error=explain)
        view.finish(outcome)
        self._publish(self._final_bundle(label, outcome), display_id, update=True)
        view.close()
        return outcome

    def _publish(self, bundle: dict[str, Any], display_id: str, *, update: bool = False) -> None:
        """Show (or, with update, replace in place) one output of this cell."""
        assert self.shell is not None
        self.shell.display_pub.publish(
            data=bundle, metadata={}, transient={"display_id": display_id}, update=update
        )

    @staticmethod
    def _final_bundle(label: str, outcome: Outcome) -> dict[str, Any]:
        """Plain Markdown that replaces the live widget and that any frontend can show."""
        footer = footer_text(label, outcome).replace("*", "\\*")
        body = safe_markdown(outcome.text) if outcome.text else "*(no answer)*"
        return {
            "text/markdown": f"{body}\n\n<small>{safe_markdown(footer)}</small>\n",
            "text/plain": outcome.text,
        }

    def _show_config(self, line: str) -> None:
        if line.strip():
            raise UsageError(
                f"%stream {line.strip()}: unknown subcommand. Use %%stream as a cell magic, "
                "or %stream alone to see the configuration."
            )
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or "(OpenAI)"
        key = "set" if os.environ.get("OPENAI_API_KEY") else "not set"
        rows = [
            ("model", self.model),
            ("base_url", base_url),
            ("OPENAI_API_KEY", key),
            ("temperature", self.temperature),
            ("max_tokens", self.max_tokens),
            ("system", self.system),
            ("refresh_interval", self.refresh_interval),
            ("timeout", self.timeout),
            ("max_retries", self.max_retries),
            ("view", self.view),
        ]
        width = max(len(name) for name, _ in rows)
        lines = ["ipy_stream configuration (%config StreamMagics.<name> = value):"]
        lines += [f"  {name.ljust(width)}  {value!s}" for name, value in rows]
        lines += ["", "Use %%stream [-m MODEL] [-o NAME] ... as a cell magic; %%stream? for help."]
        print("\n".join(lines))
