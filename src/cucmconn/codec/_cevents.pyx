# cython: language_level=3
"""Event codec, compiled twin of ``cucmconn/codec/_pyevents.py`` (same behaviour, tested
differentially against it; the wire format is documented there and in docs/protocol.md).

Why C: every event a contact centre produces passes through ``decode_event`` on the client's
event loop.  The ``#`` path scans the body's bytes with ``memchr``, creates each field's ``str``
exactly once (a direct copy on the all-ASCII fast path, recurring values from a small intern
cache), matches event types without allocating and calls the Struct classes directly: no
``decode()``, no ``split()`` list, no dict.  The JSON path lets msgspec decode into the twin's
``Wire`` Struct and normalises it reading the Struct's slots directly.  Everything rare (CESU-8
repair, unknown ``#`` event types, JSON encoding, and every encoding error) is delegated to the
pure-Python twin, so the two cannot drift where speed does not matter.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.string cimport memchr, memcmp, memcpy

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object o)
    bint PyUnicode_IS_ASCII(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)
    ctypedef struct PyObject
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

from cucmconn.errors import ProtocolError
from cucmconn.codec import _pyevents as _py
from cucmconn.codec.events import (
    AgentInfo,
    AgentState,
    DialogState,
    ErrorEvent,
    InboundCall,
    SystemStatus,
    TerminalStatus,
    UnknownEvent,
)

__all__ = ["decode_event", "encode_event"]

# C-level references: calling them skips a module-dict lookup per event.
cdef object _SystemStatus = SystemStatus
cdef object _TerminalStatus = TerminalStatus
cdef object _AgentInfo = AgentInfo
cdef object _AgentState = AgentState
cdef object _DialogState = DialogState
cdef object _InboundCall = InboundCall
cdef object _ErrorEvent = ErrorEvent
cdef object _UnknownEvent = UnknownEvent

# Index into _OFF; must follow _WIRE_FIELDS below.
cdef enum WireField:
    W_type = 0
    W_agentId = 1
    W_status = 2
    W_state = 3
    W_State = 4
    W_stateChangeTimeString = 5
    W_startTime = 6
    W_connectionID = 7
    W_connectionId = 8
    W_Connection = 9
    W_participants = 10
    W_otherParticipants = 11
    W_otherParty = 12
    W_extension = 13
    W_deviceName = 14
    W_errorType = 15
    W_message = 16
    W_args = 17

_WIRE_DECODER = _py.WIRE_DECODER
_Wire = _py.Wire
_InnerState = _py.InnerState
_wire_decode = _WIRE_DECODER.decode
_JSON_ERRORS = _py.JSON_ERRORS
_decode_default_py = _py._decode_default
_repair = _py._repair
_pair_surrogates = _py._pair_surrogates


# msgspec stores a Struct's fields in slots, so the JSON path reads them by offset (found once,
# from the class's member descriptors) instead of through getattr on every event.
_WIRE_FIELDS = (
    "type", "agentId", "status", "state", "State", "stateChangeTimeString", "startTime",
    "connectionID", "connectionId", "Connection", "participants", "otherParticipants",
    "otherParty", "extension", "deviceName", "errorType", "message", "args",
)
cdef Py_ssize_t _OFF[18]


cdef Py_ssize_t _member_offset(str name) except -1:
    descr = _Wire.__dict__[name]
    if type(descr).__name__ != "member_descriptor":
        raise ImportError(f"msgspec layout changed: Wire.{name} is not a slot")
    return (<PyMemberDescrObject*><PyObject*>descr).d_member.offset


assert len(_WIRE_FIELDS) == W_args + 1 and _WIRE_FIELDS[W_state] == "state"
for _i, _name in enumerate(_WIRE_FIELDS):
    _OFF[_i] = _member_offset(_name)


cdef inline object _get(object wire, int field):
    cdef PyObject* value = (<PyObject**>((<char*><PyObject*>wire) + _OFF[field]))[0]
    if value == NULL:
        return None
    return <object>value


cdef inline bint _is_ws(char c) noexcept nogil:
    return c == b' ' or c == b'\t' or c == b'\r' or c == b'\n' or c == b'\x0b' or c == b'\x0c'


cdef bint _is_ascii(const char* p, Py_ssize_t n) noexcept nogil:
    cdef const unsigned char* u = <const unsigned char*>p
    cdef Py_ssize_t i
    for i in range(n):
        if u[i] & 0x80:
            return False
    return True


cdef inline char _lower(char c) noexcept nogil:
    if b'A' <= c <= b'Z':
        return c + 32
    return c


cdef Kind _kind(const char* p, Py_ssize_t n) noexcept nogil:
    """The event type, case-insensitive and ignoring '_' (``AGENT_STATE`` is ``AgentState``)."""
    cdef char buf[12]
    cdef Py_ssize_t i, m = 0
    cdef char c
    for i in range(n):
        c = p[i]
        if c == b'_':
            continue
        if m == 12:
            return K_OTHER
        buf[m] = _lower(c)
        m += 1
    if m == 5 and memcmp(buf, b"error", 5) == 0:
        return K_ERROR
    if m == 10 and memcmp(buf, b"agentstate", 10) == 0:
        return K_AGENTSTATE
    if m == 11 and memcmp(buf, b"dialogstate", 11) == 0:
        return K_DIALOGSTATE
    if m == 11 and memcmp(buf, b"inboundcall", 11) == 0:
        return K_INBOUNDCALL
    if m == 9 and memcmp(buf, b"agentinfo", 9) == 0:
        return K_AGENTINFO
    if m == 8 and memcmp(buf, b"terminal", 8) == 0:
        return K_TERMINAL
    if m == 6 and memcmp(buf, b"system", 6) == 0:
        return K_SYSTEM
    return K_OTHER


cdef inline bint _ieq(const char* p, Py_ssize_t n, const char* lit, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t i
    if n != m:
        return False
    for i in range(n):
        if _lower(p[i]) != lit[i]:
            return False
    return True


cdef Family _family(const char* p, Py_ssize_t n) noexcept nogil:
    """``<Event_For>`` values that name an event family rather than an agent."""
    if _ieq(p, n, b"system", 6):
        return F_SYSTEM
    if _ieq(p, n, b"terminal", 8):
        return F_TERMINAL
    if _ieq(p, n, b"inboundcall", 11):
        return F_INBOUNDCALL
    return F_AGENT


cdef object _str(const char* p, Py_ssize_t n, bint ascii):
    """One field as ``str`` (``None`` when empty): a plain copy when the body is ASCII."""
    cdef object s
    if n <= 0:
        return None
    if ascii:
        s = PyUnicode_New(n, 127)
        memcpy(PyUnicode_DATA(s), p, n)
        return s
    return PyUnicode_DecodeUTF8(p, n, NULL)


# Agent ids, states, statuses and error codes recur endlessly (a few thousand agents, a dozen
# states): a small direct-mapped cache hands back the same str instead of allocating a new one,
# which is faster and lets 10,000 resident events share their strings.  Timestamps, connection
# ids and participants are not cached (mostly unique).
cdef enum:
    CACHE_SLOTS = 2048
    CACHE_MAX_LEN = 32
cdef PyObject* _cache[CACHE_SLOTS]


cdef object _istr(const char* p, Py_ssize_t n, bint ascii):
    """Like ``_str``, through the intern cache for short ASCII fields."""
    cdef Py_ssize_t i
    cdef unsigned int h = 2166136261u
    cdef PyObject* hit
    cdef object s
    if n <= 0 or n > CACHE_MAX_LEN or not ascii:
        return _str(p, n, ascii)
    for i in range(n):
        h = (h ^ <unsigned char>p[i]) * 16777619u
    h = (h ^ (h >> 15)) & (CACHE_SLOTS - 1)
    hit = _cache[h]
    if hit != NULL and PyUnicode_GET_LENGTH(<object>hit) == n and memcmp(
        PyUnicode_DATA(<object>hit), p, n
    ) == 0:
        return <object>hit
    s = _str(p, n, True)
    Py_INCREF(s)
    _cache[h] = <PyObject*>s
    Py_XDECREF(hit)
    return s


cdef object _participants(const char* p, Py_ssize_t n, bint ascii):
    """A comma-joined field as a tuple, built in place (empty field -> ``()``)."""
    cdef Py_ssize_t count = 1, i = 0, k = 0, j
    cdef object item
    cdef tuple out
    if n <= 0:
        return ()
    for j in range(n):
        if p[j] == b',':
            count += 1
    out = PyTuple_New(count)
    for j in range(n + 1):
        if j == n or p[j] == b',':
            item = _istr(p + i, j - i, ascii)
            if item is None:
                item = ""
            Py_INCREF(item)
            PyTuple_SET_ITEM(out, k, item)
            k += 1
            i = j + 1
    return out


cdef inline object _bad(str what):
    return ProtocolError("malformed event: " + what)


cdef object _decode_utf8(const char* p, Py_ssize_t n, bint ascii, object owner, bint whole):
    """Decode a stripped, valid UTF-8 body ``p[:n]`` held by ``owner`` (all of it if ``whole``)."""
    cdef Py_ssize_t seps[MAX_SEPS]
    cdef Py_ssize_t nsep = 0, pos = 0, s, e, i
    cdef const char* hit
    cdef Kind kind
    cdef Family family
    cdef object event_for, state, message

    if n == 0:
        raise _bad("empty body")
    if p[0] == b'{':
        return _decode_json(p, n, ascii, owner, whole)
    while nsep < MAX_SEPS:
        hit = <const char*>memchr(p + pos, b'#', n - pos)
        if hit == NULL:
            break
        seps[nsep] = hit - p
        pos = seps[nsep] + 1
        nsep += 1
    if nsep == 0:
        raise _bad("no '#' separator (and not a JSON object)")
    # field i spans [start(i), end(i)); field 1 is the event type
    s = seps[0] + 1
    e = seps[1] if nsep > 1 else n
    if e == s:
        raise _bad("empty event type")
    for i in range(s, e):
        if <unsigned char>p[i] < 0x20 or p[i] == 0x7f:
            raise _bad("control character in the event type")
    kind = _kind(p + s, e - s)
    if kind == K_ERROR:
        if nsep < 2 or (seps[2] if nsep > 2 else n) == seps[1] + 1:
            raise _bad("Error event without a code")
        event_for = _istr(p, seps[0], ascii)
        message = _str(p + seps[2] + 1, n - seps[2] - 1, ascii) if nsep > 2 else None
        return _ErrorEvent(
            "" if event_for is None else event_for,
            _istr(p + seps[1] + 1, (seps[2] if nsep > 2 else n) - seps[1] - 1, ascii),
            message,
        )
    family = _family(p, seps[0])
    if family == F_SYSTEM:
        return _SystemStatus(_istr(p + s, e - s, ascii))
    if family == F_TERMINAL:
        return _TerminalStatus(None, _istr(p + s, e - s, ascii))
    if family == F_INBOUNDCALL:
        return _InboundCall(
            None,
            _istr(p + s, e - s, ascii),
            _field(p, n, seps, nsep, 2, ascii),
            _field(p, n, seps, nsep, 3, ascii),
            _field(p, n, seps, nsep, 4, ascii),
        )
    if seps[0] == 0:
        raise _bad("empty <Event_For>")
    if kind == K_OTHER or kind == K_SYSTEM:
        # ``System`` names a family in the first field; ``<agent>#System#...`` is no form of the
        # guide, so it is an UnknownEvent (built by the twin, like every other unknown type).
        return _decode_default_py(_str(p, n, ascii))
    event_for = _istr(p, seps[0], ascii)
    if kind == K_TERMINAL:
        state = _ifield(p, n, seps, nsep, 2, ascii)
        if state is None:
            raise _bad("Terminal event without a status")
        return _TerminalStatus(event_for, state)
    if kind == K_AGENTINFO:
        return _AgentInfo(
            event_for, _field(p, n, seps, nsep, 2, ascii), _field(p, n, seps, nsep, 3, ascii)
        )
    # Only the three stateful agent kinds remain: nothing may fall through to InboundCall.
    assert kind == K_AGENTSTATE or kind == K_DIALOGSTATE or kind == K_INBOUNDCALL
    state = _ifield(p, n, seps, nsep, 2, ascii)
    if state is None:
        raise _bad(
            ("AgentState" if kind == K_AGENTSTATE else
             "DialogState" if kind == K_DIALOGSTATE else "InboundCall")
            + " event without a state"
        )
    if kind == K_AGENTSTATE:
        return _AgentState(event_for, state, _field(p, n, seps, nsep, 3, ascii))
    if kind == K_DIALOGSTATE:
        if nsep >= 5:
            s = seps[4] + 1
            e = seps[5] if nsep > 5 else n
            participants = _participants(p + s, e - s, ascii)
        else:
            participants = None
        return _DialogState(
            event_for,
            state,
            _field(p, n, seps, nsep, 3, ascii),
            _field(p, n, seps, nsep, 4, ascii),
            participants,
        )
    return _InboundCall(
        event_for,
        state,
        _field(p, n, seps, nsep, 3, ascii),
        _field(p, n, seps, nsep, 4, ascii),
        _ifield(p, n, seps, nsep, 5, ascii),
    )


cdef inline object _ifield(
    const char* p, Py_ssize_t n, Py_ssize_t* seps, Py_ssize_t nsep, Py_ssize_t i, bint ascii
):
    """Field ``i`` (``i >= 1``) through the intern cache: for values that recur (states)."""
    if i > nsep:
        return None
    return _istr(p + seps[i - 1] + 1, (seps[i] if i < nsep else n) - seps[i - 1] - 1, ascii)


cdef inline object _field(
    const char* p, Py_ssize_t n, Py_ssize_t* seps, Py_ssize_t nsep, Py_ssize_t i, bint ascii
):
    """Field ``i`` (``i >= 1``) or ``None`` when absent or empty."""
    cdef Py_ssize_t s, e
    if i > nsep:
        return None
    s = seps[i - 1] + 1
    e = seps[i] if i < nsep else n
    return _str(p + s, e - s, ascii)


# --------------------------------------------------------------------------- JSON


cdef object _scalar(object value):
    """A wire scalar as ``str``: numbers become strings, ``""`` becomes ``None``."""
    if value is None:
        return None
    if type(value) is str:
        return value if value else None
    value = str(value)
    return value if value else None


cdef object _many(object value):
    """Participants: a list, a single value or a comma-joined string, as a tuple."""
    cdef Py_ssize_t i, count
    cdef tuple out
    if value is None:
        return None
    if type(value) is list:
        count = len(<list>value)
        out = PyTuple_New(count)
        for i in range(count):
            item = (<list>value)[i]
            if type(item) is not str:
                item = str(item)
            Py_INCREF(item)
            PyTuple_SET_ITEM(out, i, item)
        return out
    if type(value) is not str:
        value = str(value)
    return tuple((<str>value).split(",")) if value else ()


cdef inline object _need(object value, str kind, str what):
    if value is None:
        raise _bad(f"JSON {kind} event without {what}")
    return value


cdef inline bint _terminal_status(str status):
    """The guide's Terminal JSON table says ``type: System``: tell them apart by the status."""
    cdef const char* q
    if PyUnicode_IS_ASCII(status):
        if PyUnicode_GET_LENGTH(status) < 9:
            return False
        q = <const char*>PyUnicode_DATA(status)
        return _ieq(q, 9, b"ciscoterm", 9)
    return status.lower().startswith("ciscoterm")


