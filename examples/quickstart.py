"""Two agents: log in, call, answer, hold, retrieve, hang up, log out.

python examples/quickstart.py                          # in-process broker and emulator
python examples/quickstart.py stomp://127.0.0.1:61613  # a broker with a connector on it
"""

from __future__ import annotations

import contextlib
import sys

import cucmconn


async def main(url: str = "memory://") -> None:
    # memory:// is a broker inside this process, so the connector (emulated) must run here too.
    connector = cucmconn.Emulator(url) if url.startswith("memory:") else contextlib.nullcontext()
    async with connector, cucmconn.Client(url, ttl=10.0) as client:
        alice, bob = client.agent("1001"), client.agent("1002")
        info = await alice.login()  # AgentInfo; AgentState and DialogState follow
        await bob.login()
        print(f"{info.agent_id} on {info.device_name}: {alice.state}")  # READY

        dialog = await alice.make_call("1002")  # DialogState INITIATED
        call = await bob.next_call(timeout=5.0)  # the call ringing at 1002
        cid = call.connection_id
        print(f"{dialog.state} call {cid} from {call.other_party}")
        await bob.answer(cid)  # DialogState ACTIVE
        await alice.hold(cid)
        print(f"alice {alice.state}, call {alice.calls[cid].state}")  # HOLD, HELD
        await alice.retrieve(cid)
        print(f"alice {alice.state}, call {alice.calls[cid].state}")  # TALKING, ACTIVE
        await alice.release(cid)  # DialogState DROPPED: a two-party call ends for both
        await alice.logout()  # AgentState LOGOUT
        await bob.logout()


if __name__ == "__main__":
    cucmconn.run(main(*sys.argv[1:2]))  # uvloop when installed; asyncio otherwise
