"""`python -m infra.local.balancer`: the load balancer in front of several local LiveKit nodes.

In production a TCP/HTTPS load balancer (or LiveKit Cloud's one URL) sits in front of the nodes,
so a connection lost with a dead node comes back through the same URL to a live one. Locally this
does that job: each connection goes to the next node in turn, skipping any that refuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys

CONNECT_TIMEOUT_S = 1.0


class Balancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self._turn = itertools.cycle(range(len(backends)))

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        first = next(self._turn)
        for i in range(len(self.backends)):
            host, port = self.backends[(first + i) % len(self.backends)]
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                continue
        return None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._open()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def _main(listen: tuple[str, int], backends: list[tuple[str, int]]) -> None:
    balancer = Balancer(backends)
    server = await asyncio.start_server(balancer.serve, *listen)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.balancer", description=__doc__)
    parser.add_argument("--listen", type=_address, required=True, help="host:port to listen on")
    parser.add_argument("backends", nargs="+", type=_address, help="host:port of each node")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.listen, args.backends))
    return 0


if __name__ == "__main__":
    sys.exit(main())
