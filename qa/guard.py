"""Limits on what one HTTP client can make the web app do: request sizes, and failed logins.

An ASGI middleware in front of the Gradio app. A 20 MB question through the API cost 33 s of CPU and was
echoed back, so request bodies are limited (uploads have Gradio's own per-file limit); and with ``--auth``,
30 wrong passwords in 0.4 s were all answered, so after a few failures a client waits, longer each time.
"""

from __future__ import annotations

import json
import sys
import threading
import time

#: Largest request body outside file uploads. A question is cut to 2,000 characters anyway; a chat history
#: sent through the API is the other large part, and 256 KB is over 100 full answers.
MAX_REQUEST_BYTES = 256 * 1024
#: Failed logins a client may make at full speed; then it waits 1 s, 2 s, 4 s... up to MAX_LOGIN_WAIT_S.
FREE_LOGIN_FAILURES, MAX_LOGIN_WAIT_S = 5, 60
_UPLOAD_PATHS = ("/gradio_api/upload", "/upload")
_LOGIN_PATHS = ("/login", "/login/")


class Guard:
    """ASGI middleware: refuses request bodies over :data:`MAX_REQUEST_BYTES` (413) and slows down a client's
    repeated failed logins (429 with Retry-After)."""

    def __init__(self, app, max_bytes: int = MAX_REQUEST_BYTES):
        self.app = app
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # client address -> (failures in a row, next try at)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path.startswith(_UPLOAD_PATHS):
            return await self._upload(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _refuse(send, 413, f"request too large ({int(length):,} bytes; the limit is "
                                            f"{self.max_bytes:,}): questions are cut to 2,000 characters anyway")
        if path in _LOGIN_PATHS and scope.get("method") == "POST":
            return await self._login(scope, receive, send)
        return await self.app(scope, _limited(receive, self.max_bytes), send)

    async def _upload(self, scope, receive, send):
        """Gradio's upload route, whose errors on a malformed upload (a file part without a file name: TypeError)
        became a 500 with a traceback in the log: a 400 that says what to send instead."""
        started = False

        async def watch(message):
            nonlocal started
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except (TypeError, ValueError, KeyError) as exc:
            if started:
                raise
            print(f"qa web: upload refused: malformed request ({type(exc).__name__}: {exc})", file=sys.stderr,
                  flush=True)
            await _refuse(send, 400, "the upload could not be read: send each file as a multipart form part "
                                     "named 'files' with a non-empty file name")

    async def _login(self, scope, receive, send):
        client = (scope.get("client") or ("?", 0))[0]
        with self._lock:
            failures, next_try = self._failures.get(client, (0, 0.0))
        wait = next_try - time.monotonic()
        if wait > 0:
            return await _refuse(send, 429, f"too many failed logins; try again in {wait:.0f} s",
                                 [(b"retry-after", str(max(1, round(wait))).encode())])
        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, _limited(receive, self.max_bytes), watch)
        with self._lock:
            if status.get("code") == 200:
                self._failures.pop(client, None)
            elif status.get("code") in (400, 401, 403):
                failures += 1
                delay = 0.0 if failures < FREE_LOGIN_FAILURES else min(
                    MAX_LOGIN_WAIT_S, 2.0 ** (failures - FREE_LOGIN_FAILURES))
                self._failures[client] = (failures, time.monotonic() + delay)


def _limited(receive, max_bytes: int):
    """``receive`` that stops a body without a Content-Length once it passes ``max_bytes``."""
    seen = 0

    async def limited():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise RequestTooLarge(f"request body over {max_bytes:,} bytes")
        return message

    return limited


class RequestTooLarge(ValueError):
    """A request body without Content-Length that grew past the limit (the connection is dropped)."""


async def _refuse(send, status: int, message: str, headers: list | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
