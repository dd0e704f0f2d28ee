"""rise-serve on loopback: sessions, per-session memory, batching across sessions, the limits, and a
bounded fuzz run of hostile requests (every answer a 4xx or a closed connection, never a 5xx)."""
import http.client
import io
import json
import resource
import socket
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from rise_runtime.runner import Policy
from rise_runtime.server import ServerSettings, main as serve_main, start
from rise_runtime.sessions import SessionStore, TooManySessions, UnknownSession

KEY = "k" * 24


@pytest.fixture(scope="module")
def policy(pong_onnx):
    return Policy.load(pong_onnx)


@pytest.fixture(scope="module")
def server(policy):
    # A wide batch window so that concurrent calls batch; short timeouts so slow-client tests are quick.
    running = start(policy, ServerSettings(port=0, batch_window_ms=20.0, request_timeout=1.5, keep_alive_timeout=1.0,
                                           max_body_bytes=1 << 20))
    yield running
    running.stop()


def request(server, method, path, body=None, headers=None, timeout=30):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
    except (BrokenPipeError, ConnectionResetError):
        # The server may answer (413) from the headers and close before the whole body is sent, as
        # a client would see it: the answer is still there to read.
        pass
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {"text": raw.decode("latin-1")}
    return response.status, payload


def screens(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (210, 160, 3), dtype=np.uint8) for _ in range(count)]


def png_bytes(screen):
    buffer = io.BytesIO()
    Image.fromarray(screen).save(buffer, format="PNG")
    return buffer.getvalue()


def post_raw(server, session_id, screen, **kwargs):
    return request(server, "POST", f"/sessions/{session_id}/act", screen.tobytes(),
                   {"Content-Type": "application/octet-stream", "X-Frame-Shape": "210,160,3"}, **kwargs)


def new_session(server, headers=None):
    status, created = request(server, "POST", "/sessions", headers=headers)
    assert status == 201, created
    return created["session_id"]


def metric(server, name, **labels):
    text = request(server, "GET", "/metrics")[1]["text"]
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def test_binds_to_localhost_and_refuses_the_network_without_a_key():
    assert ServerSettings().host == "127.0.0.1"
    with pytest.raises(ValueError, match="API key"):
        ServerSettings(host="0.0.0.0")
    with pytest.raises(ValueError, match="shorter than 16"):
        ServerSettings(host="0.0.0.0", api_key="short")
    ServerSettings(host="0.0.0.0", api_key=KEY)


def test_session_lifecycle_with_png_and_raw_frames_matches_the_runner(server, pong_onnx):
    status, created = request(server, "POST", "/sessions")
    assert status == 201 and created["game"] == "Pong" and created["action_meanings"][0] == "NOOP"
    session_id = created["session_id"]
    runner = Policy.load(pong_onnx)
    for index, screen in enumerate(screens(4)):
        if index % 2:
            status, reply = post_raw(server, session_id, screen)
        else:  # media types are case-insensitive and may carry parameters
            status, reply = request(server, "POST", f"/sessions/{session_id}/act", png_bytes(screen),
                                    {"Content-Type": "IMAGE/PNG; x=1"})
        assert status == 200 and reply["step"] == index + 1, reply
        action = runner.act(screen)
        np.testing.assert_allclose(reply["q_values"], runner.q_values[0], atol=1e-5)  # same memory, same Q
        assert reply["action"] == action and reply["action_meaning"] == runner.action_meanings[action]
    assert request(server, "DELETE", f"/sessions/{session_id}")[0] == 200
    status, reply = post_raw(server, session_id, screens(1)[0])
    assert status == 404 and "unknown session" in reply["error"]


def test_16_concurrent_sessions_match_offline_single_session_runs(server, pong_onnx):
    """Each session plays its own screens; every answer equals an offline run of that session alone."""
    sessions = {new_session(server): seed for seed in range(16)}
    steps = 6
    batches_before = metric(server, "rise_batch_size_count")

    def play(item):
        session_id, seed = item
        return [post_raw(server, session_id, screen) for screen in screens(steps, seed=100 + seed)]

    with ThreadPoolExecutor(16) as pool:
        results = dict(zip(sessions, pool.map(play, sessions.items())))
    batches = metric(server, "rise_batch_size_count") - batches_before
    for session_id, seed in sessions.items():
        offline = Policy.load(pong_onnx)
        for (status, reply), screen in zip(results[session_id], screens(steps, seed=100 + seed)):
            action = offline.act(screen)
            assert status == 200 and reply["action"] == action
            np.testing.assert_allclose(reply["q_values"], offline.q_values[0], atol=1e-5)
        request(server, "DELETE", f"/sessions/{session_id}")
    assert batches < 16 * steps  # sessions that arrived together shared model calls


