"""boto3's bedrock-runtime client is the judge of the emulator's Bedrock refusals and in-stream errors."""

from __future__ import annotations

import json

import boto3
import botocore.config
import botocore.exceptions
import pytest
from botocore import UNSIGNED

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY_ID = "AKIA" + "EMULATORTEST0001"
BODY = json.dumps(
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": [{"role": "user", "content": "a b c d"}]}
)


def client(emulator, **config):
    return boto3.session.Session().client(
        "bedrock-runtime", endpoint_url=emulator.url, region_name="us-east-1",
        aws_access_key_id=KEY_ID, aws_secret_access_key="emulator" + "-secret",
        config=botocore.config.Config(retries={"total_max_attempts": 1}, **config),
    )  # fmt: skip


def test_an_unsigned_request_is_refused_as_missing_authentication_token(emulator):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(emulator, signature_version=UNSIGNED).invoke_model(modelId=MODEL, body=BODY)

    error = caught.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (403, "MissingAuthenticationTokenException")
    assert emulator.requests[-1].faults == () and emulator.requests[-1].provider == "bedrock"


def test_a_refused_key_is_403_unrecognized_client(emulator):
    emulator.add_fault("bad_key", keys=[KEY_ID])

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(emulator).invoke_model(modelId=MODEL, body=BODY)

    error = caught.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (403, "UnrecognizedClientException")
    assert error["Error"]["Message"] == "The security token included in the request is invalid."


def test_a_throttled_request_carries_no_retry_after(emulator, fake_clock):
    """ThrottlingException has no Retry-After: a client that waits only on the header must back off on its own."""
    emulator.add_fault("rate_limit", rps=1, burst=1)
    bedrock = client(emulator)
    bedrock.invoke_model(modelId=MODEL, body=BODY)

    with pytest.raises(bedrock.exceptions.ThrottlingException) as caught:
        bedrock.invoke_model(modelId=MODEL, body=BODY)

    assert "retry-after" not in caught.value.response["ResponseMetadata"]["HTTPHeaders"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (403, "validationException"),
        (404, "validationException"),
        (429, "throttlingException"),
        (500, "internalServerException"),
        (503, "serviceUnavailableException"),
        (504, "modelTimeoutException"),
    ],
)
def test_an_error_mid_stream_is_a_member_of_the_response_stream_union(emulator, status, code):
    """Only these exception types may arrive in Bedrock's stream; botocore reads any other as an error without a code."""
    emulator.add_fault("truncate_stream", after=2, error=True, status=status)
    answer = client(emulator).invoke_model_with_response_stream(modelId=MODEL, body=BODY)

    with pytest.raises(botocore.exceptions.EventStreamError) as caught:
        list(answer["body"])

    assert caught.value.response["Error"]["Code"] == code
