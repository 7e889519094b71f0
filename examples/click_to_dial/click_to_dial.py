"""Click-to-dial over HTTP: a web endpoint that makes an agent's phone call a number.

An aiohttp application over one cucmconn ``Client``:

* ``POST /agents/{extension}/calls`` with ``{"number": "5550100"}``: the agent's phone dials
  it (the agent is logged in on first use); ``201 {"connection_id": ..., "state": ...}``;
* ``DELETE /agents/{extension}/calls/{connection_id}``: hang that call up;
* ``GET /agents/{extension}``: the agent's state and calls.

Connector answers map to HTTP: a refused command is ``409`` with the connector's code and the
guide's advice, no answer in time ``504``, CUCM out of service ``503``, a lost link ``502``,
input that would inject a protocol field ``400``.

Serve it with ``web.run_app(make_app(client))`` (or an ``AppRunner``) once ``client`` is
connected.  Its tests (``test_click_to_dial.py``) use only the cucmconn pytest plugin's fixtures.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cucmconn import (
    Client,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ServiceUnavailable,
)

CLIENT: web.AppKey[Client] = web.AppKey("cucmconn_client", Client)


def make_app(client: Client) -> web.Application:
    """The HTTP application, over an already connected ``client``."""
    app = web.Application(middlewares=[_connector_errors])
    app[CLIENT] = client
    app.router.add_post("/agents/{extension}/calls", dial)
    app.router.add_delete("/agents/{extension}/calls/{connection_id}", hang_up)
    app.router.add_get("/agents/{extension}", agent_state)
    return app


async def dial(request: web.Request) -> web.Response:
    """Make the agent's phone call ``number``."""
    try:
        body: Any = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None
    number = body.get("number") if isinstance(body, dict) else None
    if not isinstance(number, str) or not number:
        raise web.HTTPBadRequest(text='give {"number": "..."}')
    session = request.app[CLIENT].agent(request.match_info["extension"])
    if not session.logged_in:
        await session.login()
    dialled = await session.make_call(number)
    return web.json_response(
        {"connection_id": dialled.connection_id, "state": str(dialled.state)}, status=201
    )


async def hang_up(request: web.Request) -> web.Response:
    """Hang the agent's call up."""
    session = request.app[CLIENT].agent(request.match_info["extension"])
    released = await session.release(request.match_info["connection_id"])
    return web.json_response({"connection_id": released.connection_id, "state": "DROPPED"})


async def agent_state(request: web.Request) -> web.Response:
    """The agent's state and calls as the client last saw them."""
    session = request.app[CLIENT].agent(request.match_info["extension"])
    calls = {cid: str(call.state) for cid, call in session.calls.items()}
    state = session.state
    return web.json_response({"state": None if state is None else str(state), "calls": calls})


@web.middleware
async def _connector_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except CommandError as exc:
        return web.json_response({"error": exc.code, "advice": exc.advice}, status=409)
    except CommandTimeout:
        return web.json_response({"error": "the connector did not answer in time"}, status=504)
    except ServiceUnavailable:
        return web.json_response({"error": "CUCM is out of service"}, status=503)
    except ConnectionLost:
        return web.json_response({"error": "lost the link to the broker"}, status=502)
    except ValueError as exc:  # cucmconn refuses values that would inject a protocol field
        return web.json_response({"error": str(exc)}, status=400)
