"""An application script for the field tools' tests: run it against a connector, record it,
replay the recording, and run it again unchanged.

``application(client, inbound)`` logs two agents in, places and handles an internal call (answer,
hold, retrieve, release), takes a customer's call that rings in unsolicited (``inbound`` makes it
ring when a real emulator is behind the link; against a replay the trace plays it), makes a
command fail, reads state and logs out.  It returns every event the client saw, in order.
``normalised`` masks what a replay renames (connection ids by order of first appearance, event
times) so two runs can be compared with ``==``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from cucmconn import Client, CommandError, DialogState, Event, EventStream, InboundCall

AGENTS = ("1000", "1001")
CUSTOMER = "5550100"
SETTLE = 0.3


async def _next_of(stream: EventStream, kind: type[Any], state: str | None = None) -> Any:
    async with asyncio.timeout(5.0):
        async for item in stream:
            if isinstance(item, kind) and (state is None or item.state == state):
                return item
    raise AssertionError(f"stream ended before a {kind.__name__}")


async def application(
    client: Client, inbound: Callable[[], Awaitable[object]] | None = None
) -> list[Event]:
    """The script; ``inbound`` is awaited where the customer's call should ring in."""
    seen = client.events()
    first, second = (client.agent(a) for a in AGENTS)
    await first.login()
    await second.login()
    ringing, customer = second.events(), first.events()
    dialog = await first.make_call(AGENTS[1])
    assert isinstance(dialog, DialogState) and dialog.connection_id
    cid = dialog.connection_id
    await _next_of(ringing, InboundCall)
    await second.answer(cid)
    await second.hold(cid)
    await second.retrieve(cid)
    await first.release(cid)
    if inbound is not None:
        await inbound()
    call = await _next_of(customer, InboundCall)
    await first.answer(call.connection_id)
    await first.release(call.connection_id)
    with contextlib.suppress(CommandError):
        await first.hold("999999")  # no such call: the connector refuses it
    await first.get_state()
    await first.logout()
    await second.logout()
    events: list[Event] = []
    while True:  # everything that arrived, until the link has been quiet for SETTLE seconds
        try:
            async with asyncio.timeout(SETTLE):
                item = await anext(seen)
        except TimeoutError:
            break
        if not isinstance(item, Exception):
            events.append(item)  # type: ignore[arg-type]
    return events


def normalised(events: list[Event]) -> list[dict[str, Any]]:
    """Events as dicts with connection ids renamed c1, c2... and times masked."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for event in events:
        fields: dict[str, Any] = {"type": type(event).__name__, **msgspec.structs.asdict(event)}
        if fields.get("connection_id"):
            cid = fields["connection_id"]
            fields["connection_id"] = names.setdefault(cid, f"c{len(names) + 1}")
        for key in ("changed_at", "start_time"):
            if fields.get(key):
                fields[key] = "<time>"
        out.append(fields)
    return out
