"""Benchmarks: run with ``pytest benchmarks`` (they are not part of the test run).

Peers (websockets, aiohttp, wsproto, picows) are compared side by side in the
same run; a peer that is not installed is skipped.
"""
import importlib

import pytest


def load(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def need(obj, what):
    if obj is None:
        pytest.skip(f"{what} not installed")
    return obj
