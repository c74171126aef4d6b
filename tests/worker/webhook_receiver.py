"""A real webhook receiver on 127.0.0.1, written the way the README tells receivers to be:
verify the signature, process each event_id once, answer 2xx."""

from __future__ import annotations

import hashlib
import hmac
import json
import select
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify(secret: str, headers: Message, body: bytes, tolerance: int = 300) -> bool:
    """The README's verification snippet, as printed there."""
    timestamp = headers["X-Neonomaly-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    fresh = abs(time.time() - int(timestamp)) <= tolerance  # refuses replays
    return fresh and hmac.compare_digest(
        "sha256=" + expected.hexdigest(), headers["X-Neonomaly-Signature"]
    )


@dataclass
class Received:
    path: str
    headers: Message  # case-insensitive, as a receiver's framework gives them
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    port: int = 0
    # Answer this status to the first `fail_first` requests (after recording them): the
    # event was received but the sender never learns it, so it sends it again.
    fail_first: int = 0
    fail_status: int = 500
    redirect_to: str | None = None
    received: list[Received] = field(default_factory=list)
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/neonomaly"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    receiver.received.append(Received(self.path, self.headers, body))
                    count = len(receiver.received)
                    # Dedup: a second copy of an event is answered 2xx and not processed.
                    event_id = self.headers["X-Neonomaly-Event-Id"]
                    receiver.processed.setdefault(event_id, json.loads(body))
                if receiver.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect_to)
                elif count <= receiver.fail_first:
                    self.send_response(receiver.fail_status)
                else:
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class Connection:
    delivery_id: str
    opened: float  # time.monotonic()
    closed: float | None = None


@dataclass
class TricklingReceiver:
    """A receiver that never finishes answering: after the request it sends a status line
    and then one byte every `interval` seconds, in the headers (`trickle="headers"`: the
    answer never gets a status) or in the body (`trickle="body"`), until the sender hangs
    up. Each connection is recorded with the delivery id it carried and when it closed."""

    status: int = 200
    trickle: str = "headers"
    interval: float = 0.5
    port: int = 0
    connections: list[Connection] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/slow"

    def start(self) -> TricklingReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                connection = Connection(self.headers["X-Neonomaly-Delivery"], time.monotonic())
                receiver.connections.append(connection)
                head = f"HTTP/1.1 {receiver.status} Whatever\r\n"
                if receiver.trickle == "body":
                    head += "Content-Length: 100000\r\n\r\n"
                else:
                    head += "X-Trickle: "
                try:
                    self.wfile.write(head.encode())
                    self.wfile.flush()
                    while not receiver._stopped.is_set():
                        # Readable before the next byte is due: the sender hung up.
                        if select.select([self.connection], [], [], receiver.interval)[0]:
                            break
                        self.wfile.write(b"x")
                        self.wfile.flush()
                except OSError:  # the sender hung up
                    pass
                finally:
                    connection.closed = time.monotonic()
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
