"""The request a cell makes, built without any shell: what is sent, to which models,
with which parameters, or one line saying what is wrong."""

from __future__ import annotations

import dataclasses

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from ipy_stream.errors import PromptError
from ipy_stream.request import Defaults, Options, build_request
from tests.support import RecordingChatModel


def test_a_request_is_built_from_plain_values_and_cannot_change() -> None:
    request = build_request(
        Options(model="demo", system="Be brief.", out="answer"),
        "Tell me about {animal}",
        {"animal": "owls"},
        Defaults(),
    )
    assert [dict(m) for m in request.messages] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me about owls"},
    ]
    assert [call.name for call in request.calls] == ["demo"]
    assert request.out == "answer"
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.out = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        request.inputs["animal"] = "cats"  # type: ignore[index]


def test_earlier_turns_are_sent_before_the_cell_and_only_the_cell_is_kept() -> None:
    history = [HumanMessage("Hi"), AIMessage("Hello!")]
    request = build_request(
        Options(model="demo", chat="default"), "And now?", {}, Defaults(), history
    )
    assert [m["content"] for m in request.messages] == ["Hi", "Hello!", "And now?"]
    assert [m.text for m in request.turn] == ["And now?"]
    assert request.thread == "default"


def test_the_log_records_only_the_parameters_a_model_applies() -> None:
    namespace = {"mine": RecordingChatModel()}
    defaults = Defaults(api_key="sk-test", timeout=30.0, max_retries=4)
    openai_call, variable_call, demo_call = build_request(
        Options(model="gpt-4o-mini,mine,demo", temperature=0.2), "Hi", namespace, defaults
    ).calls
    assert dict(openai_call.params) == {
        "temperature": 0.2,
        "max_tokens": None,
        "timeout": 30.0,
        "max_retries": 4,
        "thread": None,
        "background": False,
    }
    assert variable_call.params["temperature"] == 0.2
    assert variable_call.params["timeout"] is None
    assert variable_call.params["max_retries"] is None
    assert demo_call.params["temperature"] is None
    assert demo_call.params["timeout"] is None


@pytest.mark.parametrize(
    ("model", "says"),
    [("mine", "'mine' is a notebook variable"), ("demo", "the demo model is offline")],
)
def test_a_timeout_a_model_cannot_apply_is_refused_not_ignored(model: str, says: str) -> None:
    with pytest.raises(PromptError, match=says) as caught:
        build_request(
            Options(model=model, timeout=5.0), "Hi", {"mine": RecordingChatModel()}, Defaults()
        )
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (Options(out="class"), "-o class: not a valid variable name."),
        (Options(timeout=-1), "--timeout must be a positive number"),
        (Options(max_tokens=0), "--max-tokens must be a positive whole number."),
        (Options(model="a,,b"), "a model name is empty"),
        (Options(model="demo,demo"), "a model is named twice"),
        (Options(model="demo,x", chat="t"), "-c continues one conversation"),
        (Options(out="a", reasoning_out="a"), "-o and --reasoning-out both name 'a'"),
    ],
)
def test_bad_options_are_one_line_and_build_nothing(options: Options, says: str) -> None:
    with pytest.raises(PromptError) as caught:
        build_request(options, "Hi", {"x": RecordingChatModel()}, Defaults(model="demo"))
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
