"""rise-serve on localhost: round trip p50/p99 and requests/s with 1, 8 and 16 concurrent sessions
(each its own keep-alive connection and thread), raw 210x160x3 frames, beside in-process
`Policy.act` on the same screen in the same run (issue 22's goal: one client adds <= 1 ms p50).

`compare` runs the same workloads against today's server (Starlette on uvicorn) and the first
server (http.server with threads, read from git history at LEGACY_COMMIT), one after the other,
each in its own process.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np

LEGACY_COMMIT = "4ea1e03"  # the last commit with the http.server-based rise-serve
LEGACY_PATH = "serving/server.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADERS = {"Content-Type": "application/octet-stream", "X-Frame-Shape": "210,160,3"}


def _client(host: str, port: int, requests: int, seed: int, barrier: Optional[threading.Barrier] = None):
    connection = http.client.HTTPConnection(host, port, timeout=60)
    connection.request("POST", "/sessions")
    session_id = json.loads(connection.getresponse().read())["session_id"]
    body = np.random.default_rng(seed).integers(0, 256, (210, 160, 3), dtype=np.uint8).tobytes()
    for _ in range(10):  # warm-up
        connection.request("POST", f"/sessions/{session_id}/act", body, HEADERS)
        connection.getresponse().read()
    if barrier is not None:
        barrier.wait()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        connection.request("POST", f"/sessions/{session_id}/act", body, HEADERS)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        times.append(time.perf_counter() - start)
    connection.close()
    return times


CLIENT_COUNTS = (1, 8, 16)


def in_process(model_path: str, requests: int) -> dict:
    """`Policy.act` on the screen the clients send, with the server's default threads: what the
    server adds is measured against this."""
    from rise_runtime.runner import Policy

    policy = Policy.load(model_path)
    screen = np.random.default_rng(0).integers(0, 256, (210, 160, 3), dtype=np.uint8)
    previous = screen
    for _ in range(10):
        policy.act(screen, previous)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        policy.act(screen, previous)
        times.append(time.perf_counter() - start)
    ms = 1000 * np.asarray(times)
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def _sessions(host: str, port: int, sessions: int, per_session: int) -> dict:
    barrier = threading.Barrier(sessions + 1)
    with ThreadPoolExecutor(sessions) as pool:
        futures = [pool.submit(_client, host, port, per_session, seed, barrier) for seed in range(sessions)]
        barrier.wait()
        started = time.perf_counter()
        times = [future.result() for future in futures]
        elapsed = time.perf_counter() - started
    ms = 1000 * np.concatenate(times)
    return {"clients": sessions, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "requests_per_s": sessions * per_session / elapsed, "requests": sessions * per_session}


def workload(host: str, port: int, requests: int) -> dict:
    """1, 8 and 16 concurrent sessions, one after the other."""
    runs = [_sessions(host, port, n, requests if n == 1 else max(requests // 4, 20)) for n in CLIENT_COUNTS]
    return {"runs": runs}


# Each server runs in its own process, as deployed, so the benchmark's client threads do not share
# its interpreter lock. The child prints its port on its first line of output.
NEW_SERVER = """
import sys
from rise_runtime.runner import Policy
from rise_runtime.server import ServerSettings, start
running = start(Policy.load(sys.argv[1]), ServerSettings(port=0))
print(running.port, flush=True)
sys.stdin.read()
running.stop()
"""

LEGACY_SERVER = """
import subprocess, sys, types
source = subprocess.run(["git", "show", sys.argv[2]], cwd=sys.argv[3], capture_output=True, text=True,
                        check=True).stdout
module = types.ModuleType("legacy_rise_serve")
exec(compile(source.replace("rise_tf.serving", "rise_runtime"), "legacy_rise_serve", "exec"), module.__dict__)
httpd = module.serve(sys.argv[1], port=0)
print(httpd.server_address[1], flush=True)
import threading
threading.Thread(target=httpd.serve_forever, daemon=True).start()
sys.stdin.read()
httpd.shutdown()
"""


def _serve_in_child(code: str, *args: str) -> dict:
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    try:
        port = int(child.stdout.readline())
        return workload("127.0.0.1", port, _serve_in_child.requests)
    finally:
        child.stdin.close()
        child.wait(60)


def measure(model_path: str, requests: int = 300) -> dict:
    _serve_in_child.requests = requests
    return _serve_in_child(NEW_SERVER, model_path)


def legacy_available() -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{LEGACY_COMMIT}:{LEGACY_PATH}"], cwd=ROOT,
                          capture_output=True).returncode == 0


def compare(model_path: str, requests: int = 300) -> dict:
    result = {"in_process": in_process(model_path, requests), "new": measure(model_path, requests)}
    result["new_one_client_added_p50_ms"] = result["new"]["runs"][0]["p50_ms"] - result["in_process"]["p50_ms"]
    if legacy_available():
        result["old"] = _serve_in_child(LEGACY_SERVER, model_path, f"{LEGACY_COMMIT}:{LEGACY_PATH}", ROOT)
    return result


if __name__ == "__main__":  # python -m benchmarks.server_latency MODEL.onnx
    print(json.dumps(compare(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300), indent=2))
