"""Argument types shared by the command-line tools."""


def size(text: str) -> int:
    """``1048576``, ``64K``, ``16M``, ``1G`` -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)
