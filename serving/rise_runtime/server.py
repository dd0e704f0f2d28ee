"""`rise-serve`: an HTTP server for remote game clients (Starlette on uvicorn; the `server` extra).

    rise-serve pong.onnx --port 8000                          # binds 127.0.0.1 unless --host says otherwise
    rise-serve pong.onnx --host 0.0.0.0 --api-key-file key.txt  # beyond this machine: a key is required
    rise-serve pong.onnx --ssl-certfile cert.pem --ssl-keyfile key.pem  # HTTPS (uvicorn's TLS)

    POST   /sessions              -> 201 {"session_id", "game", "action_meanings"}
    POST   /sessions/{id}/act     body: a PNG (Content-Type: image/png), or raw RGB bytes
                                  (application/octet-stream) with header X-Frame-Shape: 210,160,3,
                                  or 2,210,160,3 for the step's last two screens (earlier first);
                                  ?new_episode=true: this screen starts a new episode (memory wiped)
                                  -> 200 {"action", "action_meaning", "q_values", "step"}
    DELETE /sessions/{id}         -> 200 {"deleted": id}
    GET    /healthz               -> 200 {"status": "ok", "sessions", "game"} (no key needed)
    GET    /metrics               -> Prometheus text format
    GET    /openapi.json          -> this API as OpenAPI 3.1

Each session keeps its own recurrent memory. Requests to one session are served in order, one at a
time. Requests of different sessions that arrive together go into one batched model call, made by a
single inference thread (rise_runtime.batcher). The session state lives in rise_runtime.sessions.
This module is only the HTTP layer. Limits:
- The body size is checked from Content-Length before the body is read, and counted for chunked
  bodies.
- Frames are limited in pixels.
- Sessions are capped in number and expire when idle.
- A whole request must arrive within --request-timeout (rise_runtime.http_protocol).
- Idle keep-alive connections close after --keep-alive-timeout.
Bad input gets a 4xx with a JSON {"error": ...}. The server answers 5xx only when the model itself
fails. A Ctrl-C or SIGTERM stops it gracefully: it finishes the requests in flight, then stops the
inference thread.
Max-pooling as docs/model-contract.md says: a request with the step's last two screens (raw,
2,H,W,3) is pooled over them. A request with one screen is pooled with the session's previous screen
when the model repeats no action (action_repeat 1: the previous step's screen is the emulator's
previous screen); with action_repeat > 1 the screen before the last is inside the client's repeat,
so one screen is taken alone: send two for exact training parity.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hmac
import ipaddress
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from typing import Optional

from rise_runtime.batcher import Batcher
from rise_runtime.extras import MissingExtraError, require
from rise_runtime.frame_decoding import RAW, FrameError, decode_frame, media_type
from rise_runtime.sessions import SessionError, SessionStore

LOOPBACK = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Every server setting and its default (the CLI reads its defaults from here)."""

    host: str = LOOPBACK
    port: int = 8000
    threads: int = 1  # onnxruntime intra-op threads
    device: str = "cpu"
    batch_window_ms: float = 2.0  # how long a request waits for other sessions to batch with
    max_batch: int = 64
    max_sessions: int = 1024
    session_idle_seconds: float = 600.0
    session_evict_seconds: float = 10.0  # at the cap, a session idle this long gives its place to a new one
    max_body_bytes: int = 4 * 1024 * 1024
    max_frame_pixels: int = 4096 * 4096
    request_timeout: float = 10.0  # seconds to receive a whole request (headers and body)
    keep_alive_timeout: float = 5.0  # seconds an idle keep-alive connection stays open
    inference_timeout: float = 30.0
    api_key: Optional[str] = None  # required when binding beyond loopback
    ssl_certfile: Optional[str] = None  # HTTPS: the certificate chain (PEM); with ssl_keyfile
    ssl_keyfile: Optional[str] = None

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535 (0 picks a free one), got {self.port}")
        for name in ("max_batch", "max_sessions", "max_body_bytes", "max_frame_pixels", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("session_idle_seconds", "session_evict_seconds", "request_timeout", "keep_alive_timeout",
                     "inference_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.session_evict_seconds > self.session_idle_seconds:
            raise ValueError(f"session_evict_seconds {self.session_evict_seconds:g} exceeds session_idle_seconds "
                             f"{self.session_idle_seconds:g}: sessions would expire before they could give way")
        if self.batch_window_ms < 0:
            raise ValueError(f"batch_window_ms must be >= 0, got {self.batch_window_ms}")
        if self.api_key is None and not is_loopback(self.host):
            raise ValueError(f"binding {self.host} exposes the server beyond this machine: give an API key "
                             f"(--api-key-file FILE), or bind {LOOPBACK}")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
        for name in ("ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"--{name.replace('_', '-')} {path} is not a file")
        if self.api_key is not None and len(self.api_key) < 16:
            raise ValueError("the API key is shorter than 16 characters; use a long random one "
                             "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The route table: path, method, the RiseService method that answers it. Starlette's routes and the
# OpenAPI paths are both built from it, so the documented API is the served one.
ROUTES = (
    ("/sessions", "POST", "create_session"),
    ("/sessions/{session_id}/act", "POST", "act"),
    ("/sessions/{session_id}", "DELETE", "delete_session"),
    ("/healthz", "GET", "healthz"),
    ("/metrics", "GET", "prometheus"),
    ("/openapi.json", "GET", "openapi"),
)


def _operations(action_meanings) -> dict:
    """The OpenAPI operation of each route handler; every error says what it means."""
    def error(description: str) -> dict:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    unauthorized = error("missing or wrong API key (servers started with --api-key-file)")
    session_id = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
    return {
        "create_session": {"summary": "start a game session", "responses": {
            "201": {"description": "created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}},
            "400": error("the body is not JSON"), "401": unauthorized,
            "429": error("--max-sessions are open and all were used within --session-evict-seconds; see Retry-After")}},
        "act": {
            "summary": "one agent step: a raw screen in, the greedy action out",
            "parameters": [session_id,
                           {"name": "X-Frame-Shape", "in": "header", "required": False,
                            "schema": {"type": "string", "example": "210,160,3"},
                            "description": "H,W,3, or 2,H,W,3 for the step's last two screens (earlier first); "
                                           "required with application/octet-stream"},
                           {"name": "new_episode", "in": "query", "required": False, "schema": {"type": "boolean"},
                            "description": "this screen starts a new episode: the session's memory is wiped"}],
            "requestBody": {"required": True, "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {"200": {"description": "the step", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Step"}}}},
                          "400": error("the screen, its shape header or new_episode is malformed"),
                          "401": unauthorized, "404": error("unknown session (never created, deleted or expired)"),
                          "413": error("the body or the screen exceeds the server's limits"),
                          "415": error("the Content-Type is neither image/png nor application/octet-stream"),
                          "500": error("the model failed"), "503": error("the model did not answer in time")}},
        "delete_session": {"summary": "end a session", "parameters": [session_id],
                           "responses": {"200": {"description": "deleted"}, "401": unauthorized,
                                         "404": error("unknown session")}},
        "healthz": {"summary": "liveness (no key needed)", "security": [{}], "responses": {"200": {"description": "ok"}}},
        "prometheus": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text format"},
                                                                     "401": unauthorized}},
        "openapi": {"summary": "this API as OpenAPI 3.1", "responses": {"200": {"description": "the document"},
                                                                        "401": unauthorized}},
    }


