"""Model storage on S3 behind @backoff: upload a model file, list the bucket, download it back.

Run: python examples/s3_models.py [endpoint_url] [bucket]
Credentials and region come from the usual AWS places. With no endpoint and
no ``AWS_ACCESS_KEY_ID``, a local moto S3 server (``pip install 'moto[server]'``)
is started on 127.0.0.1 with placeholder credentials, so the example runs
anywhere without touching AWS.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from resilient import backoff
from resilient.adapters import s3

upload = backoff(max_retries=3)(s3.upload)
download = backoff(max_retries=3)(s3.download)
list_models = backoff(max_retries=3)(s3.list)


def main(endpoint_url: str | None = None, bucket: str = "resilient-example-models") -> dict[str, Any]:
    with server(endpoint_url) as url, tempfile.TemporaryDirectory() as folder:
        if url != endpoint_url:  # our own local server: the bucket is ours to create
            s3.client(url).create_bucket(Bucket=bucket)
        model = Path(folder, "tiny-model.bin")
        model.write_bytes(os.urandom(64 * 1024))
        uploaded = upload(model, bucket, "models/tiny/model.bin", endpoint_url=url)
        listed = list_models(bucket, "models/", endpoint_url=url)
        copy = download(bucket, "models/tiny/model.bin", Path(folder, "copy", "model.bin"), endpoint_url=url)
        same = Path(copy["path"]).read_bytes() == model.read_bytes()
    return {"uploaded": uploaded, "listed": [o["key"] for o in listed], "downloaded_size": copy["size"], "same": same}


@contextmanager
def server(endpoint_url: str | None) -> Iterator[str | None]:
    """``endpoint_url`` if given, AWS itself with real credentials, else a local moto S3 server."""
    if endpoint_url or os.environ.get("AWS_ACCESS_KEY_ID"):
        yield endpoint_url
        return
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise

    placeholders = {"AWS_ACCESS_KEY_ID": "example", "AWS_SECRET_ACCESS_KEY": "example", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {name: os.environ.get(name) for name in placeholders}
    os.environ.update(placeholders)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        moto.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


if __name__ == "__main__":
    print(main(*sys.argv[1:3]))
