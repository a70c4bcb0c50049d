"""The official OpenAI SDK against the gateway, as its users call it."""

import json

import openai
import pytest

from conftest import GATEWAY_KEY, GATEWAY_URL, WEATHER_TOOL

# Served by the mock directly, and through an Anthropic provider leaf
# (OpenAI -> Anthropic request, Anthropic events -> OpenAI chunks).
MODELS = ["gpt-4o", "gpt-via-anthropic"]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": WEATHER_TOOL["name"],
            "description": WEATHER_TOOL["description"],
            "parameters": WEATHER_TOOL["input_schema"],
        },
    }
]


def client(**kw):
    return openai.OpenAI(base_url=GATEWAY_URL + "/v1", api_key=GATEWAY_KEY, **kw)


@pytest.mark.parametrize("model", MODELS)
def test_create_text(model):
    resp = client().chat.completions.create(
        model=model, messages=[{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hello there"}]
    )
    assert resp.object == "chat.completion"
    assert resp.model == model
    choice = resp.choices[0]
    assert choice.message.content == "Hello from the llmgate mock model. You said: Hello there"
    assert choice.finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_stream_text_with_usage(model):
    chunks = list(
        client().chat.completions.create(
            model=model,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Stream please"}],
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the llmgate mock model. You said: Stream please"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_calls(model):
    calls = {}
    finish = None
    for chunk in client().chat.completions.create(
        model=model, stream=True, tools=TOOLS, messages=[{"role": "user", "content": "Weather in Rome?"}]
    ):
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                call["id"] = tc.id
            if tc.function and tc.function.name:
                call["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
        finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert json.loads(calls[0]["arguments"]) == {"city": "mock", "units": "c"}


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_final_completion_with_tools(model):
    with client().chat.completions.stream(
        model=model, tools=TOOLS, messages=[{"role": "user", "content": "Weather in Oslo?"}]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock", "units": "c"}
    assert final.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("model", MODELS)
def test_tool_result_round_trip(model):
    c = client()
    first = c.chat.completions.create(model=model, tools=TOOLS, messages=[{"role": "user", "content": "Weather?"}])
    call = first.choices[0].message.tool_calls[0]
    second = c.chat.completions.create(
        model=model,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "Weather?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "22C, sunny"},
        ],
    )
    assert "22C, sunny" in second.choices[0].message.content
    assert second.choices[0].finish_reason == "stop"


def test_wrong_key_is_authentication_error():
    c = openai.OpenAI(base_url=GATEWAY_URL + "/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 401


def test_unknown_model_is_not_found():
    with pytest.raises(openai.NotFoundError) as e:
        client(max_retries=0).chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404
    assert e.value.code == "model_not_found"


def test_malformed_request_is_bad_request():
    with pytest.raises(openai.BadRequestError) as e:
        client(max_retries=0).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": 5}])
    assert e.value.status_code == 400


@pytest.mark.parametrize("model", MODELS)
def test_upstream_rate_limit_is_rate_limit_error(model):
    with pytest.raises(openai.RateLimitError) as e:
        client(max_retries=0).chat.completions.create(model=model, messages=[{"role": "user", "content": "mock:error=429"}])
    assert e.value.status_code == 429


def test_error_mid_stream_raises():
    with pytest.raises(openai.APIError) as e:
        for _ in client(max_retries=0).chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": "mock:stream_error"}]
        ):
            pass
    assert "mock stream error" in str(e.value)


def test_models_list():
    ids = [m.id for m in client().models.list()]
    assert "claude-via-openai" in ids and "gpt-via-anthropic" in ids
