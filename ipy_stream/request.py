"""Everything a ``%%stream`` cell asks for, checked and built before anything is sent.

``build_request(options, cell, namespace, defaults, history)`` is pure: it reads the
notebook's variables but changes nothing, and knows nothing of IPython. Bad input
raises :class:`~ipy_stream.errors.PromptError` with one line that says what to do; the
magic shows it as a ``UsageError``. The result, a frozen :class:`StreamRequest`,
holds the messages exactly as they will be sent, each model's chain, and the
parameters each model really applies (which is what the run log records).
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable

from ipy_stream.chain import (
    HISTORY,
    build_chain,
    build_template,
    message_dicts,
    sent_chars,
    turn_messages,
)
from ipy_stream.context import Attachment, ImagePart, Limits, budget_error, prepare
from ipy_stream.errors import PromptError, describe_error, redact, sentence
from ipy_stream.models import ModelSettings, ResolvedModel, resolve_model
from ipy_stream.prompt import Prompt, fill, parse_cell, template_variables
from ipy_stream.runlog import public_url

__all__ = ["Defaults", "ModelCall", "Options", "StreamRequest", "build_request"]


@dataclass(frozen=True)
class Options:
    """The options written on the ``%%stream`` line (None: not given)."""

    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    out: str | None = None
    reasoning_out: str | None = None
    timeout: float | None = None
    chat: str | None = None
    bg: bool = False


@dataclass(frozen=True)
class Defaults:
    """What applies when an option is not given: configuration and environment."""

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    system: str | None = None
    timeout: float = 60.0
    max_retries: int = 2
    max_rows: int = 50
    max_columns: int = 20
    max_prompt_chars: int = 250_000


@dataclass(frozen=True)
class ModelCall:
    """One model's part of a request."""

    name: str
    """As given with ``-m`` (or the default)."""
    model: ResolvedModel
    chain: Runnable[Any, Any]
    params: Mapping[str, Any]
    """What the run log records: the parameters this model applies (None: not applied),
    the conversation thread and whether the run is in the background."""
    explain: Callable[[BaseException, int], str]
    """One readable line for an exception, after that many tokens; never the key."""


@dataclass(frozen=True)
class StreamRequest:
    """A checked cell, ready to stream: nothing in it has been sent yet."""

    calls: tuple[ModelCall, ...]
    inputs: Mapping[str, Any]
    """The template's values, taken from the notebook (and earlier turns with ``-c``)."""
    messages: tuple[Mapping[str, str], ...]
    """The messages as sent, ``{"role", "content"}``."""
    turn: tuple[BaseMessage, ...]
    """This cell's own messages, kept in the conversation with ``-c``."""
    attachments: tuple[Attachment, ...] = ()
    """The tables, cut values and images the messages carry, in the cell's order."""
    out: str | None = None
    reasoning_out: str | None = None
    thread: str | None = None
    background: bool = False


def build_request(
    options: Options,
    cell: str,
    namespace: Mapping[str, Any],
    defaults: Defaults,
    history: Sequence[BaseMessage] = (),
) -> StreamRequest:
    """Check the options and the cell, fill the prompt, and build each model's chain.

    ``history`` holds the earlier turns of ``options.chat``'s thread. Raises
    PromptError when anything is wrong, or when the prompt is larger than
    ``defaults.max_prompt_chars``; nothing has been sent then.
    """
    _check(options)
    names = _model_names(options, defaults)
    system = options.system if options.system is not None else defaults.system
    prompt = parse_cell(cell, system=system)
    context = prepare(fill(prompt, namespace), Limits(defaults.max_rows, defaults.max_columns))
    _check_image_roles(prompt, context.images)
    inputs = context.inputs
    template = build_template(prompt, history=options.chat is not None, images=context.images)
    if options.chat is not None:
        inputs[HISTORY] = list(history)
    try:
        filled = template.format_messages(**inputs)
        sent = message_dicts(filled)
        turn = []
        if options.chat is not None:  # only a conversation keeps the turn, and its labels
            labels = {inputs[a.name]: a.label for a in context.attachments if a.kind != "image"}
            turn = turn_messages(prompt, inputs, context.images, labels)
    except (ValueError, TypeError, KeyError) as exc:
        raise PromptError(sentence(f"The prompt could not be filled: {exc}")) from None
    total = sent_chars(filled)
    if total > defaults.max_prompt_chars:
        raise budget_error(
            total,
            defaults.max_prompt_chars,
            context.sizes,
            context.attachments,
            earlier=sent_chars(history) if options.chat is not None else 0,
        )
    settings = _settings(options, defaults)
    calls = []
    models: list[ResolvedModel] = []
    try:
        for name in names:
            model = resolve_model(settings(name), namespace)
            models.append(model)
            _check_applied(options, name, model)
            params = {
                **{key: model.applied.get(key) for key in _TUNABLE},
                "thread": options.chat,
                "background": options.bg,
            }
            calls.append(
                ModelCall(
                    name=name,
                    model=model,
                    chain=build_chain(template, model.runnable),
                    params=MappingProxyType(params),
                    explain=_explainer(name, model, defaults.api_key, tuple(context.images)),
                )
            )
    except BaseException:  # refused: the clients already made are not left open
        for model in models:
            if model.close is not None:
                model.close()
        raise
    return StreamRequest(
        calls=tuple(calls),
        inputs=MappingProxyType(inputs),
        messages=tuple(MappingProxyType(m) for m in sent),
        turn=tuple(turn),
        attachments=context.attachments,
        out=options.out,
        reasoning_out=options.reasoning_out,
        thread=options.chat,
        background=options.bg,
    )


