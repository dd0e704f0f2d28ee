"""`rise-serve`: an HTTP server for remote game clients, on the TensorFlow-free runner.

    rise-serve pong.onnx --port 8000            # binds 127.0.0.1 unless --host says otherwise

    POST   /sessions                   -> 201 {"session_id", "game", "action_meanings"}
    POST   /sessions/<id>/act          body: a PNG (Content-Type: image/png), or raw RGB bytes
                                       (application/octet-stream) with header X-Frame-Shape: 210,160,3
                                       -> 200 {"action", "action_meaning", "q_values", "step"}
    DELETE /sessions/<id>              -> 200 {"deleted": id}
    GET    /healthz                    -> 200 {"status": "ok", "sessions", "game"}
    GET    /metrics                    -> 200 {"requests", "errors", "latency_ms": {"p50", "p99"}, ...}

Every session keeps its own recurrent memory. Requests to one session are serialized by a
per-session lock; requests of different sessions that arrive together are stacked into one batched
step-model call by a single inference thread (waiting at most `--batch-window-ms` for company).
Bad input gets a 4xx with a JSON {"error": ...} and never disturbs other sessions.
Deviation to note: one screen per request, so no max over the last two screens (send the
max-pooled screen yourself for exact training parity).
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import queue
import socket
import sys
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional

import numpy as np

MAX_BODY_BYTES = 4 * 1024 * 1024


MAX_IMAGE_PIXELS = 4096 * 4096  # a PNG claiming more is refused before its pixels are decoded


def decode_png(body: bytes) -> np.ndarray:
    """PNG bytes -> uint8 RGB [H, W, 3] (Pillow, the `server` extra)."""
    from rise_runtime.extras import require

    image_module = require("PIL.Image", "server", "decoding PNG frames")
    try:
        with image_module.open(io.BytesIO(body), formats=["PNG"]) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                   f"a {image.width}x{image.height} PNG exceeds {MAX_IMAGE_PIXELS} pixels")
            return np.asarray(image.convert("RGB"))
    except RequestError:
        raise
    except Exception:  # Pillow raises several types for broken or hostile files
        raise RequestError(HTTPStatus.BAD_REQUEST, "the body is not a decodable PNG") from None


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class _Session:
    def __init__(self, state: Dict[str, np.ndarray]):
        self.state = state
        self.first = True
        self.steps = 0
        self.lock = threading.Lock()


class _Job:
    def __init__(self, session: _Session, frame: np.ndarray):
        self.session, self.frame = session, frame
        self.done = threading.Event()
        self.result = None
        self.error: Optional[BaseException] = None


class InferenceBatcher:
    """One thread owns the model; it stacks the frames and states of waiting sessions into one call."""

    def __init__(self, policy, window_s: float, max_batch: int):
        self.policy, self.window_s, self.max_batch = policy, window_s, max_batch
        self.jobs: "queue.Queue[_Job]" = queue.Queue()
        self.batches = 0
        self.batched_steps = 0
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rise-inference")
        self._thread.start()

    def submit(self, session: _Session, frame: np.ndarray, timeout: float = 30.0):
        job = _Job(session, frame)
        self.jobs.put(job)
        if not job.done.wait(timeout):
            raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, "inference timed out")
        if job.error is not None:
            raise job.error
        return job.result

    def _loop(self):
        while True:
            jobs = [self.jobs.get()]
            deadline = time.perf_counter() + self.window_s
            while len(jobs) < self.max_batch:
                remaining = deadline - time.perf_counter()
                try:
                    jobs.append(self.jobs.get(timeout=max(remaining, 0)) if remaining > 0 else self.jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._run(jobs)
            except BaseException as error:  # report to every waiting request, keep serving
                for job in jobs:
                    job.error = RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, f"inference failed: {error}")
            for job in jobs:
                job.done.set()

    def _run(self, jobs):
        frames = np.stack([job.frame for job in jobs])
        reset = np.array([job.session.first for job in jobs])
        names = jobs[0].session.state.keys()
        state = {name: np.concatenate([job.session.state[name] for job in jobs]) for name in names}
        actions, q_values, new_state = self.policy.run_step(frames, reset, state)
        for index, job in enumerate(jobs):
            job.session.state = {name: value[index:index + 1] for name, value in new_state.items()}
            job.session.first = False
            job.session.steps += 1
            job.result = (int(actions[index]), q_values[index].tolist(), job.session.steps)
        self.batches += 1
        self.batched_steps += len(jobs)


class RiseServer:
    """Sessions, decoding and metrics around one loaded Policy."""

    def __init__(self, policy, batch_window_ms: float = 2.0, max_batch: int = 64, max_sessions: int = 1024):
        self.policy = policy
        self.max_sessions = max_sessions
        self.sessions: Dict[str, _Session] = {}
        self.sessions_lock = threading.Lock()
        self.batcher = InferenceBatcher(policy, batch_window_ms / 1000.0, max_batch)
        self.metrics_lock = threading.Lock()
        self.requests = collections.Counter()
        self.errors = collections.Counter()
        self.latencies = collections.deque(maxlen=10_000)  # act round trips inside the server, seconds

    # -- sessions
    def create_session(self) -> dict:
        with self.sessions_lock:
            if len(self.sessions) >= self.max_sessions:
                raise RequestError(HTTPStatus.TOO_MANY_REQUESTS,
                                   f"{self.max_sessions} sessions are open; delete some first")
            session_id = uuid.uuid4().hex
            self.sessions[session_id] = _Session(self.policy.zero_state(1))
        return {"session_id": session_id, "game": self.policy.game, "action_meanings": self.policy.action_meanings}

    def _session(self, session_id: str) -> _Session:
        with self.sessions_lock:
            session = self.sessions.get(session_id)
        if session is None:
            raise RequestError(HTTPStatus.NOT_FOUND, f"unknown session {session_id!r}; create one with POST /sessions")
        return session

    def delete_session(self, session_id: str) -> dict:
        with self.sessions_lock:
            if self.sessions.pop(session_id, None) is None:
                raise RequestError(HTTPStatus.NOT_FOUND, f"unknown session {session_id!r}")
        return {"deleted": session_id}

    # -- acting
    def decode_frame(self, body: bytes, content_type: str, shape_header: Optional[str]) -> np.ndarray:
        if content_type.startswith("image/png"):
            screen = decode_png(body)
        elif content_type.startswith("application/octet-stream"):
            if not shape_header:
                raise RequestError(HTTPStatus.BAD_REQUEST, "raw frames need a header X-Frame-Shape: H,W,3")
            try:
                shape = tuple(int(part) for part in shape_header.split(","))
            except ValueError:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"X-Frame-Shape {shape_header!r} is not H,W,3") from None
            if len(shape) != 3 or shape[2] != 3 or min(shape) < 1:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"X-Frame-Shape must be H,W,3 (RGB uint8), got {shape}")
            if len(body) != shape[0] * shape[1] * shape[2]:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"body has {len(body)} bytes, shape {shape} needs "
                                                           f"{shape[0] * shape[1] * shape[2]} (uint8)")
            screen = np.frombuffer(body, np.uint8).reshape(shape)
        else:
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                               "send image/png, or application/octet-stream with X-Frame-Shape")
        try:
            return self.policy.preprocess(screen)
        except (TypeError, ValueError) as error:
            raise RequestError(HTTPStatus.BAD_REQUEST, str(error)) from None

    def act(self, session_id: str, frame: np.ndarray) -> dict:
        session = self._session(session_id)
        started = time.perf_counter()
        with session.lock:  # one request at a time per session: its memory advances in order
            action, q_values, step = self.batcher.submit(session, frame)
        with self.metrics_lock:
            self.latencies.append(time.perf_counter() - started)
        return {"action": action, "action_meaning": self.policy.action_meanings[action], "q_values": q_values,
                "step": step}

    def metrics(self) -> dict:
        with self.metrics_lock:
            latencies = 1000 * np.asarray(self.latencies) if self.latencies else np.zeros(1)
            return {"requests": dict(self.requests), "errors": dict(self.errors), "sessions": len(self.sessions),
                    "latency_ms": {"p50": float(np.percentile(latencies, 50)),
                                   "p99": float(np.percentile(latencies, 99)), "count": len(self.latencies)},
                    "batches": self.batcher.batches,
                    "mean_batch_size": self.batcher.batched_steps / max(self.batcher.batches, 1)}

    def count(self, route: str, status: int) -> None:
        with self.metrics_lock:
            self.requests[route] += 1
            if status >= 400:
                self.errors[str(status)] += 1


def make_handler(server: RiseServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "rise-serve"

        def setup(self):
            super().setup()
            # Headers and body go out as two writes; without TCP_NODELAY, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every keep-alive round trip.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, fmt, *args):  # quiet: metrics carry the counts
            pass

        def _reply(self, status: int, payload: dict, route: str) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            server.count(route, status)

        def _body(self) -> bytes:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from None
            if length > MAX_BODY_BYTES:
                # Read and drop a moderately oversized body so the client gets the 413 rather than a
                # broken pipe; past that, close the connection instead of reading it all.
                if length <= 16 * MAX_BODY_BYTES:
                    remaining = length
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 1 << 20))
                        if not chunk:
                            break
                        remaining -= len(chunk)
                else:
                    self.close_connection = True
                raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                   f"body of {length} bytes exceeds {MAX_BODY_BYTES}")
            return self.rfile.read(length) if length > 0 else b""

        def _dispatch(self, method: str) -> None:
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            route = f"{method} /{parts[0] if parts else ''}"
            try:
                if method == "GET" and parts == ["healthz"]:
                    return self._reply(200, {"status": "ok", "sessions": len(server.sessions),
                                             "game": server.policy.game}, route)
                if method == "GET" and parts == ["metrics"]:
                    return self._reply(200, server.metrics(), route)
                if method == "POST" and parts == ["sessions"]:
                    body = self._body()
                    if body:
                        try:
                            json.loads(body)
                        except (json.JSONDecodeError, UnicodeDecodeError) as error:
                            raise RequestError(HTTPStatus.BAD_REQUEST, f"malformed JSON body: {error}") from None
                    return self._reply(201, server.create_session(), route)
                if method == "POST" and len(parts) == 3 and parts[0] == "sessions" and parts[2] == "act":
                    route = "POST /sessions/act"
                    body = self._body()
                    server._session(parts[1])  # 404 before decoding work
                    frame = server.decode_frame(body, self.headers.get("Content-Type", ""),
                                                self.headers.get("X-Frame-Shape"))
                    return self._reply(200, server.act(parts[1], frame), route)
                if method == "DELETE" and len(parts) == 2 and parts[0] == "sessions":
                    return self._reply(200, server.delete_session(parts[1]), route)
                raise RequestError(HTTPStatus.NOT_FOUND, f"no route {method} {self.path}")
            except RequestError as error:
                self._reply(int(error.status), {"error": str(error)}, route)
            except Exception as error:  # never let one request take the server down
                self._reply(500, {"error": f"internal error: {error}"}, route)

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_DELETE(self):
            self._dispatch("DELETE")

    return Handler


def serve(model_path: str, host: str = "127.0.0.1", port: int = 8000, threads: int = 1, device: str = "cpu",
          batch_window_ms: float = 2.0, max_batch: int = 64):
    """Builds the HTTP server (not yet serving): call .serve_forever(), .shutdown() to stop."""
    from rise_runtime.runner import Policy

    rise = RiseServer(Policy.load(model_path, threads=threads, device=device), batch_window_ms, max_batch)
    httpd = ThreadingHTTPServer((host, port), make_handler(rise))
    httpd.daemon_threads = True
    httpd.rise = rise
    return httpd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rise-serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an exported .onnx step model (rise-export)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0 picks a free one)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="execution provider")
    parser.add_argument("--batch-window-ms", type=float, default=2.0, help="wait this long to batch sessions")
    parser.add_argument("--max-batch", type=int, default=64, help="sessions per batched call at most")
    args = parser.parse_args(argv)
    from rise_runtime.runner import ModelError

    try:
        httpd = serve(args.model, args.host, args.port, args.threads, args.device, args.batch_window_ms, args.max_batch)
    except (FileNotFoundError, ModelError, ValueError, OSError) as error:
        print(f"rise-serve: error: {error}", file=sys.stderr)
        return 2
    host, port = httpd.server_address[:2]
    print(f"[rise-serve] {httpd.rise.policy.game} model {args.model} on http://{host}:{port} "
          f"({', '.join(httpd.rise.policy.providers)}); Ctrl-C stops", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
