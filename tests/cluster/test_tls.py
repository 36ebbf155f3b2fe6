"""wss:// with workers: the supervisor hands the TCP socket over unread; the worker
terminates TLS; rooms then reach across workers by proxy."""
from __future__ import annotations

import ssl

import pytest

from wsframe.client.blocking import connect

from tests.cluster.conftest import Cluster, established_per_process, wait_for

trustme = pytest.importorskip("trustme")


def test_tls_terminated_by_workers_rooms_by_proxy(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    cluster = Cluster("", 2, ("--tls-cert", str(cert_path), "--tls-key", str(key_path),
                              "--heartbeat", "0"))
    try:
        url = f"wss://localhost:{cluster.port}/room/secure"

        def open_client():
            cluster.clients.append(connect(url, ssl=client_ctx, timeout=5))
            return True
        assert wait_for(open_client, 30)
        open_client()
        assert len(cluster.children()) == 2
        a, b = cluster.clients
        workers = cluster.children()
        # least-loaded placement: one client per worker, so the room spans both
        assert sorted(established_per_process(workers, cluster.port).values()) == [1, 1]
        assert established_per_process([cluster.proc.pid], cluster.port)[cluster.proc.pid] == 0
        a.send("over tls")
        assert a.recv(timeout=10) == "over tls"
        assert b.recv(timeout=10) == "over tls"
        b.send(b"\x01back")
        assert a.recv(timeout=10) == b"\x01back" and b.recv(timeout=10) == b"\x01back"
        with pytest.raises(ssl.SSLError):  # the port speaks TLS only
            connect(f"wss://localhost:{cluster.port}/x", timeout=5)  # untrusted: refused
    finally:
        cluster.stop()
