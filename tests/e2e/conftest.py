import os

import pytest

GATEWAY_URL = os.environ.get("LLMGATE_E2E_URL", "http://127.0.0.1:8090")
GATEWAY_KEY = os.environ.get("LLMGATE_E2E_KEY", "e2e-key")

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "units": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "units"],
    },
}


@pytest.fixture
def gateway_url():
    return GATEWAY_URL


@pytest.fixture
def gateway_key():
    return GATEWAY_KEY
