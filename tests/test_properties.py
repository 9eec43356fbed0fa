"""Bad input, property-based: arbitrary cells, braces, role lines and Unicode.

An independent oracle states what a cell means (README, "Using %%stream"):

* lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (what a notebook editor shows as a new line);
  every other character, NUL and U+2028 included, is text and reaches the model as is;
* a line that is exactly ``system:``, ``user:`` or ``assistant:`` (ASCII letters in any
  case, spaces or tabs around) starts a message with that role; text before the first
  such line is a user message, unless it is blank; newlines around a message are dropped;
* ``{{`` and ``}}`` are literal braces; ``{name}`` is ``str()`` of the variable ``name``;
  a missing variable, an unmatched brace or a field that is not a plain name is an
  error. ``{name!r}`` / ``{name:>8}`` may be refused or may format as Python would, but
  a format that Python rejects must be refused;
* an empty cell, a cell whose messages are all blank, or a lone assistant message is an
  error.

``parse_cell``/``fill`` must either raise a one-line ``PromptError`` exactly when the
oracle says the cell is wrong, or produce the oracle's messages. Through the magic, a bad
cell is a ``UsageError`` and the model is not called.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from langchain_core.messages import BaseMessage

from ipy_stream.chain import build_template
from ipy_stream.errors import PromptError
from ipy_stream.prompt import fill, parse_cell
from tests.openai_server import StreamServer, tokenize
from tests.support import RecordingChatModel, run

# -- the oracle ------------------------------------------------------------------------

ROLES = ("system", "user", "assistant")
LANGCHAIN_ROLES = {"system": "system", "human": "user", "ai": "assistant"}
LINE_BREAK = re.compile(r"\r\n|\r|\n")
ROLE_LINE = re.compile(r"[ \t]*([A-Za-z]+)[ \t]*:[ \t]*")
FORMATTED_FIELD = re.compile(r"([^!:]+)(?:!([^:]*))?(?::(.*))?", re.DOTALL)
CONVERSIONS: dict[str | None, Callable[[object], object]] = {
    None: lambda value: value,  # no conversion: format() gets the value itself
    "s": str,
    "r": repr,
    "a": ascii,
}


class MustRefuseError(Exception):
    """The oracle says the cell must be refused."""


@dataclass(frozen=True)
class Expected:
    """The oracle's verdict: the messages, or None when the cell must be refused.

    ``lenient`` is set when the cell uses ``{name!conv:spec}`` fields, which may also
    be refused.
    """

    messages: list[tuple[str, str]] | None
    lenient: bool = False


def split_messages(cell: str) -> list[tuple[str, str]]:
    segments: list[tuple[str, list[str]]] = []
    for line in LINE_BREAK.split(cell):
        match = ROLE_LINE.fullmatch(line)
        if match and match.group(1).lower() in ROLES:
            segments.append((match.group(1).lower(), []))
            continue
        if not segments:
            segments.append(("", []))  # text before any role line
        segments[-1][1].append(line)
    messages: list[tuple[str, str]] = []
    for role, lines in segments:
        text = "\n".join(lines).strip("\n")
        if role:
            messages.append((role, text))
        elif text.strip():
            messages.append(("user", text))
    return messages


def field_value(content: str, namespace: Mapping[str, Any]) -> tuple[str, bool]:
    """What ``{content}`` becomes, and whether it had a ``!conv``/``:spec`` part."""
    if content.isidentifier():
        if content not in namespace:
            raise MustRefuseError("missing variable")
        return str(namespace[content]), False
    match = FORMATTED_FIELD.fullmatch(content)
    if not match or not match.group(1).isidentifier():
        raise MustRefuseError("not a plain name")
    name, conversion, spec = match.groups()
    if name not in namespace or conversion not in CONVERSIONS:
        raise MustRefuseError("missing variable or bad conversion")
    try:
        return format(CONVERSIONS[conversion](namespace[name]), spec or ""), True
    except (ValueError, TypeError):
        raise MustRefuseError("a format Python refuses") from None


def substitute(template: str, namespace: Mapping[str, Any]) -> tuple[str, bool]:
    """The filled template, and whether it used a ``!conv``/``:spec`` field."""
    out: list[str] = []
    lenient = False
    index = 0
    while index < len(template):
        char = template[index]
        if template.startswith("{{", index) or template.startswith("}}", index):
            out.append(char)
            index += 2
        elif char == "}":
            raise MustRefuseError("single }")
        elif char == "{":
            end = template.find("}", index + 1)
            if end < 0:
                raise MustRefuseError("unclosed {")
            content = template[index + 1 : end]
            if "{" in content:
                raise MustRefuseError("nested field")
            value, formatted = field_value(content, namespace)
            out.append(value)
            lenient = lenient or formatted
            index = end + 1
        else:
            out.append(char)
            index += 1
    return "".join(out), lenient


def oracle(cell: str, namespace: Mapping[str, Any]) -> Expected:
    messages = split_messages(cell)
    if not messages or all(not text.strip() for _, text in messages):
        return Expected(None)
    if len(messages) == 1 and messages[0][0] == "assistant":
        return Expected(None)
    filled: list[tuple[str, str]] = []
    lenient = False
    try:
        for role, text in messages:
            content, formatted = substitute(text, namespace)
            filled.append((role, content))
            lenient = lenient or formatted
    except MustRefuseError:
        return Expected(None)
    return Expected(filled, lenient)


def is_one_line(message: str) -> bool:
    return bool(message.strip()) and len(LINE_BREAK.split(message.strip())) == 1


def product(cell: str, namespace: Mapping[str, Any]) -> list[tuple[str, str]] | PromptError:
    """What ipy_stream sends for the cell: parse, fill, then the chain's own template."""
    try:
        prompt = parse_cell(cell)
        inputs = fill(prompt, namespace)
    except PromptError as exc:
        return exc
    messages = build_template(prompt).format_messages(**inputs)
    return roles_and_texts(messages)