def openapi_schema(game: str, action_meanings) -> dict:
    """OpenAPI 3.1 for this server, its paths from ROUTES; the act endpoint takes a raw body, which no
    schema library infers."""
    operations = _operations(action_meanings)
    paths: dict = {}
    for path, method, handler in ROUTES:
        paths.setdefault(path, {})[method.lower()] = operations[handler]
    return {
        "openapi": "3.1.0",
        "info": {"title": "rise-serve", "version": "1",
                 "description": f"A RISE policy for {game}: sessions keep recurrent memory; one call per agent step."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "Session": {"type": "object", "required": ["session_id", "game", "action_meanings"],
                            "properties": {"session_id": {"type": "string"}, "game": {"type": "string"},
                                           "action_meanings": {"type": "array", "items": {"type": "string"}}}},
                "Step": {"type": "object", "required": ["action", "action_meaning", "q_values", "step"],
                         "properties": {"action": {"type": "integer", "minimum": 0, "maximum": len(action_meanings) - 1},
                                        "action_meaning": {"type": "string", "enum": list(action_meanings)},
                                        "q_values": {"type": "array", "items": {"type": "number"}},
                                        "step": {"type": "integer"}}},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}, {}],
        "paths": paths,
    }


class _Metrics:
    """Prometheus metrics of one server (its own registry, so several servers in one process work)."""

    def __init__(self, store):
        prometheus = require("prometheus_client", "server", "rise-serve's metrics")
        self.registry = prometheus.CollectorRegistry()
        self.requests = prometheus.Counter("rise_requests", "HTTP requests by route and status", ["route", "status"],
                                           registry=self.registry)
        self.act_seconds = prometheus.Histogram(
            "rise_act_seconds", "time inside the server for one act request (decode, wait, model)",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0), registry=self.registry)
        self.batch_size = prometheus.Histogram("rise_batch_size", "sessions per model call",
                                               buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        sessions = prometheus.Gauge("rise_sessions", "open sessions", registry=self.registry)
        sessions.set_function(lambda: len(store))
        expired = prometheus.Gauge("rise_sessions_expired", "sessions removed after idling", registry=self.registry)
        expired.set_function(lambda: store.expired)
        evicted = prometheus.Gauge("rise_sessions_evicted", "idle sessions whose place a new session took at the cap",
                                   registry=self.registry)
        evicted.set_function(lambda: store.evicted)
        self.render = lambda: prometheus.generate_latest(self.registry)
        self.content_type = prometheus.CONTENT_TYPE_LATEST


class _BodyTooLarge(Exception):
    pass


class RiseService:
    """The Starlette app around one Policy: routes, guard (key, size), and the error contract."""

    def __init__(self, policy, settings: ServerSettings, on_stop=None):
        """on_stop(): called once the server has finished its requests and stopped the inference thread."""
        from starlette.applications import Starlette
        from starlette.routing import Route

        self.policy, self.settings, self._on_stop = policy, settings, on_stop
        self.store = SessionStore(lambda: policy.zero_state(1), settings.max_sessions, settings.session_idle_seconds,
                                  settings.session_evict_seconds)
        self.metrics = _Metrics(self.store)
        self._acting = 0  # act requests inside the server (the event loop alone changes it)
        self.batcher = Batcher(policy, settings.batch_window_ms / 1000.0, settings.max_batch,
                               on_batch=self.metrics.batch_size.observe, expected=lambda: self._acting)
        self.schema = openapi_schema(policy.game, policy.action_meanings)
        routes = [Route(path, getattr(self, handler), methods=[method]) for path, method, handler in ROUTES]
        self._route_paths = {route.endpoint: route.path for route in routes}
        from starlette.exceptions import HTTPException

        self.app = Starlette(routes=routes, exception_handlers={HTTPException: self._http_exception,
                                                               Exception: self._unexpected},
                             lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        yield
        self.batcher.stop()  # after uvicorn has finished the requests in flight
        if self._on_stop is not None:
            self._on_stop()

    # -- the error contract: JSON {"error"} everywhere, Connection: close when the body was not read
    @staticmethod
    def _json(payload: dict, status: int, close: bool = False, headers: Optional[dict] = None):
        from starlette.responses import JSONResponse

        headers = dict(headers or {})
        if close:
            headers["connection"] = "close"
        return JSONResponse(payload, status_code=status, headers=headers)

    async def _http_exception(self, request, error):  # Starlette's own 404 / 405
        headers = dict(getattr(error, "headers", None) or {})
        message = {404: f"no route {request.method} {request.url.path[:100]}",
                   405: f"{request.method} is not allowed on {request.url.path[:100]}"}.get(error.status_code, error.detail)
        return self._json({"error": message}, error.status_code, close=True, headers=headers)

    async def _unexpected(self, request, error):
        return self._json({"error": f"internal error: {type(error).__name__}"}, 500, close=True)

    async def __call__(self, scope, receive, send):
        """The guard, before any route reads a body: API key, declared size, then counted size."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status_holder = {}

        async def send_counting(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        names = [key.decode("latin-1").lower() for key, _ in scope["headers"]]
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        rejection = self._reject_framing(names) or self._reject(scope, headers)
        if rejection is not None:
            await rejection(scope, receive, send_counting)
        else:
            await self.app(scope, self._limited(receive), send_counting)
        route = self._route_label(scope)
        self.metrics.requests.labels(route, str(status_holder.get("status", 0))).inc()
        if route == "/sessions/{session_id}/act" and status_holder.get("status") == 200:
            self.metrics.act_seconds.observe(time.perf_counter() - started)

    def _reject_framing(self, names):
        """RFC 9112 section 6.3: a request whose body length is ambiguous (Transfer-Encoding with
        Content-Length, or Content-Length twice, even with equal values) is a request-smuggling vector
        behind a proxy that reads it differently: refused, and the connection closed."""
        if "transfer-encoding" in names and "content-length" in names:
            return self._json({"error": "the request has both Transfer-Encoding and Content-Length; send one"}, 400,
                              close=True)
        if names.count("content-length") > 1:
            return self._json({"error": "the request has more than one Content-Length header; send one"}, 400,
                              close=True)
        return None

    def _reject(self, scope, headers):
        key = self.settings.api_key
        if key is not None and scope["path"] != "/healthz":
            offered = headers.get("x-api-key") or ""
            authorization = headers.get("authorization", "")
            if authorization[:7].lower() == "bearer ":
                offered = authorization[7:].strip()
            if not hmac.compare_digest(offered.encode(), key.encode()):
                return self._json({"error": "missing or wrong API key: send Authorization: Bearer <key> "
                                            "or X-API-Key: <key>"}, 401, close=True,
                                  headers={"www-authenticate": "Bearer"})
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return self._json({"error": f"Content-Length {declared[:20]!r} is not a number"}, 400, close=True)
            if int(declared) > self.settings.max_body_bytes:
                return self._json({"error": f"a body of {int(declared):,} bytes exceeds the server's limit of "
                                            f"{self.settings.max_body_bytes:,}"}, 413, close=True)
        return None

    def _limited(self, receive):
        limit, seen = self.settings.max_body_bytes, [0]

        async def receive_limited():
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise _BodyTooLarge()
            return message

        return receive_limited

    def _route_label(self, scope) -> str:
        """The route's template (never a session id: the label set stays small). The router has put the
        matched endpoint into the scope by the time the app returns."""
        if "endpoint" in scope:
            return self._route_paths.get(scope["endpoint"], "unmatched")
        from starlette.routing import Match  # refused by the guard before routing: match it here

        for route in self.app.routes:
            if route.matches(scope)[0] is Match.FULL:
                return route.path
        return "unmatched"

    async def _body(self, request) -> bytes:
        from starlette.requests import ClientDisconnect

        try:
            return await request.body()
        except _BodyTooLarge:
            raise _Reply(413, f"the body exceeds the server's limit of {self.settings.max_body_bytes:,} bytes",
                         close=True) from None
        except ClientDisconnect:  # it left before its body was complete: nobody reads an answer, nothing to log
            raise _Reply(400, "the client disconnected before its body was complete", close=True) from None

    # -- routes
    async def create_session(self, request):
        try:
            body = await self._body(request)
            if body.strip():
                try:
                    json.loads(body)
                except (ValueError, UnicodeDecodeError):
                    raise _Reply(400, "the body is not JSON (send none, or a JSON object)") from None
            session = self.store.create()
        except _Reply as reply:
            return reply.response(self)
        except SessionError as error:
            return self._session_error(error)
        session.lock = asyncio.Lock()  # one step at a time per session, in arrival order
        return self._json({"session_id": session.id, "game": self.policy.game,
                           "action_meanings": self.policy.action_meanings}, 201)

    def _session_error(self, error: SessionError):
        retry_after = getattr(error, "retry_after", None)
        headers = {"retry-after": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
        return self._json({"error": str(error)}, error.status, headers=headers)

    async def act(self, request):
        self._acting += 1  # the batcher waits for company only while other act requests are in
        try:
            return await self._act(request)
        finally:
            self._acting -= 1

    async def _act(self, request):
        from starlette.concurrency import run_in_threadpool

        try:
            session = self.store.get(request.path_params["session_id"])
        except SessionError as error:
            return self._session_error(error)
        try:
            new_episode = self._flag(request, "new_episode")
            body = await self._body(request)
            headers = request.headers
            content_type = headers.get("content-type")
            arguments = (body, content_type, headers.get("x-frame-shape"), self.settings.max_frame_pixels)
            # A PNG takes milliseconds to decode: a worker thread does it. A raw frame costs a fraction
            # of a millisecond of numpy, less than the trip to a worker, so the event loop does it.
            if media_type(content_type) == RAW:
                screens = decode_frame(*arguments)
            else:
                screens = await run_in_threadpool(decode_frame, *arguments)
        except _Reply as reply:
            return reply.response(self)
        except FrameError as error:
            return self._json({"error": str(error)}, error.status)
        async with session.lock:  # the session's previous screen and step order: one request at a time
            if new_episode:
                session.first, session.previous_screen = True, None
            try:
                frame = self._frame(session, screens)
            except _Reply as reply:
                return reply.response(self)
            future = self.batcher.submit(session, frame)
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(future), self.settings.inference_timeout)
            except asyncio.TimeoutError:
                return self._json({"error": f"the model did not answer within {self.settings.inference_timeout:g} s"},
                                  503)
            except Exception as error:
                return self._json({"error": f"inference failed: {type(error).__name__}: {str(error)[:200]}"}, 500)
        return self._json({"action": result.action, "action_meaning": self.policy.action_meanings[result.action],
                           "q_values": result.q_values, "step": result.step}, 200)

    def _frame(self, session, screens):
        """The model's frame from this request's screen(s) and, when the contract pools across agent
        steps (action_repeat 1), the session's previous screen."""
        if screens.ndim == 4:  # the step's last two screens
            previous, last = screens[0], screens[1]
        else:
            last, previous = screens, session.previous_screen
            if not self._pools_previous_step or session.first or previous is None or previous.shape != last.shape:
                previous = None
        try:
            frame = self.policy.preprocess(last, previous)
        except (TypeError, ValueError) as error:
            raise _Reply(400, f"the frame cannot be preprocessed: {error}") from None
        session.previous_screen = last
        return frame

    @property
    def _pools_previous_step(self) -> bool:
        config = self.policy.preprocessing
        return config.max_pool_last_two and config.action_repeat == 1

    @staticmethod
    def _flag(request, name: str) -> bool:
        value = request.query_params.get(name)
        if value is None:
            return False
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise _Reply(400, f"?{name}={value[:20]!r} is not a boolean: use true or false")

    async def delete_session(self, request):
        session_id = request.path_params["session_id"]
        try:
            self.store.delete(session_id)
        except SessionError as error:
            return self._session_error(error)
        return self._json({"deleted": session_id}, 200)

    async def healthz(self, request):
        return self._json({"status": "ok", "sessions": len(self.store), "game": self.policy.game}, 200)

    async def prometheus(self, request):
        from starlette.responses import Response

        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    async def openapi(self, request):
        return self._json(self.schema, 200)


class _Reply(Exception):
    """A 4xx decided deep in a handler."""

    def __init__(self, status: int, message: str, close: bool = False):
        super().__init__(message)
        self.status, self.close = status, close

    def response(self, service: RiseService):
        return service._json({"error": str(self)}, self.status, close=self.close)


def scheme(settings: ServerSettings) -> str:
    return "https" if settings.ssl_certfile else "http"


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that errors are clear and port 0 reports the chosen port."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise OSError(f"cannot resolve --host {host!r} ({error.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        hint = " (in use: pick another --port, or 0 for a free one)" if error.errno == 98 else ""
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}{hint}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class RunningServer:
    """A server on a background thread (tests, benchmarks, embedding): .url, .stop()."""

    def __init__(self, service: RiseService, sock: socket.socket, uvicorn_server):
        self.service, self._socket, self._server = service, sock, uvicorn_server
        self.host, self.port = sock.getsockname()[:2]
        self.url = f"{scheme(service.settings)}://{self.host}:{self.port}"
        self._thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name="rise-serve")
        self._thread.start()
        deadline = time.time() + 30
        while not uvicorn_server.started:
            if not self._thread.is_alive() or time.time() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self._socket.close()


def _uvicorn_server(service: RiseService, settings: ServerSettings):
    uvicorn = require("uvicorn", "server", "rise-serve")
    from rise_runtime.http_protocol import DeadlineH11Protocol

    protocol = type("RiseH11Protocol", (DeadlineH11Protocol,), {"request_timeout": settings.request_timeout})
    config = uvicorn.Config(service, http=protocol, lifespan="on", log_level="warning", access_log=False,
                            timeout_keep_alive=settings.keep_alive_timeout, timeout_graceful_shutdown=10,
                            server_header=False, ssl_certfile=settings.ssl_certfile, ssl_keyfile=settings.ssl_keyfile)
    if settings.ssl_certfile:
        try:
            config.load()  # reads the certificate now: a bad one is a startup error with its cause
        except Exception as error:  # ssl.SSLError, OSError, ValueError from the ssl module
            raise ValueError(f"cannot use --ssl-certfile/--ssl-keyfile: {type(error).__name__}: {error}") from None
    return uvicorn.Server(config)


def start(policy, settings: ServerSettings = ServerSettings()) -> RunningServer:
    """Serves `policy` (a rise_runtime.runner.Policy) on a background thread."""
    service = RiseService(policy, settings)
    return RunningServer(service, bind_socket(settings.host, settings.port), _uvicorn_server(service, settings))


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0..65535; 0 picks a free one)")
    return value


def main(argv=None) -> int:
    defaults = ServerSettings()
    parser = argparse.ArgumentParser(prog="rise-serve", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", help="an exported .onnx step model (rise-export)")
    parser.add_argument("--host", default=defaults.host, help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=_port, default=defaults.port, help="TCP port (0 picks a free one)")
    parser.add_argument("--api-key-file", default=None, metavar="FILE",
                        help="require this key (the file's first line) from clients; needed beyond loopback")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="onnxruntime intra-op threads")
    parser.add_argument("--device", default=defaults.device, choices=("cpu", "cuda", "auto"), help="execution provider")
    parser.add_argument("--batch-window-ms", type=float, default=defaults.batch_window_ms,
                        help="how long a request waits for other sessions to share a model call")
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch, help="sessions per model call at most")
    parser.add_argument("--max-sessions", type=int, default=defaults.max_sessions, help="open sessions at most")
    parser.add_argument("--session-idle-seconds", type=float, default=defaults.session_idle_seconds,
                        help="a session unused this long expires")
    parser.add_argument("--session-evict-seconds", type=float, default=defaults.session_evict_seconds,
                        help="when --max-sessions are open, a new session takes the place of the least recently "
                             "used one if it has been idle this long (else 429 with Retry-After)")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes, help="largest request body")
    parser.add_argument("--request-timeout", type=float, default=defaults.request_timeout,
                        help="seconds a client has to send a whole request")
    parser.add_argument("--keep-alive-timeout", type=float, default=defaults.keep_alive_timeout,
                        help="seconds an idle keep-alive connection stays open")
    parser.add_argument("--ssl-certfile", default=None, metavar="PEM",
                        help="serve HTTPS with this certificate chain (with --ssl-keyfile); or put a TLS proxy in "
                             "front (README)")
    parser.add_argument("--ssl-keyfile", default=None, metavar="PEM", help="the certificate's private key")
    args = parser.parse_args(argv)
    try:
        for module in ("starlette", "uvicorn", "prometheus_client"):
            require(module, "server", "rise-serve")
        api_key = None
        if args.api_key_file:
            try:
                with open(args.api_key_file) as f:
                    api_key = f.readline().strip()
            except OSError as error:
                raise ValueError(f"cannot read --api-key-file {args.api_key_file}: {error.strerror}") from None
            if not api_key:
                raise ValueError(f"--api-key-file {args.api_key_file} is empty")
        settings = ServerSettings(host=args.host, port=args.port, threads=args.threads, device=args.device,
                                  batch_window_ms=args.batch_window_ms, max_batch=args.max_batch,
                                  max_sessions=args.max_sessions, session_idle_seconds=args.session_idle_seconds,
                                  session_evict_seconds=args.session_evict_seconds,
                                  max_body_bytes=args.max_body_bytes, request_timeout=args.request_timeout,
                                  keep_alive_timeout=args.keep_alive_timeout, api_key=api_key,
                                  ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
        from rise_runtime.runner import ModelError, Policy

        try:
            policy = Policy.load(args.model, threads=settings.threads, device=settings.device)
        except ModelError as error:
            raise ValueError(str(error)) from None
        service = RiseService(policy, settings, on_stop=lambda: print("[rise-serve] stopped", flush=True))
        server = _uvicorn_server(service, settings)
        sock = bind_socket(settings.host, settings.port)
    except (MissingExtraError, FileNotFoundError, ValueError, OSError) as error:
        print(f"rise-serve: error: {error}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    print(f"[rise-serve] {policy.game} model {args.model} on {scheme(settings)}://{host}:{port} ({', '.join(policy.providers)}"
          f"{'; API key required' if api_key else ''}); Ctrl-C stops", flush=True)
    # uvicorn handles SIGINT/SIGTERM: it finishes the requests in flight, then (since 0.29) re-raises the
    # signal. A Ctrl-C then surfaces here as KeyboardInterrupt: the server has stopped cleanly, so no
    # traceback, and the exit status of an interrupted program (130).
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        return 130
    # asyncio's runner turns the re-raised Ctrl-C into a cancellation of its main task; when that task
    # has already finished (a race, seen on a loaded machine) no KeyboardInterrupt comes out. uvicorn
    # records the signals it handled: the exit status still says the program was interrupted.
    return 130 if signal.SIGINT in getattr(server, "_captured_signals", ()) else 0


if __name__ == "__main__":
    sys.exit(main())
