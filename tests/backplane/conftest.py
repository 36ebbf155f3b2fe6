import pytest

pytest.importorskip("hiredis", reason="the backplane needs hiredis (pip install 'wsframe[redis]')")

from tests.services import redis_server  # noqa: E402,F401  (the fixture)
