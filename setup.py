"""Build script: the Cython fast path is optional.

``pip install .`` compiles every ``_speedups/*.pyx`` into ``wsframe._compiled``.
When that is impossible (no C compiler, no zlib headers, ``WSFRAME_NO_BUILD=1``)
the install still succeeds and wsframe runs on its pure-Python reference codec;
``wsframe --version`` says which path is active.
"""
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
SOURCES = sorted((HERE / "_speedups").glob("*.pyx"))
LIBRARIES = {"deflate": ["z"]}  # the deflate path calls zlib's C API directly


class OptionalBuildExt(build_ext):
    """Build the extensions, but never fail the install because of them."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all, missing Python headers ...
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # one module failed: the rest still builds
            self._warn(exc, ext.name)

    @staticmethod
    def _warn(exc, name="the C extensions"):
        print(f"WARNING: could not build {name} ({exc}); "
              "wsframe will use the pure-Python codec", file=sys.stderr)


def extensions():
    if os.environ.get("WSFRAME_NO_BUILD") or not SOURCES:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("WARNING: Cython is not installed; building the pure-Python package only",
              file=sys.stderr)
        return []
    exts = [
        Extension(
            f"wsframe._compiled.{src.stem}",
            [str(src.relative_to(HERE))],
            libraries=LIBRARIES.get(src.stem, []),
            include_dirs=["_speedups"],
            extra_compile_args=["-O3"],
        )
        for src in SOURCES
    ]
    try:
        return cythonize(
            exts,
            language_level=3,
            compiler_directives={"boundscheck": False, "wraparound": False,
                                 "cdivision": True, "initializedcheck": False},
            include_path=[str(HERE / "_speedups")],
            quiet=True,
        )
    except Exception as exc:  # a Cython error must not make the package uninstallable
        OptionalBuildExt._warn(exc)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
