# Declarations of the compiled STOMP frame parser (implementation: _cstomp.pyx).

cdef class FrameParser:
    cdef bytearray _buf
    cdef Py_ssize_t _frame_start   # offset of the frame being parsed (or of the next byte)
    cdef Py_ssize_t _line          # start of the head line being scanned; -1: no frame started
    cdef Py_ssize_t _nlines        # head lines seen so far (command line included)
    cdef bint _pending             # head parsed, waiting for the body
    cdef str _command
    cdef dict _headers
    cdef Py_ssize_t _body_start
    cdef Py_ssize_t _length        # content-length, or -1 to read up to NUL
    cdef Py_ssize_t _body_scan     # where the NUL search resumes
    cdef object _error             # str once poisoned, else None
    cdef public Py_ssize_t heartbeats
    cdef readonly Py_ssize_t max_frame_size
    cdef readonly Py_ssize_t max_headers
    cdef readonly Py_ssize_t max_header_line

    cdef int _skip_heartbeats(self, const char* buf, Py_ssize_t end) except -1
    cdef int _scan_head(self, const char* buf, Py_ssize_t end) except -1
    cdef object _read_body(self, const char* buf, Py_ssize_t end)
    cdef int _check_line(self, Py_ssize_t length, Py_ssize_t frame_bytes) except -1
    cdef void _compact(self)
