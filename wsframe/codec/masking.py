"""Client-to-server masking, pure-Python reference (RFC 6455 §5.3).

Every frame a client sends is masked with a fresh 4-byte key::

    transformed-octet-i = original-octet-i XOR masking-key-octet-(i MOD 4)

Unmasking is the same operation. :func:`apply_mask_textbook` is that line
written out; :func:`apply_mask` computes the same bytes with C-speed builtins
(one big-integer XOR for small payloads, four ``bytes.translate`` passes over
the strided slices for large ones). The compiled twin lives in
``_speedups/mask.pyx``.
"""
from __future__ import annotations

__all__ = ["apply_mask", "apply_mask_textbook", "mask_inplace", "rotate_mask"]

# _XOR_TABLES[k] maps every byte b to b ^ k: bytes.translate then XORs a whole
# slice with one key byte.
_XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]
_TRANSLATE_FROM = 4096  # measured crossover between the two strategies


def apply_mask_textbook(data: bytes, mask: bytes) -> bytes:
    """§5.3 literally: octet i is XORed with key octet i mod 4 (slow; the oracle in tests)."""
    return bytes(octet ^ mask[i % 4] for i, octet in enumerate(data))


def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """Mask (or unmask) ``data`` with the 4-byte ``mask``; returns new bytes."""
    if len(mask) != 4:
        raise ValueError("the masking key is 4 bytes (§5.3)")
    n = len(data)
    if n < _TRANSLATE_FROM:
        # Lay the key end to end over the payload and XOR as two integers.
        key = (bytes(mask) * (n // 4 + 1))[:n]
        value = int.from_bytes(data, "little") ^ int.from_bytes(key, "little")
        return value.to_bytes(n, "little")
    out = bytearray(data)
    _mask_slices(out, mask)
    return bytes(out)


def _mask_slices(buffer: bytearray, mask: bytes) -> None:
    for i in range(4):  # octets i, i+4, i+8 ... all meet key octet i
        buffer[i::4] = buffer[i::4].translate(_XOR_TABLES[mask[i]])


def mask_inplace(buffer: bytearray | memoryview, mask: bytes) -> None:
    """Mask (or unmask) a writable buffer in place."""
    if len(mask) != 4:
        raise ValueError("the masking key is 4 bytes (§5.3)")
    if isinstance(buffer, bytearray):
        _mask_slices(buffer, mask)
    elif isinstance(buffer, memoryview) and not buffer.readonly:
        buffer[:] = apply_mask(buffer, mask)
    else:
        raise TypeError("mask_inplace needs a writable buffer")


def rotate_mask(mask: bytes, offset: int) -> bytes:
    """The key to continue masking at payload ``offset`` (octet i meets key octet i mod 4)."""
    shift = offset % 4
    return mask[shift:] + mask[:shift]
