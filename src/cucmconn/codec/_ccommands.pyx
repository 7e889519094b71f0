# cython: language_level=3
"""Commands, compiled twin of the functions in ``cucmconn.codec.commands`` (same API, same errors).

The wire format, the command table and every rule are documented once, in ``commands.py``.  Every
command a client sends passes through ``encode_command`` (and ``canonical_command``), and every
command the emulator receives through ``parse_command``; in pure Python each call costs a regex
or two, ``strip()`` and ``split()`` copies and f-string formatting.  Here each field is scanned
once, code point by code point, and a well-formed command (the only kind the hot path sees) is
built without regexes or intermediate lists.

Anything unusual -- a forbidden or control character, whitespace to trim, a blank field, a value
that is neither ``str`` nor ``int``, a name that is not an identifier -- is handed to the pure
function, which accepts or refuses it with its own message.  So the two cannot disagree: this
module only ever answers for input the pure one would accept, with the same result.
"""

from cpython.unicode cimport Py_UNICODE_ISSPACE

from cucmconn.codec.commands import ALIASES, COMMANDS
from cucmconn.codec.commands import canonical_command as _py_canonical_command
from cucmconn.codec.commands import encode_command as _py_encode_command
from cucmconn.codec.commands import parse_command as _py_parse_command

__all__ = ["canonical_command", "encode_command", "parse_command"]

cdef dict _ALIASES = dict(ALIASES)
cdef dict _EXACT = {name: _ALIASES.get(name.lower(), name) for name in COMMANDS}
"""Exact spelling -> canonical name for the table's own spellings (always valid identifiers)."""
cdef dict _ECHO = {name: spec.echo_args for name, spec in COMMANDS.items()}


cdef inline bint _is_bad(Py_UCS4 ch):
    """The characters ``commands._BAD_RE`` refuses: ``,`` ``#`` ``|`` and C0/DEL/C1 controls."""
    return ch == u',' or ch == u'#' or ch == u'|' or ch < 0x20 or (0x7f <= ch <= 0x9f)


cdef inline bint _is_plain(str text):
    """Non-empty, no forbidden character and no whitespace at all (so nothing to trim)."""
    cdef Py_UCS4 ch
    if len(text) == 0:
        return False
    for ch in text:
        if _is_bad(ch) or Py_UNICODE_ISSPACE(ch):
            return False
    return True


cdef inline bint _is_identifier(str name):
    """``commands._NAME_RE.fullmatch``: one or more ASCII letters, digits or ``_``."""
    cdef Py_UCS4 ch
    if len(name) == 0:
        return False
    for ch in name:
        if not (u'a' <= ch <= u'z' or u'A' <= ch <= u'Z' or u'0' <= ch <= u'9' or ch == u'_'):
            return False
    return True


cdef inline object _canonical(object name):
    """The canonical spelling of a well-formed ``name``, or None to let the pure function judge."""
    cdef object known
    if type(name) is not str:
        return None
    known = _EXACT.get(name)
    if known is not None:
        return known
    if not _is_identifier(<str>name):
        return None
    return _ALIASES.get((<str>name).lower(), name)


def canonical_command(name):
    """The wire spelling for ``name``: an alias maps to its command, an unknown identifier stays."""
    result = _canonical(name)
    if result is None:
        return _py_canonical_command(name)
    return result


def encode_command(name, target, *args):
    """``(JMSType, body)`` for one command; refuses any value that would inject a field."""
    cdef object command = _canonical(name)
    cdef Py_ssize_t count = len(args)
    cdef Py_ssize_t i
    cdef list texts
    cdef object arg
    if command is None or type(target) is not str or not _is_plain(<str>target):
        return _py_encode_command(name, target, *args)
    if count == 0:
        return (<str>command) + u"#" + (<str>target), u""
    texts = [None] * count
    for i in range(count):
        arg = args[i]
        if type(arg) is str:
            if not _is_plain(<str>arg):
                return _py_encode_command(name, target, *args)
        elif type(arg) is int:
            arg = str(arg)
        else:
            return _py_encode_command(name, target, *args)
        texts[i] = arg
    if count == 1:
        return (<str>command) + u"#" + (<str>target), texts[0]
    return (<str>command) + u"#" + (<str>target), u",".join(texts)


def parse_command(jms_type, body):
    """The emulator's side: ``(command, target, args)`` from a received JMSType and body."""
    cdef Py_ssize_t hash_at
    cdef str name, target
    cdef list args
    cdef object command
    cdef Py_UCS4 ch
    if type(jms_type) is not str or type(body) is not str:
        return _py_parse_command(jms_type, body)
    hash_at = (<str>jms_type).find(u"#")
    if hash_at < 0:
        return _py_parse_command(jms_type, body)
    name = (<str>jms_type)[:hash_at]
    target = (<str>jms_type)[hash_at + 1:]
    command = _canonical(name)
    # _is_plain(target) also refuses a second '#': the pure function names that error.
    if command is None or not _is_plain(target):
        return _py_parse_command(jms_type, body)
    if len(<str>body) == 0:
        return command, target, ()
    for ch in <str>body:  # ',' separates; anything else bad or any whitespace goes to the twin
        if ch != u',' and (_is_bad(ch) or Py_UNICODE_ISSPACE(ch)):
            return _py_parse_command(jms_type, body)
    args = (<str>body).split(u",")
    return command, target, tuple(args)
