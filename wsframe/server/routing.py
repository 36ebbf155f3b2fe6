"""Path routing: ``/track/{order_id}`` patterns matched against request paths.

``{name}`` matches one path segment (no ``/``); ``{name:path}`` matches the
rest of the path, slashes included. Routes are tried in the order they were
added; the first match wins.
"""
from __future__ import annotations

import re
from typing import Generic, Optional, TypeVar

__all__ = ["Router", "compile_pattern"]

T = TypeVar("T")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(path))?\}")


def compile_pattern(pattern: str) -> re.Pattern:
    """Turn ``/room/{name}`` into a regular expression with named groups."""
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    regex, last = [], 0
    for match in _PARAM.finditer(pattern):
        regex.append(re.escape(pattern[last:match.start()]))
        regex.append(f"(?P<{match.group(1)}>{'.+' if match.group(2) else '[^/]+'})")
        last = match.end()
    regex.append(re.escape(pattern[last:]))
    return re.compile("".join(regex))


class Router(Generic[T]):
    """An ordered list of (pattern, target)."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, T]] = []
        #: pattern -> how a connection's partition key derives from the request (see
        #: wsframe.cluster): a ``str.format`` template over the route's parameters
        #: (``"order:{order_id}"``) or a callable ``(request, params) -> str | None``.
        self.partitions: dict[str, object] = {}

    def add(self, pattern: str, target: T, partition: object = None) -> None:
        self._routes.append((pattern, compile_pattern(pattern), target))
        if partition is not None:
            self.partitions[pattern] = partition

    def match_pattern(self, path: str) -> Optional[tuple[str, T, dict[str, str]]]:
        """Like :meth:`match`, with the pattern that matched first."""
        for pattern, regex, target in self._routes:
            found = regex.fullmatch(path)
            if found:
                return pattern, target, found.groupdict()
        return None

    def match(self, path: str) -> Optional[tuple[T, dict[str, str]]]:
        """The first target whose pattern matches ``path``, with its parameters."""
        for _, regex, target in self._routes:
            found = regex.fullmatch(path)
            if found:
                return target, found.groupdict()
        return None

    def __len__(self) -> int:
        return len(self._routes)
