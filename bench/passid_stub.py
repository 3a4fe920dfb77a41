"""A cheap stand-in for PASSID's `GET /api/bridge/request/<id>` during the capacity run.

Under load every awaiting widget's poll asks PASSID for its request's status.
The real PASSID runs elsewhere; on this one machine a second Flask app
playing PASSID would take half the cores we mean to measure. This answers
with a body captured from the real sandbox for a pending request (its id
swapped for the one asked), with the contract's headers, from one asyncio
process, optionally after a delay that stands for the network (sleeping
costs no CPU). Anything else is a 404.

Run by bench/capacity.py: `python -m bench.passid_stub PORT TEMPLATE_FILE [DELAY_MS]`,
where TEMPLATE_FILE holds the captured body with the request id written as `{request_id}`.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

PATH = re.compile(rb"^/api/bridge/request/([A-Za-z0-9_]{1,64})(?:\?.*)?$")


class Stub(asyncio.Protocol):
    def __init__(self, template: bytes, delay: float) -> None:
        self.template = template
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

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
            if method == b"GET" and found:
                answer = self.reply(200, self.template.replace(b"{request_id}", found.group(1)))
            else:
                answer = self.reply(404, b'{"error":{"code":"NOT_FOUND","message":"stub"}}')
            assert self.transport is not None
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self.send, answer)
            else:
                self.transport.write(answer)

    def send(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)

    @staticmethod
    def reply(status: int, body: bytes) -> bytes:
        reason = b"OK" if status == 200 else b"Not Found"
        return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nX-PASSID-API-Version: 1\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (status, reason, len(body), body))


async def serve(port: int, template: bytes, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Stub(template, delay), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    port, template_file = int(sys.argv[1]), Path(sys.argv[2])
    delay = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
    asyncio.run(serve(port, template_file.read_bytes(), delay))


if __name__ == "__main__":
    main()
