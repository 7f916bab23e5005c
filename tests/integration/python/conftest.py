# pytest glue for Herald's Python integration tests: attaches the log of every
# herald server involved in a failing test to the failure report, and makes
# sure no server started by the tests outlives the run (even on Ctrl-C).
import atexit
import signal
import sys
import time

import pytest

import harness
from redis_kit import RedisServer

atexit.register(harness.kill_all_servers)


def _terminated(signum, frame):
    harness.kill_all_servers()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _terminated)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._herald_started = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    since = getattr(item, "_herald_started", 0.0)
    for server in harness.ALL_SERVERS:
        if server.stopped_at is None or server.stopped_at >= since:
            report.sections.append((f"herald log ({server.name}, port {server.port})",
                                    server.log_tail(8000)))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    harness.kill_all_servers()


@pytest.fixture
def redis_server():
    """A redis-server of the test's own (redis_kit.RedisServer), stopped after it."""
    r = RedisServer()
    try:
        yield r
    finally:
        r.stop()
