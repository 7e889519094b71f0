"""An agent that answers its inbound calls with ``next_call()``; a second agent calls it.

    python examples/inbound_calls.py                          # in-process broker and emulator
    python examples/inbound_calls.py stomp://127.0.0.1:61613  # a broker with a connector on it

The handler takes each call as it rings, answers, talks a moment and hangs up. The caller waits
for each call to end (``wait_for`` a DROPPED DialogState, registered before the call is made so
that it cannot be missed) before dialling again. Both log out at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import cucmconn
from cucmconn import AgentSession, CallStatus, DialogState

CALLS = 3


async def handle_calls(agent: AgentSession, count: int) -> None:
    """Answer ``count`` inbound calls, one at a time."""
    for _ in range(count):
        call = await agent.next_call(timeout=10.0)
        print(f"{agent.extension}: call {call.connection_id} from {call.other_party}")
        await agent.answer(call.connection_id)
        await asyncio.sleep(0.05)  # the conversation
        await agent.release(call.connection_id)


async def place_calls(caller: AgentSession, callee: str, count: int) -> None:
    """Call ``callee`` ``count`` times, each after the previous call ended."""
    for _ in range(count):
        ended = caller.wait_for(
            DialogState, lambda event: event.state == CallStatus.DROPPED, timeout=10.0
        )
        dialog = await caller.make_call(callee)
        await ended
        print(f"{caller.extension}: call {dialog.connection_id} ended")


async def main(url: str = "memory://") -> None:
    connector = cucmconn.Emulator(url) if url.startswith("memory:") else contextlib.nullcontext()
    async with connector, cucmconn.Client(url, ttl=10.0) as client:
        handler, caller = client.agent("1003"), client.agent("1004")
        await handler.login()
        await caller.login()
        await asyncio.gather(
            handle_calls(handler, CALLS), place_calls(caller, handler.extension, CALLS)
        )
        await handler.logout()
        await caller.logout()


if __name__ == "__main__":
    cucmconn.run(main(*sys.argv[1:2]))
