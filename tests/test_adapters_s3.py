"""S3 model storage against moto's S3 server on 127.0.0.1: a real S3-compatible HTTP server, not an in-process mock."""

from __future__ import annotations

import importlib.util
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError  # noqa: E402

from resilient import (  # noqa: E402
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    ProviderConnectionError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
    classify,
)
from resilient.adapters import s3  # noqa: E402

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIDTESTTESTTEST",
    "AWS_SECRET_ACCESS_KEY": "test-secret-not-real",
    "AWS_SESSION_TOKEN": "test-token",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask 169.254.169.254 for credentials
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, shared by this module, with fake credentials set."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3.client(endpoint).create_bucket(Bucket=name)
    return name


def test_upload_then_download_gives_back_the_same_bytes(endpoint, bucket, tmp_path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"\x00weights\xff" * 1000)

    uploaded = s3.upload(source, bucket, "llama/model.bin", endpoint_url=endpoint)
    downloaded = s3.download(bucket, "llama/model.bin", tmp_path / "out" / "model.bin", endpoint_url=endpoint)

    assert uploaded == {"bucket": bucket, "key": "llama/model.bin", "size": 9_000, "uri": f"s3://{bucket}/llama/model.bin"}
    assert downloaded["size"] == 9_000
    assert (tmp_path / "out" / "model.bin").read_bytes() == source.read_bytes()


