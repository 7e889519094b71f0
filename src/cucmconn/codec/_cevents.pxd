# Declarations for _cevents.pyx (the compiled twin of _pyevents.py).

cdef enum Kind:
    K_OTHER = 0
    K_ERROR
    K_AGENTSTATE
    K_DIALOGSTATE
    K_INBOUNDCALL
    K_AGENTINFO
    K_TERMINAL
    K_SYSTEM

cdef enum Family:
    F_AGENT = 0
    F_SYSTEM
    F_TERMINAL
    F_INBOUNDCALL

# At most this many '#' are located; typed events use fields 0..5, the rest go to Python.
cdef enum:
    MAX_SEPS = 7

cdef bint _is_ascii(const char* p, Py_ssize_t n) noexcept nogil
cdef Kind _kind(const char* p, Py_ssize_t n) noexcept nogil
cdef Family _family(const char* p, Py_ssize_t n) noexcept nogil
cdef object _str(const char* p, Py_ssize_t n, bint ascii)
cdef object _istr(const char* p, Py_ssize_t n, bint ascii)
cdef object _participants(const char* p, Py_ssize_t n, bint ascii)
cdef object _decode_utf8(const char* p, Py_ssize_t n, bint ascii, object owner, bint whole)
cdef object _decode_json(const char* p, Py_ssize_t n, bint ascii, object owner, bint whole)
cdef object _scalar(object value)
cdef object _many(object value)
cdef object _state(object wire)
cdef object _changed_at(object wire)
cdef bint _clean(object value, bint comma) noexcept
cdef object _encode_fast(object event)
