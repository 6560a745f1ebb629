"""Model storage on S3 or any S3-compatible store: upload, download, list (extra ``aws``).

Plain functions over a boto3 client, raising the :mod:`resilient.errors`
taxonomy: a missing bucket or key is :class:`~resilient.errors.NotFoundError`,
refused credentials :class:`~resilient.errors.AuthenticationError`,
``SlowDown`` :class:`~resilient.errors.RateLimitError`, an unreachable
endpoint :class:`~resilient.errors.ProviderConnectionError`, and so on, each
carrying S3's request id. Like every adapter, this one does not retry:
boto3's own retries (and s3transfer's download retries) are switched off so
that ``@backoff`` alone decides, with the whole stack's budget and deadline.

Credentials, region and endpoint come from the usual AWS places (arguments,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles, ``AWS_REGION``,
``AWS_ENDPOINT_URL_S3``), resolved by botocore. ``endpoint_url`` points at
MinIO, Ceph, moto or any other S3-compatible server.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from resilient.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
    classify,
    error_for_status,
    parse_retry_after,
)

try:
    import boto3  # type: ignore[import-untyped]
    from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("resilient.adapters.s3 needs boto3: pip install 'resilient[aws]'") from exc

__all__ = ["upload", "download", "list", "client", "error_from"]

PROVIDER = "s3"
DEFAULT_REGION = "us-east-1"
_NO_RETRIES = {"total_max_attempts": 1}

# S3 error codes whose meaning the HTTP status alone does not carry (SlowDown is a 503; RequestTimeout a 400).
_CODES: dict[str, type[ProviderError]] = {
    "NoSuchBucket": NotFoundError,
    "NoSuchKey": NotFoundError,
    "NoSuchUpload": NotFoundError,
    "NotFound": NotFoundError,
    "AccessDenied": AuthenticationError,
    "AllAccessDisabled": AuthenticationError,
    "InvalidAccessKeyId": AuthenticationError,
    "SignatureDoesNotMatch": AuthenticationError,
    "ExpiredToken": AuthenticationError,
    "InvalidToken": AuthenticationError,
    "SlowDown": RateLimitError,
    "ServiceUnavailable": OverloadedError,
    "InternalError": ServerError,
    "RequestTimeout": ProviderTimeout,
    "InvalidBucketName": InvalidRequestError,
    "EntityTooLarge": InvalidRequestError,
}

_T = TypeVar("_T")
_clients: dict[tuple[str | None, str], Any] = {}
_clients_lock = threading.Lock()


def upload(
    path: str | os.PathLike[str],
    bucket: str,
    key: str,
    *,
    client: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    extra_args: Mapping[str, Any] | None = None,
    transfer_config: TransferConfig | None = None,
) -> dict[str, Any]:
    """Upload the file at ``path`` to ``s3://bucket/key`` (multipart when large); ``{"bucket", "key", "size", "uri"}``.

    ``extra_args`` are S3's upload arguments (``ContentType``, ``Metadata``,
    ``ServerSideEncryption``, ...). A local file that does not exist raises
    :class:`FileNotFoundError` before anything is sent.
    """
    source = Path(path)
    size = source.stat().st_size  # FileNotFoundError here, not an S3 error later
    s3 = client or _client(endpoint_url, region)
    _call(
        lambda: s3.upload_file(
            str(source), bucket, key, ExtraArgs=dict(extra_args or {}) or None, Config=transfer_config or _transfer()
        ),
        bucket,
        key,
    )
    return {"bucket": bucket, "key": key, "size": size, "uri": f"s3://{bucket}/{key}"}


def download(
    bucket: str,
    key: str,
    path: str | os.PathLike[str],
    *,
    client: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    transfer_config: TransferConfig | None = None,
) -> dict[str, Any]:
    """Download ``s3://bucket/key`` to ``path`` (parent folders created); ``{"bucket", "key", "path", "size"}``.

    boto3 writes to a temporary file and renames it at the end, so ``path``
    never holds half a model.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    s3 = client or _client(endpoint_url, region)
    _call(lambda: s3.download_file(bucket, key, str(target), Config=transfer_config or _transfer()), bucket, key)
    return {"bucket": bucket, "key": key, "path": str(target), "size": target.stat().st_size}


