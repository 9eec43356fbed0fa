"""Parse a ``%%stream`` cell into message templates and fill them from a namespace.

The cell body is a prompt template: ``{name}`` is replaced by the value of the
notebook variable ``name``; ``{{`` and ``}}`` are literal braces. A line that is
exactly ``system:``, ``user:`` or ``assistant:`` (any case, surrounding spaces
ignored) starts a message with that role, so few-shot examples can live in the cell.
A cell without such lines is a single user message.

Nothing here knows IPython or LangChain: it is ``(cell, options, namespace) -> request``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ipy_stream.errors import PromptError, clause

__all__ = ["Prompt", "Role", "fill", "parse_cell", "template_variables"]

Role = Literal["system", "user", "assistant"]

_ROLE_LINE = re.compile(r"^[ \t]*(system|user|assistant)[ \t]*:[ \t]*$", re.IGNORECASE | re.ASCII)
# Only real line ends: str.splitlines() also splits at form feeds, U+2028 and others,
# which would change the text sent.
_LINE_END = re.compile(r"\r\n|\r|\n")
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Prompt:
    """A parsed cell: message templates in order, and the variables they use."""

    messages: tuple[tuple[Role, str], ...]
    variables: tuple[str, ...]


def template_variables(template: str, *, where: str = "the cell") -> list[str]:
    """Names used as ``{name}`` in ``template``, in order of first use.

    Raises PromptError for unbalanced braces or fields that are not plain names.
    """
    names: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise PromptError(
            f"{where.capitalize()} has an unmatched brace ({clause(str(exc))}). "
            "Write {{ and }} for literal braces, {name} to insert a variable."
        ) from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            if field == "" and not spec and not conversion:
                hint = "write {{}} for literal braces"
            else:
                hint = (
                    "only plain variable names can be inserted (no attributes, indexes or "
                    "formats); compute the value into a variable first"
                )
            raise PromptError(f"{where.capitalize()} contains {shown!r}: {hint}.")
        if field not in names:
            names.append(field)
    return names


def _split_roles(cell: str) -> list[tuple[Role, str]]:
    messages: list[tuple[Role, list[str]]] = []
    current: tuple[Role, list[str]] | None = None
    for line in _LINE_END.split(cell):
        match = _ROLE_LINE.match(line)
        if match:
            role: Role = match.group(1).lower()  # type: ignore[assignment]
            current = (role, [])
            messages.append(current)
            continue
        if current is None:
            current = ("user", [])
            messages.append(current)
        current[1].append(line)
    split = [(role, "\n".join(lines).strip("\n")) for role, lines in messages]
    if len(split) > 1 and split[0][0] == "user" and not split[0][1].strip():
        # Blank lines before the first role line are not a message.
        split.pop(0)
    return split


def parse_cell(cell: str, *, system: str | None = None) -> Prompt:
    """Split the cell into role messages and check every template.

    ``system`` (from ``-s`` or configuration) becomes a leading system message
    unless the cell already starts with one.
    """
    if not cell.strip():
        raise PromptError("The cell is empty: write the prompt on the lines below %%stream.")
    messages = _split_roles(cell)
    if all(not text.strip() for _, text in messages):
        raise PromptError(
            "Every message in the cell is empty: write the prompt below the role line."
        )
    if system and messages[0][0] != "system":
        messages.insert(0, ("system", system))
    variables: list[str] = []
    for index, (role, text) in enumerate(messages):
        where = "the system prompt" if role == "system" and index == 0 else "the cell"
        for name in template_variables(text, where=where):
            if name not in variables:
                variables.append(name)
    if messages[-1][0] == "assistant" and len(messages) == 1:
        raise PromptError("The cell has only an assistant: message; add a user: message to answer.")
    return Prompt(messages=tuple(messages), variables=tuple(variables))


def fill(prompt: Prompt, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the prompt's variables, taken from ``namespace``.

    Raises PromptError naming the first missing variable; nothing is sent then.
    """
    missing = [name for name in prompt.variables if name not in namespace]
    if missing:
        name = missing[0]
        others = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise PromptError(
            f"The prompt uses {{{name}}} but no variable '{name}' is defined{others}. "
            f"Define it in a cell above, or write {{{{{name}}}}} for literal braces."
        )
    return {name: namespace[name] for name in prompt.variables}
