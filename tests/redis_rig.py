"""Redis for the tests of several replicas: the machine's (or FSM_MCP_TEST_REDIS_URL), and a skip with the
reason where none answers. Each test keeps its keys under a prefix of its own (the `redis_prefix` fixture
in conftest) and removes them after."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

REDIS_URL = os.environ.get("FSM_MCP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_reachable() -> bool:
    where = urlparse(REDIS_URL)
    try:
        socket.create_connection((where.hostname or "127.0.0.1", where.port or 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


needs_redis = pytest.mark.skipif(not redis_reachable(), reason=f"no Redis answering at {REDIS_URL}")


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
