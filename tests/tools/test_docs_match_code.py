"""Claims in the docs that a new user tripped over, checked against the code (issue 10)."""
import socket

from wsframe.server.apps import install_builtin_app

from tests.helpers import running_server


def request(port, method, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_server_http_answers_get_and_head_not_only_get():
    # docs/reference.md: `http(path, handler)` answers GET and HEAD (the docstring said GET).
    with running_server(install_builtin_app, heartbeat=None) as (_, port):
        get = request(port, "GET", "/health")
        head = request(port, "HEAD", "/health")
        post = request(port, "POST", "/health")
    assert get.startswith(b"HTTP/1.1 200") and head.startswith(b"HTTP/1.1 200")
    get_head, get_body = get.split(b"\r\n\r\n", 1)
    head_head, head_body = head.split(b"\r\n\r\n", 1)
    assert get_body and head_body == b""
    assert b"Content-Length: %d" % len(get_body) in head_head  # the length GET would send
    assert post.startswith(b"HTTP/1.1 405") and b"Allow: GET, HEAD" in post
    assert b"only GET and HEAD" in post
