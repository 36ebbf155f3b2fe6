"""Shared fixtures.

The whole suite runs on whichever codec path is active (``wsframe.codec``);
CI runs it twice, the second time with ``WSFRAME_NO_EXTENSIONS=1``. The
equivalence tests compare the two paths directly and need the compiled
modules built.
"""
import importlib

import pytest

from wsframe import codec

try:
    _compiled_modules = {name: importlib.import_module(f"wsframe._compiled.{name}")
                         for name in ("frames", "mask", "utf8")}
except ImportError:
    _compiled_modules = None

requires_compiled = pytest.mark.skipif(_compiled_modules is None,
                                       reason="compiled extensions not built")


@pytest.fixture(scope="session")
def compiled():
    """The compiled modules by short name (skips when not built)."""
    if _compiled_modules is None:
        pytest.skip("compiled extensions not built")
    return _compiled_modules


def pytest_report_header(config):
    return f"wsframe codec: {'compiled' if codec.speedups_enabled() else 'pure'}"
