"""The %%stream magic in a real IPython shell with fake chat models (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from ipy_stream.demo import DemoChatModel, demo_reply
from ipy_stream.errors import StreamError
from tests.saved_output import saved
from tests.support import RecordingChatModel, log_rows, run


def test_answer_streams_to_stdout_and_lands_in_out_variable(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    fake.reply = "Why did the bear cross the road?"
    ip.user_ns["model"] = fake
    result, captured = run(ip, "%%stream -m model -o joke\nTell me a joke")
    assert result.success
    assert ip.user_ns["joke"] == "Why did the bear cross the road?"
    assert captured.stdout.startswith("Why did the bear cross the road?\n— model")
    assert "done" in captured.stdout


def test_variables_fill_the_template_and_double_braces_stay_literal(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns.update(model=fake, animal="bears", n=3)
    result, _ = run(ip, '%%stream -m model\nTell {n} jokes about {animal} as JSON {{"a": 1}}')
    assert result.success
    (messages,) = fake.calls
    assert [m.type for m in messages] == ["human"]
    assert messages[0].text == 'Tell 3 jokes about bears as JSON {"a": 1}'


def test_system_option_and_role_lines_become_messages(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns.update(model=fake, topic="sorting")
    cell = (
        "%%stream -m model -s 'You teach {topic}.'\n"
        "user:\nWhat is it?\nassistant:\nAn order.\nUser:\nMore?"
    )
    result, _ = run(ip, cell)
    assert result.success
    (messages,) = fake.calls
    assert [(m.type, m.text) for m in messages] == [
        ("system", "You teach sorting."),
        ("human", "What is it?"),
        ("ai", "An order."),
        ("human", "More?"),
    ]


def test_prose_that_mentions_roles_stays_one_user_message(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns["model"] = fake
    result, _ = run(ip, "%%stream -m model\nThe user: asked\nsystem: design matters\nassistant:x")
    assert result.success
    (messages,) = fake.calls
    assert len(messages) == 1
    assert messages[0].type == "human"


def test_missing_variable_is_a_one_line_usage_error_and_nothing_is_sent(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns.update(model=fake)
    result, captured = run(ip, "%%stream -m model -o out\nJoke about {animal}")
    assert isinstance(result.error_in_exec, UsageError)
    assert "'animal'" in str(result.error_in_exec)
    assert "Traceback" not in captured.stdout + captured.stderr
    assert fake.calls == []
    assert "out" not in ip.user_ns


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("%%stream -m model\nunbalanced { brace", "unmatched brace"),
        ("%%stream -m model\nattribute {df.shape}", "{df.shape}"),
        ("%%stream -m model\n   \n", "empty"),
        ("%%stream -m model --bogus 3\nhi", "--bogus"),
        ("%%stream -m model -o 2bad\nhi", "2bad"),
        ("%%stream -m model -t warm\nhi", "warm"),
        ("%%stream -m notamodel\nhi", "OPENAI_API_KEY"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_problem(
    ip: InteractiveShell, fake: RecordingChatModel, cell: str, expected: str
) -> None:
    ip.user_ns.update(model=fake, notamodel=None, df=object())
    ip.user_ns.pop("notamodel")
    result, captured = run(ip, cell)
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert expected in str(result.error_in_exec)
    assert "Traceback" not in captured.stdout + captured.stderr
    assert fake.calls == []


def test_variable_that_is_not_a_model_is_named(ip: InteractiveShell) -> None:
    ip.user_ns["model"] = 42
    result, _ = run(ip, "%%stream -m model\nhi")
    assert isinstance(result.error_in_exec, UsageError)
    assert "holds a int" in str(result.error_in_exec)


def test_no_key_error_says_what_to_do(ip: InteractiveShell) -> None:
    result, captured = run(ip, "%%stream -m gpt-4o-mini\nhi")
    message = str(result.error_in_exec)
    assert isinstance(result.error_in_exec, UsageError)
    for hint in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "-m demo"):
        assert hint in message
    assert len(captured.stderr.strip().splitlines()) == 1


def test_failure_mid_stream_keeps_partial_text_and_reports_one_line(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    fake.reply = "one two three four five"
    fake.fail_after = 3
    fake.error = ConnectionResetError("connection reset by peer")
    ip.user_ns["model"] = fake
    result, captured = run(ip, "%%stream -m model -o partial\nhi")
    assert isinstance(result.error_in_exec, StreamError)
    assert ip.user_ns["partial"] == "one two three "
    assert "connection reset by peer" in captured.stdout
    assert "Traceback" not in captured.stdout
    assert fake.closed


def test_interrupt_keeps_partial_text_marks_it_and_stops_run_all(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    fake.reply = "alpha beta gamma delta"
    fake.interrupt_after = 2
    ip.user_ns["model"] = fake
    result, captured = run(ip, "%%stream -m model -o partial\nhi")
    assert isinstance(result.error_in_exec, StreamError)
    assert result.error_in_exec.interrupted
    assert ip.user_ns["partial"] == "alpha beta "
    assert "interrupted" in captured.stdout
    assert "kept in 'partial'" in captured.stdout
    assert fake.closed, "the model's stream (and so its HTTP response) must be closed"


def test_the_users_model_object_is_not_changed(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    fake.reply = "a b c"
    ip.user_ns["model"] = fake
    before = fake.model_dump(exclude={"calls", "closed", "sent"})
    result, _ = run(ip, "%%stream -m model -t 0.5 --max-tokens 9 -o out\nhi")
    assert result.success
    assert ip.user_ns["out"] == "a b c"
    assert fake.callbacks is None
    assert fake.model_dump(exclude={"calls", "closed", "sent"}) == before


def test_generic_fake_model_streams_token_by_token(ip: InteractiveShell) -> None:
    ip.user_ns["model"] = GenericFakeChatModel(messages=iter([AIMessage(content="a b c")]))
    result, captured = run(ip, "%%stream -m model -o out\nhi")
    assert result.success
    assert ip.user_ns["out"] == "a b c"
    assert "· 5 tokens ·" in captured.stdout


def test_widget_view_is_replaced_by_sanitized_html_and_the_plain_answer(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    fake.reply = "# Title\n\n**bold** <img src=x onerror=alert(1)> [x](javascript:alert(2))"
    ip.user_ns["model"] = fake
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    result, captured = run(ip, "%%stream -m model -o out\nhi")
    assert result.success
    first = captured.displays[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in first
    (kept,) = captured.final_outputs()
    shown = saved(kept["data"])
    assert shown.answer.body_html == (
        '<h1 class="jp-toc-ignore">Title</h1>\n'
        "<p><strong>bold</strong> &lt;img src=x onerror=alert(1)&gt; "
        "[x](javascript:alert(2))</p>\n"
    )
    assert shown.answer.footer.startswith("model · done")
    assert shown.plain == fake.reply
    assert ip.user_ns["out"] == fake.reply


def test_demo_model_is_labelled_and_quotes_the_filled_prompt(ip: InteractiveShell) -> None:
    ip.user_ns["animal"] = "otters"
    ip.user_ns["instant_demo"] = DemoChatModel(delay=0)
    result, captured = run(ip, "%%stream -m instant_demo -o out\nA joke about {animal}, please")
    assert result.success
    assert "offline `demo` model" in ip.user_ns["out"]
    assert "> A joke about otters, please" in ip.user_ns["out"]
    assert "no API key" in captured.stdout


def test_demo_name_needs_no_key(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ipy_stream.demo.DEFAULT_DELAY", 0.0)
    result, captured = run(ip, "%%stream -m demo -o out\nhello")
    assert result.success
    assert "demo (offline, no key needed) · done" in captured.stdout


def test_config_sets_defaults_and_percent_stream_shows_them(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.user_ns["model"] = fake
    ip.run_line_magic("config", "StreamMagics.model = 'model'")
    ip.run_line_magic("config", "StreamMagics.system = 'Be brief.'")
    result, _ = run(ip, "%%stream\nhi")
    assert result.success
    assert [m.type for m in fake.calls[0]] == ["system", "human"]
    _, captured = run(ip, "%stream")
    assert "model             model" in captured.stdout
    assert "Be brief." in captured.stdout


def test_bad_config_value_is_refused(
    ip: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    run(ip, "%config StreamMagics.refresh_interval = 0")
    assert "between 0.01 and 5" in caplog.text
    _, captured = run(ip, "%stream")
    assert "refresh_interval  0.1" in captured.stdout


def test_help_documents_every_option_with_examples(ip: InteractiveShell) -> None:
    doc = ip.find_cell_magic("stream").__doc__
    for option in ("--model", "--system", "--temperature", "--max-tokens", "--out", "--timeout"):
        assert option in doc
    assert "%%stream -m demo" in doc
    assert "{{" in doc


def test_api_key_never_appears_in_output(
    ip: InteractiveShell, secret_key: str, fake: RecordingChatModel
) -> None:
    fake.fail_after = 1
    fake.error = RuntimeError(f"server said: bad key {secret_key}")
    ip.user_ns["model"] = fake
    _, captured = run(ip, "%%stream -m model -o out\nhi")
    _, shown = run(ip, "%stream")
    everything = captured.stdout + captured.stderr + shown.stdout + repr(ip.user_ns["out"])
    assert "server said: bad key [redacted]" in everything
    assert secret_key not in everything
    assert "OPENAI_API_KEY    set" in shown.stdout


def test_runnable_without_llm_streams_its_output(ip: InteractiveShell) -> None:
    from langchain_core.runnables import RunnableLambda

    ip.user_ns["shout"] = RunnableLambda(lambda value: value.to_string().upper())
    result, _ = run(ip, "%%stream -m shout -o out\nhello")
    assert result.success
    assert ip.user_ns["out"] == "HUMAN: HELLO"


def test_view_bug_shows_a_traceback_not_a_model_failure(
    ip: InteractiveShell, fake: RecordingChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipy_stream import view

    def broken(self: object, text: str) -> None:
        raise ZeroDivisionError("view bug")

    monkeypatch.setattr(view.StdoutView, "append", broken)
    ip.user_ns["model"] = fake
    result, _ = run(ip, "%%stream -m model\nhi")
    assert isinstance(result.error_in_exec, ZeroDivisionError)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("--temprature 0.2", "%%stream: unknown option --temprature; did you mean --temperature?"),
        ("--timout 5", "%%stream: unknown option --timout; did you mean --timeout?"),
        ("--sytem hi", "%%stream: unknown option --sytem; did you mean --system?"),
        ("--zzz", "%%stream: unknown option --zzz; %%stream? lists the options."),
        ("gpt-4o", "%%stream: unexpected 'gpt-4o'; options start with - (%%stream? lists them)."),
        ("-t hot", "%%stream: -t/--temperature takes a number, such as 0.2, not 'hot'."),
        (
            "--max-tokens 2.5",
            "%%stream: --max-tokens takes a whole number, such as 500, not '2.5'.",
        ),
        ("-o", "%%stream: -o/--out needs a value (%%stream? says what each takes)."),
    ],
)
def test_a_mistyped_option_is_named_with_the_closest_one(
    ip: InteractiveShell, fake: RecordingChatModel, line: str, said: str
) -> None:
    ip.user_ns["model"] = fake
    result, _ = run(ip, f"%%stream -m model {line}\nhi")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec) == said
    assert fake.calls == [], "nothing is sent"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("hist", "%stream hist: unknown command (did you mean %stream history?); %stream alone"),
        ("lgo", "%stream lgo: unknown command (did you mean %stream log?); %stream alone"),
        ("zap", "%stream zap: unknown command (use history, reset or log); %stream alone"),
    ],
)
def test_a_mistyped_command_is_named_with_the_closest_one(
    ip: InteractiveShell, line: str, said: str
) -> None:
    result, _ = run(ip, f"%stream {line}")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(said)


def test_the_help_reads_as_plain_text(ip: InteractiveShell) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as shown:
        ip.run_cell("%%stream?\n")
    text = shown.stdout
    assert "Usage: %%stream [-m MODEL]" in text
    assert "::" not in text
    assert "``" not in text
    assert "%%stream -m demo\n    Tell me a joke about {animal}" in text


def test_no_key_for_the_default_model_says_it_is_the_default_and_how_to_change_it(
    ip: InteractiveShell,
) -> None:
    result, _ = run(ip, "%%stream\nhi")
    assert isinstance(result.error_in_exec, UsageError)
    message = str(result.error_in_exec)
    assert message.startswith("gpt-4o-mini (the default model, StreamMagics.model) needs")
    assert "-m demo" in message and "%config StreamMagics.model" in message
    assert "\n" not in message
    result, _ = run(ip, "%%stream -m gpt-4o\nhi")
    assert str(result.error_in_exec).startswith("-m gpt-4o needs OPENAI_API_KEY")


def test_the_demo_model_stops_at_max_tokens_like_a_server(
    ip: InteractiveShell, log_path: Path
) -> None:
    ip.run_line_magic("config", "StreamMagics.view = 'text'")
    result, captured = run(ip, "%%stream -m demo --max-tokens 5 -o short\nHello")
    assert result.success, result.error_in_exec
    whole = demo_reply("Hello")
    assert whole.startswith(ip.user_ns["short"]) and len(ip.user_ns["short"]) < len(whole)
    (row,) = log_rows(log_path)
    assert row["tokens"] == 5
    assert json.loads(row["params"])["max_tokens"] == 5
    assert "done, cut short at the token limit" in captured.stdout