_TUNABLE = ("temperature", "max_tokens", "timeout", "max_retries")


def _check(options: Options) -> None:
    for flag, name in (("-o", options.out), ("--reasoning-out", options.reasoning_out)):
        if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
            raise PromptError(f"{flag} {name}: not a valid variable name.")
    if options.out is not None and options.out == options.reasoning_out:
        raise PromptError(
            f"-o and --reasoning-out both name '{options.out}': give the thinking another name."
        )
    if options.timeout is not None and not (math.isfinite(options.timeout) and options.timeout > 0):
        raise PromptError("--timeout must be a positive number of seconds.")
    if options.temperature is not None and not math.isfinite(options.temperature):
        raise PromptError("-t must be a finite number, such as 0.2.")
    if options.max_tokens is not None and options.max_tokens <= 0:
        raise PromptError("--max-tokens must be a positive whole number.")


def _model_names(options: Options, defaults: Defaults) -> list[str]:
    names = [name.strip() for name in (options.model or defaults.model).split(",")]
    if any(not name for name in names):
        raise PromptError(f"-m {options.model}: a model name is empty (write -m a,b).")
    if len(set(names)) != len(names):
        raise PromptError(f"-m {options.model}: a model is named twice.")
    if len(names) > 1 and options.chat is not None:
        raise PromptError("-c continues one conversation: use it with one model, not -m a,b.")
    return names


def _settings(options: Options, defaults: Defaults) -> Callable[[str], ModelSettings]:
    def settings(name: str) -> ModelSettings:
        return ModelSettings(
            name=name,
            base_url=defaults.base_url,
            api_key=defaults.api_key,
            temperature=_given(options.temperature, defaults.temperature),
            max_tokens=_given(options.max_tokens, defaults.max_tokens),
            timeout=_given(options.timeout, defaults.timeout),
            max_retries=defaults.max_retries,
            from_default=options.model is None,
        )

    return settings


def _given(option: Any, default: Any) -> Any:
    return option if option is not None else default


def _check_applied(options: Options, name: str, model: ResolvedModel) -> None:
    """An option given on the line that this model cannot apply is refused, not ignored."""
    if options.timeout is not None and "timeout" not in model.applied:
        where = (
            "the demo model is offline and never waits"
            if model.is_demo
            else f"'{name}' is a notebook variable: set the timeout where it is created, "
            "e.g. ChatOpenAI(timeout=...)"
        )
        raise PromptError(
            f"--timeout applies to models named for an OpenAI-compatible server; {where}."
        )


def _check_image_roles(prompt: Prompt, images: Mapping[str, ImagePart]) -> None:
    """Chat APIs take images in user messages only."""
    for index, (role, text) in enumerate(prompt.messages):
        if role == "user":
            continue
        for name in template_variables(text):
            if name in images:
                where = (
                    "the system prompt"
                    if role == "system" and index == 0
                    else f"{'an' if role == 'assistant' else 'a'} {role}: message"
                )
                raise PromptError(
                    f"{{{name}}} is an image, and images can only be sent in a user message, "
                    f"not in {where}: move {{{name}}} below a user: line."
                )


def _explainer(
    name: str, model: ResolvedModel, api_key: str | None, images: tuple[str, ...] = ()
) -> Callable[[BaseException, int], str]:
    password = urlsplit(model.base_url).password if model.base_url else None

    def explain(exc: BaseException, tokens: int) -> str:
        message = None
        if images and not tokens:
            from ipy_stream.compat import describe_refused_images

            message = describe_refused_images(exc, name, images)
        if message is None:
            message = describe_error(
                exc, model=name, base_url=public_url(model.base_url), tokens=tokens
            )
        return redact(message, [api_key, password])

    return explain
