"""The official Anthropic SDK against the gateway, as its users call it."""

import anthropic
import pytest

from conftest import GATEWAY_KEY, GATEWAY_URL, WEATHER_TOOL

# Served by the mock directly, and through an OpenAI-compatible provider leaf
# (Anthropic -> OpenAI request, OpenAI chunks -> Anthropic events).
MODELS = ["claude-e2e", "claude-via-openai"]


def client(**kw):
    return anthropic.Anthropic(base_url=GATEWAY_URL, api_key=GATEWAY_KEY, **kw)


@pytest.mark.parametrize("model", MODELS)
def test_create_text(model):
    msg = client().messages.create(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == model
    assert msg.content[0].type == "text"
    assert msg.content[0].text == "Hello from the llmgate mock model. You said: Hello there"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_stream_text_and_final_message(model):
    with client().messages.stream(
        model=model, max_tokens=200, system="Be nice.", messages=[{"role": "user", "content": "Stream please"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3, "text arrives in several deltas"
    assert "".join(pieces) == "Hello from the llmgate mock model. You said: Stream please"
    assert final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_tool_use_then_tool_result(model):
    c = client()
    msg = c.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert msg.stop_reason == "tool_use"
    tool_use = [b for b in msg.content if b.type == "tool_use"][0]
    assert tool_use.name == "get_weather"
    assert tool_use.input == {"city": "mock", "units": "c"}
    follow_up = c.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": msg.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18C, cloudy"}]},
        ],
    )
    assert follow_up.stop_reason == "end_turn"
    assert "18C, cloudy" in follow_up.content[0].text


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_use_get_final_message(model):
    with client().messages.stream(
        model=model,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert "content_block_start" in events and "message_stop" in events
    tool_use = [b for b in final.content if b.type == "tool_use"][0]
    assert tool_use.input == {"city": "mock", "units": "c"}
    assert final.stop_reason == "tool_use"


def test_count_tokens():
    counted = client().messages.count_tokens(
        model="claude-e2e", messages=[{"role": "user", "content": "How many tokens is this sentence?"}]
    )
    assert counted.input_tokens > 0


def test_wrong_key_is_authentication_error():
    c = anthropic.Anthropic(base_url=GATEWAY_URL, api_key="not-the-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        c.messages.create(model="claude-e2e", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 401


def test_unknown_model_is_not_found():
    with pytest.raises(anthropic.NotFoundError) as e:
        client(max_retries=0).messages.create(
            model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert e.value.status_code == 404
    assert e.value.body["error"]["type"] == "not_found_error"


def test_malformed_request_is_bad_request():
    with pytest.raises(anthropic.BadRequestError) as e:
        client(max_retries=0).messages.create(
            model="claude-e2e", max_tokens=10, messages=[{"role": "robot", "content": "x"}]
        )
    assert e.value.status_code == 400
    assert "messages[0].role" in e.value.body["error"]["message"]


@pytest.mark.parametrize("model", MODELS)
def test_upstream_rate_limit_is_rate_limit_error(model):
    with pytest.raises(anthropic.RateLimitError) as e:
        client(max_retries=0).messages.create(
            model=model, max_tokens=10, messages=[{"role": "user", "content": "mock:error=429"}]
        )
    assert e.value.status_code == 429
    assert e.value.response.headers["retry-after"] == "1"


def test_error_mid_stream_raises():
    with pytest.raises(anthropic.APIStatusError) as e:
        with client(max_retries=0).messages.stream(
            model="claude-e2e", max_tokens=100, messages=[{"role": "user", "content": "mock:stream_error"}]
        ) as stream:
            for _ in stream:
                pass
    assert e.value.body["error"]["type"] == "overloaded_error"
