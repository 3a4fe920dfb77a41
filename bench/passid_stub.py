"""A cheap stand-in for PASSID's `GET /api/bridge/request/<id>` during the capacity run.

Under load every awaiting widget's poll asks PASSID for its request's status.
The real PASSID runs elsewhere; on this one machine a second Flask app
playing PASSID would take half the cores we mean to measure. This answers
with a body captured from the real sandbox for a pending request (its id
swapped for the one asked), with the contract's headers, from one asyncio
process, optionally after a delay that stands for the network (sleeping
costs no CPU). Anything else is a 404.

For bench/faults.py it also fails on demand, the ways a real upstream
fails: `GET /mode/<mode>` on the control port (PORT + 1) switches it to
`ok`, `hang` (read the call, never answer), `reset` (cut the connection),
`refuse` (stop listening and cut every connection: connects are refused),
`error500`, `garbage` (200 with a body that is not JSON) or `wrong_shape`
(200 with JSON that is not a request).

Run by bench/capacity.py: `python -m bench.passid_stub PORT TEMPLATE_FILE [DELAY_MS]`,
where TEMPLATE_FILE holds the captured body with the request id written as `{request_id}`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

PATH = re.compile(rb"^/api/bridge/request/([A-Za-z0-9_]{1,64})(?:\?.*)?$")
MODES = ("ok", "hang", "reset", "refuse", "error500", "garbage", "wrong_shape")


class State:
    """The stub's mode and its open connections, shared by every connection."""

    mode = "ok"
    connections: set[asyncio.Transport] = set()


class Stub(asyncio.Protocol):
    def __init__(self, template: bytes, delay: float) -> None:
        self.template = template
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        State.connections.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        State.connections.discard(self.transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, rest = self.buffer.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            method, _, target = head.split(b"\r\n", 1)[0].partition(b" ")
            found = PATH.match(target.rpartition(b" ")[0])
            assert self.transport is not None
            if State.mode == "hang":
                continue
            if State.mode == "reset":
                self.transport.abort()
                return
            if State.mode == "error500":
                answer = self.reply(500, b'{"error":{"code":"INTERNAL","message":"stub failure"}}')
            elif State.mode == "garbage":
                answer = self.reply(200, b"<html>502 Bad Gateway</html>")
            elif State.mode == "wrong_shape":
                answer = self.reply(200, b'{"unexpected": true}')
            elif method == b"GET" and found:
                answer = self.reply(200, self.template.replace(b"{request_id}", found.group(1)))
            else:
                answer = self.reply(404, b'{"error":{"code":"NOT_FOUND","message":"stub"}}')
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self.send, answer)
            else:
                self.transport.write(answer)

    def send(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)

    @staticmethod
    def reply(status: int, body: bytes) -> bytes:
        reason = {200: b"OK", 404: b"Not Found"}.get(status, b"Internal Server Error")
        return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nX-PASSID-API-Version: 1\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (status, reason, len(body), body))


async def serve(port: int, template: bytes, delay: float) -> None:
    loop = asyncio.get_running_loop()

    async def listen() -> asyncio.Server:
        return await loop.create_server(lambda: Stub(template, delay), "127.0.0.1", port, backlog=1024)

    server: asyncio.Server | None = await listen()

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """`GET /mode/<mode>`: switch, answering 200 once the switch has taken effect."""
        nonlocal server
        line = (await reader.readline()).decode("latin-1")
        mode = line.split(" ")[1].removeprefix("/mode/") if line.count(" ") >= 2 else ""
        if mode in MODES:
            State.mode = mode
            if mode == "refuse" and server is not None:
                server.close()
                server = None
                for transport in list(State.connections):
                    transport.abort()
            elif mode != "refuse" and server is None:
                server = await listen()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    controller = await asyncio.start_server(control, "127.0.0.1", port + 1)
    async with controller:
        await controller.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("port", type=int, help="the API port (the control port is PORT + 1)")
    parser.add_argument("template_file", type=Path, help="the captured body, with {request_id} for the id")
    parser.add_argument("delay_ms", type=float, nargs="?", default=0.0, help="added before each answer")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.template_file.read_bytes(), args.delay_ms / 1000))


if __name__ == "__main__":
    main()
