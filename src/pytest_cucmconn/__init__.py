"""The cucmconn pytest plugin: fixtures to test an application against an emulated connector.

Registered through the ``pytest11`` entry point, so installing cucmconn makes it available in
every pytest run.  It stays inert until a test uses one of its fixtures: this module is
outside the ``cucmconn`` package so loading it imports nothing of cucmconn, and its only
effects at start-up are the ``--cucmconn-url`` option and the ``cucmconn`` marker.

Fixtures (async; they need pytest-asyncio, ``pip install 'cucmconn[testing]'``):

* ``connector``: a ``cucmconn.testing.Connector`` (an emulator with scenario control) on a
  fresh ``memory://`` broker per test, or on the broker ``--cucmconn-url`` names;
* ``cucmconn_client``: a connected ``cucmconn.Client`` to it;
* ``cucmconn_client_factory``: ``await cucmconn_client_factory(**options)`` for more clients;
* ``connector_from_trace``: ``await connector_from_trace(path, speed=...)`` plays a recorded
  trace (``cucmconn.Replayer``) as the connector, on the same broker choice.

``@pytest.mark.cucmconn(extensions="1001-1010", event_format="json", licenses=5,
deterministic=True)`` sets a test's (or a class's, or a module's) connector options.  When a
test that used ``connector`` fails, its report gets the connector's recent commands and events.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from cucmconn import Client
    from cucmconn.testing import ClientFactory, Connector, TraceConnector

try:
    import pytest_asyncio
except ImportError:  # the fixtures then explain what is missing
    pytest_asyncio = None  # type: ignore[assignment]

__all__ = ["connector", "connector_from_trace", "cucmconn_client", "cucmconn_client_factory"]

_CONNECTOR = pytest.StashKey["Connector | TraceConnector"]()
_SECTION = "cucmconn: recent commands (->) and events (<-)"
_NEEDS_ASYNCIO = (
    "cucmconn's fixtures are async and need pytest-asyncio: pip install 'cucmconn[testing]'"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cucmconn", "cucmconn testing kit")
    group.addoption(
        "--cucmconn-url",
        default=None,
        metavar="URL",
        help="run the 'connector' fixture's emulator on this broker (e.g. stomp://host:61613) "
        "instead of a fresh memory:// broker per test",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cucmconn(**options): options of the cucmconn 'connector' fixture (extensions, "
        "event_format, licenses, deterministic, history, queue, latency)",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Marker settings, the closest (function) winning over a class's and a module's."""
    settings: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("cucmconn"))):
        if marker.args:
            raise TypeError("@pytest.mark.cucmconn takes keyword options only")
        settings.update(marker.kwargs)
    return settings


def _async_fixture(function: Callable[..., Any]) -> Any:
    if pytest_asyncio is not None:
        return pytest_asyncio.fixture(function)

    @pytest.fixture(name=function.__name__)
    def missing() -> None:
        pytest.fail(_NEEDS_ASYNCIO, pytrace=False)

    return missing


@_async_fixture
async def connector(request: pytest.FixtureRequest) -> AsyncIterator[Connector]:
    """An emulated CUCM Connector for this test, with scenario control."""
    # Imported here, not at the top: the plugin loads in every pytest run and must cost
    # nothing (and import nothing of cucmconn) until a test asks for this fixture.
    from cucmconn.testing import ConnectorOptions, open_connector

    options = ConnectorOptions().updated(_options(request))
    url = request.config.getoption("cucmconn_url")
    async with open_connector(url, options) as emulated:
        request.node.stash[_CONNECTOR] = emulated
        yield emulated


@_async_fixture
async def cucmconn_client_factory(connector: Connector) -> AsyncIterator[ClientFactory]:
    """``await cucmconn_client_factory(**options)``: more connected Clients, closed at the end."""
    from cucmconn.testing import ClientFactory

    factory = ClientFactory(connector)
    try:
        yield factory
    finally:
        await factory.close()


@_async_fixture
async def cucmconn_client(cucmconn_client_factory: ClientFactory) -> Client:
    """A connected ``cucmconn.Client`` to this test's connector."""
    return await cucmconn_client_factory()


class StartTrace(Protocol):
    """``connector_from_trace``'s value: start a recorded connector."""

    def __call__(
        self, trace: str | os.PathLike[str], **options: Any
    ) -> Awaitable[TraceConnector]: ...


@_async_fixture
async def connector_from_trace(request: pytest.FixtureRequest) -> AsyncIterator[StartTrace]:
    """``await connector_from_trace(path, speed=..., unanswered=...)``: the trace at ``path``
    played back as this test's connector (a fresh memory:// broker, or ``--cucmconn-url``)."""
    from cucmconn.testing import open_trace_connector

    url = request.config.getoption("cucmconn_url")
    async with contextlib.AsyncExitStack() as stack:

        async def start(trace: str | os.PathLike[str], **options: Any) -> TraceConnector:
            replayed = await stack.enter_async_context(open_trace_connector(trace, url, **options))
            request.node.stash[_CONNECTOR] = replayed
            return replayed

        yield start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used ``connector`` shows what the connector saw last."""
    report = yield
    emulated = item.stash.get(_CONNECTOR, None)
    if emulated is not None and report.failed and report.when in ("setup", "call"):
        # Loaded already (the test used the connector): importing it costs nothing here.
        from cucmconn.testing import ScenarioTimeout

        if call.excinfo is None or not call.excinfo.errisinstance(ScenarioTimeout):
            # (a ScenarioTimeout carries the same history in its own message)
            report.sections.append((_SECTION, emulated.transcript(40)))
    return report
