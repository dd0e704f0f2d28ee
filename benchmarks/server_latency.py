"""rise-serve round trip on localhost: one client, raw 210x160x3 frames, p50/p99 per request."""
from __future__ import annotations

import http.client
import os
import tempfile
import threading
import time

import numpy as np


def measure(model_path: str, requests: int = 300) -> dict:
    from rise_runtime.server import serve

    httpd = serve(model_path, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request("POST", "/sessions")
    import json

    session_id = json.loads(connection.getresponse().read())["session_id"]
    rng = np.random.default_rng(0)
    body = rng.integers(0, 256, (210, 160, 3), dtype=np.uint8).tobytes()
    headers = {"Content-Type": "application/octet-stream", "X-Frame-Shape": "210,160,3"}
    times = []
    for index in range(requests + 20):
        start = time.perf_counter()
        connection.request("POST", f"/sessions/{session_id}/act", body, headers)
        connection.getresponse().read()
        if index >= 20:
            times.append(time.perf_counter() - start)
    connection.close()
    httpd.shutdown()
    httpd.server_close()
    ms = 1000 * np.asarray(times)
    return {"round_trip_p50_ms": float(np.percentile(ms, 50)), "round_trip_p99_ms": float(np.percentile(ms, 99)),
            "requests": requests}
