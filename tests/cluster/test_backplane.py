"""Workers and the Redis backplane together: the owner worker is the machine's Redis
client for a room; members on other workers (by proxy) and on other servers get every
message exactly once."""
import contextlib
import time

import pytest

pytest.importorskip("hiredis")

from wsframe.client.blocking import connect  # noqa: E402
from wsframe.server.apps import install_builtin_app  # noqa: E402
from tests.helpers import running_server  # noqa: E402
from tests.helpers import wait_for as wait  # noqa: E402
from tests.services import redis_server  # noqa: E402,F401  (the fixture)


def numsub(redis, room):
    return int(redis.cli("PUBSUB", "NUMSUB", f"wsframe:room:{room}").split()[1])


def nothing_more(client):
    with pytest.raises(TimeoutError):
        client.recv(timeout=0.3)


def test_workers_share_rooms_with_another_server_through_redis(start_cluster, redis_server):
    cluster = start_cluster(workers=2, extra=("--redis", redis_server.url))
    members = [cluster.connect("/member/lobby") for _ in range(4)]
    assert len({pid for _, pid in members}) == 2   # the room spans both workers
    with running_server(install_builtin_app, backplane=redis_server.url) as (server, port):
        outside = connect(f"ws://127.0.0.1:{port}/room/lobby")
        # one subscriber per machine-and-room: the owner worker, plus the other server
        assert wait(lambda: numsub(redis_server, "lobby") == 2, 15)

        outside.send("from the other server")
        assert outside.recv(timeout=5) == "from the other server"
        for client, _ in members:
            assert client.recv(timeout=10) == "from the other server"

        members[0][0].send("from a worker")
        for client, _ in members:
            assert client.recv(timeout=10) == "from a worker"
        assert outside.recv(timeout=10) == "from a worker"

        redis_server.cli("PUBLISH", "wsframe:room:lobby", "from redis-cli")
        for client, _ in members:
            assert client.recv(timeout=10) == "from redis-cli"
        assert outside.recv(timeout=10) == "from redis-cli"

        for client, _ in members:
            nothing_more(client)   # exactly once each
        nothing_more(outside)
        with contextlib.suppress(Exception):
            outside.close()
        backplanes = [w["backplane"] for w in cluster.health()["workers"]]
        assert all(b["state"] == "ready" for b in backplanes)
        assert sum(b["rooms"] for b in backplanes) == 1   # only the owner wants "lobby"


def test_a_room_whose_members_left_every_worker_is_unsubscribed(start_cluster, redis_server):
    cluster = start_cluster(workers=2, extra=("--redis", redis_server.url))
    members = [cluster.connect("/member/brief") for _ in range(2)]
    assert wait(lambda: numsub(redis_server, "brief") == 1, 15)
    for client, _ in members:
        client.close()
    assert wait(lambda: numsub(redis_server, "brief") == 0, 15)
    time.sleep(0.2)
