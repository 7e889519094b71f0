"""Builds ``guide.jsonl``: the vendor guide's own examples as a trace, in its scenario order.

Run ``python -m tests.traces.guide`` to rewrite the file; ``tests/trace/test_guide_trace.py``
fails when the file and this script disagree, so the trace cannot drift from its source.

Sources, all in /work/shared/spec/cucm-connector-developer-guide.txt:
- commands: the guide's "JMS-Type" and "JMS-Body" rows, spelled as printed (``AnswerCall# <id>``
  with its space, ``Conferencecall``), agents 42031/42032 and connection 52129051 from its JSON
  examples, the client destination named by the client (``guide-desk``);
- events: its literal default-format bodies (``System#IN_SERVICE``, ``<agent>#DialogState#<state>
  #<time>``, ``InboundCall#<state>#<start_time>`` with no agent id, ``<for>#Error#<CODE>``,
  ``Terminal#CiscoTermInServiceEv``); the guide prints no default-format pattern for AgentInfo
  or AgentState, so those use the house profile's (docs/protocol.md); times use the GC sample
  ``2019-09-17 12:46:21``.
Which events follow which command is the guide's prose ("Three events will be sent", "updates,
HELD"); its lists of events were lost, so the order follows docs/protocol.md.
"""

from __future__ import annotations

from pathlib import Path

from cucmconn.trace.format import TraceHeader, TraceRecord, write_trace

PATH = Path(__file__).with_name("guide.jsonl")
DEST = "guide-desk"
A, B = "42031", "42032"
CID = "52129051"
T = "2019-09-17 12:46:21"
START = 1568724381.0  # T as epoch seconds (UTC)

# (JMSType, body, [events]) in the guide's order: Establish Connection, then All Commands.
SCENARIO: list[tuple[str, str, list[str]]] = [
    (f"Hello#{DEST}", "", ["System#IN_SERVICE"]),
    (f"Login#{A}", DEST, [f"{A}#AgentInfo#{A}", f"{A}#AgentState#READY#{T}", f"{A}#DialogState#IDLE#{T}"]),  # noqa: E501
    (f"Login#{B}", DEST, [f"{B}#AgentInfo#{B}", f"{B}#AgentState#READY#{T}", f"{B}#DialogState#IDLE#{T}"]),  # noqa: E501
    (f"MakeCall#{A}", B, [f"{A}#DialogState#INITIATED#{T}", f"{A}#DialogState#ALERTING#{T}"]),
    (f"AnswerCall# {B}", CID, [f"{B}#DialogState#ACTIVE#{T}"]),
    (f"HoldCall# {B}", CID, [f"{B}#DialogState#HELD#{T}"]),
    (f"RetrieveCall# {B}", CID, [f"{B}#DialogState#ACTIVE#{T}"]),
    (f"ReleaseCall# {A}", CID, [f"{A}#DialogState#DROPPED#{T}"]),
    (f"GetState# {A}", "", [f"{A}#AgentState#READY#{T}"]),
    ("Login#42O31", DEST, ["42O31#Error#WRONG_EXTENSION"]),
    (f"Beat#{DEST}", "", ["System#IN_SERVICE"]),
    (f"Logout#{A}", "", [f"{A}#AgentState#LOGOUT#{T}"]),
    (f"Logout#{B}", "", [f"{B}#AgentState#LOGOUT#{T}"]),
]  # fmt: skip
UNSOLICITED = {3: [f"InboundCall#ALERTING#{T}"]}
"""Events the guide shows without a command: the callee's inbound call after MakeCall."""


def build() -> tuple[TraceHeader, list[TraceRecord]]:
    header = TraceHeader(
        created="2019-09-17T12:46:21+00:00",
        wall=START,
        mono=0.0,
        url="",
        source="transcription of the CUCM Connector developer guide",
        note="tests/traces/guide.py; expected differences: guide-differences.json",
    )
    records: list[TraceRecord] = []
    clock = 0.0
    seq = 0
    for number, (jms_type, body, events) in enumerate(SCENARIO):
        cid = f"guide-{number + 1}"
        clock += 0.1
        seq += 1
        records.append(
            TraceRecord(
                dir="out",
                seq=seq,
                wall=START + clock,
                mono=clock,
                dest="/queue/Connector1",
                headers={
                    "type": jms_type,
                    "correlation-id": cid,
                    "reply-to": f"/topic/{DEST}",
                    "expires": str(int((START + clock + 10) * 1000)),
                    "persistent": "false",
                },
                body=body,
            )
        )
        later = [(e, cid) for e in events] + [(e, None) for e in UNSOLICITED.get(number, [])]
        for event, event_cid in later:
            clock += 0.005
            seq += 1
            headers = {
                "message-id": f"ID:guide-{seq}",
                "timestamp": str(int((START + clock) * 1000)),
            }
            if event_cid is not None:
                headers["correlation-id"] = event_cid
            records.append(
                TraceRecord(
                    dir="in",
                    seq=seq,
                    wall=START + clock,
                    mono=clock,
                    dest=f"/topic/{DEST}",
                    headers=headers,
                    body=event,
                )
            )
    return header, records


if __name__ == "__main__":
    write_trace(PATH, *build())
    print(f"wrote {PATH}")