cdef object _state(object wire):
    """``state`` (or ``State``), also from a ``state`` object (the guide's "inside part")."""
    cdef object raw = _get(wire, W_state)
    cdef object state
    if type(raw) is _InnerState:
        state = _scalar(raw.state)
        if state is None:
            state = _scalar(raw.State)
    else:
        state = _scalar(raw)
    if state is None:
        state = _scalar(_get(wire, W_State))
    return state


cdef object _changed_at(object wire):
    cdef object changed = _scalar(_get(wire, W_stateChangeTimeString))
    cdef object raw
    if changed is None:
        raw = _get(wire, W_state)
        if type(raw) is _InnerState:
            changed = _scalar(raw.stateChangeTimeString)
    return changed


cdef object _decode_json(const char* p, Py_ssize_t n, bint ascii, object owner, bint whole):
    cdef Kind kind
    cdef str wtype
    cdef object agent, state, connection, other, party, code, message
    try:
        wire = _wire_decode(owner if whole else _str(p, n, ascii))
    except _JSON_ERRORS as exc:
        raise _bad(f"JSON event: {exc}") from None
    wtype = _get(wire, W_type)
    if not wtype:
        raise _bad("JSON event without a 'type'")
    _py._check_type(wtype)
    if PyUnicode_IS_ASCII(wtype):
        kind = _kind(<const char*>PyUnicode_DATA(wtype), PyUnicode_GET_LENGTH(wtype))
    else:
        kind = K_OTHER
    agent = _scalar(_get(wire, W_agentId))
    if kind == K_ERROR:
        code = _scalar(_get(wire, W_errorType))
        message = _scalar(_get(wire, W_message))
        if code is None:
            code, message = message, None
        return _ErrorEvent(
            "" if agent is None else agent, _need(code, "Error", "errorType or message"), message
        )
    if kind == K_SYSTEM or kind == K_TERMINAL:
        status = _scalar(_get(wire, W_status))
        if status is None:
            status = _need(_state(wire), wtype, "a status")
        if kind == K_SYSTEM and not _terminal_status(status):
            return _SystemStatus(status)
        return _TerminalStatus(agent, status)
    if kind == K_OTHER or kind == K_AGENTINFO:
        if kind == K_OTHER:
            return _UnknownEvent(
                "" if agent is None else agent,
                wtype,
                _many(_get(wire, W_args)) or (),
                _str(p, n, ascii),
            )
        return _AgentInfo(
            _need(agent, wtype, "an agentId"),
            _scalar(_get(wire, W_extension)),
            _scalar(_get(wire, W_deviceName)),
        )
    state = _state(wire)
    if kind == K_AGENTSTATE:
        return _AgentState(
            _need(agent, wtype, "an agentId"),
            _need(state, "AgentState", "a state"),
            _changed_at(wire),
        )
    connection = _scalar(_get(wire, W_connectionID))
    if connection is None:
        connection = _scalar(_get(wire, W_connectionId))
        if connection is None:
            connection = _scalar(_get(wire, W_Connection))
    party = _get(wire, W_participants)
    if party is None:
        party = _get(wire, W_otherParticipants)
    if kind == K_INBOUNDCALL:
        other = _scalar(_get(wire, W_otherParty))
        if other is None:
            party = _many(party)
            other = ((<tuple>party)[0] or None) if party else None
        return _InboundCall(
            agent,
            _need(state, "InboundCall", "a state"),
            _scalar(_get(wire, W_startTime)),
            connection,
            other,
        )
    return _DialogState(
        _need(agent, wtype, "an agentId"),
        _need(state, "DialogState", "a state"),
        _changed_at(wire),
        connection,
        _many(party),
    )