def test_concurrent_requests_to_one_session_are_served_in_turn(server):
    session_id = new_session(server)
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda screen: post_raw(server, session_id, screen), screens(12)))
    assert sorted(reply["step"] for _, reply in replies) == list(range(1, 13))  # no step lost or doubled


@pytest.mark.parametrize("body, headers, status, message", [
    (b"\x00" * 10, {"Content-Type": "application/octet-stream", "X-Frame-Shape": "210,160,3"}, 400, "needs"),
    (b"\x00" * 10, {"Content-Type": "application/octet-stream"}, 400, "X-Frame-Shape"),
    (b"\x00" * 12, {"Content-Type": "application/octet-stream", "X-Frame-Shape": "2,2"}, 400, "H,W,3"),
    (b"\x00" * 12, {"Content-Type": "application/octet-stream", "X-Frame-Shape": "a,b,c"}, 400, "H,W,3"),
    (b"not a png", {"Content-Type": "image/png"}, 400, "PNG"),
    (b"", {"Content-Type": "image/png"}, 400, "empty"),
    (b"{}", {"Content-Type": "application/json"}, 415, "image/png"),
    (b"{}", {}, 415, "image/png"),
])
def test_bad_frames_get_4xx_and_the_session_keeps_working(server, body, headers, status, message):
    session_id = new_session(server)
    got, reply = request(server, "POST", f"/sessions/{session_id}/act", body, headers)
    assert got == status and message in reply["error"], reply
    assert post_raw(server, session_id, screens(1)[0])[0] == 200


