# Abuse limits of a real herald server ([rate_limits] and the namespace keys
# publishes_per_second/burst, docs/config.md): per-connection command and
# publish buckets, the per-user publish bucket shared by a user's
# connections, a namespace's own publish rate, violations_before_close
# (close 4029), connections per user (rate_limited on connect, 4029),
# connections and new connections per IP (rate_limited right after the
# upgrade, 4029), and
# refused tokens per IP per minute. A refusal is `rate_limited` with a
# top-level numeric `retry_after_ms`, and a refused publish is neither
# delivered nor stored.
import asyncio
import time

import pytest
import websockets.exceptions

from authkit import (auth_key, connect, datas, http_history, login, marker_is_next,
                     new_secret, next_event, publish, still_open, subscribe, table, token)
from harness import Closed, HeraldServer, WSClient, assert_error, runs_async, unique

SECRET = new_secret()

PUBLISH_RATE, PUBLISH_BURST = 2, 3
COMMAND_RATE, COMMAND_BURST = 10, 40
USER_RATE, USER_BURST = 2, 5
VIOLATIONS = 5
PER_USER = 6  # > USER_BURST: the user bucket test needs that many connections

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
    # All at once (so that the bucket hardly refills meanwhile), with fewer
    # refusals than violations_before_close.
    n = COMMAND_BURST + 3
    for i in range(n):
        await c.send({"type": "history", "id": i, "channel": ch})
    replies = [await c.recv() for _ in range(n)]
    replies.sort(key=lambda r: r["id"])  # errors may overtake replies from the channel owner
    assert [r["id"] for r in replies] == list(range(n)), replies
    kinds = [r["type"] for r in replies]
    assert kinds.count("history") >= COMMAND_BURST, kinds
    limited = [r for r in replies if r["type"] == "error"]
    assert 1 <= len(limited) <= 3, kinds
    for r in limited:
        assert_rate_limited(r, 1000 / COMMAND_RATE + 50)
        assert r["id"] is not None
    # Another connection has its own bucket.
    other = await login(server)
    assert (await other.call({"type": "history", "channel": ch}))["type"] == "history"


async def flood_until_closed(c: WSClient, msgs: list[dict]) -> tuple[list, Closed | None]:
    """Sends every message (each with an id) at once; reads until the server
    closes, or until everything was answered and a further second passed."""
    for i, m in enumerate(msgs):
        await c.send({**m, "id": i})
    seen: list = []
    deadline = time.monotonic() + 10
    while True:
        answered = sum(1 for m in seen if "id" in m)
        left = deadline - time.monotonic() if answered < len(msgs) else 1.0
        try:
            seen.append(await c.recv(max(0.1, left)))
        except Closed as e:
            return seen, e
        except AssertionError:
            return seen, None


def check_closed_after_violations(seen: list, closed: Closed | None) -> None:
    limited = [m for m in seen if m.get("code") == "rate_limited"]
    assert closed is not None and closed.code == 4029, \
        f"not closed with 4029 after {len(limited)} rate_limited replies in a row: {closed}"
    assert VIOLATIONS <= len(limited) <= VIOLATIONS + 1, seen
    for m in limited:
        assert_rate_limited(m)


@runs_async
async def test_ignoring_command_rate_limited_closes_with_4029(server):
    ch = unique("pub:cflood")
    c = await login(server)
    seen, closed = await flood_until_closed(
        c, [{"type": "history", "channel": ch}] * (COMMAND_BURST + VIOLATIONS + 20))
    check_closed_after_violations(seen, closed)


