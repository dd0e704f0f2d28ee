"""rise-serve on loopback: session lifecycle, per-session memory, batching, serialization, bad input."""
import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from rise_runtime.runner import Policy
from rise_runtime.server import MAX_BODY_BYTES, serve


@pytest.fixture(scope="module")
def server(pong_onnx):
    httpd = serve(pong_onnx, port=0, batch_window_ms=20.0)  # a wide window so concurrent calls batch
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def request(httpd, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(*httpd.server_address[:2], timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload


def screens(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (210, 160, 3), dtype=np.uint8) for _ in range(count)]


def post_raw(httpd, session_id, screen):
    return request(httpd, "POST", f"/sessions/{session_id}/act", screen.tobytes(),
                   {"Content-Type": "application/octet-stream", "X-Frame-Shape": "210,160,3"})


def test_binds_to_localhost_by_default(server):
    assert server.server_address[0] == "127.0.0.1"


def test_session_lifecycle_with_png_and_raw_frames_matches_the_runner(server, pong_onnx):
    status, created = request(server, "POST", "/sessions")
    assert status == 201 and created["game"] == "Pong" and created["action_meanings"][0] == "NOOP"
    session_id = created["session_id"]
    runner = Policy.load(pong_onnx)
    for index, screen in enumerate(screens(4)):
        if index % 2:
            status, reply = post_raw(server, session_id, screen)
        else:
            png = cv2.imencode(".png", screen[:, :, ::-1])[1].tobytes()
            status, reply = request(server, "POST", f"/sessions/{session_id}/act", png, {"Content-Type": "image/png"})
        assert status == 200 and reply["step"] == index + 1
        action = runner.act(screen)
        np.testing.assert_allclose(reply["q_values"], runner.q_values[0], atol=1e-5)  # same memory, same Q
        assert reply["action"] == action and reply["action_meaning"] == runner.action_meanings[action]
    assert request(server, "DELETE", f"/sessions/{session_id}")[0] == 200
    status, reply = post_raw(server, session_id, screens(1)[0])
    assert status == 404 and "unknown session" in reply["error"]


def test_concurrent_sessions_are_batched_and_each_keeps_its_own_memory(server):
    ids = [request(server, "POST", "/sessions")[1]["session_id"] for _ in range(8)]
    before = request(server, "GET", "/metrics")[1]

    def play(session_id):
        return [post_raw(server, session_id, screen) for screen in screens(5, seed=1)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(play, ids))
    after = request(server, "GET", "/metrics")[1]
    assert all(status == 200 for replies in results for status, _ in replies)
    # Same screens in the same order: every session ends with the same Q (independent memories).
    finals = [replies[-1][1]["q_values"] for replies in results]
    np.testing.assert_allclose(finals, [finals[0]] * 8, atol=1e-5)
    batches = after["batches"] - before["batches"]
    assert batches < 40  # 40 steps served in fewer calls: sessions arriving together were batched
    assert after["latency_ms"]["p99"] >= after["latency_ms"]["p50"] > 0
    for session_id in ids:
        request(server, "DELETE", f"/sessions/{session_id}")


def test_concurrent_requests_to_one_session_are_serialized(server):
    session_id = request(server, "POST", "/sessions")[1]["session_id"]
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda screen: post_raw(server, session_id, screen), screens(12)))
    assert sorted(reply["step"] for _, reply in replies) == list(range(1, 13))  # no step lost or doubled


@pytest.mark.parametrize("body, headers, status, message", [
    (b"\x00" * 10, {"Content-Type": "application/octet-stream", "X-Frame-Shape": "210,160,3"}, 400, "needs"),
    (b"\x00" * 10, {"Content-Type": "application/octet-stream"}, 400, "X-Frame-Shape"),
    (b"\x00" * 12, {"Content-Type": "application/octet-stream", "X-Frame-Shape": "2,2"}, 400, "H,W,3"),
    (b"not a png", {"Content-Type": "image/png"}, 400, "PNG"),
    (b"{}", {"Content-Type": "application/json"}, 415, "image/png"),
])
def test_bad_frames_get_4xx_and_the_server_keeps_serving(server, body, headers, status, message):
    session_id = request(server, "POST", "/sessions")[1]["session_id"]
    got, reply = request(server, "POST", f"/sessions/{session_id}/act", body, headers)
    assert got == status and message in reply["error"]
    assert post_raw(server, session_id, screens(1)[0])[0] == 200  # the session still works


def test_malformed_json_oversized_bodies_and_unknown_routes(server):
    status, reply = request(server, "POST", "/sessions", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and "malformed JSON" in reply["error"]
    session_id = request(server, "POST", "/sessions")[1]["session_id"]
    status, reply = request(server, "POST", f"/sessions/{session_id}/act", b"\x00" * (MAX_BODY_BYTES + 1),
                            {"Content-Type": "application/octet-stream", "X-Frame-Shape": "210,160,3"})
    assert status == 413 and "exceeds" in reply["error"]
    assert request(server, "GET", "/nowhere")[0] == 404
    assert request(server, "DELETE", "/sessions/nope")[0] == 404
    status, health = request(server, "GET", "/healthz")
    assert status == 200 and health["status"] == "ok"
    errors = request(server, "GET", "/metrics")[1]["errors"]
    assert errors.get("413", 0) >= 1 and errors.get("400", 0) >= 1