# --------------------------------------------------------------------------- entry points


def decode_event(body, max_size=_py.MAX_EVENT_BODY):
    """One event from one message body; ``ProtocolError`` (and nothing else) when malformed.

    Malformed includes a body longer than ``max_size`` (bytes, or characters for a str) and a
    control character (U+0000-U+001F, U+007F) in the event type.
    """
    cdef const char* p
    cdef Py_ssize_t n
    cdef bint ascii
    cdef object owner = body
    cdef Py_ssize_t full
    cdef Py_ssize_t limit = max_size
    if type(body) is str:
        n = PyUnicode_GET_LENGTH(body)
        if n > limit:
            raise _bad(f"body of {n} over the limit of {limit}")
        if PyUnicode_IS_ASCII(body):
            p = <const char*>PyUnicode_DATA(body)
            n = PyUnicode_GET_LENGTH(body)
            ascii = True
        else:
            try:
                owner = (<str>body).encode("utf-8")
            except UnicodeEncodeError:
                owner = _pair_surrogates(body).encode("utf-8")
            p = PyBytes_AS_STRING(owner)
            n = PyBytes_GET_SIZE(owner)
            ascii = False
    else:
        if type(body) is not bytes:
            if isinstance(body, (bytearray, memoryview)):
                owner = bytes(body)
            elif isinstance(body, bytes):
                owner = bytes(body)
            else:
                raise ProtocolError(
                    f"event body must be bytes or str, not {type(body).__name__}"
                )
        p = PyBytes_AS_STRING(owner)
        n = PyBytes_GET_SIZE(owner)
        if n > limit:
            raise _bad(f"body of {n} over the limit of {limit}")
        ascii = _is_ascii(p, n)
        if not ascii:
            try:
                PyUnicode_DecodeUTF8(p, n, NULL)
            except UnicodeDecodeError:
                owner = _repair(owner).encode("utf-8")
                p = PyBytes_AS_STRING(owner)
                n = PyBytes_GET_SIZE(owner)
    full = n
    while n > 0 and _is_ws(p[0]):
        p += 1
        n -= 1
    while n > 0 and _is_ws(p[n - 1]):
        n -= 1
    return _decode_utf8(p, n, ascii, owner, n == full)