def _png_claiming(width, height):
    """A tiny PNG whose header claims width x height (a decompression bomb's shape)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_limits_oversized_and_bomb_bodies_unknown_routes_and_methods(server):
    session_id = new_session(server)
    started = time.perf_counter()
    status, reply = request(server, "POST", f"/sessions/{session_id}/act", _png_claiming(100_000, 100_000),
                            {"Content-Type": "image/png"})
    assert status == 413 and "pixels" in reply["error"] and time.perf_counter() - started < 5
    status, reply = post_raw(server, session_id, np.zeros((700, 700, 3), np.uint8))  # 1.47 MB > 1 MiB limit
    assert status == 413 and "exceeds" in reply["error"]
    status, reply = request(server, "POST", "/sessions", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and "not JSON" in reply["error"]
    status, reply = request(server, "GET", "/nowhere")
    assert status == 404 and "no route" in reply["error"]
    status, reply = request(server, "PUT", "/sessions")
    assert status == 405 and "not allowed" in reply["error"]
    assert request(server, "DELETE", "/sessions/nope")[0] == 404
    assert request(server, "GET", "/sessions/../healthz")[0] in (200, 404)  # normalised or unknown, never 5xx
    assert metric(server, "rise_requests_total", route="/sessions/{session_id}/act", status="413") >= 2


def _raw_exchange(server, data, read_timeout=5.0):
    """Sends raw bytes on one connection; returns everything the server sends before closing or the timeout."""
    sock = socket.create_connection((server.host, server.port), timeout=read_timeout)
    sock.sendall(data)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except socket.timeout:
        pass
    sock.close()
    return b"".join(chunks)


def test_a_declared_oversize_is_refused_before_the_body_is_sent(server):
    reply = _raw_exchange(server, b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413") and b"connection: close" in reply.lower()


def test_an_unread_body_is_never_parsed_as_the_next_request(server):
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    first = (b"POST /sessions/" + b"0" * 32 + b"/act HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
             b"Content-Length: " + str(len(smuggled)).encode() + b"\r\n\r\n" + smuggled)
    second = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = _raw_exchange(server, first + second)
    assert reply.startswith(b"HTTP/1.1 404")
    assert b"rise_requests_total" not in reply  # the body was discarded, not served as /metrics
    assert reply.count(b"HTTP/1.1 ") <= 2


def test_slow_clients_are_disconnected_within_the_request_timeout(server):
    started = time.perf_counter()
    assert _raw_exchange(server, b"", read_timeout=10) == b""  # connects, sends nothing
    silent = time.perf_counter() - started
    sock = socket.create_connection((server.host, server.port), timeout=10)
    started = time.perf_counter()
    closed_after = None
    for byte in b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123":  # one byte at a time
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            closed_after = time.perf_counter() - started
            break
        time.sleep(0.1)
    if closed_after is None:
        sock.settimeout(10)
        try:
            assert sock.recv(100) in (b"",)  # closed without an answer
        except ConnectionResetError:
            pass
        closed_after = time.perf_counter() - started
    sock.close()
    assert silent < 1.5 + 2 and closed_after < 1.5 + 2  # the 1.5 s deadline, with slack for a busy machine


def test_api_key_is_required_when_configured(policy):
    running = start(policy, ServerSettings(port=0, api_key=KEY))
    try:
        assert request(running, "GET", "/healthz")[0] == 200  # liveness needs no key
        status, reply = request(running, "POST", "/sessions")
        assert status == 401 and "API key" in reply["error"]
        assert request(running, "POST", "/sessions", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert request(running, "GET", "/metrics", headers={"X-API-Key": KEY})[0] == 200
        assert new_session(running, {"Authorization": f"Bearer {KEY}"})
    finally:
        running.stop()


def test_session_store_caps_and_expires_idle_sessions():
    now = [0.0]
    store = SessionStore(lambda: {"s": np.zeros((1, 2))}, max_sessions=2, idle_seconds=10, evict_idle_seconds=10,
                         clock=lambda: now[0])
    first, second = store.create(), store.create()
    with pytest.raises(TooManySessions, match="--max-sessions"):
        store.create()
    now[0] = 6.0
    store.get(first.id)  # used: its idle time restarts
    now[0] = 12.0
    with pytest.raises(UnknownSession, match="idle"):
        store.get(second.id)  # 12 s idle: expired
    assert store.get(first.id) is first and len(store) == 1 and store.expired == 1
    store.create()


def test_a_full_store_gives_the_place_of_a_session_idle_past_the_grace_never_of_one_in_play():
    """One client that opened every session and left them cannot lock others out for the idle
    timeout: after evict_idle_seconds of idleness the least recently used one gives way."""
    now = [0.0]
    store = SessionStore(lambda: {"s": np.zeros((1, 2))}, max_sessions=2, idle_seconds=600, evict_idle_seconds=5,
                         clock=lambda: now[0])
    hoarded, playing = store.create(), store.create()
    now[0] = 3.0
    store.get(playing.id)
    with pytest.raises(TooManySessions) as refused:
        store.create()  # the hoarded one has idled 3 s of 5
    assert refused.value.retry_after == pytest.approx(2.0)
    now[0] = 5.5
    newcomer = store.create()  # the hoarded one (idle 5.5 s) gives way; the one in play (2.5 s) stays
    assert store.find(hoarded.id) is None and store.find(playing.id) is playing and store.evicted == 1
    assert store.find(newcomer.id) is newcomer and len(store) == 2
    with pytest.raises(ValueError, match="evict_idle_seconds"):
        SessionStore(lambda: {}, max_sessions=1, idle_seconds=5, evict_idle_seconds=10)


def test_session_cap_answers_429_with_retry_after_on_the_wire(policy):
    running = start(policy, ServerSettings(port=0, max_sessions=2))
    try:
        new_session(running), new_session(running)
        connection = http.client.HTTPConnection(running.host, running.port, timeout=10)
        connection.request("POST", "/sessions")
        response = connection.getresponse()
        reply = json.loads(response.read())
        assert response.status == 429 and "max-sessions" in reply["error"]
        assert 1 <= int(response.getheader("Retry-After")) <= 10
        connection.close()
    finally:
        running.stop()


def test_graceful_shutdown_finishes_the_request_in_flight(policy):
    running = start(policy, ServerSettings(port=0, batch_window_ms=800.0))  # the step waits 0.8 s for company
    session_id = new_session(running)
    result = {}
    thread = threading.Thread(target=lambda: result.update(reply=post_raw(running, session_id, screens(1)[0])))
    thread.start()
    time.sleep(0.3)
    running.stop()
    thread.join(10)
    assert result["reply"][0] == 200


def test_openapi_and_prometheus_metrics(server):
    status, schema = request(server, "GET", "/openapi.json")
    assert status == 200 and schema["openapi"].startswith("3.") and "/sessions/{session_id}/act" in schema["paths"]
    # the documented paths and methods are exactly the served routes
    from starlette.routing import Route

    served = {(route.path, method.lower()) for route in server.service.app.routes if isinstance(route, Route)
              for method in route.methods if method != "HEAD"}
    documented = {(path, method) for path, operations in schema["paths"].items() for method in operations}
    assert documented == served and len(served) == 6
    new_session(server)
    assert metric(server, "rise_requests_total", route="/sessions", status="201") >= 1
    assert metric(server, "rise_sessions") >= 1


FUZZ_PATHS = ["/", "/sessions", "/sessions/", "/sessions/{id}", "/sessions/{id}/act", "/sessions/{id}/act/x",
              "/sessions/%2e%2e/act", "/sessions/../../etc/passwd", "/healthz", "/metrics", "/openapi.json",
              "/" + "a" * 3000, "/sessions/\u00e9\u00e9/act", "/sessions/{id}%00/act"]
FUZZ_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
FUZZ_TYPES = ["image/png", "IMAGE/PNG", "application/octet-stream", "Application/Octet-Stream; q=1",
              "application/json", "text/plain", "", "image/png;;;", "multipart/form-data; boundary=x"]
FUZZ_SHAPES = [None, "210,160,3", "210,160", "-1,160,3", "0,0,3", "99999999,99999999,3", "a,b,c", "210,160,3,1", ""]


def test_fuzz_a_thousand_hostile_requests_get_4xx_never_5xx(server):
    rng = np.random.default_rng(2026)
    valid = new_session(server)
    good_png = png_bytes(screens(1)[0])
    bodies = [b"", b"{}", b"{not json", good_png[:100], good_png, good_png[:-20], _png_claiming(50_000, 50_000),
              bytes(rng.integers(0, 256, 3000, dtype=np.uint8)), screens(1)[0].tobytes(), b"\x00" * 100_000]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    statuses = {}

    def one(index):
        local = np.random.default_rng(index)
        path = FUZZ_PATHS[local.integers(len(FUZZ_PATHS))].replace(
            "{id}", [valid, "0" * 32, "nope", "'; DROP"][local.integers(4)])
        method = FUZZ_METHODS[local.integers(len(FUZZ_METHODS))]
        headers = {}
        content_type = FUZZ_TYPES[local.integers(len(FUZZ_TYPES))]
        if content_type:
            headers["Content-Type"] = content_type
        shape = FUZZ_SHAPES[local.integers(len(FUZZ_SHAPES))]
        if shape is not None:
            headers["X-Frame-Shape"] = shape
        body = bodies[local.integers(len(bodies))] if method not in ("GET", "HEAD") else b""
        declared = len(body)
        lie = local.random()
        if lie < 0.05:
            declared = max(0, declared - int(local.integers(1, 50)))  # a Content-Length that lies low
        elif lie < 0.07:
            declared += 1000  # lies high: the server waits for bytes that never come, then hangs up
        lines = [f"{method} {path} HTTP/1.1", "Host: fuzz", "Connection: close", f"Content-Length: {declared}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        raw = "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body
        try:
            reply = _raw_exchange(server, raw, read_timeout=30)
        except ConnectionError:
            return "closed"
        if not reply.startswith(b"HTTP/1.1 "):
            return "closed"
        return int(reply[9:12])

    with ThreadPoolExecutor(8) as pool:
        for status in pool.map(one, range(1200)):
            statuses[status] = statuses.get(status, 0) + 1
    print("fuzz answers:", dict(sorted(statuses.items(), key=str)))
    server_errors = {s: n for s, n in statuses.items() if isinstance(s, int) and s >= 500}
    assert not server_errors, statuses
    assert sum(statuses.values()) == 1200 and sum(n for s, n in statuses.items() if s != "closed") >= 1000
    assert any(isinstance(s, int) and 400 <= s < 500 for s in statuses)
    # Still serving (the fuzz may have deleted `valid`), memory bounded (ru_maxrss is in KiB on Linux).
    assert post_raw(server, new_session(server), screens(1)[0])[0] == 200
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024 < 300


def test_cli_refuses_bad_ports_addresses_keys_and_models(pong_onnx, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        serve_main([pong_onnx, "--port", "70000"])
    assert exit_info.value.code == 2 and "not a TCP port" in capsys.readouterr().err
    assert serve_main([pong_onnx, "--host", "0.0.0.0"]) == 2
    assert "API key" in capsys.readouterr().err
    assert serve_main([pong_onnx, "--api-key-file", str(tmp_path / "none.txt")]) == 2
    assert "cannot read --api-key-file" in capsys.readouterr().err
    assert serve_main([str(tmp_path / "missing.onnx")]) == 2
    assert "no model at" in capsys.readouterr().err
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        assert serve_main([pong_onnx, "--port", str(busy.getsockname()[1])]) == 2
        assert "in use" in capsys.readouterr().err
    finally:
        busy.close()


def test_a_session_max_pools_as_the_contract_says_and_can_start_a_new_episode(policy, pong_onnx):
    """Two screens in one request (2,H,W,3) are pooled; with action_repeat 1 a single screen is pooled
    with the session's previous one. Every answer equals the runner's act(screen, previous) on the same
    sequence; ?new_episode=true wipes the memory and the previous screen."""
    import dataclasses

    sequence = screens(6, seed=7)
    running = start(policy, ServerSettings(port=0, batch_window_ms=0.0))
    try:
        session_id, runner = new_session(running), Policy.load(pong_onnx)  # Pong: action_repeat 4
        for index in range(1, 4):
            both = np.stack([sequence[index - 1], sequence[index]])
            status, reply = request(running, "POST", f"/sessions/{session_id}/act", both.tobytes(),
                                    {"Content-Type": "application/octet-stream", "X-Frame-Shape": "2,210,160,3"})
            runner.act(sequence[index], sequence[index - 1])
            assert status == 200, reply
            np.testing.assert_allclose(reply["q_values"], runner.q_values[0], atol=1e-5)
        status, reply = request(running, "POST", f"/sessions/{session_id}/act?new_episode=maybe",
                                sequence[0].tobytes(), {"Content-Type": "application/octet-stream",
                                                        "X-Frame-Shape": "210,160,3"})
        assert status == 400 and "not a boolean" in reply["error"]
    finally:
        running.stop()

    repeat_one = Policy.load(pong_onnx)
    repeat_one.preprocessing = dataclasses.replace(repeat_one.preprocessing, action_repeat=1)
    running = start(repeat_one, ServerSettings(port=0, batch_window_ms=0.0))
    try:
        session_id = new_session(running)
        runner = Policy.load(pong_onnx)
        runner.preprocessing = repeat_one.preprocessing
        previous = None
        for index, screen in enumerate(sequence):
            new_episode = index == 4
            if new_episode:
                runner.reset(1)
                previous = None
            path = f"/sessions/{session_id}/act" + ("?new_episode=true" if new_episode else "")
            status, reply = post_raw(running, session_id, screen) if not new_episode else request(
                running, "POST", path, screen.tobytes(), {"Content-Type": "application/octet-stream",
                                                          "X-Frame-Shape": "210,160,3"})
            runner.act(screen, previous)
            previous = screen
            assert status == 200, reply
            np.testing.assert_allclose(reply["q_values"], runner.q_values[0], atol=1e-5)
        # and the pooling mattered: without the previous screen the last answer differs
        alone = Policy.load(pong_onnx)
        alone.preprocessing = repeat_one.preprocessing
        alone.act(sequence[4])
        alone.act(sequence[5])
        assert not np.allclose(reply["q_values"], alone.q_values[0], atol=1e-6)
    finally:
        running.stop()


@pytest.mark.parametrize("head", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    b"Content-Length: 2\r\nContent-Length: 2\r\n",
    b"Content-Length: 2\r\nX-Folded: a\r\n b\r\n",
], ids=["cl-te", "te-cl", "two-equal-cl", "obs-fold"])
def test_ambiguous_framing_is_refused_and_the_connection_closed(server, head):
    """RFC 9112: request-smuggling vectors get a 400 and the connection closes, so the bytes after them
    are never read as a second request."""
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    data = b"POST /sessions HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n{}" + b"0\r\n\r\n" + smuggled
    reply = _raw_exchange(server, data)
    assert reply.startswith(b"HTTP/1.1 400") and b"connection: close" in reply.lower(), reply[:300]
    assert reply.count(b"HTTP/1.1 ") == 1 and b"rise_requests_total" not in reply


def test_a_client_that_leaves_mid_body_is_not_logged_as_an_error(server, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"")
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1000)
        sock.close()
    time.sleep(0.3)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], \
        [r.getMessage() for r in caplog.records]
    assert request(server, "GET", "/healthz")[0] == 200


def test_openapi_names_every_error_and_help_shows_defaults(server, capsys):
    schema = request(server, "GET", "/openapi.json")[1]
    act = schema["paths"]["/sessions/{session_id}/act"]["post"]["responses"]
    assert {"400", "401", "404", "413", "415", "500", "503"} <= set(act)
    assert len({response["description"] for code, response in act.items() if code != "200"}) == len(act) - 1
    assert "new_episode" in {p["name"] for p in schema["paths"]["/sessions/{session_id}/act"]["post"]["parameters"]}
    with pytest.raises(SystemExit):
        serve_main(["--help"])
    out = capsys.readouterr().out
    assert "(default: 8000)" in out and "(default: 2.0)" in out and "(default: 5.0)" in out


def test_ctrl_c_stops_the_cli_server_without_a_traceback(pong_onnx):
    import signal
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-m", "rise_runtime.server", pong_onnx, "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline()
        assert "Ctrl-C stops" in banner, server.stderr.read()[-2000:]
        port = int(banner.split("http://127.0.0.1:")[1].split()[0])
        deadline = time.time() + 30
        while True:  # serving (uvicorn's signal handlers are in place) before the Ctrl-C
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                assert time.time() < deadline, "the server did not come up"
                time.sleep(0.1)
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 130 and "[rise-serve] stopped" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]


def test_https_with_uvicorns_certificate_options(policy, tmp_path):
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    running = start(policy, ServerSettings(port=0, ssl_certfile=cert, ssl_keyfile=key))
    try:
        assert running.url.startswith("https://")
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False  # the test certificate names an IP as CN only
        connection = http.client.HTTPSConnection(running.host, running.port, context=context, timeout=10)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["status"] == "ok"
        connection.close()
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):  # plain HTTP is not served
            request(running, "GET", "/healthz", timeout=5)
    finally:
        running.stop()
    with pytest.raises(ValueError, match="both --ssl-certfile and --ssl-keyfile"):
        ServerSettings(ssl_certfile=cert)
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ValueError, match="cannot use --ssl-certfile/--ssl-keyfile"):
        start(policy, ServerSettings(port=0, ssl_certfile=cert, ssl_keyfile=str(tmp_path / "bad.pem")))


def test_the_batcher_waits_for_company_only_while_more_requests_are_in_the_server():
    from rise_runtime.batcher import Batcher
    from rise_runtime.sessions import Session

    class Model:
        def run_step(self, frames, reset, state):
            return np.zeros(len(frames), np.int64), np.zeros((len(frames), 2)), state

    def session(name):
        return Session(name, {"s": np.zeros((1, 2))}, 0.0)

    sizes, in_server = [], [1]
    batcher = Batcher(Model(), window_seconds=30.0, max_batch=8, on_batch=sizes.append, expected=lambda: in_server[0])
    try:
        alone = batcher.submit(session("a"), np.zeros((4, 4), np.uint8))
        alone.result(timeout=10)  # a 30 s window, yet answered: nobody else was in the server
        in_server[0] = 2
        first = batcher.submit(session("b"), np.zeros((4, 4), np.uint8))
        time.sleep(0.3)
        assert not first.done()  # a second request is in the server: the first waits for it
        second = batcher.submit(session("c"), np.zeros((4, 4), np.uint8))
        first.result(timeout=10), second.result(timeout=10)
        assert sizes == [1, 2]
    finally:
        batcher.stop()
