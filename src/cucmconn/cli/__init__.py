"""The ``cucmconn`` command line (demo, load, watch, send, and the emulator and broker tools),
and the load generator it drives.

The command line itself (:mod:`.main`) needs the ``cli`` extra (rich); the load generator
(:mod:`.tally`, :mod:`.traffic`, :mod:`.soak`) needs nothing beyond the SDK, so the soak script
and the reliability tests import it without the extra.  Nothing is imported here, so importing
one of them never drags in the other.
"""
