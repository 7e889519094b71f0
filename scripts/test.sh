#!/usr/bin/env bash
# The project's one test command (README and .ci/run both call it).
# Installs what the suite needs (pip packages, the Cython build, Debian's activemq), then runs:
#   0. the packaging check: `python -m build` makes the sdist and the wheel, each is installed into
#      a fresh venv, and the compiled codec must be the one in use (CUCMCONN_SKIP_PACKAGING=1 skips);
#   1. the whole suite on the compiled codec with a real ActiveMQ (asyncio), then the client and
#      transport tests again on uvloop (every test runs on both with CUCMCONN_TEST_LOOPS unset),
#      and the example services' own tests (examples/*/) on memory:// as their users run them;
#   2. the codec and client tests again on the pure-Python twins (CUCMCONN_NO_EXTENSIONS=1);
#   3. every benchmark once as a smoke test (so they cannot rot; the load runs cut to 2 s, and
#      still failing on any lost command); ruff check and ruff format --check (src, tests,
#      benchmarks, examples, scripts), mypy --strict (src, examples, tests, benchmarks);
#   4. the API reference (docs/api, Sphinx autodoc, warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n==> %s\n' "$*"; }

if [ "${CUCMCONN_SKIP_INSTALL:-0}" != "1" ]; then
  step "installing Debian's activemq and a JDK when missing"
  # javac too: the JMS interop tests compile their Java peer.  libxstream-java: the broker needs
  # XStream to send advisories to STOMP subscribers as JSON (Debian's activemq lacks it).
  if [ ! -f /usr/share/activemq/bin/activemq.jar ] || ! command -v java >/dev/null \
      || ! command -v javac >/dev/null || [ ! -f /usr/share/java/xstream.jar ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq activemq default-jdk-headless libxstream-java >/dev/null
    else
      sudo apt-get update -qq
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq activemq default-jdk-headless libxstream-java >/dev/null
    fi
  fi
  step "installing Debian's chromium when missing (the HTML load report is opened headless)"
  if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      sudo apt-get update -qq
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
  fi
  step "installing cucmconn with its dev extras (the Cython extension must build)"
  "$PY" -m pip install -q -U pip setuptools wheel build
  CUCMCONN_REQUIRE_EXTENSIONS=1 "$PY" -m pip install -q -e '.[dev,docs]'
fi

# An installed artifact must carry the compiled codec: the sdist must hold the .pyx/.pxd sources
# and build them, the wheel must hold the built modules.  --no-deps plus msgspec keeps it fast.
check_artifact() {
  local artifact=$1 venv
  venv=$(mktemp -d)
  "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q msgspec
  CUCMCONN_REQUIRE_EXTENSIONS=1 "$venv/bin/python" -m pip install -q --no-deps "$artifact"
  (cd "$venv" && "$venv/bin/python" -W error::RuntimeWarning -c '
import sys
from cucmconn import codec
backend = codec.codec_backend()
frames = codec.FrameParser().feed(b"MESSAGE\ndestination:/q\n\nhi\0")
assert backend == "cython" and frames[0].body == b"hi", (backend, frames)
print(f"  {sys.argv[1]}: codec_backend() == {backend!r}")
' "$(basename "$artifact")")
  rm -rf "$venv"
}

if [ "${CUCMCONN_SKIP_PACKAGING:-0}" != "1" ]; then
  step "packaging: python -m build (sdist, then the wheel from it), each installed in a fresh venv"
  dist=$(mktemp -d)
  "$PY" -m build -o "$dist" . >"$dist/build.log" 2>&1 || { cat "$dist/build.log"; exit 1; }
  if grep "DeprecationWarning" "$dist/build.log"; then echo "build has deprecation warnings"; exit 1; fi
  check_artifact "$(ls "$dist"/cucmconn-*.tar.gz)"
  check_artifact "$(ls "$dist"/cucmconn-*.whl)"
  rm -rf "$dist"
fi

step "suite on the compiled codec (asyncio, real ActiveMQ)"
CUCMCONN_REQUIRE_EXTENSIONS=1 CUCMCONN_TEST_LOOPS=asyncio "$PY" -m pytest -q -p no:cacheprovider \
  -m "not slow" "$@"

step "the example services' own tests (examples/*/test_*.py) as their users run them, on memory://"
# examples/pytest.ini makes examples/ their rootdir: only the cucmconn plugin serves them.  The
# same tests on a real ActiveMQ run in the suite above (tests/system/test_examples_activemq.py).
"$PY" -m pytest -q -p no:cacheprovider examples

step "client, transports and field tools again on uvloop (with the client's real-broker cases of issue 11)"
CUCMCONN_TEST_LOOPS=uvloop "$PY" -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/client tests/transport tests/trace tests/system/test_throttled_broker.py \
  tests/system/test_client_failover.py tests/system/test_connector_restart.py

step "codec and client tests on the pure-Python twins"
CUCMCONN_NO_EXTENSIONS=1 CUCMCONN_TEST_LOOPS=asyncio "$PY" -m pytest -q -p no:cacheprovider \
  -m "not activemq and not slow" tests/codec tests/client

step "benchmarks, once each, as a smoke test"
CUCMCONN_TEST_LOOPS=asyncio CUCMCONN_BENCH_SECONDS=2 "$PY" -m pytest -q -p no:cacheprovider \
  benchmarks/bench_*.py --benchmark-disable -m "not slow"

step "ruff (lint and format) and mypy"
"$PY" -m ruff check src tests benchmarks examples scripts setup.py docs
"$PY" -m ruff format --check src tests benchmarks examples scripts setup.py docs
"$PY" -m mypy

step "API reference: Sphinx autodoc from the docstrings, warnings as errors"
docs_out=$(mktemp -d)
"$PY" -m sphinx -W --keep-going -n -q -b html docs/api "$docs_out"
rm -rf "$docs_out"
