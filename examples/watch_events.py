"""Watch one agent's typed events while it logs in, goes not ready and ready, and logs out.

    python examples/watch_events.py                          # in-process broker and emulator
    python examples/watch_events.py stomp://127.0.0.1:61613  # a broker with a connector on it

``agent.events()`` is a bounded stream of the agent's events from the moment it is opened; the
reader stops at the LOGOUT state instead of iterating forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import cucmconn
from cucmconn import AgentInfo, AgentState, AgentStatus, DialogState, EventStream


async def watch(stream: EventStream) -> None:
    """Print each event until the agent is logged out."""
    async for event in stream:
        match event:
            case AgentInfo(agent_id=agent, device_name=device):
                print(f"{agent}: logged in on {device}")
            case AgentState(agent_id=agent, state=state):
                print(f"{agent}: agent state {state}")
                if state == AgentStatus.LOGOUT:
                    return
            case DialogState(agent_id=agent, state=state, connection_id=cid):
                print(f"{agent}: call {cid or '-'} {state}")
            case _:
                print(f"other: {event!r}")


async def main(url: str = "memory://") -> None:
    connector = cucmconn.Emulator(url) if url.startswith("memory:") else contextlib.nullcontext()
    async with connector, cucmconn.Client(url, ttl=10.0) as client:
        agent = client.agent("1010")
        watcher = asyncio.create_task(watch(agent.events()))  # opened before the first command
        await agent.login()
        await agent.make_not_ready(reason="7")  # MakeNotReadyWithReason: AgentState NOT_READY
        await agent.make_ready()  # AgentState READY
        await agent.logout()
        await asyncio.wait_for(watcher, timeout=10.0)


if __name__ == "__main__":
    cucmconn.run(main(*sys.argv[1:2]))
