# cython: language_level=3
"""STOMP 1.2 frames, compiled twin of ``cucmconn.codec._pystomp`` (same API, same errors).

The wire format and every rule are documented once, at the top of ``_pystomp.py``.  This module
exists because the pure parser spends most of its time slicing and decoding per frame: here the
buffer is one bytearray scanned with ``memchr`` from a moving offset (compacted once per ``feed``),
well-known header names and commands are shared ``str`` constants, and ``decode_message`` walks a
MESSAGE frame once, building only the correlation id and the body it needs.  ``Frame`` and
``FrameError`` are the pure module's classes, so both twins return and raise the same types.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_SetDefault
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp, memcpy

from collections.abc import Mapping

from cucmconn.codec._pystomp import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_HEADER_LINE,
    DEFAULT_MAX_HEADERS,
    HEARTBEAT,
    Frame,
    FrameError,
)
from cucmconn.errors import ProtocolError

try:  # the compiled event decoder when it is built, else its twin (same results)
    from cucmconn.codec._cevents import decode_event as _decode_event
except ImportError:
    from cucmconn.codec._pyevents import decode_event as _decode_event

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEADER_LINE",
    "HEARTBEAT",
    "Frame",
    "FrameError",
    "FrameParser",
    "decode_message",
    "encode_frame",
]

cdef object _Frame = Frame
cdef Py_ssize_t _MAX_FRAME = DEFAULT_MAX_FRAME_SIZE
cdef Py_ssize_t _MAX_HEADERS = DEFAULT_MAX_HEADERS
cdef Py_ssize_t _MAX_LINE = DEFAULT_MAX_HEADER_LINE
cdef object _FrameError = FrameError
cdef object _ProtocolError = ProtocolError

# Shared str objects for what ActiveMQ sends on every frame: no decode, cached hashes.
cdef tuple _NAMES = (
    "message-id", "destination", "subscription", "correlation-id", "type", "reply-to",
    "expires", "persistent", "priority", "timestamp", "content-length", "content-type",
    "redelivered", "receipt-id", "receipt", "ack", "message", "version", "server",
    "heart-beat", "session", "id", "transformation",
)
cdef tuple _COMMANDS = (
    "MESSAGE", "RECEIPT", "ERROR", "CONNECTED", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK",
    "NACK", "CONNECT", "STOMP", "DISCONNECT", "BEGIN", "COMMIT", "ABORT",
)
cdef enum:
    _TABLE = 32
cdef const char* _NAME_PTR[_TABLE]
cdef Py_ssize_t _NAME_LEN[_TABLE]
cdef const char* _CMD_PTR[_TABLE]
cdef Py_ssize_t _CMD_LEN[_TABLE]


cdef void _fill(tuple strs, const char** ptrs, Py_ssize_t* lens):
    cdef Py_ssize_t i
    for i in range(len(strs)):
        ptrs[i] = PyUnicode_AsUTF8AndSize(strs[i], &lens[i])


assert len(_NAMES) <= _TABLE and len(_COMMANDS) <= _TABLE
_fill(_NAMES, _NAME_PTR, _NAME_LEN)
_fill(_COMMANDS, _CMD_PTR, _CMD_LEN)


cdef inline Py_ssize_t _lookup(tuple strs, const char** ptrs, Py_ssize_t* lens,
                               const char* p, Py_ssize_t n):
    """Index of the constant spelled ``p[:n]`` in ``strs``, or -1."""
    cdef Py_ssize_t i
    for i in range(len(strs)):
        if lens[i] == n and p[0] == ptrs[i][0] and memcmp(p, ptrs[i], n) == 0:
            return i
    return -1


cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object o)


cdef str _utf8(const char* p, Py_ssize_t n):
    cdef Py_ssize_t i
    cdef str text
    for i in range(n):  # ASCII (every header ActiveMQ sends) skips the UTF-8 codec
        if <unsigned char>p[i] >= 0x80:
            break
    else:
        text = PyUnicode_New(n, 127)
        memcpy(PyUnicode_DATA(text), p, n)
        return text
    try:
        return PyUnicode_DecodeUTF8(p, n, NULL)
    except UnicodeDecodeError:
        raise _ProtocolError("frame head is not valid UTF-8") from None


cdef str _shown(const char* p, Py_ssize_t n):
    """A line for an error message (bad bytes replaced, cut at 32 characters)."""
    return repr(PyBytes_FromStringAndSize(p, n).decode("utf-8", "replace")[:32])


cdef Py_ssize_t _unescape_into(const char* p, Py_ssize_t n, char* out) except -1:
    """Decode STOMP escapes of ``p`` into ``out`` (at most ``n`` bytes); the length written."""
    cdef Py_ssize_t i = 0, j = 0
    cdef char c
    while i < n:
        c = p[i]
        if c == b"\\":
            if i + 1 == n:
                raise _ProtocolError("undefined escape '\\' at the end of a header")
            c = p[i + 1]
            if c == b"r":
                c = b"\r"
            elif c == b"n":
                c = b"\n"
            elif c == b"c":
                c = b":"
            elif c != b"\\":
                raise _ProtocolError(f"undefined escape {_shown(p + i, 2)} in a header")
            i += 2
        else:
            i += 1
        out[j] = c
        j += 1
    return j


cdef str _unescape(const char* p, Py_ssize_t n):
    cdef char stack[256]
    cdef char* out = stack
    cdef bytes scratch = None
    cdef Py_ssize_t length
    if memchr(p, b"\\", n) == NULL:
        return _utf8(p, n)
    if n > 256:
        scratch = PyBytes_FromStringAndSize(NULL, n)
        out = PyBytes_AS_STRING(scratch)
    length = _unescape_into(p, n, out)
    return _utf8(out, length)


cdef inline Py_ssize_t _strip_cr(const char* line, Py_ssize_t n):
    if n and line[n - 1] == b"\r":
        return n - 1
    return n


cdef bint _is_token(const char* p, Py_ssize_t n):
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if not (b"A" <= p[i] <= b"Z"):
            return False
    return True


cdef str _command(const char* p, Py_ssize_t n):
    if not _is_token(p, n):
        raise _ProtocolError(f"invalid STOMP command {_shown(p, n)}")
    cdef Py_ssize_t known = _lookup(_COMMANDS, _CMD_PTR, _CMD_LEN, p, n)
    return _COMMANDS[known] if known >= 0 else _utf8(p, n)


# The last value seen per well-known header (destination, subscription, priority, persistent...
# repeat on every frame of a subscription): reusing the str saves an allocation per header.
cdef list _RECENT = [None] * _TABLE


cdef str _recent_value(Py_ssize_t known, const char* p, Py_ssize_t n):
    """``p[:n]`` (no escapes) as a str, reusing the previous value of this header if equal."""
    cdef str value = _RECENT[known]
    if value is not None and len(value) == n and memcmp(PyUnicode_DATA(value), p, n) == 0:
        return value
    value = _utf8(p, n)
    if len(value) == n:  # ASCII only: one byte per character, so memcmp above is exact
        _RECENT[known] = value
    return value


cdef const char* _header_colon(const char* line, Py_ssize_t n, str command) except NULL:
    """The ':' ending a header line's name (its EOL stripped); the line's grammar errors raise."""
    if memchr(line, b"\r", n) != NULL:
        raise _ProtocolError(f"CR inside a header line of {command} frame: {_shown(line, n)}")
    cdef const char* colon = <const char*>memchr(line, b":", n)
    if colon == NULL:
        raise _ProtocolError(f"header line without ':' in {command} frame: {_shown(line, n)}")
    if colon == line:
        raise _ProtocolError(f"empty header name in {command} frame: {_shown(line, n)}")
    return colon


cdef tuple _parse_head(const char* p, Py_ssize_t n):
    """Command and headers from the head (command line through the last header line)."""
    cdef const char* end = p + n
    cdef const char* nl = <const char*>memchr(p, b"\n", n)
    cdef const char* cur
    cdef const char* colon
    cdef Py_ssize_t length, known
    cdef str command = _command(p, _strip_cr(p, (nl if nl != NULL else end) - p))
    cdef bint raw = command == "CONNECT" or command == "CONNECTED"
    cdef dict headers = {}
    while nl != NULL:
        cur = nl + 1
        nl = <const char*>memchr(cur, b"\n", end - cur)
        length = _strip_cr(cur, (nl if nl != NULL else end) - cur)
        colon = _header_colon(cur, length, command)
        known = -1
        if raw or memchr(cur, b"\\", colon - cur) == NULL:
            known = _lookup(_NAMES, _NAME_PTR, _NAME_LEN, cur, colon - cur)
            name = _NAMES[known] if known >= 0 else _utf8(cur, colon - cur)
        else:
            name = _unescape(cur, colon - cur)
        colon += 1
        length -= colon - cur
        if known >= 0 and (raw or memchr(colon, b"\\", length) == NULL):
            value = _recent_value(known, colon, length)
        else:
            value = _utf8(colon, length) if raw else _unescape(colon, length)
        PyDict_SetDefault(headers, name, value)
    return command, headers


cdef Py_ssize_t _digits(const char* p, Py_ssize_t n, Py_ssize_t limit) except -4:
    """A decimal content-length; -1 if not ASCII digits, -2 if beyond ``limit`` (no overflow)."""
    cdef Py_ssize_t i, digit, value = 0
    if n == 0:
        return -1
    for i in range(n):
        if not (b"0" <= p[i] <= b"9"):
            return -1
    for i in range(n):
        digit = p[i] - 48  # ASCII "0"
        if value > (limit - digit) // 10:  # value * 10 + digit > limit
            return -2
        value = value * 10 + digit
    return value if value <= limit else -2


cdef Py_ssize_t _content_length(object value, Py_ssize_t limit) except -2:
    cdef Py_ssize_t n, length
    cdef const char* p
    if value is None:
        return -1
    p = PyUnicode_AsUTF8AndSize(value, &n)
    length = _digits(p, n, limit)
    if length == -1:
        raise _ProtocolError(f"bad content-length {value[:32]!r}")
    if length == -2:
        raise _ProtocolError(f"frame too large: content-length {value[:32]} > {limit}")
    return length


cdef class FrameParser:
    """Incremental STOMP frame parser: ``feed(bytes) -> list[Frame]`` (see ``_pystomp``)."""

    def __init__(
        self,
        Py_ssize_t max_frame_size=DEFAULT_MAX_FRAME_SIZE,
        Py_ssize_t max_headers=DEFAULT_MAX_HEADERS,
        Py_ssize_t max_header_line=DEFAULT_MAX_HEADER_LINE,
    ):
        if min(max_frame_size, max_headers, max_header_line) < 1:
            raise ValueError("parser limits must be positive")
        self.max_frame_size = max_frame_size
        self.max_headers = max_headers
        self.max_header_line = max_header_line
        self.heartbeats = 0
        self._buf = bytearray()
        self._frame_start = 0
        self._line = -1
        self._nlines = 0
        self._pending = False
        self._length = -1
        self._error = None

    @property
    def buffered(self):
        """Bytes held for a frame not yet complete."""
        return PyByteArray_GET_SIZE(self._buf) - self._frame_start

    def feed(self, data):
        """Every frame completed by ``data``, in order; partial frames stay buffered."""
        cdef list frames = []
        cdef const char* buf
        cdef Py_ssize_t end
        if self._error is not None:
            raise _FrameError(f"parser unusable after an earlier error: {self._error}")
        self._buf += data
        buf = PyByteArray_AS_STRING(self._buf)
        end = PyByteArray_GET_SIZE(self._buf)
        try:
            while True:
                if not self._pending:
                    if self._line < 0:
                        if not self._skip_heartbeats(buf, end):
                            break
                        self._line = self._frame_start
                        self._nlines = 0
                    if not self._scan_head(buf, end):
                        break
                frame = self._read_body(buf, end)
                if frame is None:
                    break
                frames.append(frame)
        except _ProtocolError as exc:
            self._error = str(exc)
            self._buf = bytearray()
            self._frame_start = 0
            raise _FrameError(str(exc), frames) from None
        self._compact()
        return frames

    cdef void _compact(self):
        # ``del bytearray[:n]`` only moves CPython's start pointer: no copy per frame.
        cdef Py_ssize_t start = self._frame_start
        if start:
            del self._buf[:start]
            self._frame_start = 0
            if self._line >= 0:
                self._line -= start
            if self._pending:
                self._body_start -= start
            self._body_scan = max(self._body_scan - start, 0)

    cdef int _skip_heartbeats(self, const char* buf, Py_ssize_t end) except -1:
        cdef Py_ssize_t pos = self._frame_start
        cdef char c
        while pos < end:
            c = buf[pos]
            if c == b"\n":
                self.heartbeats += 1
                pos += 1
            elif c == 0:  # a stray NUL (empty frame) between frames: skipped, not a heart-beat
                pos += 1
            elif c == b"\r":
                if pos + 1 == end:
                    break
                if buf[pos + 1] != b"\n":
                    self._frame_start = pos
                    raise _ProtocolError("bare CR between frames")
                self.heartbeats += 1
                pos += 2
            else:
                self._frame_start = pos
                return 1
        self._frame_start = pos
        return 0

    cdef int _check_line(self, Py_ssize_t length, Py_ssize_t frame_bytes) except -1:
        if length > self.max_header_line:
            raise _ProtocolError(
                f"header line too long (more than {self.max_header_line} bytes)"
            )
        if frame_bytes > self.max_frame_size:
            raise _ProtocolError(f"frame too large (more than {self.max_frame_size} bytes)")
        return 0

    cdef int _scan_head(self, const char* buf, Py_ssize_t end) except -1:
        cdef Py_ssize_t start = self._line
        cdef Py_ssize_t fs = self._frame_start
        cdef Py_ssize_t pos, length
        cdef const char* nl
        while True:
            nl = <const char*>memchr(buf + start, b"\n", end - start)
            if nl == NULL:
                self._line = start
                # A final CR may be half of a CRLF: not counted, like the EOL of a whole line.
                self._check_line(_strip_cr(buf + start, end - start), end - fs)
                return 0
            pos = nl - buf
            length = _strip_cr(buf + start, pos - start)
            self._check_line(length, pos + 1 - fs)
            if length == 0 and self._nlines:
                command, headers = _parse_head(buf + fs, start - 1 - fs)
                self._length = _content_length(
                    headers.get("content-length"), self.max_frame_size - (pos + 2 - fs)
                )
                self._command = command
                self._headers = headers
                self._pending = True
                self._body_start = pos + 1
                self._body_scan = pos + 1
                self._line = -1
                return 1
            self._nlines += 1
            if self._nlines > self.max_headers + 1:
                raise _ProtocolError(f"too many headers (more than {self.max_headers})")
            start = pos + 1

    cdef object _read_body(self, const char* buf, Py_ssize_t end):
        cdef Py_ssize_t stop
        cdef const char* nul
        if self._length >= 0:
            stop = self._body_start + self._length
            if end <= stop:
                return None
            if buf[stop] != 0:
                raise _ProtocolError(
                    f"no NUL after the {self._length}-byte body given by content-length"
                )
        else:
            nul = <const char*>memchr(buf + self._body_scan, 0, end - self._body_scan)
            if nul == NULL:
                self._body_scan = end
                if end - self._frame_start > self.max_frame_size:
                    raise _ProtocolError(
                        f"frame too large (more than {self.max_frame_size} bytes)"
                    )
                return None
            stop = nul - buf
            if stop + 1 - self._frame_start > self.max_frame_size:
                raise _ProtocolError(f"frame too large (more than {self.max_frame_size} bytes)")
        body = PyBytes_FromStringAndSize(buf + self._body_start, stop - self._body_start)
        frame = _Frame(self._command, self._headers, body)
        self._pending = False
        self._command = None
        self._headers = None
        self._frame_start = stop + 1
        return frame


# --- encoding ---------------------------------------------------------------------------------

cdef inline bint _special(char c):
    return c == b"\\" or c == b"\r" or c == b"\n" or c == b":"


cdef Py_ssize_t _escaped_size(const char* p, Py_ssize_t n, bint raw, bint is_name) except -1:
    """Encoded size of a header name/value; raises what the pure twin raises."""
    cdef Py_ssize_t i, size = n
    cdef char c
    for i in range(n):
        c = p[i]
        if c == 0:
            raise ValueError("NUL in a header " + ("name" if is_name else "value"))
        if raw:
            if c == b"\r" or c == b"\n":
                raise ValueError("CONNECT/CONNECTED header cannot carry NUL, CR or LF")
            if is_name and c == b":":
                raise ValueError("CONNECT/CONNECTED header name cannot carry ':'")
        elif _special(c):
            size += 1
    return size


cdef char* _write(char* out, const char* p, Py_ssize_t n, bint raw):
    cdef Py_ssize_t i
    cdef char c
    if raw:
        memcpy(out, p, n)
        return out + n
    for i in range(n):
        c = p[i]
        if _special(c):
            out[0] = b"\\"
            out[1] = b"r" if c == b"\r" else b"n" if c == b"\n" else b"c" if c == b":" else c
            out += 2
        else:
            out[0] = c
            out += 1
    return out


def encode_frame(str command, headers=(), body=b""):
    """Bytes of one frame (see ``_pystomp.encode_frame``: never adds ``content-length``)."""
    cdef Py_ssize_t cmd_len, n, size, i
    cdef const char* cp
    cdef const char* p
    cdef char* out
    cdef bytes data, result
    cdef list pairs
    cdef object declared = None
    cdef bint raw
    cp = PyUnicode_AsUTF8AndSize(command, &cmd_len)
    if not _is_token(cp, cmd_len):
        raise ValueError(f"invalid STOMP command {command!r}")
    if isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    items = headers.items() if isinstance(headers, (dict, Mapping)) else headers
    pairs = []  # holds the strs whose UTF-8 buffers are read below
    raw = command == "CONNECT" or command == "CONNECTED"
    size = cmd_len + 2 + PyBytes_GET_SIZE(data) + 1
    for name, value in items:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header names and values must be str, got {name!r}")
        p = PyUnicode_AsUTF8AndSize(name, &n)
        if n == 0:
            raise ValueError("empty header name")
        size += _escaped_size(p, n, raw, True) + 2
        p = PyUnicode_AsUTF8AndSize(value, &n)
        size += _escaped_size(p, n, raw, False)
        if declared is None and name == "content-length":
            declared = value
        pairs.append(name)
        pairs.append(value)
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()) or int(declared) != len(data):
            raise ValueError(
                f"content-length {declared!r} does not match the {len(data)}-byte body"
            )
    elif memchr(PyBytes_AS_STRING(data), 0, PyBytes_GET_SIZE(data)) != NULL:
        raise ValueError("a body containing NUL needs an explicit content-length header")
    result = PyBytes_FromStringAndSize(NULL, size)
    out = PyBytes_AS_STRING(result)
    memcpy(out, cp, cmd_len)
    out += cmd_len
    out[0] = b"\n"
    out += 1
    for i in range(0, len(pairs), 2):
        p = PyUnicode_AsUTF8AndSize(pairs[i], &n)
        out = _write(out, p, n, raw)
        out[0] = b":"
        out += 1
        p = PyUnicode_AsUTF8AndSize(pairs[i + 1], &n)
        out = _write(out, p, n, raw)
        out[0] = b"\n"
        out += 1
    out[0] = b"\n"
    out += 1
    memcpy(out, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    out[PyBytes_GET_SIZE(data)] = 0
    return result


# --- the one-frame decoder -------------------------------------------------------------------

cdef Py_ssize_t _skip_eols(const char* p, Py_ssize_t pos, Py_ssize_t n) except -2:
    """Offset after the EOLs and stray NULs at ``pos``; -1 when a lone CR ends the input."""
    while pos < n:
        if p[pos] == b"\n" or p[pos] == 0:
            pos += 1
        elif p[pos] == b"\r":
            if pos + 1 == n:
                return -1
            if p[pos + 1] != b"\n":
                raise _ProtocolError("bare CR between frames")
            pos += 2
        else:
            break
    return pos


cdef str _checked(const char* p, Py_ssize_t n):
    """Validate a header part as the parser would (UTF-8, escapes) without keeping it."""
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] == b"\\" or <unsigned char>p[i] >= 0x80:
            return _unescape(p, n)
    return None


def decode_message(frame):
    """One complete MESSAGE frame's bytes -> ``(correlation-id or None, typed event)``.

    One pass over the frame: headers are validated as ``FrameParser`` would, but only the
    correlation id and the body become Python objects.
    """
    cdef bytes raw_frame = frame if type(frame) is bytes else bytes(frame)
    cdef const char* p = PyBytes_AS_STRING(raw_frame)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw_frame)
    cdef Py_ssize_t start, pos, line_len, nlines = 0, length = -1, stop, body_start
    cdef const char* nl
    cdef const char* colon
    cdef Py_ssize_t name_len
    cdef object correlation = None
    cdef bint seen_length = False
    start = _skip_eols(p, 0, n)
    if start < 0 or start == n:
        raise _ProtocolError("expected exactly one complete frame, got 0")
    pos = start
    while True:  # the head, line by line
        nl = <const char*>memchr(p + pos, b"\n", n - pos)
        if nl == NULL:
            if _strip_cr(p + pos, n - pos) > _MAX_LINE:
                raise _ProtocolError("header line too long")
            raise _ProtocolError("expected exactly one complete frame, got 0")
        line_len = _strip_cr(p + pos, nl - p - pos)
        if line_len > _MAX_LINE or nl - p + 1 - start > _MAX_FRAME:
            raise _ProtocolError("header line too long or frame too large")
        if nlines == 0:
            if not (line_len == 7 and memcmp(p + pos, b"MESSAGE", 7) == 0):
                cmd = _command(p + pos, line_len)
                raise _ProtocolError(f"expected a MESSAGE frame, got {cmd}")
        elif line_len == 0:
            body_start = nl - p + 1
            break
        else:
            colon = _header_colon(p + pos, line_len, "MESSAGE")
            name_len = colon - p - pos
            _checked(p + pos, name_len)
            if name_len == 14 and memcmp(p + pos, b"correlation-id", 14) == 0:
                if correlation is None:
                    correlation = _unescape(colon + 1, line_len - name_len - 1)
            elif name_len == 14 and memcmp(p + pos, b"content-length", 14) == 0:
                _checked(colon + 1, line_len - name_len - 1)
                if not seen_length:
                    seen_length = True
                    length = _digits(colon + 1, line_len - name_len - 1, _MAX_FRAME)
                    if length == -1:
                        raise _ProtocolError("bad content-length")
                    if length == -2:
                        raise _ProtocolError("frame too large")
            else:
                _checked(colon + 1, line_len - name_len - 1)
        nlines += 1
        if nlines > _MAX_HEADERS + 1:
            raise _ProtocolError(f"too many headers (more than {_MAX_HEADERS})")
        pos = nl - p + 1
    if length >= 0:
        if length > _MAX_FRAME - (body_start + 1 - start):
            raise _ProtocolError("frame too large")
        stop = body_start + length
        if n <= stop:
            raise _ProtocolError("expected exactly one complete frame, got 0")
        if p[stop] != 0:
            raise _ProtocolError(f"no NUL after the {length}-byte body given by content-length")
    else:
        nl = <const char*>memchr(p + body_start, 0, n - body_start)
        if nl == NULL:
            raise _ProtocolError("expected exactly one complete frame, got 0")
        stop = nl - p
    if stop + 1 - start > _MAX_FRAME:
        raise _ProtocolError("frame too large")
    if _skip_eols(p, stop + 1, n) != n:
        raise _ProtocolError("expected exactly one complete frame, got more bytes")
    body = PyBytes_FromStringAndSize(p + body_start, stop - body_start)
    return correlation, _decode_event(body)