def test_a_large_file_goes_up_in_parts(endpoint, bucket, tmp_path) -> None:
    transfer = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * (11 * 1024 * 1024 // 256))

    s3.upload(source, bucket, "big.bin", endpoint_url=endpoint, transfer_config=transfer)

    head = s3.client(endpoint).head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag: three parts


def test_upload_passes_extra_args(endpoint, bucket, tmp_path) -> None:
    source = tmp_path / "config.json"
    source.write_text("{}")

    s3.upload(source, bucket, "config.json", endpoint_url=endpoint, extra_args={"ContentType": "application/json",
                                                                                "Metadata": {"revision": "7"}})  # fmt: skip

    head = s3.client(endpoint).head_object(Bucket=bucket, Key="config.json")
    assert (head["ContentType"], head["Metadata"]) == ("application/json", {"revision": "7"})


def test_list_returns_every_object_under_the_prefix_in_key_order(endpoint, bucket, tmp_path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"abc")
    for key in ("models/b.bin", "models/a.bin", "other/c.bin"):
        s3.upload(source, bucket, key, endpoint_url=endpoint)

    listed = s3.list(bucket, "models/", endpoint_url=endpoint)

    assert [(o["key"], o["size"]) for o in listed] == [("models/a.bin", 3), ("models/b.bin", 3)]
    assert all(o["etag"] and o["last_modified"] for o in listed)
    assert [o["key"] for o in s3.list(bucket, endpoint_url=endpoint)] == ["models/a.bin", "models/b.bin", "other/c.bin"]


def test_list_follows_pagination_to_the_end(endpoint, bucket) -> None:
    client = s3.client(endpoint)
    for i in range(5):
        client.put_object(Bucket=bucket, Key=f"shard-{i:05d}", Body=b"")

    listed = s3.list(bucket, "shard-", endpoint_url=endpoint, page_size=2)

    assert [o["key"] for o in listed] == [f"shard-{i:05d}" for i in range(5)]


def test_an_empty_prefix_lists_nothing_without_error(endpoint, bucket) -> None:
    assert s3.list(bucket, "nothing/", endpoint_url=endpoint) == []


def test_a_missing_bucket_is_not_found_with_the_request_id(endpoint, tmp_path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")

    with pytest.raises(NotFoundError) as uploading:
        s3.upload(source, "no-such-bucket", "k", endpoint_url=endpoint)
    with pytest.raises(NotFoundError) as listing:
        s3.list("no-such-bucket", endpoint_url=endpoint)

    for caught in (uploading, listing):
        assert caught.value.status == 404 and caught.value.provider == "s3"
        assert "NoSuchBucket" in caught.value.message and caught.value.request_id
        assert not classify(caught.value).retryable


def test_a_missing_key_is_not_found_and_leaves_no_file(endpoint, bucket, tmp_path) -> None:
    target = tmp_path / "model.bin"

    with pytest.raises(NotFoundError) as caught:
        s3.download(bucket, "missing.bin", target, endpoint_url=endpoint)

    assert caught.value.status == 404 and "s3://" in caught.value.message
    assert not target.exists()


def test_a_missing_local_file_is_a_file_error_before_any_request(endpoint, bucket, tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        s3.upload(tmp_path / "absent.bin", bucket, "k", endpoint_url=endpoint)


def test_an_unreachable_endpoint_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there

    with pytest.raises(ProviderConnectionError) as caught:
        s3.list("models", endpoint_url=f"http://127.0.0.1:{port}")

    assert classify(caught.value).retryable


def test_missing_credentials_are_an_authentication_error_naming_the_variables(endpoint, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")

    with pytest.raises(AuthenticationError) as caught:
        s3.list("models", client=client)

    assert "AWS_ACCESS_KEY_ID" in caught.value.message


def test_the_adapter_does_not_retry(endpoint, bucket) -> None:
    config = s3.client(endpoint).meta.config

    assert config.retries["total_max_attempts"] == 1


# ------------------------------------------------------------ the error table, for codes moto does not produce


def client_error(code: str, status: int, headers: dict[str, str] | None = None) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "from S3"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "RID123", "HTTPHeaders": headers or {}},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("AccessDenied", 403, AuthenticationError),
        ("InvalidAccessKeyId", 403, AuthenticationError),
        ("SignatureDoesNotMatch", 403, AuthenticationError),
        ("SlowDown", 503, RateLimitError),
        ("ServiceUnavailable", 503, OverloadedError),
        ("InternalError", 500, ServerError),
        ("RequestTimeout", 400, ProviderTimeout),
        ("InvalidBucketName", 400, InvalidRequestError),
        ("NoSuchKey", 404, NotFoundError),
        ("404", 404, NotFoundError),
        ("SomethingNew", 502, ServerError),
    ],
)
def test_s3_error_codes_map_to_the_taxonomy(code, status, error) -> None:
    exc = s3.error_from(client_error(code, status), "models", "a.bin")

    assert type(exc) is error
    assert (exc.status, exc.request_id, exc.provider) == (status, "RID123", "s3")
    assert exc.message == f"{code}: from S3 (s3://models/a.bin)"


def test_retry_after_from_s3_headers_is_kept() -> None:
    exc = s3.error_from(client_error("SlowDown", 503, {"retry-after": "2"}))

    assert exc.retry_after == 2.0


@pytest.mark.parametrize(
    ("boto_error", "error"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ProviderConnectionError),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), ProviderTimeout),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), ProviderTimeout),
    ],
)
def test_transport_failures_map_to_the_taxonomy(boto_error, error) -> None:
    assert type(s3.error_from(boto_error)) is error


def test_a_failed_upload_is_unwrapped_to_its_client_error() -> None:
    try:
        try:
            raise client_error("AccessDenied", 403)
        except ClientError as inner:
            raise boto3.exceptions.S3UploadFailedError("Failed to upload") from inner
    except boto3.exceptions.S3UploadFailedError as wrapped:
        exc = s3.error_from(wrapped, "models", "a.bin")

    assert isinstance(exc, AuthenticationError) and exc.status == 403


def test_a_client_built_by_the_caller_is_used_as_is(endpoint, bucket) -> None:
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
    )
    client.put_object(Bucket=bucket, Key="k", Body=b"v")

    assert [o["key"] for o in s3.list(bucket, client=client)] == ["k"]


def test_the_example_runs_on_its_own_local_s3_server(endpoint, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    path = Path(__file__).resolve().parents[1] / "examples" / "s3_models.py"
    spec = importlib.util.spec_from_file_location("s3_models", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    result = example.main()

    assert result["listed"] == ["models/tiny/model.bin"]
    assert result["uploaded"]["size"] == result["downloaded_size"] == 64 * 1024 and result["same"]
