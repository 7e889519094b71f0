"""The pieces every transport shares (transport/base.py): the hold clock behind
``flow_control_held``, the once-per-kind log of handler failures, the listener call, the
attempts at a broker that closes before CONNECTED."""

from __future__ import annotations

import logging

import pytest

from cucmconn.errors import BrokerError, ClosedBeforeConnected
from cucmconn.transport.base import (
    EARLY_CLOSE_ATTEMPTS,
    HandlerFailures,
    HoldClock,
    connect_attempts,
    notify_listener,
)


def _no_clock() -> float:
    raise AssertionError("the clock was read with no hold running")


def test_hold_clock_adds_up_holds_and_counts_the_running_one() -> None:
    clock = HoldClock()
    assert clock.held(_no_clock) == 0.0 and clock.since is None  # idle: no clock read
    assert clock.start(10.0)
    assert not clock.start(11.0)  # one hold at a time: the first start stands
    assert clock.since == 10.0
    assert clock.held(lambda: 12.5) == pytest.approx(2.5)  # running, not yet in total
    assert clock.total == 0.0
    clock.stop(13.0)
    clock.stop(14.0)  # no hold running: nothing added
    assert clock.total == pytest.approx(3.0) and clock.since is None
    assert clock.start(20.0)
    assert clock.held(lambda: 21.0) == pytest.approx(4.0)


def test_handler_failures_log_the_first_of_each_kind(caplog: pytest.LogCaptureFixture) -> None:
    failures = HandlerFailures()
    logger = logging.getLogger("cucmconn.test.handlers")
    with caplog.at_level(logging.ERROR, logger=logger.name):
        for _ in range(3):
            failures.log(logger, "/topic/a", ValueError("bad"))
        failures.log(logger, "/topic/a", KeyError("k"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "handler for /topic/a raised ValueError (further ValueError are counted, not logged)",
        "handler for /topic/a raised KeyError (further KeyError are counted, not logged)",
    ]
    assert all(r.exc_info is not None for r in caplog.records)


def test_handler_failures_remember_a_bounded_number_of_kinds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = HandlerFailures()
    logger = logging.getLogger("cucmconn.test.handlers")
    kinds = [type(f"E{i}", (Exception,), {}) for i in range(HandlerFailures.MAX_KINDS + 5)]
    with caplog.at_level(logging.ERROR, logger=logger.name):
        for kind in kinds:
            failures.log(logger, "/topic/a", kind())
        late = kinds[-1]
        failures.log(logger, "/topic/a", late())  # not remembered: logged again, not stored
    assert len(caplog.records) == len(kinds) + 1


class _Listener:
    def __init__(self) -> None:
        self.lost: list[BaseException | None] = []

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)
        raise RuntimeError("listener bug")

    def connection_restored(self) -> None:
        pass


def test_notify_listener_calls_it_and_logs_what_it_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener = _Listener()
    logger = logging.getLogger("cucmconn.test.listener")
    error = ConnectionResetError("gone")
    with caplog.at_level(logging.ERROR, logger=logger.name):
        notify_listener(logger, listener, "connection_lost", error)  # does not raise
        notify_listener(logger, None, "connection_lost", error)  # no listener: nothing
    assert listener.lost == [error]
    assert [r.getMessage() for r in caplog.records] == ["transport listener connection_lost raised"]


async def test_connect_attempts_retry_only_a_close_before_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("cucmconn.test.attempts")
    outcomes: list[BaseException | None] = [ClosedBeforeConnected("closed"), None]

    async def attempt() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    with caplog.at_level(logging.INFO, logger=logger.name):
        await connect_attempts(attempt, logger, "stomp://b:61613")
    assert outcomes == []  # tried twice: the second connected
    assert "stomp://b:61613 closed the connection before CONNECTED" in caplog.text
    assert "attempt 2 of 3" in caplog.text

    outcomes[:] = [ClosedBeforeConnected("closed"), BrokerError("refused"), None]
    with pytest.raises(BrokerError):  # any other outcome ends the attempts
        await connect_attempts(attempt, logger, "b")
    assert outcomes == [None]

    outcomes[:] = [ClosedBeforeConnected(str(n)) for n in range(EARLY_CLOSE_ATTEMPTS + 1)]
    with pytest.raises(ClosedBeforeConnected, match=str(EARLY_CLOSE_ATTEMPTS - 1)):
        await connect_attempts(attempt, logger, "b")
    assert len(outcomes) == 1  # EARLY_CLOSE_ATTEMPTS in all, then the last one's error
