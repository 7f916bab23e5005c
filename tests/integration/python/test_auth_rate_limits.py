# Abuse limits of a real herald server ([rate_limits] and the namespace keys
# publishes_per_second/burst, docs/config.md): per-connection command and
# publish buckets, the per-user publish bucket shared by a user's
# connections, a namespace's own publish rate, violations_before_close
# (close 4029), connections per user (rate_limited on connect, 4029),
# connections and new connections per IP (HTTP 429 at the upgrade), and
# refused tokens per IP per minute. A refusal is `rate_limited` with a
# top-level numeric `retry_after_ms`, and a refused publish is neither
# delivered nor stored.
import asyncio
import base64
import os
import time

import pytest

from authkit import (ahttp, assert_quiet, auth_key, connect, datas, http_history, login,
                     marker_is_next, new_secret, next_event, now, publish, still_open,
                     subscribe, table, token)
from harness import (Closed, HeraldServer, WSClient, assert_error, raw_http, runs_async,
                     unique)

SECRET = new_secret()

PUBLISH_RATE, PUBLISH_BURST = 2, 3
COMMAND_RATE, COMMAND_BURST = 10, 40
USER_RATE, USER_BURST = 2, 5
VIOLATIONS = 5
PER_USER = 2

CONFIG = (
    "[engine]\ntype = \"memory\"\n\n"
    + auth_key("app", ["HS256"], secret=SECRET)
    + table("[rate_limits]", commands_per_second=COMMAND_RATE, commands_burst=COMMAND_BURST,
            publishes_per_second=PUBLISH_RATE, publishes_burst=PUBLISH_BURST,
            user_publishes_per_second=USER_RATE, user_publishes_burst=USER_BURST,
            violations_before_close=VIOLATIONS, connections_per_user=PER_USER,
            auth_failures_per_ip_per_minute=0)
    + table("[namespaces.pub]", anonymous=True)
    + table("[namespaces.room]")
    + table("[namespaces.slow]", anonymous=True, publishes_per_second=1, publishes_burst=1)
)


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(CONFIG, name="auth-rate-limits", workers=2)
    srv.start()
    yield srv
    srv.stop_checked()


def tok(sub="ana", **claims) -> str:
    return token(SECRET, "HS256", sub=sub, **claims)


def assert_rate_limited(msg: dict, max_retry_ms: float | None = None) -> int:
    assert_error(msg, "rate_limited")
    retry = msg.get("retry_after_ms")
    assert isinstance(retry, int) and not isinstance(retry, bool) and retry > 0, msg
    if max_retry_ms is not None:
        assert retry <= max_retry_ms, msg
    return retry


async def watcher_on(server, ch: str) -> WSClient:
    w = await login(server)
    assert (await subscribe(w, ch))["type"] == "subscribed"
    return w


# -- per-connection buckets ----------------------------------------------------------

@runs_async
async def test_publish_bucket_per_connection(server):
    ch = unique("pub:burst")
    w = await watcher_on(server, ch)
    c = await login(server)
    for i in range(PUBLISH_BURST):
        assert (await publish(c, ch, i))["type"] == "ack"
    reply = await publish(c, ch, "over")
    retry = assert_rate_limited(reply, 1000 / PUBLISH_RATE + 50)
    assert reply["id"] is not None
    # Refused: not delivered, not stored.
    for i in range(PUBLISH_BURST):
        assert (await next_event(w, ch))["data"] == i
    await marker_is_next(server, w, ch)
    assert datas(http_history(server, ch))[:-1] == list(range(PUBLISH_BURST))
    # Other commands are not publishes: still fine.
    assert (await c.call({"type": "history", "channel": ch}))["type"] == "history"
    # After retry_after_ms, the publish goes through.
    await asyncio.sleep(retry / 1000 + 0.02)
    assert (await publish(c, ch, "later"))["type"] == "ack"
    assert (await next_event(w, ch))["data"] == "later"


@runs_async
async def test_command_bucket_per_connection(server):
    ch = unique("pub:cmds")
    c = await login(server)
    replies = []
    for _ in range(COMMAND_BURST + 5):
        replies.append(await c.call({"type": "history", "channel": ch}))
    kinds = [r["type"] for r in replies]
    assert kinds.count("history") >= COMMAND_BURST - 2, kinds  # the login took one or two
    limited = [r for r in replies if r["type"] == "error"]
    assert limited, kinds
    for r in limited:
        assert_rate_limited(r, 1000 / COMMAND_RATE + 50)
    # Another connection has its own bucket.
    other = await login(server)
    assert (await other.call({"type": "history", "channel": ch}))["type"] == "history"


@runs_async
async def test_ignoring_rate_limited_closes_with_4029(server):
    ch = unique("pub:flood")
    w = await watcher_on(server, ch)
    c = await login(server)
    n = PUBLISH_BURST + VIOLATIONS + 10
    for i in range(n):
        await c.send({"type": "publish", "id": i, "channel": ch, "event": "msg", "data": i})
    seen = []
    closed = None
    deadline = time.monotonic() + 10
    while closed is None:
        # Bounded: once every publish was answered, the close must follow soon.
        answered = sum(1 for m in seen if "id" in m)
        left = deadline - time.monotonic() if answered < n else 1.0
        try:
            seen.append(await c.recv(max(0.1, left)))
        except Closed as e:
            closed = e
        except AssertionError:
            break
    assert closed is not None and closed.code == 4029, (closed, seen)
    limited = [m for m in seen if m.get("code") == "rate_limited"]
    assert VIOLATIONS <= len(limited) <= VIOLATIONS + 1, seen
    for m in limited:
        assert_rate_limited(m)
    # Only the burst got through.
    got = [(await next_event(w, ch))["data"] for _ in range(PUBLISH_BURST)]
    assert got == list(range(PUBLISH_BURST)), got
    await marker_is_next(server, w, ch)
    assert datas(http_history(server, ch))[:-1] == list(range(PUBLISH_BURST))