def roles_and_texts(messages: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """``(role, text)`` of each message, roles named as in a cell."""
    pairs: list[tuple[str, str]] = []
    for message in messages:
        assert isinstance(message.content, str)
        pairs.append((LANGCHAIN_ROLES[message.type], message.content))
    return pairs


def check(got: list[tuple[str, str]] | PromptError, expected: Expected) -> None:
    if isinstance(got, PromptError):
        assert is_one_line(str(got)), f"not one line: {str(got)!r}"
        assert expected.messages is None or expected.lenient, f"refused a good cell: {got}"
    else:
        assert expected.messages is not None, f"accepted a bad cell, sending {got!r}"
        assert got == expected.messages


# -- strategies ------------------------------------------------------------------------

# Characters that have broken text handling somewhere: NUL, CR, Unicode line and
# paragraph separators, NEL, form feed, combining marks, zero-width joiners, bidi
# controls, right-to-left scripts, emoji with skin tones and variation selectors, and
# letters that match ASCII letters case-insensitively (long s, dotless i, dotted I).
TRICKY = (
    "\x00\r\t \xa0\u200b\u200d\u200e\u200f\u202e\u2066\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"
    "\ufeff\u0301\u0308\u05d0\u05e9\u0627\u0644\U0001f600\U0001f469\U0001f3fd\u2764\ufe0f"
    "\xe9\u017f\u0131\u0130\u212a:aSu"
)
characters = st.sampled_from(TRICKY) | st.characters(exclude_categories=["Cs"])
text_chunks = st.text(characters, max_size=6)
DEFINED = ("x", "animal", "n", "名前")
braces = st.sampled_from(
    [
        "{{",
        "}}",
        "{",
        "}",
        "{}",
        "{0}",
        "{x}",
        "{animal}",
        "{n}",
        "{名前}",
        "{missing}",
        "{x.upper}",
        "{x[0]}",
        "{ x }",
        "{x!r}",
        "{n:>4}",
        "{n:d}",
        "{x:d}",
        "{x!z}",
        "{x:{n}}",
        "{{x}}",
    ]
)
newlines = st.sampled_from(["\n", "\n", "\r\n", "\r"])


def spelled(word: str) -> st.SearchStrategy[str]:
    """``word`` in mixed case, now and then with a letter that only looks alike."""
    choices = {
        "s": ["s", "s", "S", "\u017f"],  # long s: re.IGNORECASE matches it to s
        "i": ["i", "i", "I", "\u0131"],  # dotless i: re.IGNORECASE matches it to i
    }
    letters = [st.sampled_from(choices.get(c, [c, c.upper()])) for c in word]
    return st.tuples(*letters).map("".join)


role_lines = st.builds(
    lambda before, word, gap, after: f"\n{before}{word}{gap}:{after}\n",
    st.sampled_from(["", "", " ", "\t"]),
    st.sampled_from(ROLES).flatmap(spelled),
    st.sampled_from(["", "", " "]),
    st.sampled_from(["", "", " ", "\t "]),
)
prose_with_roles = st.sampled_from(["The user: asked", "system: design", "assistant:x"])
cells = st.lists(
    st.one_of(text_chunks, braces, newlines, role_lines, prose_with_roles), max_size=14
).map("".join)
values = st.text(characters, max_size=8)


# -- parse_cell / fill against the oracle ------------------------------------------------


@settings(max_examples=1500, deadline=None)
@given(cell=cells, x=values)
def test_parse_and_fill_agree_with_the_oracle(cell: str, x: str) -> None:
    namespace = {"x": x, "animal": "bears", "n": 3, "名前": "名"}
    check(product(cell, namespace), oracle(cell, namespace))


# -- through the magic -------------------------------------------------------------------

# IPython itself rewrites cells whose lines look like pasted prompts (">>> ", "... ",
# "In [1]: "); that is not ipy_stream's doing, so such bodies are not generated.
PASTED_PROMPT = re.compile(r"^(>>>|\.\.\.)( |$)|^(In \[\d+\]: |\s*\.\.\.+: )")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No shrinking: each example runs a whole cell, and shrinking several failures that
    # way takes minutes. The test above finds the same causes and shrinks them cheaply.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(body=cells, x=values)
def test_the_magic_refuses_bad_cells_with_a_usage_error_and_sends_nothing(
    ip: InteractiveShell, body: str, x: str
) -> None:
    assume(not any(PASTED_PROMPT.match(line) for line in body.splitlines()))
    ip.run_line_magic("config", "StreamMagics.log_enabled = False")
    namespace = {"x": x, "animal": "bears", "n": 3, "名前": "名"}
    model = RecordingChatModel(reply="ok")
    ip.user_ns.update(namespace, model=model)
    ip.user_ns.pop("out", None)
    result, captured = run(ip, "%%stream -m model -o out\n" + body)
    error = result.error_in_exec
    assert error is None or isinstance(error, UsageError), repr(error)
    assert "Traceback" not in captured.stdout + captured.stderr
    expected = oracle(body, ip.user_ns)
    if isinstance(error, UsageError):
        assert model.calls == [], "refused, yet the model was called"
        assert "out" not in ip.user_ns
        check(PromptError(str(error)), expected)
    else:
        (messages,) = model.calls
        check(roles_and_texts(messages), expected)
        assert ip.user_ns["out"] == "ok"


# Each family below was found by the properties above; one test each, so that every
# cause shows as its own failure.


def send(ip: InteractiveShell, line: str, body: str) -> tuple[Any, list[tuple[str, str]]]:
    """Run ``%%stream -m model LINE`` on ``body``; return the result and what was sent."""
    ip.run_line_magic("config", "StreamMagics.log_enabled = False")
    model = RecordingChatModel(reply="ok")
    ip.user_ns.update(model=model, x="val", n=3)
    result, captured = run(ip, f"%%stream -m model {line}\n{body}")
    error = result.error_in_exec
    assert error is None or isinstance(error, UsageError), f"{type(error).__name__}: {error}"
    assert "Traceback" not in captured.stdout + captured.stderr
    if error is not None:
        assert model.calls == []
    return result, [pair for call in model.calls for pair in roles_and_texts(call)]


@pytest.mark.parametrize(
    "body",
    [
        "\u017fystem:\nBe brief.\nuser:\nhi",  # long s
        "u\u017fer:\nhi",
        "a\u017f\u017fistant:\nx\nuser:\ny",
        "ass\u0131stant:\nx\nuser:\ny",  # dotless i
        "ass\u0130stant:\nx\nuser:\ny",  # dotted capital I
    ],
)
def test_role_words_spelled_with_look_alike_letters_do_not_crash(
    ip: InteractiveShell, body: str
) -> None:
    result, sent = send(ip, "-o out", body)
    if result.success:
        # Prose (the oracle's reading: roles are ASCII words), or the role it looks like.
        ascii_body = body.replace("\u017f", "s").replace("\u0131", "i").replace("\u0130", "i")
        assert sent in (oracle(body, {}).messages, oracle(ascii_body, {}).messages)


@pytest.mark.parametrize(
    ("line", "body"),
    [
        ("", "{x:d}"),
        ("", "{x!z}"),
        ("", "{x:{n}}"),
        ("", "{n:z}"),
        ("-s '{x:d}'", "hi"),
    ],
)
def test_fields_python_cannot_format_are_usage_errors(
    ip: InteractiveShell, line: str, body: str
) -> None:
    result, _ = send(ip, line, body)
    assert isinstance(result.error_in_exec, UsageError)


@pytest.mark.parametrize("body", ["{a\nb}", "{a\rb}", "{x\n}"])
def test_usage_errors_are_one_line(ip: InteractiveShell, body: str) -> None:
    result, _ = send(ip, "", body)
    assert isinstance(result.error_in_exec, UsageError)
    assert is_one_line(str(result.error_in_exec)), str(result.error_in_exec)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("\nsystem:\nBe brief.\nuser:\nhi", [("system", "Be brief."), ("user", "hi")]),
        ("  \n\nuser:\nhi", [("user", "hi")]),
    ],
)
def test_blank_lines_before_the_first_role_line_send_no_message(
    ip: InteractiveShell, body: str, expected: list[tuple[str, str]]
) -> None:
    _, sent = send(ip, "", body)
    assert sent == expected


