"""The active codec: compiled where built, else the pure-Python reference.

Everything above the codec imports these names from here, never from
``frames``/``masking``/``utf8`` or ``_compiled`` directly, so one switch
decides the path for the whole process:

* ``WSFRAME_NO_EXTENSIONS=1`` in the environment forces the pure path
  (read once, at import time);
* otherwise the compiled modules built from ``_speedups/*.pyx`` are used
  when importable.

:func:`speedups_enabled` says which path is active.
"""
from __future__ import annotations

import importlib
import os

from wsframe.codec import deflate as _deflate
from wsframe.codec import frames as _frames
from wsframe.codec import masking as _masking
from wsframe.codec import utf8 as _utf8

__all__ = [
    "apply_mask", "mask_inplace", "Utf8Validator", "validate_utf8",
    "FrameParser", "build_frame", "server_frame", "client_frame",
    "Deflater", "Inflater", "speedups_enabled", "compiled_module", "SPEEDUPS_DISABLED_BY_ENV",
]

SPEEDUPS_DISABLED_BY_ENV = os.environ.get("WSFRAME_NO_EXTENSIONS", "") not in ("", "0")


def _load_compiled():
    if SPEEDUPS_DISABLED_BY_ENV:
        return None
    try:
        from wsframe._compiled import deflate, frames, mask, utf8
    except ImportError:
        return None
    return deflate, frames, mask, utf8


_compiled = _load_compiled()

if _compiled is not None:
    _cdeflate, _cframes, _cmask, _cutf8 = _compiled
    apply_mask = _cmask.apply_mask
    mask_inplace = _cmask.mask_inplace
    Utf8Validator = _cutf8.Utf8Validator
    validate_utf8 = _cutf8.validate_utf8
    FrameParser = _cframes.FrameParser
    build_frame = _cframes.build_frame
    server_frame = _cframes.server_frame
    client_frame = _cframes.client_frame
    Deflater = _cdeflate.Deflater
    Inflater = _cdeflate.Inflater
else:
    apply_mask = _masking.apply_mask
    mask_inplace = _masking.mask_inplace
    Utf8Validator = _utf8.Utf8Validator
    validate_utf8 = _utf8.validate_utf8
    FrameParser = _frames.FrameParser
    build_frame = _frames.build_frame
    server_frame = _frames.server_frame
    client_frame = _frames.client_frame
    Deflater = _deflate.Deflater
    Inflater = _deflate.Inflater


def compiled_module(name: str):
    """The compiled module ``wsframe._compiled.<name>``, or None on the pure path.

    Layers above the codec with a compiled twin of their own (the loop's
    fan-out writer) ask here, so this switch decides for the whole process.
    """
    if _compiled is None:
        return None
    try:
        return importlib.import_module(f"wsframe._compiled.{name}")
    except ImportError:
        return None


def speedups_enabled() -> bool:
    """True when the compiled codec is in use."""
    return _compiled is not None
