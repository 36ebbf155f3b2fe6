"""ClusterRooms' ASK / ANSWER and hold / release, with two workers wired in one process."""
from wsframe.cluster.rooms import ClusterRooms
from wsframe.cluster.wire import ANSWER, ASK, JOIN, LEAVE


def pair(hold_messages=False):
    """Workers 0 and 1; ``sent`` logs (from, to, kind); messages are delivered at once
    unless ``hold_messages`` (then ``flush()`` delivers them)."""
    sent, queue = [], []
    workers = []

    def sender(origin):
        def send(slot, kind, body):
            sent.append((origin, slot, kind))
            queue.append((slot, kind, body))
            if not hold_messages:
                flush()
        return send

    def flush():
        while queue:
            slot, kind, body = queue.pop(0)
            rooms = workers[slot]
            {ASK: rooms.on_ask, ANSWER: rooms.on_answer, JOIN: rooms.on_join,
             LEAVE: rooms.on_leave}[kind](body)
    workers.extend(ClusterRooms(slot, 2, sender(slot)) for slot in (0, 1))
    return workers, sent, flush


def room_owned_by(rooms, slot, prefix="room"):
    return next(f"{prefix}{i}" for i in range(100) if rooms.owner_of(f"{prefix}{i}") == slot)


def test_the_owner_answers_and_a_shared_prefix_has_the_same_owner():
    workers, sent, _ = pair()
    name = room_owned_by(workers[0], 1)
    for rooms in workers:
        rooms.share_owner("v1:")
        assert rooms.owner_of("v1:" + name) == rooms.owner_of(name) == 1
    asked = []

    def handler(room, payload, origin, answer):
        asked.append((room, payload, origin))
        if answer is not None:
            answer(payload.upper())
    workers[1].ask_handler = handler
    answers = []
    workers[0].ask_owner(name, b"hello", answers.append)
    workers[0].ask_owner(name, b"no answer wanted")
    assert asked == [(name, b"hello", 0), (name, b"no answer wanted", 0)]
    assert answers == [b"HELLO"]
    assert [kind for _, _, kind in sent] == [ASK, ANSWER, ASK]


def test_no_handler_answers_none():
    workers, _, _ = pair()
    answers = []
    workers[0].ask_owner(room_owned_by(workers[0], 1), b"x", answers.append)
    assert answers == [None]


def test_a_restarted_owner_fails_what_was_asked_of_it():
    workers, _, flush = pair(hold_messages=True)
    name = room_owned_by(workers[0], 1)
    answers = []
    workers[0].ask_owner(name, b"x", answers.append)
    workers[0].on_restarted(1)   # before the answer came
    assert answers == [None]
    workers[1].ask_handler = lambda room, payload, origin, answer: answer(b"late")
    flush()
    assert answers == [None]   # the late answer finds nobody


def test_a_held_room_sends_no_leave_until_released():
    workers, sent, _ = pair()
    name = room_owned_by(workers[0], 1)
    workers[1].add_remote(name, 0)   # as the owner does when it answers a join
    workers[0].hold(name)
    assert workers[1].remote == {name: {0}}
    workers[0].release(name)   # the member never arrived (it closed meanwhile)
    assert workers[1].remote == {}
    assert sent[-1][2] == LEAVE


def test_an_unanswered_ask_expires_and_a_failing_handler_answers_none():
    import time

    from wsframe.cluster.rooms import ASK_TIMEOUT
    workers, _, flush = pair(hold_messages=True)
    name = room_owned_by(workers[0], 1)
    answers = []
    workers[0].ask_owner(name, b"lost", answers.append)
    workers[0].expire_asks(time.monotonic() + ASK_TIMEOUT / 2)
    assert answers == []
    workers[0].expire_asks(time.monotonic() + ASK_TIMEOUT + 1)   # its ANSWER never came
    assert answers == [None]

    def broken(room, payload, origin, answer):
        raise RuntimeError("a bug in the layer above")
    workers[1].ask_handler = broken
    workers[0].ask_owner(name, b"x", answers.append)
    flush()   # the dropped first ASK, then this one: neither takes the channel down
    assert answers == [None, None]
