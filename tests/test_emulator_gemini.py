"""The official google-genai client is the judge of the emulator's Gemini API."""

from __future__ import annotations

import httpx
import pytest
from google import genai
from google.genai import errors, types

from resilient.testing.emulator.content import answer, count_tokens, tokens

KEY = "AIza" + "Test0123456789abcdefghijkl"
OAUTH_TOKEN = "ya29." + "test-token"  # an OAuth 2 access token, as Google issues them


@pytest.fixture
def client(emulator):
    options = types.HttpOptions(base_url=emulator.url, retry_options=types.HttpRetryOptions(attempts=1))
    return genai.Client(api_key=KEY, http_options=options)


def test_generate_content(client, emulator):
    reply = client.models.generate_content(model="gemini-2.0-flash", contents="What is a prime?")
    assert reply.text == answer("What is a prime?")[0]
    assert reply.usage_metadata.candidates_token_count == count_tokens(reply.text)
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert emulator.requests[-1].key == "AIza…ijkl"


def test_stream_generate_content(client):
    chunks = list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="What is a prime?"))
    assert "".join(c.text for c in chunks) == answer("What is a prime?")[0]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_stream_events_end_their_lines_in_crlf_as_googles_do(emulator):
    """Google frames events as ``data: {...}\\r\\n\\r\\n``: a reader that splits on ``\\n\\n`` must fail here too."""
    body = {"contents": [{"parts": [{"text": "What is a prime?"}]}]}
    url = emulator.url + "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    raw = httpx.post(url, json=body, headers={"x-goog-api-key": KEY}).content
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b"" and len(events) - 1 == len(tokens(answer("What is a prime?")[0]))
    assert all(e.startswith(b"data: {") and b"\n" not in e for e in events[:-1])


def test_a_wrong_shape_fault_keeps_the_streams_crlf_framing(emulator):
    emulator.add_fault("malformed", mode="wrong_shape")
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    url = emulator.url + "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    raw = httpx.post(url, json=body, headers={"x-goog-api-key": KEY}).content
    assert raw.startswith(b'data: {"emulator":') and raw.endswith(b"}\r\n\r\n") and b"}\n\n" not in raw


def test_function_call(client):
    declaration = types.FunctionDeclaration(
        name="get_weather",
        parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
    )
    reply = client.models.generate_content(
        model="gemini-2.0-flash",
        contents="Weather in Rome",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])]),
    )
    call = reply.function_calls[0]
    assert (call.name, call.args) == ("get_weather", {"city": "Weather in Rome"})


def test_embed_content_single_and_batch(client):
    one = client.models.embed_content(model="text-embedding-004", contents="hello")
    two = client.models.embed_content(
        model="text-embedding-004", contents=["hello", "world"], config=types.EmbedContentConfig(output_dimensionality=32)
    )
    assert len(one.embeddings[0].values) == 768
    assert [len(e.values) for e in two.embeddings] == [32, 32]


def test_rate_limit_is_a_client_error_429_with_retry_info(client, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=4, burst=1)
    client.models.generate_content(model="gemini-2.0-flash", contents="x")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.0-flash", contents="x")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "0.25s"


def test_an_error_mid_stream_is_bare_json_that_the_official_client_raises(client, emulator):
    emulator.add_fault("truncate_stream", after=1, error=True, status=429, retry_after=3)
    raw = httpx.post(
        emulator.url + "/v1beta/models/m:streamGenerateContent?alt=sse",
        json={"contents": [{"parts": [{"text": "What is a prime?"}]}]},
        headers={"x-goog-api-key": KEY},
    ).text
    assert raw.startswith("data: {") and '\r\n\r\n{\n  "error": {\n    "code": 429,' in raw  # as Google sends it: no data: field

    with pytest.raises(errors.ClientError) as caught:
        list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="What is a prime?"))
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "3s"


def test_key_in_query_string_is_recognised_and_fingerprinted(emulator):
    url = emulator.url + "/v1beta/models/m:generateContent?key=" + KEY
    assert httpx.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]}).status_code == 200
    assert emulator.requests[-1].key == "AIza…ijkl"


@pytest.mark.parametrize("body", [{}, {"contents": []}], ids=["missing", "empty"])
def test_no_contents_is_invalid_argument(emulator, body):
    """google-genai refuses empty contents itself; a hand-written client reaches the API, which answers this."""
    reply = httpx.post(emulator.url + "/v1beta/models/m:generateContent", json=body, headers={"x-goog-api-key": KEY})
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "code": 400,
        "message": "* GenerateContentRequest.contents: contents is not specified\n",
        "status": "INVALID_ARGUMENT",
    }