@pytest.mark.parametrize(
    "body",
    ["a\u2028b", "a\u2029b", "page\x0cbreak", "x\x85y", "v\x0bt", "a\u2028user:\u2028b"],
)
def test_characters_that_are_not_line_breaks_in_a_cell_reach_the_model(
    ip: InteractiveShell, body: str
) -> None:
    _, sent = send(ip, "", body)
    assert sent == [("user", body)]


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("--timeout nan", "--timeout"),
        ("--timeout inf", "--timeout"),
        ("-t nan", "-t"),
        ("-t inf", "-t"),
        ("-o class", "class"),
        ("-o None", "None"),
    ],
)
def test_impossible_option_values_are_usage_errors(
    ip: InteractiveShell, option: str, named: str
) -> None:
    result, sent = send(ip, option, "hi")
    assert isinstance(result.error_in_exec, UsageError), f"accepted, sending {sent!r}"
    assert named in str(result.error_in_exec)


# -- tokens cut inside characters' clusters ----------------------------------------------

CLUSTERS = (
    "Fam\xedlia \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 "  # ZWJ family
    "e\u0301te\u0301 x\u0308\u0301 \U0001f1eb\U0001f1f7 "  # combining marks, a flag
    "\U0001f3f3\ufe0f\u200d\U0001f308 \u2764\ufe0f \U0001f44d\U0001f3fd "  # ZWJ, VS16, skin
    "\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd \u0645\u0631\u062d\u0628\u0627 "  # Hebrew, Arabic
    "\u202eevil\u202c \u6f22\u5b57 \uff46\uff55\uff4c\uff4c "  # RLO, CJK, fullwidth
    "NUL\x00 CR\r\nLS\u2028end \U0001d518\U0001d52b\U0001d526"
)