# --------------------------------------------------------------------------- encode
#
# Only the common case is compiled: a typed event, default format, all-ASCII fields that pass
# every rule.  Anything else (JSON, UnknownEvent, non-ASCII, any rule broken) goes to the pure
# twin, which produces the same text or raises the precise error; so the fast path can only ever
# agree with it (checked by a differential hypothesis test).


cdef bint _clean(object value, bint comma) noexcept:
    """An ASCII ``str`` with no ``#``, control character (or ``,`` if asked)."""
    cdef const unsigned char* q
    cdef Py_ssize_t i, n
    cdef unsigned char c
    if type(value) is not str or not PyUnicode_IS_ASCII(value):
        return False
    q = <const unsigned char*>PyUnicode_DATA(value)
    n = PyUnicode_GET_LENGTH(value)
    for i in range(n):
        c = q[i]
        if c == b'#' or c < 0x20 or c == 0x7f or (comma and c == b','):
            return False
    return True


cdef object _encode_fast(object event):
    """The default-format body, or ``None`` to let the pure twin decide."""
    cdef object t = type(event)
    cdef tuple fields
    cdef Py_ssize_t nreq, n, i, j, total, length, pos
    cdef int agent_pos = -1, family_pos = -1, parts_pos = -1
    cdef bint target_may_be_empty = False
    cdef object value, item
    cdef char* out
    cdef object text
    if t is _AgentState:
        fields = (event.agent_id, "AgentState", event.state, event.changed_at)
        nreq, agent_pos = 3, 0
    elif t is _DialogState:
        fields = (
            event.agent_id, "DialogState", event.state, event.changed_at, event.connection_id,
            event.participants,
        )
        nreq, agent_pos, parts_pos = 3, 0, 5
    elif t is _InboundCall:
        if event.agent_id is None:
            fields = (
                "InboundCall", event.state, event.start_time, event.connection_id,
                event.other_party,
            )
            nreq, family_pos = 2, 1
        else:
            fields = (
                event.agent_id, "InboundCall", event.state, event.start_time,
                event.connection_id, event.other_party,
            )
            nreq, agent_pos = 3, 0
    elif t is _SystemStatus:
        fields = ("System", event.status)
        nreq, family_pos = 2, 1
    elif t is _ErrorEvent:
        fields = (event.target, "Error", event.code, event.message)
        nreq, target_may_be_empty = 3, True
    elif t is _TerminalStatus:
        if event.agent_id is None:
            fields = ("Terminal", event.status)
            nreq, family_pos = 2, 1
        else:
            fields = (event.agent_id, "Terminal", event.status)
            nreq, agent_pos = 3, 0
    elif t is _AgentInfo:
        fields = (event.agent_id, "AgentInfo", event.extension, event.device_name)
        nreq, agent_pos = 2, 0
    else:
        return None
    n = len(fields)
    while n > nreq and fields[n - 1] is None:
        n -= 1
    total = n - 1
    for i in range(n):
        value = fields[i]
        if value is None:
            if i < nreq:
                return None
            continue
        if i == parts_pos:
            if type(value) is not tuple:
                return None
            for j in range(len(<tuple>value)):
                item = (<tuple>value)[j]
                if not _clean(item, True) or PyUnicode_GET_LENGTH(item) == 0:
                    return None
                total += PyUnicode_GET_LENGTH(item) + (j > 0)
            continue
        if not _clean(value, False):
            return None
        length = PyUnicode_GET_LENGTH(value)
        if length == 0 and not (i == 0 and target_may_be_empty):
            return None
        total += length
    if agent_pos >= 0:
        value = fields[agent_pos]
        if _family(<const char*>PyUnicode_DATA(value), PyUnicode_GET_LENGTH(value)) != F_AGENT:
            return None
    if family_pos >= 0:
        value = fields[family_pos]
        if _kind(<const char*>PyUnicode_DATA(value), PyUnicode_GET_LENGTH(value)) == K_ERROR:
            return None
    if total == 0:
        return None
    text = PyUnicode_New(total, 127)
    out = <char*>PyUnicode_DATA(text)
    pos = 0
    for i in range(n):
        if i:
            out[pos] = b'#'
            pos += 1
        value = fields[i]
        if value is None:
            continue
        if i == parts_pos:
            for j in range(len(<tuple>value)):
                item = (<tuple>value)[j]
                if j:
                    out[pos] = b','
                    pos += 1
                length = PyUnicode_GET_LENGTH(item)
                memcpy(out + pos, PyUnicode_DATA(item), length)
                pos += length
            continue
        length = PyUnicode_GET_LENGTH(value)
        memcpy(out + pos, PyUnicode_DATA(value), length)
        pos += length
    if pos != total:  # cannot happen; never hand out a half-written string
        raise SystemError("cucmconn: event encoder length mismatch")
    if _is_ws(out[0]) or out[0] == b'{' or _is_ws(out[total - 1]):
        return None
    return text


def encode_event(event, fmt="default"):
    """The body the connector would send for ``event``; see ``_pyevents.encode_event``."""
    cdef object text
    if fmt == "default":
        text = _encode_fast(event)
        if text is not None:
            return text
    return _py.encode_event(event, fmt)
