# The life of an authenticated connection on a real herald server (2
# workers): `refresh` of the connection token, expiry of the connection
# token (`token_expired`, close 4001, no leeway while connected),
# subscription tokens that lapse (`unsubscribed` with reason token_expired)
# and `sub_refresh`, and the server actions of the HTTP API:
# POST /api/disconnect (every connection of a user, on every worker, closed
# with 4003) and POST /api/unsubscribe (`unsubscribed` with reason kicked).
import time

import pytest

from authkit import (NO_AUTH_FAILURE_LIMIT, ahttp, assert_quiet, auth_key, connect, http,
                     login, marker_is_next, new_secret, next_event, now, publish, still_open,
                     subscribe, table, token)
from harness import Closed, HeraldServer, WSClient, assert_error, runs_async, unique

SECRET = new_secret()
OTHER_SECRET = new_secret()
LEEWAY_S = 5

CONFIG = (
    "[engine]\ntype = \"memory\"\n\n"
    + auth_key("app", ["HS256"], secret=SECRET)
    + table("[auth]", leeway_ms=LEEWAY_S * 1000)
    + NO_AUTH_FAILURE_LIMIT
    + table("[namespaces.pub]", anonymous=True)
    + table("[namespaces.room]")
    + table("[namespaces.chat]", subscribe_access="capability", publish_access="capability",
            history_access="capability")
)


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(CONFIG, name="auth-lifecycle", workers=2)
    srv.start()
    yield srv
    srv.stop_checked()


def tok(sub="ana", **claims) -> str:
    return token(SECRET, "HS256", sub=sub, **claims)