@runs_async
async def test_namespace_publish_rate(server):
    slow, fast = unique("slow:r"), unique("pub:r")
    w = await watcher_on(server, slow)
    c = await login(server)
    assert (await publish(c, slow, 1))["type"] == "ack"
    assert_rate_limited(await publish(c, slow, 2), 1000 + 50)
    # Other namespaces are not slowed by it.
    assert (await publish(c, fast, 3))["type"] == "ack"
    assert (await next_event(w, slow))["data"] == 1
    await marker_is_next(server, w, slow)
    assert datas(http_history(server, slow))[:-1] == [1]


# -- per user -----------------------------------------------------------------------------

@runs_async
async def test_user_publish_bucket_is_shared_by_the_users_connections(server):
    user = unique("u")
    ch = unique("room:user")
    w = await login(server, tok(sub=unique("w")))
    assert (await subscribe(w, ch))["type"] == "subscribed"
    a = await login(server, tok(sub=user))
    b = await login(server, tok(sub=user))
    # Each connection stays within its own burst (3); together they reach
    # the user's burst (5).
    sent = []
    for i, c in enumerate((a, b, a, b, a)):
        assert (await publish(c, ch, i))["type"] == "ack", i
        sent.append(i)
    reply = await publish(b, ch, "over")
    assert_rate_limited(reply, 1000 / USER_RATE + 50)
    # Another user is not affected.
    other = await login(server, tok(sub=unique("o")))
    assert (await publish(other, ch, "other"))["type"] == "ack"
    got = [(await next_event(w, ch))["data"] for _ in range(len(sent) + 1)]
    assert got == sent + ["other"], got
    await marker_is_next(server, w, ch)
    assert datas(http_history(server, ch))[:-1] == sent + ["other"]


@runs_async
async def test_connections_per_user(server):
    user = unique("cap")
    first = await login(server, tok(sub=user))
    second = await login(server, tok(sub=user))
    third, reply = await connect(server, tok(sub=user))
    assert_rate_limited(reply)
    closed = await third.expect_closed()
    assert closed.code == 4029, closed
    await still_open(first)
    await still_open(second)
    # Another user is not counted with them; after one leaves, one may come.
    await login(server, tok(sub=unique("other")))
    await first.close()
    deadline = time.monotonic() + 3
    while True:
        c, reply = await connect(server, tok(sub=user))
        if reply["type"] == "connected":
            break
        assert time.monotonic() < deadline, f"still refused after a close: {reply}"
        await asyncio.sleep(0.05)


# -- per IP ----------------------------------------------------------------------------------

def upgrade_status(port: int) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    status, _, _ = raw_http(port, req.encode(), timeout=5)
    return status


def small_server(name: str, **limits) -> HeraldServer:
    return HeraldServer("[engine]\ntype = \"memory\"\n\n"
                        + auth_key("app", ["HS256"], secret=SECRET)
                        + table("[rate_limits]", **limits)
                        + table("[namespaces.pub]", anonymous=True),
                        name=name, workers=2)


@runs_async
async def test_connections_per_ip_refused_at_the_upgrade():
    srv = small_server("auth-conn-per-ip", connections_per_ip=3,
                       auth_failures_per_ip_per_minute=0)
    srv.start()
    try:
        open_ = [await login(srv) for _ in range(3)]
        status = await asyncio.to_thread(upgrade_status, srv.port)
        assert status == 429, status
        for c in open_:
            await still_open(c)
        await open_[0].close()
        deadline = time.monotonic() + 3
        while (status := await asyncio.to_thread(upgrade_status, srv.port)) != 101:
            assert time.monotonic() < deadline, f"upgrade still refused ({status}) after a close"
            await asyncio.sleep(0.05)
        srv.stop_checked()
    finally:
        srv.kill()


@runs_async
async def test_new_connections_per_ip_per_second():
    rate = 5
    srv = small_server("auth-new-conn-per-ip", new_connections_per_ip_per_second=rate,
                       auth_failures_per_ip_per_minute=0)
    srv.start()
    try:
        statuses = [await asyncio.to_thread(upgrade_status, srv.port) for _ in range(rate * 3)]
        assert statuses[:rate] == [101] * rate, statuses
        assert 429 in statuses, statuses
        await asyncio.sleep(1.1)
        assert await asyncio.to_thread(upgrade_status, srv.port) == 101
        srv.stop_checked()
    finally:
        srv.kill()


@runs_async
async def test_auth_failures_per_ip_per_minute():
    limit = 5
    srv = small_server("auth-failures-per-ip", auth_failures_per_ip_per_minute=limit)
    srv.start()
    try:
        for _ in range(limit):
            c, reply = await connect(srv, token(new_secret(), "HS256", sub="guess"))
            assert_error(reply, "unauthorized")
            assert (await c.expect_closed()).code == 4001
        # Now even a good token is not verified: rate_limited and 4029.
        c, reply = await connect(srv, tok())
        assert_rate_limited(reply, 60_000)
        assert (await c.expect_closed()).code == 4029
        # Also over ?token=.
        c = await WSClient.open(srv, path="/ws?token=" + tok())
        msg = await c.recv()
        assert_rate_limited(msg, 60_000)
        assert (await c.expect_closed()).code == 4029
        srv.stop_checked()
    finally:
        srv.kill()
