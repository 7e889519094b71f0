"""The least an asyncio client can spend on ``cucmconn load``'s traffic: issue 13's CPU floor.

Not part of the SDK and not a client anyone should use: it is the peer that tells how much of
the native client's CPU per command is the client and how much is the price of being a Python
asyncio program at all.  It keeps only what any client must do for the same commands and
events, with the fastest parts cucmconn has:

* uvloop, one TCP link, one ``asyncio.Protocol``; every frame of a loop turn in one write;
* the compiled STOMP parser and frame encoder, the compiled command encoder and event decoder;
* one future per command in a dict keyed by correlation id, one coroutine per pair of agents
  running the same call cycle as ``cucmconn load`` (MakeCall, AnswerCall, HoldCall,
  RetrieveCall, ReleaseCall, each awaiting its answer).

It leaves out everything else the client does: no agent state, no deadlines or TTL, no
stats, no flow control, no reconnects, no supervision, no header checks, no observers.
``bench_load.py``'s client-CPU row runs it beside the native client (``--floor``), on the
same broker and emulator, and reports CPU per command over the traffic window only.

Run: ``python benchmarks/bare_client.py --url stomp://127.0.0.1:61613 --agents 2000
--duration 6`` (an emulator must answer on ``Connector1``); prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import time
import uuid
from typing import Any

import uvloop

from cucmconn.codec import FrameParser, decode_event, encode_command, encode_frame
from cucmconn.codec.events import DialogState, ErrorEvent, Event
from cucmconn.transport import parse_url


class BareClient(asyncio.Protocol):
    """One STOMP link: commands out, events in, futures by correlation id."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.reply_to = f"/topic/{destination}"
        self.parser = FrameParser()
        self.pending: dict[str, asyncio.Future[Event]] = {}
        self.ids = itertools.count()
        self.out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.receipts: dict[str, asyncio.Future[None]] = {}
        self.events = 0
        self.commands = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert hasattr(transport, "write")  # uvloop's TCPTransport is no asyncio.Transport subclass
        self.transport = transport  # type: ignore[assignment]
        transport.write(
            encode_frame("CONNECT", {"accept-version": "1.2", "host": "/", "heart-beat": "0,0"})
        )

    def data_received(self, data: bytes) -> None:
        pending = self.pending
        for frame in self.parser.feed(data):
            if frame.command == "MESSAGE":
                self.events += 1
                event = decode_event(frame.body)
                future = pending.pop(frame.headers.get("correlation-id", ""), None)
                if future is not None and not future.done():
                    future.set_result(event)
            elif frame.command == "RECEIPT":
                waiter = self.receipts.pop(frame.headers["receipt-id"], None)
                if waiter is not None:
                    waiter.set_result(None)
            elif frame.command == "CONNECTED":
                self.connected.set_result(None)
            elif frame.command == "ERROR":
                raise RuntimeError(frame.headers.get("message", "broker ERROR"))

    def _write(self, frame: bytes) -> None:
        if not self.out:
            asyncio.get_running_loop().call_soon(self._flush)
        self.out.append(frame)

    def _flush(self) -> None:
        assert self.transport is not None
        self.transport.writelines(self.out)
        self.out = []

    async def subscribe(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.receipts["sub"] = waiter
        self._write(
            encode_frame(
                "SUBSCRIBE",
                {"id": "0", "destination": self.reply_to, "ack": "auto", "receipt": "sub"},
            )
        )
        await waiter

    def send(self, command: str, target: str, *args: str) -> asyncio.Future[Event]:
        """Write one command; the future gets its first event with the same correlation id."""
        jms_type, body = encode_command(command, target, *args)
        cid = f"b-{next(self.ids):x}"
        future = asyncio.get_running_loop().create_future()
        self.pending[cid] = future
        self.commands += 1
        headers = {
            "destination": "/queue/Connector1",
            "type": jms_type,
            "correlation-id": cid,
            "reply-to": self.reply_to,
            "persistent": "false",
        }
        self._write(encode_frame("SEND", headers, body.encode()))
        return future

    def send_all(self, command: str, targets: list[str], *args: str) -> list[asyncio.Future[Event]]:
        """One ``command`` to each target (the log-in and log-out phases)."""
        return [self.send(command, target, *args) for target in targets]


PHASE_TIMEOUT = 60.0
"""Seconds for the log-in, the end of the cycles and the log-out: the bare client keeps no
deadline per command, so a connector that stops answering ends the run here instead."""


async def _cycle(client: BareClient, a: str, b: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        dialog = await client.send("MakeCall", a, b)
        assert isinstance(dialog, DialogState) and dialog.connection_id, dialog
        cid = dialog.connection_id
        await client.send("AnswerCall", b, cid)
        await client.send("HoldCall", a, cid)
        await client.send("RetrieveCall", a, cid)
        await client.send("ReleaseCall", a, cid)


async def run(url: str, agents: int, duration: float, first: int) -> dict[str, Any]:
    """Log ``agents`` in, run call cycles for ``duration`` seconds, log out; the figures."""
    endpoint = parse_url(url).endpoints[0]  # the broker's address; options are ignored
    loop = asyncio.get_running_loop()
    client = BareClient(f"cucmconn-bare-{uuid.uuid4().hex[:8]}")
    await loop.create_connection(lambda: client, endpoint.host, endpoint.port)
    await client.connected
    await client.subscribe()
    extensions = [str(first + i) for i in range(agents)]
    logins = client.send_all("Login", extensions, client.destination)
    answers = await asyncio.wait_for(asyncio.gather(*logins), PHASE_TIMEOUT)
    refused = [answer for answer in answers if isinstance(answer, ErrorEvent)]
    if refused:
        raise SystemExit(f"{len(refused)} of {agents} log-ins refused, e.g. {refused[0]}")
    stop = asyncio.Event()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, commands0, events0 = time.process_time(), client.commands, client.events
    wall0 = time.monotonic()
    workers = [
        asyncio.ensure_future(_cycle(client, a, b, stop))
        for a, b in zip(extensions[::2], extensions[1::2], strict=True)
    ]
    await asyncio.sleep(duration)
    cpu = time.process_time() - cpu0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    commands, events = client.commands - commands0, client.events - events0
    wall = time.monotonic() - wall0
    stop.set()
    await asyncio.wait_for(asyncio.gather(*workers), PHASE_TIMEOUT)
    await asyncio.wait_for(asyncio.gather(*client.send_all("Logout", extensions)), PHASE_TIMEOUT)
    assert client.transport is not None
    client.transport.close()
    return {
        "client": "bare",
        "agents": agents,
        "commands": commands,
        "events_in_traffic": events,
        "throughput_cps": round(commands / wall, 1),
        "cpu_us_per_command": round(cpu * 1e6 / commands, 2),
        "cpu_us_per_event": round(cpu * 1e6 / events, 2),
        "cpu_split_us_per_command": {
            "user": round((usage.ru_utime - usage0.ru_utime) * 1e6 / commands, 2),
            "system": round((usage.ru_stime - usage0.ru_stime) * 1e6 / commands, 2),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--first-extension", type=int, default=1000)
    args = parser.parse_args(argv)
    report = uvloop.run(run(args.url, args.agents, args.duration, args.first_extension))
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
