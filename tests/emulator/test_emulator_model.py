"""The emulator's call model, sans IO: every command, every error, exact events per party.

Outputs are rendered as ``(destination, body, correlated)`` with the default format, so the
expected values read like the wire.  Agent 1001 is logged in from /topic/crm-a, 1002 from
/topic/crm-b and 1003 from /topic/crm-c, so each party's events are told apart by destination.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cucmconn import CommandError
from cucmconn.codec import encode_event
from cucmconn.emulator import Command, CucmModel, Directory, parse_extensions
from cucmconn.emulator.model import FIRST_CONNECTION_ID

T = "2025-11-24 16:00:00"
EPOCH = 1764000000.0
A, B, C = "/topic/crm-a", "/topic/crm-b", "/topic/crm-c"
OWNER = {"1001": A, "1002": B, "1003": C}
CID = str(FIRST_CONNECTION_ID)
CID2 = str(FIRST_CONNECTION_ID + 1)

Rendered = list[tuple[str | None, str, bool]]


def make_model(extensions: str = "1000-1999", licenses: int | None = None) -> CucmModel:
    return CucmModel(Directory(extensions, licenses), now=lambda: EPOCH)


def run(model: CucmModel, name: str, target: str, *args: str, by: str | None = "") -> Rendered:
    """Execute one command; ``by`` is the requester (default: the owner of ``target``)."""
    requester = OWNER.get(target, A) if by == "" else by
    outputs = model.handle(Command(name, target, tuple(args), requester))
    return [(o.destination, encode_event(o.event), o.correlated) for o in outputs]


def mine(body: str, dest: str = A) -> tuple[str, str, bool]:
    return (dest, body, True)


def theirs(body: str, dest: str) -> tuple[str, str, bool]:
    return (dest, body, False)


def error(target: str, code: str, dest: str | None = A) -> Rendered:
    return [(dest, f"{target}#Error#{code}", True)]


@pytest.fixture
def model() -> CucmModel:
    m = make_model()
    for ext in ("1001", "1002", "1003"):
        run(m, "Login", ext, OWNER[ext][len("/topic/") :])
    return m


def call_between(model: CucmModel) -> str:
    """1001 calls 1002 and 1002 answers; returns the connection id."""
    run(model, "MakeCall", "1001", "1002")
    run(model, "AnswerCall", "1002", CID)
    return CID


# --------------------------------------------------------------------------- directory


def test_extension_ranges_and_lists() -> None:
    directory = Directory("1000-1099,2000, 0100-0199")
    assert "1000" in directory and "1099" in directory and "2000" in directory
    assert "1100" not in directory and "1999" not in directory
    assert "0150" in directory and "150" not in directory
    assert "abc" not in directory and "" not in directory
    assert len(directory) == 100 + 1 + 100
    assert directory.first(3) == ["0100", "0101", "0102"]
    assert parse_extensions("1005-1009,1000-1004") == [(1000, 1009, 4)]


@pytest.mark.parametrize("spec", ["", "10-1", "abc", "1000-", "1000,,2000", "1-2-3"])
def test_bad_extension_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        Directory(spec)


def test_bad_licence_count_is_refused() -> None:
    with pytest.raises(ValueError):
        Directory("1000", licenses=-1)


# --------------------------------------------------------------------------- session commands


def test_hello_and_beat_answer_service_status() -> None:
    m = make_model()
    assert run(m, "Hello", "crm-a", by=A) == [mine("System#IN_SERVICE")]
    assert run(m, "beat", "crm-a", by=A) == [mine("System#IN_SERVICE")]
    assert m.known_clients == (A,)
    assert run(m, "Hello", "crm-x", by=None) == error("crm-x", "PLEASE_RETRY", None)


def test_login_sends_info_state_and_idle_dialog() -> None:
    m = make_model()
    assert run(m, "Login", "1001", "crm-a") == [
        mine("1001#AgentInfo#1001#SEP0000000003E9"),
        mine(f"1001#AgentState#READY#{T}"),
        mine(f"1001#DialogState#IDLE#{T}"),
    ]
    assert m.agents["1001"].destination == A


def test_login_without_reply_to_answers_the_named_topic() -> None:
    m = make_model()
    out = run(m, "Login", "1001", "crm-z", by=None)
    assert {dest for dest, _, _ in out} == {"/topic/crm-z"}


def test_login_again_replays_current_calls(model: CucmModel) -> None:
    call_between(model)
    assert run(model, "Login", "1001", "crm-a") == [
        mine("1001#AgentInfo#1001#SEP0000000003E9"),
        mine(f"1001#AgentState#TALKING#{T}"),
        mine(f"1001#DialogState#ACTIVE#{T}#{CID}#1001,1002"),
    ]


@pytest.mark.parametrize(
    ("target", "code"),
    [("", "MISSING_EXTENSION"), ("10a1", "WRONG_EXTENSION"), ("2001", "USER_NOT_FOUND")],
)
def test_login_refuses_bad_extensions(target: str, code: str) -> None:
    m = make_model()
    assert run(m, "Login", target, "crm-a", by=A) == error(target, code)
    assert not m.agents


def test_login_past_the_licence_count() -> None:
    m = make_model(licenses=1)
    run(m, "Login", "1001", "crm-a")
    assert run(m, "Login", "1002", "crm-b") == error("1002", "LICENSES_EXCEEDED", B)
    run(m, "Logout", "1001")
    assert run(m, "Login", "1002", "crm-b")[1] == mine(f"1002#AgentState#READY#{T}", B)


def test_login_of_an_agent_owned_elsewhere_is_a_privilege_violation(model: CucmModel) -> None:
    assert run(model, "Login", "1001", "crm-b", by=B) == error("1001", "PRIVILLEGE_VIOLATION", B)
    assert model.agents["1001"].destination == A


def test_login_without_any_destination_is_malformed() -> None:
    assert run(make_model(), "Login", "1001", by=None) == error("1001", "PLEASE_RETRY", None)


def test_logout(model: CucmModel) -> None:
    assert run(model, "Logout", "1003") == [mine(f"1003#AgentState#LOGOUT#{T}", C)]
    assert "1003" not in model.agents
    assert run(model, "Logout", "1003") == error("1003", "CF_INVALID_OBJECT_STATE", C)


def test_logout_refused_on_a_call_and_for_another_client(model: CucmModel) -> None:
    call_between(model)
    assert run(model, "Logout", "1001") == error("1001", "CF_INVALID_OBJECT_STATE")
    assert run(model, "Logout", "1003", by=A) == error("1003", "PRIVILLEGE_VIOLATION")


def test_get_state(model: CucmModel) -> None:
    assert run(model, "GetState", "1003") == [
        mine(f"1003#AgentState#READY#{T}", C),
        mine(f"1003#DialogState#IDLE#{T}", C),
    ]
    call_between(model)
    assert run(model, "GetState", "1002") == [
        mine(f"1002#AgentState#TALKING#{T}", B),
        mine(f"1002#DialogState#ACTIVE#{T}#{CID}#1001,1002", B),
    ]
    assert run(model, "GetState", "1500", by=A) == [mine(f"1500#AgentState#LOGOUT#{T}")]


def test_ready_and_not_ready(model: CucmModel) -> None:
    assert run(model, "MakeNotReady", "1001") == [mine(f"1001#AgentState#NOT_READY#{T}")]
    assert run(model, "MakeNotReady", "1001") == [mine(f"1001#AgentState#NOT_READY#{T}")]
    assert run(model, "MakeReady", "1001") == [mine(f"1001#AgentState#READY#{T}")]


@pytest.mark.parametrize("name", ["Bogus", "Connect", "MobileAgentLogin"])
def test_unknown_commands_are_please_retry(model: CucmModel, name: str) -> None:
    assert run(model, name, "1001") == error("1001", "PLEASE_RETRY")


# --------------------------------------------------------------------------- calls


def test_make_call_rings_the_other_party(model: CucmModel) -> None:
    assert run(model, "MakeCall", "1001", "1002") == [
        mine(f"1001#DialogState#INITIATED#{T}#{CID}#1001,1002"),
        theirs(f"1002#InboundCall#ALERTING#{T}#{CID}#1001", B),
        mine(f"1001#DialogState#ALERTING#{T}#{CID}#1001,1002"),
        mine(f"1001#AgentState#TALKING#{T}"),
    ]
    assert model.agents["1002"].state == "READY"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((), "MISSING_EXTENSION"),
        (("",), "MISSING_EXTENSION"),
        (("12x4",), "WRONG_EXTENSION"),
        (("1001",), "INVALID_PARTY"),  # itself
        (("1500",), "INVALID_PARTY"),  # in the directory, not logged in
        (("99999",), "INVALID_PARTY"),  # unknown number
    ],
)
def test_make_call_errors(model: CucmModel, args: tuple[str, ...], code: str) -> None:
    assert run(model, "MakeCall", "1001", *args) == error("1001", code)
    assert not model.calls


def test_make_call_to_a_busy_party_or_while_talking(model: CucmModel) -> None:
    call_between(model)
    assert run(model, "MakeCall", "1003", "1002") == error("1003", "INVALID_PARTY", C)
    assert run(model, "MakeCall", "1001", "1003") == error("1001", "CF_INVALID_OBJECT_STATE")


def test_commands_on_agents_not_logged_in_or_not_in_directory(model: CucmModel) -> None:
    assert run(model, "MakeCall", "1500", "1001", by=A) == error("1500", "CF_INVALID_OBJECT_STATE")
    assert run(model, "HoldCall", "2500", CID, by=A) == error("2500", "USER_NOT_FOUND")
    assert run(model, "HoldCall", "", CID, by=A) == error("", "MISSING_EXTENSION")


def test_controlling_another_clients_agent_is_a_privilege_violation(model: CucmModel) -> None:
    assert run(model, "MakeCall", "1002", "1001", by=A) == error("1002", "PRIVILLEGE_VIOLATION")
    assert not model.calls


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("Logout", ()),
        ("MakeNotReady", ()),
        ("MakeCall", ("1003",)),
        ("AnswerCall", (CID,)),
        ("HoldCall", (CID,)),
        ("ReleaseCall", (CID,)),
        ("Transfer_sst", ("1003", CID)),
        ("ConsultCall", ("1003", CID)),
        ("TransferCall", (CID,)),
        ("Conferencecall", (CID,)),
    ],
)
def test_a_command_without_requester_owns_no_agent(
    model: CucmModel, name: str, args: tuple[str, ...]
) -> None:
    """No reply-to is no proof of ownership; the refusal goes nowhere, never to the owner's
    topic (where the owner's client could match it to one of its own commands)."""
    call_between(model)
    agent = model.agents["1001"]
    assert (agent.state, agent.calls) == ("TALKING", [CID])
    assert run(model, name, "1001", *args, by=None) == error("1001", "PRIVILLEGE_VIOLATION", None)
    assert model.agents["1001"] is agent and (agent.state, agent.calls) == ("TALKING", [CID])
    assert model.calls[CID].legs == {"1001": "ACTIVE", "1002": "ACTIVE"}


def test_errors_without_requester_go_nowhere(model: CucmModel) -> None:
    assert run(model, "Logout", "1500", by=None) == error("1500", "CF_INVALID_OBJECT_STATE", None)
    assert run(model, "Nope", "1001", by=None) == error("1001", "PLEASE_RETRY", None)
    model.set_in_service(False)
    assert run(model, "MakeReady", "1001", by=None) == [(None, "System#OUT_OF_SERVICE", True)]


def test_answer(model: CucmModel) -> None:
    run(model, "MakeCall", "1001", "1002")
    assert run(model, "AnswerCall", "1002", CID) == [
        mine(f"1002#DialogState#ACTIVE#{T}#{CID}#1001,1002", B),
        theirs(f"1001#DialogState#ACTIVE#{T}#{CID}#1001,1002", A),
        mine(f"1002#AgentState#TALKING#{T}", B),
    ]


def test_answer_errors(model: CucmModel) -> None:
    run(model, "MakeCall", "1001", "1002")
    assert run(model, "AnswerCall", "1001", CID) == error("1001", "CF_INVALID_OBJECT_STATE")
    assert run(model, "AnswerCall", "1002", "777") == error("1002", "CF_INVALID_OBJECT_STATE", B)
    assert run(model, "AnswerCall", "1003", CID) == error("1003", "CF_INVALID_OBJECT_STATE", C)
    assert run(model, "AnswerCall", "1002") == error("1002", "PLEASE_RETRY", B)
    run(model, "AnswerCall", "1002", CID)
    assert run(model, "AnswerCall", "1002", CID) == error("1002", "CF_INVALID_OBJECT_STATE", B)


def test_hold_and_retrieve(model: CucmModel) -> None:
    cid = call_between(model)
    assert run(model, "HoldCall", "1001", cid) == [
        mine(f"1001#DialogState#HELD#{T}#{cid}#1001,1002"),
        mine(f"1001#AgentState#HOLD#{T}"),
    ]
    assert run(model, "HoldCall", "1001", cid) == error("1001", "CF_INVALID_OBJECT_STATE")
    assert run(model, "RetrieveCall", "1001", cid) == [
        mine(f"1001#DialogState#ACTIVE#{T}#{cid}#1001,1002"),
        mine(f"1001#AgentState#TALKING#{T}"),
    ]
    assert run(model, "RetrieveCall", "1001", cid) == error("1001", "CF_INVALID_OBJECT_STATE")


def test_release_drops_both_legs(model: CucmModel) -> None:
    cid = call_between(model)
    assert run(model, "ReleaseCall", "1001", cid) == [
        mine(f"1001#DialogState#DROPPED#{T}#{cid}#1001,1002"),
        theirs(f"1002#DialogState#DROPPED#{T}#{cid}#1001,1002", B),
        mine(f"1001#AgentState#READY#{T}"),
        theirs(f"1002#AgentState#READY#{T}", B),
    ]
    assert not model.calls and not model.agents["1001"].calls
    assert run(model, "ReleaseCall", "1001", cid) == error("1001", "CF_INVALID_OBJECT_STATE")


def test_rejecting_a_ringing_call(model: CucmModel) -> None:
    run(model, "MakeCall", "1001", "1002")
    assert run(model, "ReleaseCall", "1002", CID) == [
        mine(f"1002#DialogState#DROPPED#{T}#{CID}#1001,1002", B),
        theirs(f"1001#DialogState#DROPPED#{T}#{CID}#1001,1002", A),
        theirs(f"1001#AgentState#READY#{T}", A),
    ]


def test_blind_transfer(model: CucmModel) -> None:
    cid = call_between(model)
    assert run(model, "Transfer_sst", "1002", "1003", cid) == [
        mine(f"1002#DialogState#DROPPED#{T}#{cid}#1001,1002", B),
        theirs(f"1001#DialogState#ALERTING#{T}#{cid}#1001,1003", A),
        theirs(f"1003#InboundCall#ALERTING#{T}#{cid}#1001", C),
        mine(f"1002#AgentState#READY#{T}", B),
    ]
    assert run(model, "AnswerCall", "1003", cid) == [
        mine(f"1003#DialogState#ACTIVE#{T}#{cid}#1001,1003", C),
        theirs(f"1001#DialogState#ACTIVE#{T}#{cid}#1001,1003", A),
        mine(f"1003#AgentState#TALKING#{T}", C),
    ]


def test_blind_transfer_errors(model: CucmModel) -> None:
    cid = call_between(model)
    assert run(model, "Transfer_sst", "1002", "", cid) == error("1002", "MISSING_EXTENSION", B)
    assert run(model, "Transfer_sst", "1002", "1x", cid) == error("1002", "WRONG_EXTENSION", B)
    assert run(model, "Transfer_sst", "1002", "1001", cid) == error("1002", "INVALID_PARTY", B)
    assert run(model, "Transfer_sst", "1002", "1003") == error("1002", "PLEASE_RETRY", B)
    assert run(model, "Transfer_sst", "1003", "1001", cid) == error("1003", "INVALID_PARTY", C)


def consult(model: CucmModel) -> tuple[str, str]:
    """A customer's call to 1001 (answered), consulted to 1002 (answered)."""
    cid, _ = model.place_call("5550100", "1001")
    run(model, "AnswerCall", "1001", cid)
    out = run(model, "ConsultCall", "1001", "1002", cid)
    consult_cid = str(int(cid) + 1)
    assert out == [
        mine(f"1001#DialogState#INITIATED#{T}#{consult_cid}#1001,1002"),
        mine(f"1001#DialogState#HELD#{T}#{cid}#5550100,1001"),
        theirs(f"1002#InboundCall#ALERTING#{T}#{consult_cid}#1001", B),
        mine(f"1001#DialogState#ALERTING#{T}#{consult_cid}#1001,1002"),
    ]
    assert run(model, "AnswerCall", "1002", consult_cid) == [
        mine(f"1002#DialogState#ACTIVE#{T}#{consult_cid}#1001,1002", B),
        theirs(f"1001#DialogState#ACTIVE#{T}#{consult_cid}#1001,1002", A),
        mine(f"1002#AgentState#TALKING#{T}", B),
    ]
    return cid, consult_cid


@pytest.mark.parametrize("gc4", [False, True])
def test_consult_then_transfer(model: CucmModel, gc4: bool) -> None:
    cid, consult_cid = consult(model)
    args = ("1002", cid) if gc4 else (cid,)
    assert run(model, "TransferCall", "1001", *args) == [
        mine(f"1001#DialogState#DROPPED#{T}#{cid}#5550100,1001"),
        mine(f"1001#DialogState#DROPPED#{T}#{consult_cid}#1001,1002"),
        theirs(f"1002#DialogState#DROPPED#{T}#{consult_cid}#1001,1002", B),
        theirs(f"1002#DialogState#ACTIVE#{T}#{cid}#5550100,1002", B),
        mine(f"1001#AgentState#READY#{T}"),
    ]
    assert list(model.calls) == [cid]
    assert model.calls[cid].participants == ("5550100", "1002")


@pytest.mark.parametrize("gc4", [False, True])
def test_consult_then_conference(model: CucmModel, gc4: bool) -> None:
    cid, consult_cid = consult(model)
    args = ("1002", cid) if gc4 else (cid,)
    assert run(model, "Conferencecall", "1001", *args) == [
        mine(f"1001#DialogState#ACTIVE#{T}#{cid}#5550100,1001,1002"),
        mine(f"1001#DialogState#DROPPED#{T}#{consult_cid}#1001,1002"),
        theirs(f"1002#DialogState#DROPPED#{T}#{consult_cid}#1001,1002", B),
        theirs(f"1002#DialogState#ACTIVE#{T}#{cid}#5550100,1001,1002", B),
    ]
    # one party leaves: the other two stay on the call
    assert run(model, "ReleaseCall", "1001", cid) == [
        mine(f"1001#DialogState#DROPPED#{T}#{cid}#5550100,1001,1002"),
        theirs(f"1002#DialogState#ACTIVE#{T}#{cid}#5550100,1002", B),
        mine(f"1001#AgentState#READY#{T}"),
    ]


def test_transfer_by_consult_call_id_is_accepted(model: CucmModel) -> None:
    cid, consult_cid = consult(model)
    assert run(model, "TransferCall", "1001", consult_cid)[0] == mine(
        f"1001#DialogState#DROPPED#{T}#{cid}#5550100,1001"
    )


def test_consult_transfer_errors(model: CucmModel) -> None:
    cid, _ = model.place_call("5550100", "1001")
    run(model, "AnswerCall", "1001", cid)
    assert run(model, "TransferCall", "1001", cid) == error("1001", "CF_INVALID_OBJECT_STATE")
    assert run(model, "TransferCall", "1001") == error("1001", "PLEASE_RETRY")
    assert run(model, "ConsultCall", "1001", "1002", "404") == error(
        "1001", "CF_INVALID_OBJECT_STATE"
    )
    run(model, "ConsultCall", "1001", "1002", cid)
    # consulted party still ringing
    assert run(model, "Conferencecall", "1001", cid) == error("1001", "CF_INVALID_OBJECT_STATE")
    assert run(model, "ConsultCall", "1001", "1003", cid) == error(
        "1001", "CF_INVALID_OBJECT_STATE"
    )
    run(model, "AnswerCall", "1002", str(int(cid) + 1))
    assert run(model, "TransferCall", "1001", "1003", cid) == error("1001", "INVALID_PARTY")
    assert run(model, "TransferCall", "1001", "x", cid) == error("1001", "WRONG_EXTENSION")


def test_agent_stays_talking_through_a_consult(model: CucmModel) -> None:
    consult(model)
    assert model.agents["1001"].state == "TALKING"


# --------------------------------------------------------------------------- unsolicited


def test_inbound_call_rings_the_agent_uncorrelated(model: CucmModel) -> None:
    cid, out = model.place_call("5551234", "1001")
    assert cid == CID
    assert [(o.destination, encode_event(o.event), o.correlated) for o in out] == [
        theirs(f"1001#InboundCall#ALERTING#{T}#{cid}#5551234", A)
    ]
    assert run(model, "AnswerCall", "1001", cid) == [
        mine(f"1001#DialogState#ACTIVE#{T}#{cid}#5551234,1001"),
        mine(f"1001#AgentState#TALKING#{T}"),
    ]
    hung = model.hangup(cid)
    assert [encode_event(o.event) for o in hung] == [
        f"1001#DialogState#DROPPED#{T}#{cid}#5551234,1001",
        f"1001#AgentState#READY#{T}",
    ]


def test_agent_answering_at_the_phone_sends_answercall_events_uncorrelated(
    model: CucmModel,
) -> None:
    cid, _ = model.place_call("5551234", "1001")
    out = model.answer(cid)
    assert [(o.destination, encode_event(o.event), o.correlated) for o in out] == [
        theirs(f"1001#DialogState#ACTIVE#{T}#{cid}#5551234,1001", A),
        theirs(f"1001#AgentState#TALKING#{T}", A),
    ]
    with pytest.raises(CommandError) as answered:  # no longer ringing
        model.answer(cid)
    assert answered.value.code == "CF_INVALID_OBJECT_STATE"
    with pytest.raises(CommandError):
        model.answer("404")
    assert model.calls[cid].legs == {"5551234": "ACTIVE", "1001": "ACTIVE"}


def test_dial_out_rings_an_outside_number_that_answers_and_hangs_up() -> None:
    m = CucmModel(Directory("1000-1999"), now=lambda: EPOCH, dial_out=True)
    run(m, "Login", "1001", "crm-a")
    assert run(m, "MakeCall", "1001", "5550100") == [
        mine(f"1001#DialogState#INITIATED#{T}#{CID}#1001,5550100"),
        mine(f"1001#DialogState#ALERTING#{T}#{CID}#1001,5550100"),
        mine(f"1001#AgentState#TALKING#{T}"),
    ]
    assert run(m, "MakeCall", "1001", "5550199") == error("1001", "CF_INVALID_OBJECT_STATE")
    answered = m.answer(CID)  # the customer picks up
    assert [(o.destination, encode_event(o.event), o.correlated) for o in answered] == [
        theirs(f"1001#DialogState#ACTIVE#{T}#{CID}#1001,5550100", A)
    ]
    hung = m.hangup(CID, "5550100")
    assert [encode_event(o.event) for o in hung] == [
        f"1001#DialogState#DROPPED#{T}#{CID}#1001,5550100",
        f"1001#AgentState#READY#{T}",
    ]
    # Inside the directory, a number that is not logged in is still INVALID_PARTY.
    assert run(m, "MakeCall", "1001", "1500") == error("1001", "INVALID_PARTY")


@pytest.mark.parametrize(
    ("caller", "callee", "code"),
    [
        ("555", "1500", "INVALID_PARTY"),
        ("555", "abc", "WRONG_EXTENSION"),
        ("5,5", "1001", "INVALID_PARTY"),
        ("", "1001", "INVALID_PARTY"),
    ],
)
def test_inbound_call_errors(model: CucmModel, caller: str, callee: str, code: str) -> None:
    with pytest.raises(CommandError) as info:
        model.place_call(caller, callee)
    assert info.value.code == code
    assert not model.calls


def test_unanswered_inbound_calls_are_abandoned() -> None:
    clock = [EPOCH]
    m = CucmModel(Directory("1000-1999"), now=lambda: clock[0])
    m.handle(Command("Login", "1001", ("crm-a",), A))
    cid, _ = m.place_call("555", "1001")
    assert m.abandon_ringing(30.0) == (0, [])
    clock[0] += 31
    count, out = m.abandon_ringing(30.0)
    assert count == 1
    assert encode_event(out[0].event).startswith("1001#DialogState#DROPPED#")
    assert cid not in m.calls and m.free_agents == 1


def test_free_agent_pool_follows_calls(model: CucmModel) -> None:
    assert model.free_agents == 3
    call_between(model)
    assert model.free_agents == 1
    assert model.pick_free_agent(random.Random(1)) == "1003"
    run(model, "MakeNotReady", "1003")
    assert model.pick_free_agent(random.Random(1)) is None


def test_outage_and_recovery(model: CucmModel) -> None:
    run(model, "Hello", "crm-a", by=A)
    out = [
        (o.destination, encode_event(o.event), o.correlated) for o in model.set_in_service(False)
    ]
    assert sorted(out[:3]) == [theirs("System#OUT_OF_SERVICE", dest) for dest in (A, B, C)]
    assert sorted(out[3:]) == sorted(
        theirs(f"{ext}#Terminal#CiscoTermOutOfServiceEv", dest) for ext, dest in OWNER.items()
    )
    assert model.set_in_service(False) == []
    assert run(model, "MakeCall", "1001", "1002") == [mine("System#OUT_OF_SERVICE")]
    assert run(model, "Hello", "crm-a", by=A) == [mine("System#OUT_OF_SERVICE")]
    with pytest.raises(CommandError):
        model.place_call("555", "1001")
    assert model.free_agents == 0
    back = [encode_event(o.event) for o in model.set_in_service(True)]
    assert back.count("System#IN_SERVICE") == 3
    assert "1001#Terminal#CiscoTermInServiceEv" in back
    assert model.free_agents == 3
    assert run(model, "Hello", "crm-a", by=A) == [mine("System#IN_SERVICE")]


def test_known_clients_are_bounded() -> None:
    m = CucmModel(Directory("1000"), now=lambda: EPOCH, max_known_clients=3)
    for n in range(5):
        m.handle(Command("Hello", f"c{n}", (), f"/topic/c{n}"))
    assert m.known_clients == ("/topic/c2", "/topic/c3", "/topic/c4")


def test_restart_continues_connection_ids(model: CucmModel) -> None:
    call_between(model)
    nxt = model.next_connection_id()
    assert nxt == FIRST_CONNECTION_ID + 1
    assert model.next_connection_id() == nxt  # reading does not consume


# --------------------------------------------------------------------------- robustness

_names = st.sampled_from(
    [
        "Hello",
        "Login",
        "Logout",
        "GetState",
        "MakeCall",
        "AnswerCall",
        "ReleaseCall",
        "HoldCall",
        "RetrieveCall",
        "Transfer_sst",
        "ConsultCall",
        "TransferCall",
        "Conferencecall",
        "MakeReady",
        "MakeNotReady",
        "Nope",
    ]
)
_exts = st.sampled_from(["1001", "1002", "1003", "1004", "", "x", "2999"])
_cids = st.integers(FIRST_CONNECTION_ID - 1, FIRST_CONNECTION_ID + 6).map(str)
_arg = st.one_of(_exts, _cids, st.text(max_size=5))
_steps = st.lists(
    st.tuples(_names, _exts, st.lists(_arg, max_size=3), st.sampled_from([A, B, C, None])),
    max_size=40,
)


def _consistent(model: CucmModel) -> None:
    for cid, call in model.calls.items():
        assert len(call.legs) >= 2
        assert call.ringing is None or call.ringing in call.legs
        for party in call.legs:
            if party in model.agents:
                assert cid in model.agents[party].calls
    for ext, agent in model.agents.items():
        for cid in agent.calls:
            assert ext in model.calls[cid].legs


@settings(max_examples=300, deadline=None)
@given(steps=_steps)
def test_any_command_sequence_keeps_the_model_consistent(
    steps: list[tuple[str, str, list[str], str | None]],
) -> None:
    m = make_model()
    for name, target, args, requester in steps:
        out = m.handle(Command(name, target, tuple(args), requester))
        for output in out:
            encode_event(output.event)  # every event the model makes is encodable
        _consistent(m)