@pytest.mark.parametrize(
    ("role", "message"),
    [("assistant", "Please use a valid role: user, model."), ("system", "Content with system role is not supported.")],
)
def test_a_turn_with_an_openai_role_is_invalid_argument(client, role, message):
    """The classic OpenAI-to-Gemini translation slip: the API refuses it, so a test against the emulator must fail too."""
    history = [
        types.Content(role="user", parts=[types.Part(text="hi")]),
        types.Content(role=role, parts=[types.Part(text="hello")]),
        types.Content(role="user", parts=[types.Part(text="again")]),
    ]
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.0-flash", contents=history)
    assert (caught.value.code, caught.value.status, caught.value.message) == (400, "INVALID_ARGUMENT", message)


def test_a_turn_without_parts_is_invalid_argument(emulator):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": []}]}
    reply = httpx.post(emulator.url + "/v1beta/models/m:generateContent", json=body, headers={"x-goog-api-key": KEY})
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == "* GenerateContentRequest.contents[1].parts: contents.parts must not be empty.\n"


def test_a_multi_turn_history_with_model_and_function_turns_is_answered(client):
    """The roles the API takes: ``model`` for its own turns, ``function`` (older clients) or ``user`` for results."""
    history = [
        types.Content(role="user", parts=[types.Part(text="Weather in Rome?")]),
        types.Content(role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Rome"})]),
        types.Content(role="function", parts=[types.Part.from_function_response(name="get_weather", response={"t": 21})]),
    ]
    assert client.models.generate_content(model="gemini-2.0-flash", contents=history).text


@pytest.mark.parametrize(
    ("headers", "status", "google_status", "message", "reason"),
    [
        pytest.param(
            {}, 403, "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or"
            " other form of API consumer identity to call this API.",
            None,
            id="no key",
        ),
        # Google reads a Bearer token as OAuth credentials: an API key sent the OpenAI way is 401, not "no key".
        pytest.param(
            {"authorization": "Bearer " + KEY}, 401, "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid"
            " authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            id="an API key as a Bearer token",
        ),
        pytest.param({"authorization": "Bearer " + OAUTH_TOKEN}, 200, None, None, None, id="an OAuth access token"),
    ],
)  # fmt: skip
def test_credentials_are_judged_as_google_judges_them(emulator, headers, status, google_status, message, reason):
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    reply = httpx.post(emulator.url + "/v1beta/models/gemini-2.0-flash:generateContent", json=body, headers=headers)
    error = reply.json().get("error", {})
    details = error.get("details") or [{}]
    assert (reply.status_code, error.get("status"), error.get("message"), details[0].get("reason")) == (
        status, google_status, message, reason,
    )  # fmt: skip


def test_a_refused_key_is_400_api_key_invalid(client, emulator):
    emulator.add_fault("bad_key", keys=[KEY])
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_a_bad_key_faults_status_overrides_googles(client, emulator):
    emulator.add_fault("bad_key", keys=[KEY], status=401)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"  # still Google's refusal


def test_a_429_has_no_retry_after_header_only_retry_info(emulator, fake_clock):
    """Google puts the wait in the body; a client that reads only Retry-After must fail here as against the API."""
    emulator.add_fault("rate_limit", rps=0.5, burst=1)
    url, body = emulator.url + "/v1beta/models/gemini-2.0-flash:generateContent", {"contents": [{"parts": [{"text": "hi"}]}]}
    httpx.post(url, json=body, headers={"x-goog-api-key": KEY})
    reply = httpx.post(url, json=body, headers={"x-goog-api-key": KEY})
    assert reply.status_code == 429 and "retry-after" not in reply.headers
    assert reply.json()["error"]["details"][0]["retryDelay"] == "2s"


def test_models_get_and_list_are_geminis(client, emulator):
    """``/v1/models/{m}`` is also OpenAI's path; a request with a Google key is Gemini's."""
    model = client.models.get(model="gemini-2.0-flash")
    assert (model.name, model.display_name, model.output_token_limit) == ("models/gemini-2.0-flash", "Gemini 2.0 Flash", 8192)
    assert "models/text-embedding-004" in [m.name for m in client.models.list()]
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="gemini-typo-model")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert {r.provider for r in emulator.requests} == {"gemini"}


def test_an_unemulated_method_is_googles_404(client):
    with pytest.raises(errors.ClientError) as caught:
        client.models.count_tokens(model="gemini-2.0-flash", contents="hi")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
