"""``cucmconn probe``: does this connector, behind this broker, behave the way the SDK expects?

A team's first question about a real connector.  The probe runs ordered checks, each with a
verdict (``pass``, ``warn``, ``fail``, ``skip``, ``info``) and a figure: TCP; STOMP
``CONNECTED`` (version, server, heart-beats); credentials; subscribing to its own topic; sending
to the queue; Hello answered (latency, IN_SERVICE or not); Beat answered; correlation id echoed;
the event and timestamp formats seen; for ``--agent``, GetState and the state; clock skew from
the broker's ``timestamp`` header; and the broker pitfalls this project has hit (CESU-8 for
non-BMP text, the 64 KB socket-buffer stall, producer flow control, Nagle's 40 ms), with advice.

It is read-only: Hello, Beat and GetState change nothing, and the pitfall tests run on the
probe's own topic, which no connector reads.  ``--login`` adds Login before GetState and Logout
after it (that does change the agent's state).  Exit code 0 when every essential check passes
(TCP, STOMP, credentials, subscribe, send, Hello answered), 1 otherwise; ``--json`` prints one
object with one entry per check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import ssl
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from ..codec import decode_event, encode_command
from ..codec.events import AgentState, DialogState, ErrorEvent, Event, InboundCall, SystemStatus
from ..errors import ConnectorError, ProtocolError
from ..transport import Message, Transport, open_transport, parse_url, queue, redact_url, topic
from ..transport.stompsession import BrokerFailure, Connected, StompSession
from ..transport.url import Endpoint
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_queue_option,
    add_url_option,
    positive,
    stderr_console,
    stdout_console,
)

__all__ = ["Check", "ProbeReport", "add_parser", "run_probe"]

Verdict = Literal["pass", "warn", "fail", "skip", "info"]
ESSENTIAL = ("tcp", "stomp", "credentials", "subscribe", "send", "hello")
NON_BMP = "cucmconn probe \U0001f600\U0001d11e"
BURST = 1000
BURST_BODY = "x" * 256
_STAMP_FORMATS = (
    (re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"), "yyyy-MM-dd HH:mm:ss"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"), "ISO 8601"),
    (re.compile(r"^\d{13}$"), "epoch milliseconds"),
    (re.compile(r"^\d{10}$"), "epoch seconds"),
)


class Check(msgspec.Struct, omit_defaults=True):
    """One step of the probe: a verdict, the figure behind it, and what to do about it."""

    name: str
    title: str
    verdict: Verdict
    figure: str
    essential: bool = False
    detail: str = ""
    advice: str = ""


class ProbeReport(msgspec.Struct):
    """Every check, in the order run; ``ok`` when every essential one passed."""

    url: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.verdict == "pass" for c in self.checks if c.essential)

    def get(self, name: str) -> Check:
        """The check called ``name`` (StopIteration when it did not run)."""
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        """One object, one entry per check (keyed by name, in order)."""
        checks = {c.name: msgspec.to_builtins(c) for c in self.checks}
        return {"url": self.url, "ok": self.ok, "checks": checks}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class _Inbox:
    """What arrives on the probe's topic: answers by correlation id, and every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, Message]] = []
        self.by_id: dict[str, list[tuple[float, Message]]] = {}
        self.arrived = asyncio.Event()
        self.burst = 0

    def __call__(self, message: Message) -> None:
        now = time.time()
        cid = message.correlation_id or ""
        if cid.startswith("probe-burst"):
            self.burst += 1  # not kept: a thousand of them would only crowd the report
        else:
            self.messages.append((now, message))
            self.by_id.setdefault(cid, []).append((now, message))
        self.arrived.set()

    async def wait(self, predicate: Callable[[], bool], limit: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return True


class _Probe:
    def __init__(
        self, url: str, queue_name: str, agent: str | None, login: bool, answer_wait: float
    ) -> None:
        self.url = url
        self.queue = queue(queue_name)
        self.queue_name = queue_name
        self.agent = agent
        self.login = login
        self.answer_wait = answer_wait
        self.destination = f"cucmconn-probe-{uuid.uuid4().hex[:8]}"
        self.reply_to = topic(self.destination)
        self.checks: list[Check] = []
        self.server = ""
        self.inbox = _Inbox()
        self.events: list[tuple[Message, Event | None]] = []
        self.latencies: list[float] = []
        self.blocked = False
        self.own_returned = True

    def add(self, name: str, title: str, verdict: Verdict, figure: str, **more: str) -> Check:
        check = Check(name, title, verdict, figure, name in ESSENTIAL, **more)
        self.checks.append(check)
        return check

    def skip_missing(self, why: str) -> None:
        """Every check not run yet (the probe stopped early) is reported as skipped."""
        done = {c.name for c in self.checks}
        for name, title in _ORDER:
            if name not in done and (name != "agent" or self.agent is not None):
                self.add(name, title, "skip", "-", detail=why)

    # -- the broker, below the SDK ---------------------------------------------------------

    async def broker(self) -> bool:
        parsed = parse_url(self.url)
        if parsed.scheme == "memory":
            for name, title in (("tcp", "TCP"), ("stomp", "STOMP CONNECTED")):
                self.add(name, title, "pass", "in-process broker (memory://)")
            self.add("credentials", "credentials", "pass", "none needed (memory://)")
            return True
        endpoint = parsed.endpoints[0]
        context = _ssl_context(endpoint, parsed.options)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self.answer_wait):
                reader, writer = await asyncio.open_connection(
                    endpoint.host,
                    endpoint.port,
                    ssl=context,
                    server_hostname=endpoint.host if context else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.add(
                "tcp",
                "TCP",
                "fail",
                f"{endpoint.host}:{endpoint.port} unreachable",
                detail=str(exc) or type(exc).__name__,
                advice="Is the broker running, and is this its STOMP port (61613; the "
                "connector's OpenWire port 61616 does not speak STOMP)?",
            )
            return False
        where = f"{endpoint.host}:{endpoint.port}{' (TLS)' if context else ''}"
        self.add("tcp", "TCP", "pass", f"{_ms(loop.time() - started)} to {where}")
        try:
            return await self._handshake(endpoint, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handshake(
        self, endpoint: Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        session = StompSession(
            host=endpoint.host, login=endpoint.login, passcode=endpoint.passcode, heartbeat=10_000
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(session.connect_frame())
        answer: Connected | BrokerFailure | None = None
        problem = ""
        try:
            async with asyncio.timeout(self.answer_wait):
                while answer is None:
                    data = await reader.read(4096)
                    if not data:
                        problem = "the broker closed the connection"
                        break
                    for event in session.receive_data(data):
                        if isinstance(event, Connected | BrokerFailure):
                            answer = event
                            break
        except TimeoutError:
            problem = f"no answer to CONNECT within {self.answer_wait:g} s"
        except ProtocolError as exc:
            problem = f"not STOMP: {exc}"
        took = _ms(loop.time() - started)
        if isinstance(answer, Connected):
            self.server = answer.server
            self.add(
                "stomp",
                "STOMP CONNECTED",
                "pass",
                f"STOMP {answer.version}, server {answer.server or 'unnamed'}, heart-beats "
                f"{answer.send_interval}/{answer.recv_interval} ms, in {took}",
            )
            who = "accepted" if endpoint.login else "anonymous access accepted"
            self.add("credentials", "credentials", "pass", who)
            with contextlib.suppress(Exception):
                writer.write(session.disconnect_frame()[1])
            return True
        if isinstance(answer, BrokerFailure):
            self.add("stomp", "STOMP CONNECTED", "fail", f"ERROR frame in {took}")
            self.add(
                "credentials",
                "credentials",
                "fail",
                "refused",
                detail=redact_url(answer.message),
                advice="Check the login and passcode in the URL (stomp://user:pass@host).",
            )
            return False
        self.add(
            "stomp",
            "STOMP CONNECTED",
            "fail",
            problem,
            advice="Is this a STOMP port of ActiveMQ (transportConnector stomp://)?",
        )
        self.add("credentials", "credentials", "skip", "-", detail="no STOMP session")
        return False

    # -- the connector, through the SDK's own transport -------------------------------------

    async def connector(self, transport: Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            await transport.connect()
            started = loop.time()
            await transport.subscribe(self.reply_to, self.inbox)
        except (ConnectorError, OSError) as exc:
            self.add("subscribe", "subscribe to own topic", "fail", "refused", detail=str(exc))
            self.skip_missing("not subscribed")
            return
        self.add(
            "subscribe", "subscribe to own topic", "pass", f"{self.reply_to} in "
            f"{_ms(loop.time() - started)}"
        )  # fmt: skip
        hello = await self.command(transport, "Hello", self.destination, "send")
        if hello is None:
            self.skip_missing("nothing could be sent")
            return
        self.judge_status("hello", "Hello answered", hello, essential_advice=True)
        beat = await self.command(transport, "Beat", self.destination)
        self.judge_status("beat", "Beat answered", beat, essential_advice=False)
        self.judge_correlation()
        if self.agent is not None:
            await self.agent_state(transport)
        self.judge_formats()
        self.judge_skew()
        await self.pitfalls(transport)

    async def command(
        self, transport: Transport, name: str, target: str, report_send: str = "", *args: str
    ) -> list[tuple[float, Message]] | None:
        """Send one command; the messages answering it (by id, else any System status)."""
        jms_type, body = encode_command(name, target, *args)
        cid = f"probe-{name.lower()}-{uuid.uuid4().hex[:8]}"
        loop = asyncio.get_running_loop()
        sent_at = time.time()
        started = loop.time()
        problem = await self.send(
            transport,
            self.queue,
            body,
            jms_type=jms_type,
            correlation_id=cid,
            reply_to=self.reply_to,
            ttl=self.answer_wait * 2,
        )
        if problem is not None:
            if report_send:
                self.add(
                    "send", "send to the queue", "fail", problem,
                    advice="A blocked send is the broker's producer flow control: the queue's "
                    "memory limit is reached (no connector consuming it?).",
                )  # fmt: skip
            return None
        if report_send:
            self.add(
                "send",
                "send to the queue",
                "pass",
                f"{self.queue} in {_ms(loop.time() - started)}",
            )
        before = len(self.inbox.messages)

        def answered() -> bool:
            if self.inbox.by_id.get(cid):
                return True
            return any(_is_status(m) for _, m in self.inbox.messages[before:])

        await self.inbox.wait(answered, self.answer_wait)
        if self.inbox.by_id.get(cid):  # let the rest of a multi-event answer arrive
            await asyncio.sleep(0.1)
        got = (
            self.inbox.by_id.get(cid)
            or [(t, m) for t, m in self.inbox.messages[before:] if _is_status(m)][:1]
        )
        for at, message in got:
            self.events.append((message, _decode(message)))
            self.latencies.append(at - sent_at)
        return [(at - sent_at, message) for at, message in got]

    def judge_status(
        self, name: str, title: str, answer: list[tuple[float, Message]] | None, *,
        essential_advice: bool,
    ) -> None:  # fmt: skip
        if not answer:
            self.add(
                name,
                title,
                "fail" if essential_advice else "warn",
                f"no answer within {self.answer_wait:g} s",
                advice=(
                    f"Is a connector consuming queue {self.queue_name!r} on this broker? "
                    "(cucmconn emulate --url URL runs the emulator)"
                    if essential_advice
                    else "The client's keep-alive would take the connector for out of service."
                ),
            )
            return
        latency, message = answer[0]
        event = _decode(message)
        if isinstance(event, SystemStatus):
            verdict: Verdict = "pass" if event.in_service else "warn"
            more = {} if event.in_service else {"advice": "The connector runs, but CUCM is down."}
            self.add(name, title, verdict, f"System#{event.status} in {_ms(latency)}", **more)
            return
        shown = type(event).__name__ if event is not None else "an undecodable message"
        self.add(
            name,
            title,
            "warn",
            f"answered in {_ms(latency)} with {shown}, not System#IN_SERVICE",
            detail=message.text()[:120],
            advice="Something answers on this queue, but not as the CUCM Connector does.",
        )

    def judge_correlation(self) -> None:
        cids = [m.correlation_id for m, _ in self.events]
        if not cids:
            self.add("correlation", "correlation id echoed", "skip", "-", detail="no answer")
        elif all(c and c.startswith("probe-") for c in cids):
            self.add("correlation", "correlation id echoed", "pass", "echoed")
        else:
            self.add(
                "correlation",
                "correlation id echoed",
                "warn",
                "not echoed",
                advice="The client then matches answers by agent and event type "
                "(correlate_fallback='auto'); concurrent commands on one agent are serialised.",
            )

    async def agent_state(self, transport: Transport) -> None:
        agent = self.agent or ""
        if self.login:
            await self.command(transport, "Login", agent, "", self.destination)
        answer = await self.command(transport, "GetState", agent)
        events = [_decode(m) for _, m in answer or []]
        state = next((e for e in events if isinstance(e, AgentState)), None)
        error = next((e for e in events if isinstance(e, ErrorEvent)), None)
        title = f"GetState#{agent}"
        if state is not None:
            self.add("agent", title, "pass", f"{state.state} in {_ms(answer[0][0])}")  # type: ignore[index]
        elif error is not None:
            self.add(
                "agent", title, "warn", f"Error {error.code}", detail=error.message or "",
                advice="Is the extension right, and is the agent known to CUCM?",
            )  # fmt: skip
        else:
            self.add("agent", title, "warn", "no AgentState within the wait")
        if self.login:
            await self.command(transport, "Logout", agent)

    def judge_formats(self) -> None:
        bodies = [m.text().lstrip() for m, e in self.events if e is not None]
        if not bodies:
            self.add("format", "event format", "skip", "-", detail="no event decoded")
        else:
            kinds = {"JSON" if b.startswith("{") else "#" for b in bodies}
            shown = " and ".join(sorted(kinds))
            self.add("format", "event format", "pass" if len(kinds) == 1 else "warn", shown)
        stamps = [s for _, e in self.events for s in _times(e)]
        if not stamps:
            self.add(
                "timestamps",
                "timestamp format",
                "info",
                "not seen",
                detail="no answer carried a time" + ("" if self.agent else "; try --agent EXT"),
            )
            return
        kinds = {_stamp_kind(s) for s in stamps}
        verdict: Verdict = "pass" if kinds == {"yyyy-MM-dd HH:mm:ss"} else "warn"
        self.add("timestamps", "timestamp format", verdict, ", ".join(sorted(kinds)),
                 detail=f"e.g. {stamps[0]}")  # fmt: skip

    def judge_skew(self) -> None:
        skews = []
        for at, message in self.inbox.messages:
            raw = message.headers.get("timestamp", "")
            if raw.isdigit() and int(raw) > 0:
                skews.append(int(raw) / 1000 - at)
        if not skews:
            self.add(
                "clock_skew", "clock skew", "skip", "-",
                detail="no timestamp header on any answer (memory:// sets none)",
            )  # fmt: skip
            return
        skew = statistics.median(skews)
        verdict: Verdict = "pass" if abs(skew) < 1.0 else "warn"
        sign = "ahead of" if skew > 0 else "behind"
        self.add(
            "clock_skew",
            "clock skew",
            verdict,
            f"sender's clock {abs(skew) * 1000:.0f} ms {sign} ours",
            detail=f"median of {len(skews)} timestamp header(s), one-way latency included",
            advice=(
                ""
                if verdict == "pass"
                else "Command TTLs are absolute epoch ms judged on the broker: a skew past the "
                "TTL expires every command. Synchronise clocks (NTP)."
            ),
        )

    async def send(
        self, transport: Transport, destination: str, body: str, **options: Any
    ) -> str | None:
        """Send with a bound: None when sent, else what went wrong (a broker that stopped
        reading our socket blocks a send for good; the probe must still finish)."""
        try:
            async with asyncio.timeout(self.answer_wait):
                await transport.send(destination, body, **options)
        except TimeoutError:
            self.blocked = True
            return f"blocked for {self.answer_wait:g} s"
        except (ConnectorError, OSError) as exc:
            return f"refused: {exc}"
        return None

    async def pitfalls(self, transport: Transport) -> None:
        await self.cesu8(transport)
        await self.socket_buffers(transport)
        held = transport.flow_control_held
        if held > 0 or self.blocked or not self.own_returned:
            figure = (
                f"writes held {held:.2f} s"
                if held > 0 or self.blocked
                else "own messages sent after the Hello never came back"
            )
            self.add(
                "flow_control", "producer flow control", "warn", figure,
                advice="The broker stopped reading our socket: a destination's memory limit "
                "is reached (no consumer on the queue?). Keep-alives on this link wait too.",
            )  # fmt: skip
        else:
            self.add("flow_control", "producer flow control", "pass", "not engaged")
        slow = [t for t in self.latencies if 0.035 <= t <= 0.050]
        if self.latencies and len(slow) * 2 > len(self.latencies):
            self.add(
                "nagle", "40 ms answers (Nagle)", "warn",
                f"median {_ms(statistics.median(self.latencies))}",
                advice="Set transport.tcpNoDelay=true on the broker's transportConnectors.",
            )  # fmt: skip
        elif self.latencies:
            median = statistics.median(self.latencies)
            self.add("nagle", "40 ms answers (Nagle)", "pass", f"median {_ms(median)}")
        else:
            self.add("nagle", "40 ms answers (Nagle)", "skip", "-", detail="no answer timed")

    async def cesu8(self, transport: Transport) -> None:
        cid = f"probe-cesu-{uuid.uuid4().hex[:6]}"
        title = "non-BMP text (CESU-8)"
        problem = await self.send(
            transport, self.reply_to, NON_BMP, correlation_id=cid, ttl=self.answer_wait
        )
        if problem is not None:
            self.add("cesu8", title, "warn", f"not tested: send {problem}")
            return
        await self.inbox.wait(lambda: bool(self.inbox.by_id.get(cid)), self.answer_wait)
        got = self.inbox.by_id.get(cid)
        if not got:
            self.own_returned = False
            self.add("cesu8", title, "warn", "not tested: own message not returned")
            return
        body = got[0][1].body
        if body == NON_BMP.encode("utf-8"):
            self.add("cesu8", title, "pass", "UTF-8 kept")
        elif b"\xed\xa0" in body or b"\xed\xb0" in body:
            self.add(
                "cesu8", title, "warn", "the broker sends CESU-8 (AMQ-8398)",
                advice="cucmconn repairs it on receipt and can send CESU-8 (body_encoding); "
                "other consumers may see mojibake for emoji and rare scripts: upgrade ActiveMQ.",
            )  # fmt: skip
        else:
            self.add("cesu8", title, "warn", f"altered: {body[:40]!r}")

    async def socket_buffers(self, transport: Transport) -> None:
        """A burst on the probe's own topic: a 64 KB-buffer stall shows as seconds of silence."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.inbox.burst = 0
        title = f"{BURST} in flight (socket buffers)"
        if not self.own_returned:
            self.add("socket_buffers", title, "skip", "-", detail="own messages do not return")
            return
        sends = [
            self.send(
                transport, self.reply_to, BURST_BODY, correlation_id=f"probe-burst-{n}", ttl=30
            )
            for n in range(BURST)
        ]
        problems = [p for p in await asyncio.gather(*sends) if p is not None]
        if problems:
            self.add(
                "socket_buffers", title, "warn", f"{len(problems)} of {BURST} sends {problems[0]}",
                advice="The broker stopped reading this link (see producer flow control).",
            )  # fmt: skip
            return
        await self.inbox.wait(lambda: self.inbox.burst >= BURST, 20.0)
        took = loop.time() - start
        figure = f"{self.inbox.burst}/{BURST} back in {took:.2f} s"
        if self.inbox.burst >= BURST and took < 3.0:
            self.add("socket_buffers", title, "pass", figure)
            return
        self.add(
            "socket_buffers", title, "warn", figure,
            advice="Links stall with many messages in flight: ActiveMQ pins socket buffers to "
            "64 KB; set transport.socketBufferSize=1048576 on its transportConnectors.",
        )  # fmt: skip


_ORDER = [
    ("tcp", "TCP"),
    ("stomp", "STOMP CONNECTED"),
    ("credentials", "credentials"),
    ("subscribe", "subscribe to own topic"),
    ("send", "send to the queue"),
    ("hello", "Hello answered"),
    ("beat", "Beat answered"),
    ("correlation", "correlation id echoed"),
    ("agent", "GetState"),
    ("format", "event format"),
    ("timestamps", "timestamp format"),
    ("clock_skew", "clock skew"),
    ("cesu8", "non-BMP text (CESU-8)"),
    ("socket_buffers", f"{BURST} in flight (socket buffers)"),
    ("flow_control", "producer flow control"),
    ("nagle", "40 ms answers (Nagle)"),
]
"""Every check, in the order run."""


def _ssl_context(endpoint: Endpoint, options: dict[str, str]) -> ssl.SSLContext | None:
    if not endpoint.ssl:
        return None
    merged = {**options, **endpoint.options}
    context = ssl.create_default_context(cafile=merged.get("cafile"))
    if merged.get("verify", "true").lower() in ("false", "0", "no"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _decode(message: Message) -> Event | None:
    try:
        return decode_event(message.body)
    except (ProtocolError, ValueError):
        return None


def _is_status(message: Message) -> bool:
    return isinstance(_decode(message), SystemStatus)


def _times(event: Event | None) -> list[str]:
    if isinstance(event, AgentState | DialogState):
        return [event.changed_at] if event.changed_at else []
    if isinstance(event, InboundCall):
        return [event.start_time] if event.start_time else []
    return []


def _stamp_kind(stamp: str) -> str:
    for pattern, name in _STAMP_FORMATS:
        if pattern.match(stamp):
            return name
    return f"other ({stamp[:24]!r})"


async def run_probe(
    url: str,
    *,
    queue_name: str = "Connector1",
    agent: str | None = None,
    login: bool = False,
    answer_wait: float = 3.0,
) -> ProbeReport:
    """Run every check against the connector behind ``url``; never raises for what it finds."""
    if agent is not None:
        encode_command("GetState", agent)  # refuse an injecting extension before anything
    probe = _Probe(url, queue_name, agent, login, answer_wait)
    if not await probe.broker():
        probe.skip_missing("the broker is not reachable")
        return ProbeReport(redact_url(url), probe.checks)
    transport = open_transport(url)
    try:
        await probe.connector(transport)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(answer_wait):  # a blocked link may never drain
                await transport.close()
    return ProbeReport(transport.display_url, probe.checks)


# -- the command line ----------------------------------------------------------------------

_DESCRIPTION = """\
Check, in order and read-only, that a connector behind a broker behaves as cucmconn expects:
TCP, STOMP CONNECTED (version, server, heart-beats), credentials, subscribe, send, Hello
(latency, IN_SERVICE), Beat, correlation ids echoed, event and timestamp formats, GetState
(--agent), clock skew, and known broker pitfalls (CESU-8, socket buffers, flow control, Nagle).

  cucmconn probe --url stomp://user:pass@broker:61613
  cucmconn probe --url stomp://broker:61613 --agent 1001 --json

Nothing changes an agent's state unless --login is given (then Login, GetState, Logout).
A failover:(...) URL is probed at its first broker (probe each broker's URL on its own).
Exit code 0 when every essential check passes (TCP, STOMP, credentials, subscribe, send, Hello
answered), 1 otherwise.
"""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``cucmconn probe`` on the command line's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "probe",
        help="check, read-only, that a connector behaves as the SDK expects",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_url_option(parser, required=True, help_text="broker URL, e.g. stomp://host:61613")
    add_queue_option(parser)
    parser.add_argument("--agent", default=None, metavar="EXT", help="also GetState this agent")
    parser.add_argument(
        "--login", action="store_true", help="with --agent: Login first, Logout after"
    )
    parser.add_argument(
        "--wait", type=positive, default=3.0, help="seconds to wait for each answer"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=_handle)
    return parser


_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim", "info": "cyan"}


async def _handle(args: argparse.Namespace) -> int:
    if args.login and args.agent is None:
        raise ValueError("--login needs --agent EXT")
    report = await run_probe(
        args.url, queue_name=args.queue, agent=args.agent, login=args.login, answer_wait=args.wait
    )
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
    else:
        out = stdout_console()
        out.print(f"probe of {report.url}")
        for check in report.checks:
            mark = f"[{_STYLE[check.verdict]}]{check.verdict:4}[/]"
            out.print(f"  {mark}  {check.title:32} {check.figure}", markup=True)
            if check.detail:
                out.print(f"        {check.detail}", markup=False)
            if check.advice:
                out.print(f"        advice: {check.advice}", markup=False)
        verdict = "essential checks passed" if report.ok else "an essential check failed"
        stderr_console().print(verdict)
    return EXIT_OK if report.ok else EXIT_FAILED
