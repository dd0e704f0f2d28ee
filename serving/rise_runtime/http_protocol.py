"""uvicorn's h11 protocol with a deadline on receiving each request (headers and body).

uvicorn bounds only the idle time between requests (`timeout_keep_alive`), and it restarts that
timer on every byte received. A client that sends one byte a second, or that opens a connection and
sends nothing, holds the connection for as long as it likes (slowloris). An ASGI middleware cannot
help, because the app runs only once the headers are complete. This subclass arms a deadline when a
connection opens and when the first byte of each later request arrives. It disarms the deadline once
the whole request has been received. If the deadline passes first, it closes the connection.
Responses are not limited: a slow model call is the server's time, not the client's.

It also refuses request heads that a proxy in front might frame differently (request smuggling),
which h11 would accept and tidy so that the app could not tell: obs-fold (a header line continued
on the next one, RFC 9112 section 5.2; h11 joins the lines with a space) and Content-Length given
twice (h11 keeps one when the values agree; RFC 9112 section 6.3 says reject). The request gets a 400
and the connection closes. (Transfer-Encoding with Content-Length reaches the app, whose guard refuses
it.)

This relies on uvicorn internals (H11Protocol's `conn`, `transport`, `handle_events`, and
`on_response_complete`), so serving/setup.py bounds the uvicorn version. tests/test_server.py
checks the behaviour.
"""
from __future__ import annotations

import asyncio
import re
from typing import Optional

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


_OBS_FOLD = re.compile(rb"\r\n[ \t]")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:", re.IGNORECASE)
_HEAD_END = b"\r\n\r\n"
_MAX_TRACKED_HEAD = 1 << 16  # h11 refuses heads over 16 KiB itself; past this we stop looking


def _refusal(message: str) -> bytes:
    body = ('{"error": "' + message + '"}').encode()
    return (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: " + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n" + body)


def head_problem(head: bytes) -> Optional[str]:
    """Why a complete request head (request line and headers, up to its blank line) is refused, or None."""
    if _OBS_FOLD.search(head):
        return "a header line continued on the next (obs-fold) is not allowed: RFC 9112 section 5.2"
    if len(_CONTENT_LENGTH.findall(head)) > 1:
        return "Content-Length is given more than once; send it once: RFC 9112 section 6.3"
    return None


class DeadlineH11Protocol(H11Protocol):
    request_timeout: float = 10.0  # seconds; set by rise_runtime.server before uvicorn starts

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._request_deadline: Optional[asyncio.TimerHandle] = None
        self._head: Optional[bytes] = None  # the request head received so far, while it arrives
        self._arm()  # a connection that never sends a byte is closed too

    def data_received(self, data: bytes) -> None:
        problem = self._head_problem(data)
        if problem is not None:
            self._disarm()
            self.transport.write(_refusal(problem))
            self.transport.close()
            return
        super().data_received(data)
        self._update()

    def _head_problem(self, data: bytes) -> Optional[str]:
        """Collects the request head as it arrives; once it is complete, why it is refused (or None).
        Bytes before the head is complete go on to h11, which emits nothing until it is."""
        if self._head is None:
            if self.conn.their_state is not h11.IDLE:
                return None  # a body, or a request being answered: not a head
            self._head = b""
        head = self._head + data
        end = head.find(_HEAD_END)
        if end < 0:
            self._head = head if len(head) <= _MAX_TRACKED_HEAD else None
            return None
        self._head = None
        return head_problem(head[:end + 2])

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._update()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _update(self) -> None:
        state = self.conn.their_state
        if state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()  # the request is complete, or the connection is ending anyway
        elif state is h11.SEND_BODY or (state is h11.IDLE and self.conn.trailing_data[0]):
            if self._request_deadline is None:
                self._arm()  # a request is partly in: from its first byte, not from its last
        elif self.cycle is not None:
            self._disarm()  # idle between requests: uvicorn's keep-alive timeout covers that
        # else: a new connection that has sent nothing yet keeps the deadline armed at connect

    def _arm(self) -> None:
        self._disarm()
        self._request_deadline = self.loop.call_later(self.request_timeout, self._on_deadline)

    def _disarm(self) -> None:
        deadline = getattr(self, "_request_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._request_deadline = None

    def _on_deadline(self) -> None:
        self._request_deadline = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection that did not send a whole request within %.0f s",
                             self.request_timeout)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True  # the app's receive() sees http.disconnect
                self.cycle.message_event.set()
            self.transport.close()
