"""The emulator: a threaded HTTP/1.1 server on loopback that speaks every protocol and obeys the fault script.

Why a real server and not a mock transport: the toolkit's users wrap
``requests``, ``httpx`` and the official SDKs, and only a real socket
exercises their connection pools, timeouts, keep-alive and stream parsers the
way production does.

Time (fault windows, token buckets, delays) is read and waited on through a
:class:`resilient.clock.Clock`, so a test with a ``FakeClock`` controls it
exactly. Waits on the real clock are cut short when the server stops, which
is what lets :meth:`Emulator.stop` leave no thread behind.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ... import clock as _clock
from ...secrets import fingerprint, redact
from . import framing
from .content import count_tokens, dumps
from .exchange import BadRequest, Reply, Request, StreamReply
from .faults import Call, Fault, FaultSet, Plan, RefusedKey, make_fault
from .protocols import Protocol, Route, all_routes
from .registry import default_protocols

__all__ = ["Emulator", "RequestRecord"]

log = logging.getLogger("resilient.testing.emulator")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it. ``key`` is a fingerprint, never the key itself."""

    time: float  # the emulator clock's monotonic() when the request arrived
    provider: str | None
    method: str
    path: str
    key: str
    status: int | None  # None: the connection was dropped without an answer
    stream: bool
    faults: tuple[str, ...]


