"""Build the Cython codec: ``_cevents.pyx``, ``_cstomp.pyx`` and ``_ccommands.pyx``.

The sources live beside the package they belong to (asyncpg's and aiokafka's layout: ``.pyx``
implements, ``.pxd`` declares, ``.pyi`` types what Python sees), so Cython finds each ``.pxd`` by
its package path and the sdist carries them (MANIFEST.in).

The extension is optional at install time: without Cython or a C compiler the build prints ONE
warning and the package installs with its pure-Python twins (``codec_backend() == "python"``).
``CUCMCONN_REQUIRE_EXTENSIONS=1`` turns that into a build error instead (CI sets it, so a
silently missing extension cannot pass for a built one).  ``CUCMCONN_DEBUG_BUILD=1`` compiles
with Cython's bounds and wraparound checks on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = os.environ.get("CUCMCONN_REQUIRE_EXTENSIONS", "") not in ("", "0")
DEBUG = os.environ.get("CUCMCONN_DEBUG_BUILD", "") not in ("", "0")

CODEC = "src/cucmconn/codec"
MODULES = ["_cevents", "_cstomp", "_ccommands"]
DIRECTIVES = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}


class ExtensionNotBuilt(RuntimeError):
    """The compiled codec could not be built although CUCMCONN_REQUIRE_EXTENSIONS asked for it."""


class OptionalBuildExt(build_ext):
    """Cythonize at build time; let any failure degrade to the pure-Python twin, once, loudly.

    Cythonizing here rather than at ``setup.py`` import keeps the ``.pyx`` files as the
    extensions' sources (so ``sdist`` carries them) and keeps generated ``.c`` files in the
    build directory instead of the source tree.
    """

    def run(self) -> None:
        try:
            self._cythonize()
            super().run()
        except Exception as exc:  # any failure means "no compiled codec"
            self._remove_partial_outputs()
            reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            if REQUIRE:
                raise ExtensionNotBuilt(
                    f"cucmconn: the compiled codec did not build ({reason}) and "
                    "CUCMCONN_REQUIRE_EXTENSIONS=1 requires it"
                ) from exc
            sys.stderr.write(
                f"WARNING: cucmconn: the compiled codec was not built ({reason}); installing "
                "the pure-Python codec, which is several times slower. Install Cython and a C "
                "compiler and reinstall, or set CUCMCONN_REQUIRE_EXTENSIONS=1 to make this an "
                "error.\n"
            )

    def _cythonize(self) -> None:
        """Point each extension at the C file Cython generates from its ``.pyx``."""
        try:
            from Cython.Build import cythonize
        except ImportError as exc:
            raise RuntimeError("Cython is not installed") from exc
        missing = [src for ext in self.extensions for src in ext.sources if not Path(src).exists()]
        if missing:
            raise FileNotFoundError(f"codec sources missing: {missing}")
        generated = cythonize(
            self.extensions,
            compiler_directives=DIRECTIVES,
            build_dir=os.path.join(self.build_temp, "cython"),
            quiet=True,
        )
        c_sources = {ext.name: ext.sources for ext in generated}
        for ext in self.extensions:  # keep setuptools' own (finalized) Extension objects
            ext.sources = c_sources[ext.name]

    def _remove_partial_outputs(self) -> None:
        """Drop any module built before the failure: the codec binds both or neither."""
        for ext in self.extensions:
            path = Path(self.get_ext_fullpath(ext.name))
            if path.exists():
                path.unlink()


def extensions() -> list[Extension]:
    """One extension per compiled twin, built from its ``.pyx`` beside the package."""
    return [
        Extension(
            f"cucmconn.codec.{name}",
            sources=[f"{CODEC}/{name}.pyx"],
            depends=[dep for dep in [f"{CODEC}/{name}.pxd"] if Path(dep).exists()],
        )
        for name in MODULES
    ]


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