@runs_async
async def test_ignoring_publish_rate_limited_closes_with_4029(server):
    ch = unique("pub:flood")
    w = await watcher_on(server, ch)
    c = await login(server)
    n = PUBLISH_BURST + VIOLATIONS + 10
    seen, closed = await flood_until_closed(
        c, [{"type": "publish", "channel": ch, "event": "msg", "data": i} for i in range(n)])
    # Only the burst got through, whatever happens to the connection.
    got = [(await next_event(w, ch))["data"] for _ in range(PUBLISH_BURST)]
    assert got == list(range(PUBLISH_BURST)), got
    await marker_is_next(server, w, ch)
    assert datas(http_history(server, ch))[:-1] == list(range(PUBLISH_BURST))
    check_closed_after_violations(seen, closed)


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
    # USER_BURST + 1 connections of one user, spread over the 2 workers:
    # one publish each stays far within each connection's own burst, but
    # together they exceed the user's.
    conns = [await login(server, tok(sub=user)) for _ in range(USER_BURST + 1)]
    sent = []
    for i, c in enumerate(conns[:USER_BURST]):
        assert (await publish(c, ch, i))["type"] == "ack", i
        sent.append(i)
    reply = await publish(conns[-1], ch, "over")
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
    mine = [await login(server, tok(sub=user)) for _ in range(PER_USER)]
    extra, reply = await connect(server, tok(sub=user))
    assert_rate_limited(reply)
    closed = await extra.expect_closed()
    assert closed.code == 4029, closed
    for c in mine:
        await still_open(c)
    # Another user is not counted with them; after one leaves, one may come.
    await login(server, tok(sub=unique("other")))
    await mine[0].close()
    deadline = time.monotonic() + 3
    while True:
        c, reply = await connect(server, tok(sub=user))
        if reply["type"] == "connected":
            break
        assert time.monotonic() < deadline, f"still refused after a close: {reply}"
        await asyncio.sleep(0.05)


# -- per IP ----------------------------------------------------------------------------------

def small_server(name: str, **limits) -> HeraldServer:
    return HeraldServer("[engine]\ntype = \"memory\"\n\n"
                        + auth_key("app", ["HS256"], secret=SECRET)
                        + table("[rate_limits]", **limits)
                        + table("[namespaces.pub]", anonymous=True),
                        name=name, workers=2)


async def refused_after_upgrade(server: HeraldServer) -> bool:
    """Opens a WebSocket; True when the server answers it with `rate_limited`
    (no id, retry_after_ms) and close 4029 right after the upgrade, False
    when the connection is usable (it answers a command)."""
    c = await WSClient.open(server)
    try:
        await c.send({"type": "connect", "id": "probe"})
    except websockets.exceptions.ConnectionClosed:
        pass
    try:
        msg = await c.recv()
    except Closed as e:
        raise AssertionError(f"closed ({e.code}) without a rate_limited error") from None
    if msg.get("type") == "connected":
        return False
    assert_rate_limited(msg)
    assert "id" not in msg, msg
    closed = await c.expect_closed()
    assert closed.code == 4029, closed
    return True


@runs_async
async def test_connections_per_ip():
    srv = small_server("auth-conn-per-ip", connections_per_ip=3,
                       auth_failures_per_ip_per_minute=0)
    srv.start()
    try:
        open_ = [await login(srv) for _ in range(3)]
        assert await refused_after_upgrade(srv)
        for c in open_:
            await still_open(c)
        # Open connections are counted, not connections ever made.
        await open_[0].close()
        deadline = time.monotonic() + 3
        while await refused_after_upgrade(srv):
            assert time.monotonic() < deadline, "still refused after a close"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(srv.stop_checked)  # the loop keeps answering closes
    finally:
        srv.kill()


@runs_async
async def test_new_connections_per_ip_per_second():
    rate = 5
    srv = small_server("auth-new-conn-per-ip", new_connections_per_ip_per_second=rate,
                       auth_failures_per_ip_per_minute=0)
    srv.start()
    try:
        refused = [await refused_after_upgrade(srv) for _ in range(rate * 3)]
        assert refused[:rate] == [False] * rate, refused
        assert True in refused, refused
        await asyncio.sleep(1.1)
        assert not await refused_after_upgrade(srv)
        await asyncio.to_thread(srv.stop_checked)  # the loop keeps answering closes
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
        await asyncio.to_thread(srv.stop_checked)  # the loop keeps answering closes
    finally:
        srv.kill()
