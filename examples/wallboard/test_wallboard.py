"""Tests of the wallboard: calls and state changes driven from the connector's side, the board
checked after each.  cucmconn's pytest fixtures only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from wallboard import Board, Wallboard

from cucmconn import Client
from cucmconn.testing import Connector

TEAM = ("1001", "1002", "1003")


@pytest.fixture
async def wall(cucmconn_client: Client) -> AsyncIterator[Wallboard]:
    """The wallboard for TEAM on the test's client, running."""

    async def publish(board: Board) -> None:
        pass  # a real one pushes to the screens; the tests read wall.board

    board = Wallboard(cucmconn_client, TEAM, publish)
    task = asyncio.create_task(board.run())
    yield board
    task.cancel()


async def test_the_team_logs_in_ready(connector: Connector, wall: Wallboard) -> None:
    await connector.until(
        lambda: wall.board == Board({"READY": 3}), what="three agents READY on the board"
    )


async def test_a_customer_call_rings_then_talks_then_ends(
    connector: Connector, wall: Wallboard
) -> None:
    call = await connector.place_call(to="1002", caller="5550100")
    await connector.until(
        lambda: wall.board == Board({"READY": 3}, calls=0, ringing=1), what="one call ringing"
    )
    await call.answer()
    await connector.until(
        lambda: wall.board == Board({"READY": 2, "TALKING": 1}, calls=1),
        what="1002 talking on one call",
    )
    await call.release()
    await connector.until(lambda: wall.board == Board({"READY": 3}), what="all READY again")


async def test_a_call_between_two_agents_counts_once(
    connector: Connector, cucmconn_client: Client, wall: Wallboard
) -> None:
    await connector.until(lambda: wall.board == Board({"READY": 3}), what="the team is in")
    dialled = await cucmconn_client.agent("1001").make_call("1003")
    assert dialled.connection_id is not None
    await cucmconn_client.agent("1003").answer(dialled.connection_id)
    await connector.until(
        lambda: wall.board == Board({"READY": 1, "TALKING": 2}, calls=1),
        what="two agents talking on one call",
    )


async def test_not_ready_and_a_failed_login_show_on_the_board(
    connector: Connector, cucmconn_client: Client
) -> None:
    connector.fail_next("Login", agent="1003", code="LICENSES_EXCEEDED")
    boards: list[Board] = []

    async def publish(board: Board) -> None:
        boards.append(board)

    wall = Wallboard(cucmconn_client, TEAM, publish)
    task = asyncio.create_task(wall.run())
    try:
        await connector.wait_for("Login", agent="1003")
        await cucmconn_client.agent("1002").make_not_ready()
        await connector.until(
            lambda: wall.board == Board({"LOGOUT": 1, "NOT_READY": 1, "READY": 1}),
            what="1003 logged out, 1002 not ready",
        )
        assert len(boards) == len(set(map(repr, boards)))  # only changes are published
    finally:
        task.cancel()


async def test_duplicated_events_do_not_double_count(connector: Connector, wall: Wallboard) -> None:
    connector.answer_next_twice("AnswerCall")
    call = await connector.place_call(to="1001")
    await connector.until(lambda: wall.board.ringing == 1, what="the call rings")
    await wall.client.agent("1001").answer(call.connection_id)
    await connector.wait_for("AnswerCall")
    await connector.until(
        lambda: wall.board == Board({"READY": 2, "TALKING": 1}, calls=1), what="one call up"
    )


async def test_the_board_is_stale_through_an_outage_until_the_resync(
    connector: Connector, wall: Wallboard
) -> None:
    await connector.until(lambda: wall.board == Board({"READY": 3}), what="the team is in")
    await connector.set_in_service(False)
    await connector.until(lambda: wall.board.stale, what="the board marked stale")
    await connector.set_in_service(True)
    for agent in TEAM:  # the client re-reads every agent after the outage
        await connector.wait_for("GetState", agent=agent)
    await connector.until(
        lambda: wall.board == Board({"READY": 3}), what="fresh again after the resync"
    )
