"""rediss:// (TLS, against redis-server's own TLS port) and a password in the URL."""
import ssl
import subprocess
import time

import pytest

from wsframe.client.blocking import connect
from wsframe.server.apps import install_builtin_app
from tests.helpers import running_server, wait_for
from tests.services import RedisServer, free_port, require

trustme = pytest.importorskip("trustme")


def test_rediss_url_with_a_password(tmp_path):
    binary = require("redis-server")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    proc = subprocess.Popen([binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
                             "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no",
                             "--requirepass", "s3cret", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        if proc.poll() is not None:
            pytest.skip("this redis-server was built without TLS")
        context = ssl.create_default_context(cafile=str(ca_file))

        def configure(server):
            install_builtin_app(server)
            server.use_backplane(f"rediss://:s3cret@localhost:{port}/0", ssl=context)
        with running_server(configure) as (a, port_a), running_server(configure) as (b, port_b):
            assert wait_for(lambda: a.backplane.client.ready and b.backplane.client.ready, 10), \
                (a.backplane.client.last_error, b.backplane.client.last_error)
            first = connect(f"ws://127.0.0.1:{port_a}/room/secure")
            second = connect(f"ws://127.0.0.1:{port_b}/room/secure")
            time.sleep(0.3)   # both SUBSCRIBEs are through
            first.send("over TLS")
            assert second.recv(timeout=5) == "over TLS"
            assert a.backplane.stats()["url"] == f"rediss://:***@localhost:{port}/0"
            first.close()
            second.close()
    finally:
        proc.kill()
        proc.wait()


def test_a_wrong_password_is_a_clear_error_and_a_retry(redis_server_with_password):
    url = f"redis://:wrong@127.0.0.1:{redis_server_with_password.port}/0"
    with running_server(install_builtin_app, backplane=url) as (server, port):
        assert wait_for(lambda: server.backplane.client.last_error is not None, 10)
        assert "HELLO" in server.backplane.client.last_error
        assert not server.backplane.client.ready
        ws = connect(f"ws://127.0.0.1:{port}/room/x")   # the server itself serves on
        ws.send("local")
        assert ws.recv(timeout=5) == "local"
        ws.close()
    right = f"redis://:right@127.0.0.1:{redis_server_with_password.port}/3"
    with running_server(install_builtin_app, backplane=right) as (server, port):
        assert wait_for(lambda: server.backplane.client.ready, 10)   # AUTH, then SELECT 3


@pytest.fixture
def redis_server_with_password():
    server = RedisServer(password="right")
    try:
        yield server
    finally:
        server.close()
