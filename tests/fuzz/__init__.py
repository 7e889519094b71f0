"""Coverage-guided fuzzing (atheris) of everything that parses bytes from the network.

``targets.py`` holds the checks, ``harness.py`` is the atheris entry point (one target per
process: libFuzzer owns the process and exits when done), ``run.py`` runs every target for a
bounded number of inputs and prints a summary.  The hypothesis tests in
``tests/codec/test_events_codec.py`` and ``tests/codec/test_stomp_codec.py`` explore shapes they
generate; these harnesses let coverage feedback find the inputs nobody thought of.
"""
