"""Issue 9: a push is sent with a Content-Length, so a receiver that reads Content-Length
bytes (a plain HTTP server) gets the package. Sent chunked, such a receiver read 0 bytes,
answered 200, and the node recorded the delivery `done`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from adapters.push_client import PushClient


class PlainReceiver(BaseHTTPRequestHandler):
    """Reads exactly Content-Length bytes, as http.server-style handlers do."""

    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


async def test_a_push_carries_a_content_length_and_a_plain_receiver_reads_it_all() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PlainReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    parts = [b"<edXML>", b"x" * 200_000, b"</edXML>"]

    def chunks() -> Iterator[bytes]:
        yield from parts

    client = PushClient(timeout=10)
    try:
        result = await client.push(
            f"http://127.0.0.1:{server.server_address[1]}/in",
            "secret",
            chunks,
            {"X-Lienthong-Delivery-Id": "d-1"},
        )
    finally:
        await client.close()
        server.shutdown()
        await asyncio.to_thread(thread.join, 5)
        server.server_close()
    assert result.ok, result
    [(headers, body)] = PlainReceiver.received
    assert body == b"".join(parts)
    assert headers["Content-Length"] == str(len(body))
    assert "Transfer-Encoding" not in headers