async def closed_at(c: WSClient, timeout: float) -> tuple[list, Closed, float]:
    """Reads until the server closes; returns the messages seen, the close
    and the wall-clock time it arrived."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"still open after {timeout}s; got {seen}"
        try:
            seen.append(await c.recv(left))
        except Closed as e:
            return seen, e, time.time()


# -- refresh ------------------------------------------------------------------------

@runs_async
async def test_refresh_replaces_the_token_of_the_same_user(server):
    c = await login(server, tok(exp=now() + 600))
    exp = now() + 1200
    reply = await c.call({"type": "refresh", "id": "r1", "token": tok(exp=exp)})
    assert reply == {"type": "refreshed", "id": "r1", "expires": exp}, reply
    # Another user's token, a bad signature, an expired token: unauthorized,
    # and the connection stays open with its user.
    for bad in (tok(sub="bob", exp=now() + 600), token(OTHER_SECRET, sub="ana"),
                tok(exp=now() - 60), token(None, "none", sub="ana")):
        reply = await c.call({"type": "refresh", "token": bad})
        assert_error(reply, "unauthorized", reply["id"])
        await still_open(c)
    ch = unique("room:r")
    assert (await subscribe(c, ch))["type"] == "subscribed"
    assert (await publish(c, ch, 1))["type"] == "ack"
    assert (await next_event(c, ch))["from"]["user"] == "ana"


@runs_async
async def test_connection_token_expiry_closes_with_4001_and_refresh_prevents_it(server):
    exp = now() + 2
    ch = unique("room:exp")
    expiring = await login(server, tok(exp=exp))
    refreshed = await login(server, tok(exp=exp))
    assert (await subscribe(expiring, ch))["type"] == "subscribed"
    assert (await subscribe(refreshed, ch))["type"] == "subscribed"
    reply = await refreshed.call({"type": "refresh", "token": tok(exp=now() + 600)})
    assert reply["type"] == "refreshed", reply
    # Usable until exp.
    assert (await publish(expiring, ch, "before"))["type"] == "ack"
    for c in (expiring, refreshed):
        assert (await next_event(c, ch))["data"] == "before"
    # Then token_expired and 4001, checked within about a second, and the
    # 5 s leeway does not apply to a connected client.
    seen, closed, at = await closed_at(expiring, exp - time.time() + LEEWAY_S)
    assert closed.code == 4001, closed
    assert at >= exp - 0.05, f"closed {exp - at:.2f}s before exp"
    assert at <= exp + 2.5, f"closed {at - exp:.2f}s after exp (leeway applied?)"
    assert len(seen) == 1, seen
    assert_error(seen[0], "token_expired", has_id=False)
    # A token that expired 2 s ago is still within the 5 s leeway at
    # connect, but a connected client gets no leeway: token_expired at once.
    late = await login(server, tok(exp=now() - 2))
    seen, closed, _ = await closed_at(late, 3)
    assert closed.code == 4001 and len(seen) == 1, (closed, seen)
    assert_error(seen[0], "token_expired", has_id=False)
    # The refreshed one is still there and receives events.
    status, _ = await ahttp(server, "POST", "/api/publish",
                            {"channel": ch, "event": "msg", "data": "after"})
    assert status == 200
    ev = await next_event(refreshed, ch)
    assert ev["data"] == "after", ev


# -- subscription tokens over time -------------------------------------------------------

def sub_tok(sub: str, channel: str, secret: str = SECRET, **claims) -> str:
    claims.setdefault("ttl", 600)
    return token(secret, "HS256", sub=sub, channel=channel, **claims)


@runs_async
async def test_subscription_token_lapses_and_sub_refresh_extends_it(server):
    lapsing, kept = unique("chat:lapse"), unique("chat:kept")
    watcher = await login(server, tok(sub="watcher", caps={lapsing: ["subscribe"],
                                                           kept: ["subscribe"]}))
    for ch in (lapsing, kept):
        assert (await subscribe(watcher, ch))["type"] == "subscribed"
    ana = await login(server, tok(exp=now() + 600))
    exp = now() + 2
    for ch in (lapsing, kept):
        reply = await subscribe(ana, ch, token=sub_tok("ana", ch, ttl=None, exp=exp))
        assert reply["type"] == "subscribed", reply
    # sub_refresh: leaked / bad tokens refused, connection open.
    for code, bad in (("forbidden", sub_tok("bob", kept)),
                      ("forbidden", sub_tok("ana", lapsing)),
                      ("unauthorized", sub_tok("ana", kept, secret=OTHER_SECRET))):
        reply = await ana.call({"type": "sub_refresh", "channel": kept, "token": bad})
        assert_error(reply, code, reply["id"])
    new_exp = now() + 600
    reply = await ana.call({"type": "sub_refresh", "id": 7, "channel": kept,
                            "token": sub_tok("ana", kept, ttl=None, exp=new_exp)})
    assert reply == {"type": "sub_refreshed", "id": 7, "channel": kept, "expires": new_exp}, reply
    # The other one lapses: unsubscribed without id, reason token_expired.
    msg = await ana.recv(exp - time.time() + LEEWAY_S)
    assert msg == {"type": "unsubscribed", "channel": lapsing, "reason": "token_expired"}, msg
    assert time.time() >= exp - 0.05
    # No more events of the lapsed channel; the refreshed one still gets its.
    await marker_is_next(server, watcher, lapsing)
    mark = await marker_is_next(server, watcher, kept)
    ev = await next_event(ana, kept)
    assert ev["data"] == mark["data"], ev
    await assert_quiet(ana)
    # And without a token it cannot come back.
    reply = await subscribe(ana, lapsing)
    assert_error(reply, "forbidden", reply["id"])
    await marker_is_next(server, watcher, lapsing)
    await assert_quiet(ana)


# -- server actions over HTTP -----------------------------------------------------------

@runs_async
async def test_http_disconnect_closes_every_connection_of_the_user(server):
    u, v = unique("u"), unique("v")
    mine = [await login(server, tok(sub=u)) for _ in range(8)]
    others = [await login(server, tok(sub=v)) for _ in range(2)] + [await login(server)]
    status, body = await ahttp(server, "POST", "/api/disconnect", {"user": u, "reason": "bye"})
    assert (status, body) == (200, {"disconnected": 8}), (status, body)
    closes = []
    for c in mine:
        closed = await c.expect_closed()
        closes.append((closed.code, closed.reason))
    assert closes == [(4003, "bye")] * 8, closes
    for c in others:
        await still_open(c)
    status, body = await ahttp(server, "POST", "/api/disconnect", {"user": u})
    assert (status, body) == (200, {"disconnected": 0}), (status, body)


@runs_async
async def test_http_unsubscribe_kicks_the_user_from_one_channel(server):
    u, v = unique("u"), unique("v")
    ch, other_ch = unique("room:kick"), unique("room:stay")
    mine = [await login(server, tok(sub=u)) for _ in range(4)]
    for c in mine:
        assert (await subscribe(c, ch))["type"] == "subscribed"
        assert (await subscribe(c, other_ch))["type"] == "subscribed"
    idle = await login(server, tok(sub=u))  # not subscribed: not counted
    watcher = await login(server, tok(sub=v))
    assert (await subscribe(watcher, ch))["type"] == "subscribed"
    status, body = await ahttp(server, "POST", "/api/unsubscribe", {"user": u, "channel": ch})
    assert (status, body) == (200, {"unsubscribed": 4}), (status, body)
    for c in mine:
        msg = await c.recv()
        assert msg == {"type": "unsubscribed", "channel": ch, "reason": "kicked"}, msg
    # No more events there; the other channel still delivers.
    await marker_is_next(server, watcher, ch)
    status, _ = await ahttp(server, "POST", "/api/publish",
                            {"channel": other_ch, "event": "msg", "data": "still"})
    assert status == 200
    for c in mine:
        assert (await next_event(c, other_ch))["data"] == "still"
        await assert_quiet(c, 0.05)
    await assert_quiet(idle, 0.05)
    # The user may subscribe again while their token allows it.
    assert (await subscribe(mine[0], ch))["type"] == "subscribed"
    mark = await marker_is_next(server, watcher, ch)
    assert (await next_event(mine[0], ch))["data"] == mark["data"]


# -- refresh replaces grants (docs/protocol.md section 4, Expiry and refresh) --------

@runs_async
async def test_refresh_replaces_caps_info_and_channels(server):
    ch, mine = unique("chat:grant"), unique("chat:mine")
    c = await login(server, tok(sub="ref", caps={ch: ["history"]}, info={"v": 1}))
    reply = await subscribe(c, ch)
    assert_error(reply, "forbidden", reply["id"])
    # refresh is verified before the commands after it: the subscribe sent
    # right behind it is judged with the new caps.
    await c.send({"type": "refresh", "id": "r", "token": tok(
        sub="ref", caps={ch: ["subscribe", "publish"]}, info={"v": 2}, channels=[mine])})
    await c.send({"type": "subscribe", "id": "s", "channel": ch})
    first, second = await c.recv(), await c.recv()
    assert first["type"] == "refreshed" and first["id"] == "r", first
    assert second["type"] == "subscribed" and second["id"] == "s", second
    assert (await publish(c, ch, "x"))["type"] == "ack"
    ev = await next_event(c, ch)
    assert ev["from"] == {"client": c.client_id, "user": "ref", "info": {"v": 2}}, ev
    # The old grant (history) is gone; the channels claim grants history on
    # its channel.
    reply = await c.call({"type": "history", "channel": ch})
    assert_error(reply, "forbidden", reply["id"])
    assert (await c.call({"type": "history", "channel": mine}))["type"] == "history"


@runs_async
async def test_refresh_on_an_anonymous_connection_is_unauthorized(server):
    c = await login(server)
    reply = await c.call({"type": "refresh", "token": tok()})
    assert_error(reply, "unauthorized", reply["id"])
    await still_open(c)
    ch = unique("room:anon")
    reply = await subscribe(c, ch)  # still anonymous: room needs a user
    assert_error(reply, "unauthorized", reply["id"])


@runs_async
async def test_sub_refresh_holds_the_commands_after_it(server):
    ch = unique("chat:hold")
    c = await login(server, tok())
    reply = await subscribe(c, ch, token=sub_tok("ana", ch))  # subscribe, history
    assert reply["type"] == "subscribed", reply
    reply = await publish(c, ch, "refused")
    assert_error(reply, "forbidden", reply["id"])
    # The publish right behind the sub_refresh is judged with its new caps.
    await c.send({"type": "sub_refresh", "id": "sr", "channel": ch,
                  "token": sub_tok("ana", ch, caps=["subscribe", "publish"])})
    await c.send({"type": "publish", "id": "p", "channel": ch, "event": "msg", "data": "ok"})
    first = await c.recv()
    assert first["type"] == "sub_refreshed" and first["id"] == "sr", first
    rest = sorted([await c.recv(), await c.recv()], key=lambda m: m["type"])
    assert [m["type"] for m in rest] == ["ack", "event"], rest
    assert rest[1]["data"] == "ok", rest


@runs_async
async def test_sub_refresh_of_a_channel_not_subscribed(server):
    ch = unique("chat:none")
    c = await login(server, tok())
    reply = await c.call({"type": "sub_refresh", "channel": ch, "token": sub_tok("ana", ch)})
    assert_error(reply, "not_subscribed", reply["id"])
    await still_open(c)


# -- HTTP bodies -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/disconnect", "/api/unsubscribe"])
def test_server_action_bodies_are_checked(server, path):
    status, body = http(server, "POST", path, raw_body=b"{not json")
    assert status == 400 and body.get("code") == "invalid_json", (status, body)
    status, body = http(server, "POST", path, {"channel": "room:x"})
    assert status == 400 and body.get("code") == "bad_request" and "user" in body["message"], \
        (status, body)
    status, body = http(server, "POST", path, {"user": 7, "channel": "room:x"})
    assert status == 400 and "user" in body.get("message", ""), (status, body)
    if path == "/api/disconnect":
        status, body = http(server, "POST", path, {"user": "x", "reason": "r" * 101})
        assert status == 400 and "reason" in body.get("message", ""), (status, body)
    else:
        status, body = http(server, "POST", path, {"user": "x"})
        assert status == 400 and "channel" in body.get("message", ""), (status, body)
        status, body = http(server, "POST", path, {"user": "x", "channel": "bad channel"})
        assert status == 400 and "channel" in body.get("message", ""), (status, body)


# -- reload ------------------------------------------------------------------------------

@runs_async
async def test_reload_reports_auth_keys_as_restart_required(server):
    new_secret_ = new_secret()
    with open(server.config_path) as f:
        original = f.read()
    try:
        with open(server.config_path, "w") as f:
            f.write(original + "\n" + auth_key("late", ["HS256"], kid="late", secret=new_secret_))
        status, body = await ahttp(server, "POST", "/api/admin/reload", {})
        assert status == 200 and body.get("ok") is True, (status, body)
        assert "auth.keys" in body.get("restart_required", []), body
        # Keys are read at start-up only: the new one is not trusted yet.
        c, reply = await connect(server, token(new_secret_, kid="late", sub="late"))
        assert_error(reply, "unauthorized")
        assert (await c.expect_closed()).code == 4001
        await login(server, tok())
    finally:
        with open(server.config_path, "w") as f:
            f.write(original)
        status, body = await ahttp(server, "POST", "/api/admin/reload", {})
        assert status == 200, (status, body)
