"""A small asyncio TCP proxy on 127.0.0.1 that breaks links on demand, for reliability tests.

Faults, each for both directions or only ``"up"`` (client -> server) or ``"down"``:

- ``stall()``: stop reading, so TCP flow control pushes back on the sender (a slow broker);
- ``half_open()``: keep reading but forward nothing, sockets stay open (a dead NAT or a
  pulled cable: the sender's writes succeed, nothing ever arrives);
- ``cut()``: abort every open link; ``refuse=True`` also drops new connections at once;
- ``heal()``: undo ``stall``/``half_open``/``refuse``.

A proxy rather than iptables or a toxiproxy binary so the tests need no root and nothing beyond
the standard library; it runs in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Literal

__all__ = ["Direction", "FaultProxy"]

Direction = Literal["up", "down", "both"]
_CHUNK = 64 * 1024


class _Pipe:
    """One direction of one link."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` until told to misbehave."""

    def __init__(
        self, target_host: str, target_port: int, *, port: int = 0, rcvbuf: int | None = None
    ) -> None:
        """``rcvbuf`` shrinks the kernel's receive buffer of accepted sockets, so a stall
        pushes back on the client after kilobytes rather than megabytes."""
        self.target_host = target_host
        self._rcvbuf = rcvbuf
        self.target_port = target_port
        self._port = port
        self._server: asyncio.Server | None = None
        self._flowing = {"up": asyncio.Event(), "down": asyncio.Event()}
        for event in self._flowing.values():
            event.set()
        self._dropping: set[str] = set()
        self._refuse = False
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.forwarded = {"up": 0, "down": 0}
        self.dropped = {"up": 0, "down": 0}
        self.connections = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("proxy not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def url(self, scheme: str = "stomp") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._rcvbuf is not None:  # set before listen(): accepted sockets inherit it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
        sock.bind(("127.0.0.1", self._port))
        self._server = await asyncio.start_server(self._accept, sock=sock)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- faults ------------------------------------------------------------------------------------

    @staticmethod
    def _directions(direction: Direction) -> tuple[str, ...]:
        return ("up", "down") if direction == "both" else (direction,)

    def stall(self, direction: Direction = "both") -> None:
        for d in self._directions(direction):
            self._flowing[d].clear()

    def half_open(self, direction: Direction = "both") -> None:
        self._dropping.update(self._directions(direction))

    def cut(self, *, refuse: bool = False) -> None:
        self._refuse = self._refuse or refuse
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def heal(self) -> None:
        self._refuse = False
        self._dropping.clear()
        for event in self._flowing.values():
            event.set()

    # -- forwarding --------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.target_host, self.target_port, limit=_CHUNK
            )
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._links.update((writer, up_writer))
        for direction, pipe, peer in (
            ("up", _Pipe(reader, up_writer), writer),
            ("down", _Pipe(up_reader, writer), up_writer),
        ):
            task = asyncio.get_running_loop().create_task(self._pump(direction, pipe, peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, direction: str, pipe: _Pipe, peer: asyncio.StreamWriter) -> None:
        flowing = self._flowing[direction]
        try:
            while True:
                await flowing.wait()  # stalled: read nothing, so TCP pushes back on the sender
                data = await pipe.reader.read(_CHUNK)
                if not data:
                    break
                if direction in self._dropping:
                    self.dropped[direction] += len(data)
                    continue
                # A read already under way when the stall began: hold what it brought.
                await flowing.wait()
                pipe.writer.write(data)
                self.forwarded[direction] += len(data)
                await pipe.writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (pipe.writer, peer):
                self._links.discard(writer)
                writer.transport.abort()