class Emulator:
    """A local stand-in for LLM provider APIs, with faults on command.

    ``with Emulator() as emu:`` starts it on an ephemeral port; point any
    client at ``emu.url``. ``emu.add_fault("rate_limit", rps=5, burst=5)``
    scripts misbehaviour; ``emu.requests`` records what arrived. Hosted
    providers want a key, as the real ones do; local servers (Ollama, TGI,
    TEI, OpenVINO, OPEA) do not, nor any provider named in ``keyless``.
    ``models`` limits the model names served, as a real account's are: a
    request naming another gets the provider's own "model not found".
    A set of names is served by every provider; a dict gives each provider
    its own, ``models={"openai": {"gpt-4o-mini"}, "anthropic":
    {"claude-sonnet-4-5-20250929"}}``, and a provider it leaves out serves
    any name. A model is known by every name its provider takes for it
    (Anthropic's alias without the date, Ollama's name without
    ``:latest``), on every route.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: _clock.Clock | None = None,
        faults: str | Path | None = None,
        keyless: Iterable[str] = (),
        models: Iterable[str] | Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.clock = _clock.resolve(clock)
        #: Providers whose requests are served without a key. A hosted provider refuses them (OpenAI 401,
        #: Gemini 403...), but OpenAI's ``/v1`` dialect is also what keyless local servers speak (vLLM,
        #: llama.cpp, TGI's Messages API): ``keyless={"openai"}`` makes the emulator one of those.
        #: A set, read on every request, so a test may change it while the emulator runs.
        self.keyless: set[str] = set(keyless)
        self._protocols = default_protocols(self.clock)
        #: Model names the hosted providers serve (OpenAI and its copies, Anthropic, Gemini, Ollama, Bedrock):
        #: a chat, stream or embeddings request naming another gets the provider's 404 (Bedrock: 400), and
        #: the model lists list these. A set is every provider's; a dict maps a provider's name to its own
        #: set (a provider not in it takes any name). ``None`` (the default) takes any name. Read on every
        #: request, so a test may change it (or assign another set or dict, or None) while the emulator runs.
        self.models = _model_names(models, {protocol.name for protocol in self._protocols})
        self._address = (host, port)
        self._faults = FaultSet()
        self._records: list[RequestRecord] = []
        self._records_lock = threading.Lock()
        self._serial = itertools.count(1)
        self._stopping = threading.Event()
        self._routes: list[Route] = all_routes(self._protocols)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if faults is not None:
            self.load_faults(faults)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Emulator:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._stopping.clear()
        try:
            self._server = _Server(self._address, _Handler, self)
        except OSError as exc:  # taken, or not an address of this machine: say which one
            host, port = self._address
            raise OSError(exc.errno, f"cannot serve on {host}:{port}: {exc.strerror}") from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="resilient-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and wait for every thread to end."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        thread.join()
        server.server_close()
        server.close_connections()
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://{self._address[0]}:{self.port}"

    # -- faults --------------------------------------------------------------

    def add_fault(self, kind: str, **params: Any) -> Fault:
        """Script a fault; returns a handle whose ``.remove()`` takes it out again.

        Scope parameters, for every kind: ``provider`` (name or list),
        ``path`` (prefix), ``key`` (API key or list), ``start`` and
        ``duration`` (seconds counted from now, on the emulator's clock).
        See :mod:`.faults` for each kind's own parameters.
        """
        return self._faults.add(make_fault(kind, self.clock.monotonic(), params))

    def clear_faults(self) -> None:
        self._faults.clear()

    def load_faults(self, path: str | Path) -> list[Fault]:
        """Add every fault of a TOML or JSON script (see :mod:`.script`)."""
        from .script import load_script

        now = self.clock.monotonic()
        faults = []
        for number, (kind, params) in enumerate(load_script(path), 1):
            try:
                faults.append(make_fault(kind, now, params))
            except (TypeError, ValueError) as exc:  # TypeError: a parameter the kind does not take
                raise ValueError(f"{path}: fault #{number} ({kind}): {exc}") from None
        # Built first, added after: a script with a bad fault adds none of its faults.
        return [self._faults.add(fault) for fault in faults]

    # -- records -------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received so far, in arrival order."""
        with self._records_lock:
            return list(self._records)

    def clear_requests(self) -> None:
        with self._records_lock:
            self._records.clear()

    # -- serving (called from connection threads) -----------------------------

    def _pause(self, seconds: float) -> None:
        """Wait on the emulator's clock; a real wait ends early when the server stops."""
        if seconds <= 0:
            return
        if isinstance(self.clock, _clock.SystemClock):
            self._stopping.wait(seconds)
        else:
            self.clock.sleep(seconds)

    def _record(self, record: RequestRecord) -> None:
        with self._records_lock:
            self._records.append(record)
        log.debug(
            "%s %s %s key=%s -> %s %s", record.provider, record.method, record.path, record.key, record.status, record.faults
        )

    def _match(self, request: Request) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes:
            if route.method == request.method:
                found = route.pattern.match(request.path)
                if found and route.accepts(request):
                    return route, found.groupdict()
        return None

    def _answer(self, handler: _Handler, method: str) -> None:
        split = urlsplit(handler.path)
        arrived = self.clock.monotonic()
        body = handler.read_body()
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = Request(
            method, split.path, dict(parse_qsl(split.query)), headers, body, id=f"{next(self._serial):012d}"
        )
        matched = self._match(request)
        if matched is None:
            self._answer_unknown_path(handler, request, arrived)
            return
        route, request.params = matched
        protocol = route.protocol
        request.models = _served(self.models, protocol.name)
        key = protocol.api_key(request)
        refusal = None if protocol.name in self.keyless else protocol.unauthenticated(request)
        if refusal is not None:
            # The provider's front door turns a keyless request away before anything else: no fault, no quota spent.
            refused = protocol.refuse(refusal)
            protocol.stamp(refused, protocol.request_id_prefix + request.id)
            self._record(RequestRecord(arrived, protocol.name, method, split.path, fingerprint(None), refused.status, False, ()))
            handler.send_json(refused.status, refused.body, refused.headers)
            return
        plan = self._faults.plan(Call(protocol.name, split.path, key, arrived, _prompt_tokens(body)))
        self._pause(plan.delay)
        if self._stopping.is_set():
            plan.refuse = True

        def record(status: int | None, stream: bool) -> None:
            self._record(
                RequestRecord(arrived, protocol.name, method, split.path, fingerprint(key), status, stream, tuple(plan.fired))
            )

        if plan.refuse:
            record(None, False)
            handler.drop()
            return
        reply = self._reply(route, request, plan, key)
        protocol.stamp(reply, protocol.request_id_prefix + request.id)
        if plan.quota is not None:
            reply.headers.update(protocol.rate_limit_headers(plan.quota))
        if isinstance(reply, StreamReply):
            record(reply.status, True)
            handler.send_stream(reply, self._shape(protocol, reply, plan))
        else:
            record(reply.status, False)
            damaged = plan.malformed if plan.failure is None else None
            raw = framing.malform_body(reply.body, damaged, plan.wrong_shape) if damaged else dumps(reply.body).encode()
            handler.send_bytes(reply.status, raw, "application/json", reply.headers)

    def _answer_unknown_path(self, handler: _Handler, request: Request, arrived: float) -> None:
        """404, in the error format of the provider the path (or headers) point at, so its client parses it."""
        owner = next((p for p in self._protocols if p.owns(request)), None)
        if owner is None:
            status, body, headers = 404, {"error": f"no emulated endpoint for {request.method} {request.path}"}, {}
        else:
            reply = owner.unknown_path(request)
            owner.stamp(reply, owner.request_id_prefix + request.id)
            status, body, headers = reply.status, reply.body, reply.headers
        provider = owner.name if owner else None
        self._record(RequestRecord(arrived, provider, request.method, request.path, fingerprint(None), status, False, ()))
        handler.send_json(status, body, headers)

    def _reply(self, route: Route, request: Request, plan: Plan, key: str | None) -> Reply:
        protocol = route.protocol
        if isinstance(plan.failure, RefusedKey):
            return protocol.refuse(protocol.bad_key.for_key(fingerprint(key), plan.failure.status))
        if plan.failure is not None:
            failure = plan.failure
            reply = protocol.error(failure.status, failure.message, retry_after=failure.retry_after)
            if failure.retry_after is not None:
                reply.headers.update(protocol.retry_headers(failure.retry_after, send=failure.retry_header))
            return reply
        try:
            if request.models is not None and route.model is not None:
                model = route.model(request)
                if model is not None and not protocol.serves(model, request.models):
                    return protocol.unknown_model(request, model)
            return route.handler(request)
        except BadRequest as exc:
            return protocol.bad_request(exc)
        except Exception:  # a bug in the emulator must still answer like the provider, not with a traceback
            log.exception("emulator handler failed for %s %s", request.method, request.path)
            return protocol.error(500, "The emulator failed to handle this request.")

    def _shape(self, protocol: Protocol, reply: StreamReply, plan: Plan) -> Iterator[bytes | None]:
        """The stream's pieces with the plan's damage applied; ``None`` means "drop the connection now"."""
        for sent, piece in enumerate(reply.events):
            if plan.truncate_after is not None and sent >= plan.truncate_after:
                failure = plan.truncate_error
                error = (
                    protocol.stream_error(failure.status, failure.message, retry_after=failure.retry_after)
                    if failure is not None
                    else None
                )
                yield error
                if error is None:
                    return
                break
            self._pause(plan.chunk_delay)
            if self._stopping.is_set():
                yield None
                return
            yield framing.malform_piece(piece, plan.malformed, plan.wrong_shape) if plan.malformed else piece


def _model_names(
    models: Iterable[str] | Mapping[str, Iterable[str]] | None, providers: set[str]
) -> set[str] | dict[str, set[str]] | None:
    """``Emulator(models=)`` as sets; a provider the emulator does not speak is a typo, not a provider serving all."""
    if not isinstance(models, Mapping):
        return None if models is None else _names(models)
    unknown = sorted(set(models) - providers)
    if unknown:
        named = ", ".join(map(repr, unknown))
        raise ValueError(f"models: no provider named {named}; the providers are {', '.join(sorted(providers))}")
    return {provider: _names(names) for provider, names in models.items()}


def _names(names: Iterable[str]) -> set[str]:
    return {names} if isinstance(names, str) else set(names)  # one name, not its letters


def _served(models: set[str] | dict[str, set[str]] | None, provider: str) -> frozenset[str] | None:
    """The model names ``provider`` serves, for one request; None: any name."""
    names = models.get(provider) if isinstance(models, dict) else models
    return None if names is None else frozenset(names)


def _prompt_tokens(body: bytes) -> int:
    """A request's size in emulated tokens, for token-per-minute limits (the whole body: cheap and monotone)."""
    return count_tokens(body.decode("utf-8", "replace")) if body else 0


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connection threads so that stop() can close and join them all."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], emulator: Emulator) -> None:
        self.emulator = emulator
        self._live: dict[threading.Thread, socket.socket] = {}
        self._live_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), name="resilient-emulator-conn", daemon=True
        )
        with self._live_lock:
            self._live[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._live_lock:
                self._live.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is normal here (truncation, shutdown); no traceback on stderr."""
        log.debug("emulator connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._live_lock:
            live = dict(self._live)
        for sock in live.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        for thread in live:
            thread.join()


class _Handler(BaseHTTPRequestHandler):
    """HTTP plumbing only; every decision is the Emulator's."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each answer waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "resilient-emulator/1"
    server: _Server

    def do_GET(self) -> None:
        self.server.emulator._answer(self, "GET")

    def do_POST(self) -> None:
        self.server.emulator._answer(self, "POST")

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self.send_bytes(status, dumps(body).encode(), "application/json", headers)

    def send_bytes(self, status: int, raw: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(raw)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def send_stream(self, reply: StreamReply, pieces: Iterator[bytes | None]) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for piece in pieces:
            if piece is None:
                self.drop()
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def drop(self) -> None:
        """Cut the connection mid-answer, as a crashed server or a proxy timeout would."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Request lines can carry keys (``?key=``); the emulator logs its own fingerprinted line instead."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("emulator http: %s", redact(format % args))
