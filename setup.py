"""Build the Cython codec from ``cext/``.

The extension is optional at install time: on a machine without a compiler the package
falls back to its pure-Python twins.  ``CUCMCONN_REQUIRE_EXTENSIONS=1`` turns a failed build
into an error (CI sets it, so a silently missing extension cannot pass for a built one).
``CUCMCONN_DEBUG_BUILD=1`` compiles with Cython's bounds and wraparound checks on.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = os.environ.get("CUCMCONN_REQUIRE_EXTENSIONS", "") not in ("", "0")
DEBUG = os.environ.get("CUCMCONN_DEBUG_BUILD", "") not in ("", "0")

MODULES = ["_cevents", "_cstomp"]


class OptionalBuildExt(build_ext):
    """Let a failed compile degrade to the pure-Python twin unless the build is required."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "no extension"
            self._give_up(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._give_up(exc)

    def _give_up(self, exc: BaseException) -> None:
        if REQUIRE:
            raise exc
        sys.stderr.write(f"cucmconn: C extension not built ({exc}); using the pure-Python codec\n")


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE:
            raise
        sys.stderr.write("cucmconn: Cython missing; using the pure-Python codec\n")
        return []
    missing = [name for name in MODULES if not os.path.exists(f"cext/{name}.pyx")]
    if missing and REQUIRE:
        raise FileNotFoundError(f"cext sources missing: {missing}")
    exts = [
        Extension(f"cucmconn.codec.{name}", [f"cext/{name}.pyx"], include_dirs=["cext"])
        for name in MODULES
        if name not in missing
    ]
    directives = {
        "language_level": "3",
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "cdivision": True,
        "embedsignature": True,
    }
    return cythonize(exts, compiler_directives=directives, include_path=["cext"], quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