def run_log_answers(log_path: Path) -> list[str]:
    connection = sqlite3.connect(log_path)
    try:
        return [row[0] for row in connection.execute("SELECT answer FROM runs ORDER BY id")]
    finally:
        connection.close()


def stream_text(ip: InteractiveShell, server: StreamServer, text: str) -> Any:
    server.reset()
    server.configure(text=text, rate=0)
    ip.user_ns.pop("out", None)
    result, captured = run(ip, "%%stream -m gpt-4o-mini -o out\nhi")
    assert result.success, captured.stdout + captured.stderr
    (kept,) = captured.final_outputs()
    assert kept["data"]["text/plain"] == text
    assert server.completion_requests[-1].text_sent == text
    return ip.user_ns["out"]


def test_tokens_cut_inside_grapheme_clusters_arrive_exactly(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    tokens = tokenize(CLUSTERS)
    # The server's tokenizer really cuts clusters apart: joiners, combining marks and
    # variation selectors travel in other chunks than the characters they belong to.
    for piece in ("\u200d", "\u0301", "\ufe0f", "\U0001f3fd", "\u05c1"):
        assert any(piece in token and not token.startswith(piece) for token in tokens) or (
            piece in tokens
        )
    assert stream_text(http, server, CLUSTERS) == CLUSTERS
    assert run_log_answers(log_path) == [CLUSTERS]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(characters, min_size=1, max_size=60))
def test_any_text_arrives_exactly(http: InteractiveShell, server: StreamServer, text: str) -> None:
    assert stream_text(http, server, text) == text
