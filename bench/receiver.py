"""A webhook receiver for the benchmarks: answers every POST with 204 at once and remembers,
per request, when it arrived (Unix time), its `webhook-id`, the event's ticket id, the path,
and when the event was recorded (`occurred_at`, inside the writing transaction: just before
its commit). `GET /arrivals` returns them as JSON; `DELETE /arrivals` forgets them.

It runs on the same two cores as the server it measures, so it is as lean as a receiver can
be: an asyncio protocol on uvloop with llhttp's parser (httptools), no framework.

    python bench/receiver.py --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import cast

import httptools
import orjson
import uvloop

Arrival = tuple[float, str, int | None, str, str]
arrivals: list[Arrival] = []
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


class Receiver(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.reset()

    def reset(self) -> None:
        self.url = b""
        self.webhook_id = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"webhook-id":
            self.webhook_id = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        method = self.parser.get_method()
        if method == b"POST":
            at = time.time()
            attributes = orjson.loads(b"".join(self.body))["data"]["attributes"]
            arrivals.append(
                (
                    at,
                    self.webhook_id.decode(),
                    attributes.get("ticket_id"),
                    self.url.decode(),
                    attributes["occurred_at"],
                )
            )
            self.transport.write(_NO_CONTENT)
        else:
            if method == b"DELETE":
                arrivals.clear()
            payload = orjson.dumps(arrivals if method == b"GET" else [])
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
            )
        self.reset()


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