def list(  # noqa: A001 - the issue's name for it; builtins.list is used explicitly below
    bucket: str,
    prefix: str = "",
    *,
    client: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    page_size: int | None = None,
) -> builtins.list[dict[str, Any]]:
    """Every object under ``prefix``, in key order: ``[{"key", "size", "last_modified", "etag"}]``.

    Follows S3's pagination (``page_size`` keys a request, S3's default
    1,000) to the end.
    """
    s3 = client or _client(endpoint_url, region)
    return _call(lambda: builtins.list(_objects(s3, bucket, prefix, page_size)), bucket, prefix or None)


def _objects(s3: Any, bucket: str, prefix: str, page_size: int | None) -> Iterator[dict[str, Any]]:
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size} if page_size else {}
    )
    for page in pages:
        for item in page.get("Contents") or []:
            yield {
                "key": item["Key"],
                "size": item.get("Size", 0),
                "last_modified": item.get("LastModified"),
                "etag": str(item.get("ETag") or "").strip('"') or None,
            }


def client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 S3 client with retries off, shared per (endpoint, region): boto3 clients are thread-safe."""
    return _client(endpoint_url, region)


def _client(endpoint_url: str | None, region: str | None) -> Any:
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    cache_key = (endpoint_url, region)
    with _clients_lock:
        found = _clients.get(cache_key)
        if found is None:
            # boto3.client() shares the default Session, which is not thread-safe; a Session of our own is.
            found = _clients[cache_key] = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=Config(retries=_NO_RETRIES)
            )
        return found


def _transfer() -> TransferConfig:
    return TransferConfig(num_download_attempts=1)


def _call(operation: Callable[[], _T], bucket: str, key: str | None) -> _T:
    try:
        return operation()
    except (ClientError, BotoCoreError, boto3.exceptions.Boto3Error) as exc:
        raise error_from(exc, bucket, key) from exc


def error_from(exc: BaseException, bucket: str | None = None, key: str | None = None) -> ProviderError:
    """The taxonomy's error for a boto3/botocore exception from an S3 call.

    boto3 wraps some failures (``S3UploadFailedError``, ``RetriesExceededError``);
    the original cause is unwrapped first.
    """
    where = f"s3://{bucket}/{key or ''}" if bucket else "S3"
    cause = _unwrap(exc)
    if isinstance(cause, ClientError):
        error = cause.response.get("Error") or {}
        meta = cause.response.get("ResponseMetadata") or {}
        code, status = str(error.get("Code") or ""), meta.get("HTTPStatusCode")
        message = f"{code}: {error.get('Message') or cause.operation_name} ({where})"
        fields: dict[str, Any] = {
            "provider": PROVIDER,
            "request_id": meta.get("RequestId"),
            "retry_after": parse_retry_after(meta.get("HTTPHeaders") or {}),
            "body": error,
        }
        cls = _CODES.get(code)
        if cls is not None:
            return cls(message, status=status, **fields)
        if isinstance(status, int):
            return error_for_status(status, message, **fields)
        return ProviderError(message, **fields)
    if isinstance(cause, (NoCredentialsError, PartialCredentialsError)):
        return AuthenticationError(
            f"no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE ({where})",
            provider=PROVIDER,
        )
    kind = classify(cause).kind
    text = f"{type(cause).__name__}: {cause} ({where})"
    if kind == "timeout":
        return ProviderTimeout(text, provider=PROVIDER)
    if kind == "connection":
        return ProviderConnectionError(text, provider=PROVIDER)
    return ProviderError(text, provider=PROVIDER)


def _unwrap(exc: BaseException) -> BaseException:
    """The botocore error inside boto3's transfer wrappers (S3UploadFailedError, RetriesExceededError)."""
    while isinstance(exc, boto3.exceptions.Boto3Error):
        inner = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc
