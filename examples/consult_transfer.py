"""A consult transfer: 1005 calls agent 1006, who consults 1007 and transfers the call to them.

    python examples/consult_transfer.py                          # in-process broker and emulator
    python examples/consult_transfer.py stomp://127.0.0.1:61613  # a broker with a connector on it

Call commands take the call's connection id first; the other party is the keyword ``other=``.
"""

from __future__ import annotations

import contextlib
import sys

import cucmconn
from cucmconn import DialogState


async def main(url: str = "memory://") -> None:
    connector = cucmconn.Emulator(url) if url.startswith("memory:") else contextlib.nullcontext()
    async with connector, cucmconn.Client(url, ttl=10.0) as client:
        customer, agent, expert = (client.agent(x) for x in ("1005", "1006", "1007"))
        for session in (customer, agent, expert):
            await session.login()

        await customer.make_call(agent.extension)
        call = await agent.next_call(timeout=5.0)
        await agent.answer(call.connection_id)

        # The customer's call goes on hold while the agent consults the expert on a new call.
        consult = await agent.consult(call.connection_id, other=expert.extension)
        ringing = await expert.next_call(timeout=5.0)  # the consult call: consult.connection_id
        print(f"consulting {expert.extension} on call {consult.connection_id}")
        await expert.answer(ringing.connection_id)

        # The agent drops out; the customer now talks to the expert on the first call.  The
        # expert learns it from its own event: watch for it before the transfer, await it after.
        joined = expert.wait_for(
            DialogState, lambda event: event.connection_id == call.connection_id, timeout=5.0
        )
        await agent.transfer(call.connection_id)
        await joined
        talking = expert.calls[call.connection_id]
        print(f"agent {agent.state}; expert {expert.state} with {talking.other_party}")

        await expert.release(call.connection_id)
        for session in (customer, agent, expert):
            await session.logout()


if __name__ == "__main__":
    cucmconn.run(main(*sys.argv[1:2]))
