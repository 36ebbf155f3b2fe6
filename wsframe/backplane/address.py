"""Redis addresses as Redis users write them: ``redis://[user:password@]host[:port][/db]``.

``rediss://`` is the same over TLS; ``unix:///path/to/redis.sock[?db=N]``
names a Unix socket. A password alone is ``redis://:secret@host``.
Percent-escapes in the user and password are decoded.

A Redis Cluster is ``redis+cluster://[user:password@]host:port[,host:port...]``
(``rediss+cluster://`` over TLS): one or more seed nodes, from which the
cluster's slot map is read (:mod:`wsframe.backplane.cluster`); a cluster has
database 0 only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["RedisAddress", "parse_redis_url", "is_cluster_url", "parse_cluster_url"]


@dataclass(frozen=True)
class RedisAddress:
    """Where a Redis server is and how to log in."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: Optional[str] = None
    password: Optional[str] = None
    tls: bool = False
    unix_path: Optional[str] = None

    def __str__(self) -> str:
        """The URL without the password (for logs and /health)."""
        if self.unix_path:
            return f"unix://{self.unix_path}?db={self.db}"
        user = f"{self.username or ''}:***@" if self.password else (
            f"{self.username}@" if self.username else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'rediss' if self.tls else 'redis'}://{user}{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse a Redis URL; ``ValueError`` says what is wrong with a bad one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        if not parts.path:
            raise ValueError(f"{url!r}: a unix:// URL names the socket's path")
        query = parse_qs(parts.query)
        return RedisAddress(unix_path=parts.path, db=_db(query.get("db", ["0"])[0], url),
                            username=_unquote(parts.username),
                            password=_unquote(parts.password))
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"{url!r}: a Redis URL starts with redis://, rediss:// or unix://")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"{url!r}: the port is a number from 1 to 65535") from None
    db = parts.path.lstrip("/") or parse_qs(parts.query).get("db", ["0"])[0]
    return RedisAddress(host=parts.hostname or "127.0.0.1", port=port, db=_db(db, url),
                        username=_unquote(parts.username), password=_unquote(parts.password),
                        tls=scheme == "rediss")


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
    return url.split("://", 1)[0].lower() in ("redis+cluster", "rediss+cluster")


def parse_cluster_url(url: str) -> list[RedisAddress]:
    """The seed nodes of a ``redis+cluster://`` URL (each with the URL's login and TLS);
    ``ValueError`` says what is wrong with a bad one."""
    scheme, sep, rest = url.partition("://")
    if not sep or not is_cluster_url(url):
        raise ValueError(f"{url!r}: a Redis Cluster URL starts with redis+cluster:// "
                         "or rediss+cluster://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    login, at, hosts = netloc.rpartition("@")
    if not hosts:
        raise ValueError(f"{url!r}: name at least one node (host:port)")
    plain = scheme.lower().split("+", 1)[0]
    try:
        seeds = [parse_redis_url(f"{plain}://{login}{at}{host}/{path}{'?' * bool(query)}{query}")
                 for host in hosts.split(",") if host]
    except ValueError as exc:
        raise ValueError(f"{url!r}: {str(exc).split(': ', 1)[-1]}") from None
    if not seeds:
        raise ValueError(f"{url!r}: name at least one node (host:port)")
    if any(seed.db for seed in seeds):
        raise ValueError(f"{url!r}: a Redis Cluster has database 0 only")
    return seeds


def _db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{url!r}: the database is a number, not {text!r}")
    return int(text)


def _unquote(text: Optional[str]) -> Optional[str]:
    return unquote(text) if text else None
