"""Retrying a plain `requests` call: a local server answers 503, then 429 with Retry-After, then 200.

Run: python examples/retry_requests.py
Shows that @backoff understands a user's own `requests.HTTPError` (status and
headers) without any adapter, and that @circuit stays closed through it.
"""

from __future__ import annotations

import http.server
import json
import threading

import requests

import resilient
from resilient import backoff, circuit


SCRIPT = [(503, {}), (429, {"Retry-After": "0.05"}), (200, {})]


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    script: list[tuple[int, dict[str, str]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        status, headers = self.script.pop(0) if self.script else (200, {})
        body = json.dumps({"text": "hello"} if status == 200 else {"error": "try later"}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> dict:
    handler = type("ScriptedHandler", (FlakyHandler,), {"script": list(SCRIPT)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/v1/chat"
    try:

        @circuit(fail_max=5, reset_timeout=30)
        @backoff(max_retries=3, initial_delay=0.01, jitter=None)
        def ask(prompt: str) -> str:
            response = requests.post(url, json={"prompt": prompt}, timeout=5)
            response.raise_for_status()
            return response.json()["text"]

        answer = ask("hi")
        print("answer:", answer)
        for layer in resilient.describe(ask):
            print(layer["layer"], layer["stats"])
        return {"answer": answer, "layers": resilient.describe(ask)}
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


if __name__ == "__main__":
    main()
