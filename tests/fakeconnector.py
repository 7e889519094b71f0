"""A small SCRIPTED fake of the CUCM Connector for the client's unit tests (not the emulator).

It consumes the command queue on any Transport and answers each command by a script: a
function ``(FakeCommand) -> list[Reply]`` per command name, defaulting to the house profile's
first correlated events.  Tests change the script per case, hold commands unanswered
(``hold``), answer them later by hand (``reply``), or push unsolicited events (``push``).
Everything received is recorded with its headers so tests can assert on the wire.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from cucmconn.codec.commands import parse_command
from cucmconn.transport import Message, Transport

NOW = "2026-01-01 10:00:00"


@dataclass
class FakeCommand:
    name: str
    target: str
    args: tuple[str, ...]
    correlation_id: str | None
    reply_to: str | None
    headers: dict[str, str]


@dataclass
class Reply:
    body: str
    correlated: bool = True
    destination: str | None = None  # default: the command's reply-to


Script = Callable[[FakeCommand], list[Reply]]


@dataclass
class FakeConnector:
    transport: Transport
    queue: str = "/queue/Connector1"
    in_service: bool = True
    record: bool = True
    """Keep every command in ``received`` (benchmarks turn it off to measure the client alone)."""
    received: list[FakeCommand] = field(default_factory=list)
    held: list[FakeCommand] = field(default_factory=list)
    hold: set[str] = field(default_factory=set)
    """Command names recorded but not answered (answer them with ``reply``)."""
    script: dict[str, Script] = field(default_factory=dict)
    _cids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> FakeConnector:
        if not self.transport.connected:
            await self.transport.connect()
        await self.transport.subscribe(self.queue, self._on_command)
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.transport.close()

    def commands(self, name: str) -> list[FakeCommand]:
        return [c for c in self.received if c.name == name]

    # -- answering ------------------------------------------------------------------------------

    def _on_command(self, message: Message) -> None:
        name, target, args = parse_command(message.jms_type, message.text())
        command = FakeCommand(
            name, target, args, message.correlation_id, message.reply_to, dict(message.headers)
        )
        if self.record:
            self.received.append(command)
        if name in self.hold:
            self.held.append(command)
            return
        if not self.in_service and name not in ("Hello", "Beat"):
            replies = [Reply("System#OUT_OF_SERVICE")]
        else:
            replies = self.script.get(name, self._default)(command)
        self._spawn(self.reply(command, *replies))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reply(self, command: FakeCommand, *replies: Reply) -> None:
        for reply in replies:
            destination = reply.destination or command.reply_to
            assert destination is not None
            await self.transport.send(
                destination,
                reply.body,
                correlation_id=command.correlation_id if reply.correlated else None,
            )

    async def push(self, destination: str, body: str, correlation_id: str | None = None) -> None:
        await self.transport.send(destination, body, correlation_id=correlation_id)

    def next_cid(self) -> str:
        return str(next(self._cids))

    def _default(self, c: FakeCommand) -> list[Reply]:
        ext = c.target
        if c.name in ("Hello", "Beat"):
            return [Reply("System#IN_SERVICE" if self.in_service else "System#OUT_OF_SERVICE")]
        if c.name == "Login":
            return [
                Reply(f"{ext}#AgentInfo#{ext}#SEP{ext}"),
                Reply(f"{ext}#AgentState#READY#{NOW}"),
                Reply(f"{ext}#DialogState#IDLE#{NOW}"),
            ]
        if c.name == "Logout":
            return [Reply(f"{ext}#AgentState#LOGOUT#{NOW}")]
        if c.name == "GetState":
            return [Reply(f"{ext}#AgentState#READY#{NOW}")]
        if c.name == "MakeCall":
            cid = self.next_cid()
            return [Reply(f"{ext}#DialogState#INITIATED#{NOW}#{cid}#{ext},{c.args[0]}")]
        states = {
            "AnswerCall": "ACTIVE",
            "ReleaseCall": "DROPPED",
            "HoldCall": "HELD",
            "RetrieveCall": "ACTIVE",
            "Transfer_sst": "DROPPED",
            "TransferCall": "DROPPED",
            "Conferencecall": "ACTIVE",
        }
        if c.name in states:
            cid = c.args[-1]
            return [Reply(f"{ext}#DialogState#{states[c.name]}#{NOW}#{cid}#{ext},9999")]
        if c.name == "ConsultCall":
            cid = self.next_cid()
            return [
                Reply(f"{ext}#DialogState#INITIATED#{NOW}#{cid}#{ext},{c.args[0]}"),
                Reply(f"{ext}#DialogState#HELD#{NOW}#{c.args[1]}#{ext},9999"),
            ]
        return [Reply(f"{ext}#Error#GENERAL_ERROR")]
