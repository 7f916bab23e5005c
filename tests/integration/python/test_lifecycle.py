# Channel lifecycle against a real herald server with three workers
# (docs/protocol.md sections 6, 7, 8, 10 and 13): destroying a channel over
# HTTP (DELETE /api/channels/{channel}, scope destroy or admin) and over the
# WebSocket (`destroy`, where destroy_access allows it: with "capability" the
# token's caps must grant it), each subscriber getting the final event (no
# offset, no from) then `unsubscribed {reason: "destroyed"}` and nothing
# more, the history deleted and a new epoch; expiry after channel_ttl_ms
# with expire_event/expire_data (also with the sqlite engine across a
# restart); the admin routes GET /api/channels and GET /api/info. Every
# refusal also checks that nothing was destroyed, delivered or stored.
import asyncio
import json
import os
import time

import pytest

from authkit import (NO_AUTH_FAILURE_LIMIT, ahttp, assert_quiet, auth_key, login, new_secret,
                     still_open, table, token)
from harness import HeraldServer, WSClient, assert_error, runs_async, toml_config, unique
from presencekit import (API_KEYS, Keys, assert_exact, assert_final_event, assert_http_error,
                         bearer, check_presence, expect_next, http_destroy, http_history,
                         http_publish, join_msg, member, subscribed_then_own_join, sync_all)

SECRET = new_secret()
WORKERS = 3
TTL_MS = 1500

CHAT_SCHEMA = {
    "chat.destroy": {"type": "object", "required": ["by"],
                     "properties": {"by": {"type": "string"}}},
}

CONFIG = (
    "[engine]\ntype = \"memory\"\n\n"
    + auth_key("app", ["HS256"], secret=SECRET)
    + NO_AUTH_FAILURE_LIMIT
    + API_KEYS
    + table("[defaults]", allow_unknown=False)
    + table("[namespaces.room]", anonymous=True, presence=True, join_leave=True)
    + table("[namespaces.chat]", anonymous=True, presence=True, schema="schemas/chat.json",
            destroy_access="capability")
    + table("[namespaces.temp]", anonymous=True, presence=True, join_leave=True,
            channel_ttl_ms=TTL_MS, expire_event="room.expired",
            expire_data='{"reason":"expired"}')
    + table("[namespaces.silent]", anonymous=True, presence=True, channel_ttl_ms=TTL_MS)
)


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(CONFIG, name="lifecycle", workers=WORKERS)
    os.makedirs(os.path.join(srv.tmpdir, "schemas"))
    with open(os.path.join(srv.tmpdir, "schemas", "chat.json"), "w") as f:
        json.dump(CHAT_SCHEMA, f)
    srv.start()
    yield srv
    srv.stop_checked()


def tok(sub: str, **claims) -> str:
    return token(SECRET, "HS256", sub=sub, **claims)


async def user(server, sub: str | None = None, **claims) -> WSClient:
    return await login(server, tok(sub, **claims) if sub else None)


async def subscribe_all(clients: list, ch: str, **fields) -> dict:
    reply = None
    for c in clients:
        reply = await c.call({"type": "subscribe", "channel": ch, **fields})
        assert reply["type"] == "subscribed", reply
    return reply


def unsubscribed(ch: str, reason: str) -> dict:
    return {"type": "unsubscribed", "channel": ch, "reason": reason}


async def all_quiet(clients: list, seconds: float = 0.3) -> None:
    await asyncio.gather(*(assert_quiet(c, seconds) for c in clients))


async def ws_history(c: WSClient, ch: str) -> dict:
    reply = await c.call({"type": "history", "channel": ch})
    assert reply["type"] == "history", reply
    return reply


def datas(events: list) -> list:
    return [e["data"] for e in events]


# -- destroy over HTTP -------------------------------------------------------------------

@runs_async
async def test_http_destroy_sends_the_final_event_to_every_subscriber(server):
    """Eight subscribers (spread over the workers), a final event, then
    `unsubscribed destroyed` and nothing more; the history is gone, a new
    epoch starts at offset 1, and recovery from the old epoch fails."""
    ch = unique("room:d")
    subs = [await user(server) for _ in range(8)]
    epoch0 = (await subscribe_all(subs, ch))["epoch"]
    for i in range(3):
        assert await http_publish(server, ch, {"n": i}) == {"offset": i + 1}
    await sync_all(server, subs, ch, allowed=("join", "event"))
    hist = await http_history(server, ch)
    assert hist["epoch"] == epoch0 and hist["offset"] == 4, hist

    status, body = await http_destroy(server, ch, {"event": "room.closed",
                                                   "data": {"by": "ops", "n": [1, 2]}})
    assert status == 200 and list(body) == ["epoch"], (status, body)
    epoch1 = body["epoch"]
    assert isinstance(epoch1, str) and epoch1 and epoch1 != epoch0, body

    async def ends(c: WSClient) -> None:
        assert_final_event(await c.recv(), ch, "room.closed", {"by": "ops", "n": [1, 2]})
        await expect_next(c, unsubscribed(ch, "destroyed"))
    await asyncio.gather(*(ends(c) for c in subs))
    # No leave for anyone, and the channel is empty with a new epoch.
    await all_quiet(subs)
    hist = await http_history(server, ch)
    assert hist == {"channel": ch, "epoch": epoch1, "offset": 0, "events": []}, hist
    hist = await ws_history(subs[0], ch)
    assert (hist["epoch"], hist["offset"], hist["events"]) == (epoch1, 0, []), hist
    await check_presence(server, subs[0], ch, [])

    # Nothing more from the channel reaches the old subscribers.
    assert await http_publish(server, ch, "after") == {"offset": 1}
    await all_quiet(subs)
    hist = await http_history(server, ch)
    assert hist["epoch"] == epoch1 and hist["offset"] == 1 and datas(hist["events"]) == ["after"]

    # Recovering from the old epoch fails; the reply is the new start.
    reply = await subscribed_then_own_join(subs[0], ch, None,
                                           recover={"epoch": epoch0, "offset": 4})
    assert (reply["epoch"], reply["offset"], reply["recovered"], reply["events"]) == \
        (epoch1, 1, False, []), reply
    await check_presence(server, subs[1], ch, [member(subs[0].client_id)])


@runs_async
async def test_http_destroy_without_a_body_and_with_the_admin_scope(server):
    ch = unique("room:e")
    a, b = await user(server, "ana"), await user(server, "bob")
    await subscribed_then_own_join(a, ch, "ana")
    epoch0 = (await subscribed_then_own_join(b, ch, "bob"))["epoch"]
    await expect_next(a, join_msg(ch, b.client_id, "bob"))
    status, body = await http_destroy(server, ch, key=Keys.admin)
    assert status == 200 and list(body) == ["epoch"] and body["epoch"] != epoch0, (status, body)
    for c in (a, b):
        await expect_next(c, unsubscribed(ch, "destroyed"))  # no final event
    await all_quiet([a, b])
    await check_presence(server, a, ch, [])
    # Subscribing again joins the new, empty channel.
    reply = await subscribed_then_own_join(b, ch, "bob")
    assert (reply["epoch"], reply["offset"], reply["events"]) == (body["epoch"], 0, []), reply


@runs_async
async def test_http_destroy_refused_changes_nothing(server):
    """401 without a key, 403 with a key lacking destroy/admin, 400 for a
    bad body, 404 for an unknown namespace: the channel stays intact
    (subscribers keep getting events, history and epoch are the same)."""
    ch = unique("room:r")
    a, b = await user(server, "ana"), await user(server, None)
    await subscribed_then_own_join(a, ch, "ana")
    epoch0 = (await subscribed_then_own_join(b, ch, None))["epoch"]
    await expect_next(a, join_msg(ch, b.client_id))
    for i in range(2):
        await http_publish(server, ch, {"n": i})
    await sync_all(server, [a, b], ch, allowed=("event",))
    final = {"event": "room.closed", "data": {"by": "nobody"}}

    for key in (None, "wrong-" + Keys.destroy):
        status, body = await http_destroy(server, ch, final, key=key)
        assert_http_error(status, body, 401, "unauthorized")
    for key in (Keys.publish, Keys.presence):
        status, body = await http_destroy(server, ch, final, key=key)
        assert_http_error(status, body, 403, "forbidden")
    status, body = await http_destroy(server, ch, raw_body=b'{"event": "room.closed", ')
    assert_http_error(status, body, 400, "invalid_json")
    status, body = await http_destroy(server, ch, {"event": "bad name!", "data": 1})
    assert_http_error(status, body, 400, "bad_request")
    status, body = await http_destroy(server, "nowhere:" + ch.split(":", 1)[1], final)
    assert_http_error(status, body, 404, "unknown_channel")

    # Intact: both still subscribed and got nothing else, history and epoch kept.
    await sync_all(server, [a, b], ch, allowed=())
    hist = await http_history(server, ch)
    assert hist["epoch"] == epoch0 and hist["offset"] == 4, hist
    assert datas(hist["events"])[:2] == [{"n": 0}, {"n": 1}], hist
    await check_presence(server, a, ch, [member(a.client_id, "ana"), member(b.client_id)])

    # The admin scope may.
    status, body = await http_destroy(server, ch, final, key=Keys.admin)
    assert status == 200 and body["epoch"] != epoch0, (status, body)
    for c in (a, b):
        assert_final_event(await c.recv(), ch, "room.closed", {"by": "nobody"})
        await expect_next(c, unsubscribed(ch, "destroyed"))


# -- destroy over the WebSocket --------------------------------------------------------------

@runs_async
async def test_ws_destroy_needs_caps_granting_destroy(server):
    ch = unique("chat:d")
    s1, s2 = await user(server), await user(server, "bob")
    epoch0 = (await subscribe_all([s1, s2], ch))["epoch"]
    for i in range(2):
        await http_publish(server, ch, {"n": i})
    await sync_all(server, [s1, s2], ch, allowed=("event",))
    destroy = {"type": "destroy", "channel": ch, "event": "chat.destroy", "data": {"by": "ana"}}

    async def intact() -> None:
        await sync_all(server, [s1, s2], ch, allowed=())
        hist = await http_history(server, ch)
        assert hist["epoch"] == epoch0 and datas(hist["events"])[:2] == [{"n": 0}, {"n": 1}], \
            hist
        await check_presence(server, s1, ch, [member(s1.client_id), member(s2.client_id, "bob")])

    # Caps for everything but destroy, no caps, or a destroy cap elsewhere.
    refused = [await user(server, "ana", caps={"chat:*": ["subscribe", "publish", "history",
                                                          "presence"]}),
               s2,
               await user(server, "carol", caps={"chat:other": ["destroy"]})]
    for c in refused:
        reply = await c.call(destroy)
        assert_error(reply, "forbidden", reply.get("id"))
        assert "destroy" in reply["message"] and ch in reply["message"], reply
        await still_open(c)
    await intact()
    await assert_quiet(refused[0])
    await assert_quiet(refused[2])

    # A final event its schema refuses: validation_failed, nothing destroyed
    # (WebSocket and HTTP alike).
    dana = await user(server, "dana", caps={ch: ["destroy"]})
    reply = await dana.call({**destroy, "data": {"by": 5}})
    assert_error(reply, "validation_failed", reply.get("id"))
    assert isinstance(reply.get("details"), list) and reply["details"], reply
    assert reply["details"][0]["pointer"] == "/by", reply
    status, body = await http_destroy(server, ch, {"event": "chat.destroy", "data": {}})
    assert_http_error(status, body, 400, "validation_failed")
    await intact()

    # Caps granting destroy (PyJWT token): destroyed.
    reply = await dana.call(destroy)
    assert reply["type"] == "destroyed", reply
    assert_exact(reply, {"type": "destroyed", "id": reply["id"], "channel": ch,
                         "epoch": reply["epoch"]})
    epoch1 = reply["epoch"]
    assert isinstance(epoch1, str) and epoch1 != epoch0, reply
    for c in (s1, s2):
        assert_final_event(await c.recv(), ch, "chat.destroy", {"by": "ana"})
        await expect_next(c, unsubscribed(ch, "destroyed"))
    await all_quiet([s1, s2, dana])
    hist = await http_history(server, ch)
    assert hist == {"channel": ch, "epoch": epoch1, "offset": 0, "events": []}, hist
    # Without event/data: only the unsubscribed.
    await subscribe_all([s1], ch)
    reply = await dana.call({"type": "destroy", "channel": ch})
    assert reply["type"] == "destroyed" and reply["epoch"] != epoch1, reply
    await expect_next(s1, unsubscribed(ch, "destroyed"))
    await all_quiet([s1, dana])


@runs_async
async def test_ws_destroy_refused_where_destroy_access_is_none(server):
    ch = unique("room:n")
    w = await user(server)
    await subscribed_then_own_join(w, ch, None)
    await http_publish(server, ch, "kept")
    await sync_all(server, [w], ch, allowed=("event",))
    c = await user(server, "ana", caps={ch: ["subscribe", "destroy"], "room:*": ["destroy"]})
    reply = await c.call({"type": "destroy", "channel": ch, "event": "x", "data": 1})
    assert_error(reply, "forbidden", reply.get("id"))
    assert "destroy" in reply["message"] and ch in reply["message"], reply
    await sync_all(server, [w], ch, allowed=())
    assert datas((await http_history(server, ch))["events"])[0] == "kept"
    await assert_quiet(c)


# -- expiry ---------------------------------------------------------------------------------

@runs_async
async def test_channel_expires_ttl_after_its_first_event(server):
    ch, quiet_ch = unique("temp:x"), unique("silent:x")
    s1, s2, s3 = await user(server), await user(server, "bob"), await user(server)
    await subscribed_then_own_join(s1, ch, None)
    epoch0 = (await subscribed_then_own_join(s2, ch, "bob"))["epoch"]
    await expect_next(s1, join_msg(ch, s2.client_id, "bob"))
    quiet_epoch0 = (await subscribe_all([s3], quiet_ch))["epoch"]

    t0 = time.monotonic()
    assert await http_publish(server, ch, "first") == {"offset": 1}
    assert await http_publish(server, quiet_ch, "first") == {"offset": 1}
    for c, name in ((s1, ch), (s2, ch), (s3, quiet_ch)):
        ev = await c.recv()
        assert ev["type"] == "event" and ev["channel"] == name and ev["offset"] == 1, ev
    # A second event does not move the deadline of the first.
    assert await http_publish(server, ch, "second") == {"offset": 2}
    for c in (s1, s2):
        assert (await c.recv())["offset"] == 2

    async def expires(c: WSClient, name: str, with_event: bool) -> float:
        msg = await c.recv(timeout=TTL_MS / 1000 + 10)
        at = time.monotonic() - t0
        if with_event:
            assert_final_event(msg, name, "room.expired", {"reason": "expired"})
            msg = await c.recv()
        assert_exact(msg, unsubscribed(name, "expired"))
        return at

    ats = await asyncio.gather(expires(s1, ch, True), expires(s2, ch, True),
                               expires(s3, quiet_ch, False))
    for at in ats:
        assert at >= TTL_MS / 1000 - 0.1, f"expired after {at:.2f}s, before {TTL_MS} ms"
    await all_quiet([s1, s2, s3])

    # As for an empty channel: new epoch, offset 0, no events, no members.
    for name, old in ((ch, epoch0), (quiet_ch, quiet_epoch0)):
        hist = await http_history(server, name)
        assert hist["offset"] == 0 and hist["events"] == [] and hist["epoch"] != old, hist
        ws = await ws_history(s1, name)
        assert (ws["epoch"], ws["offset"], ws["events"]) == (hist["epoch"], 0, []), ws
        await check_presence(server, s1, name, [])
    reply = await subscribe_all([s1], ch, recover={"epoch": epoch0, "offset": 2})
    assert (reply["recovered"], reply["offset"], reply["events"]) == (False, 0, []), reply


@runs_async
async def test_ttl_expiry_with_sqlite_across_a_restart(tmp_path):
    """sqlite (the default engine): publish, stop the server, wait past the
    TTL, start again on the same database: the channel is empty with a new
    epoch, while a channel without a TTL kept its history and epoch."""
    config = (toml_config(engine={"type": "sqlite", "data_dir": str(tmp_path / "data")})
              + table("[namespaces.temp]", presence=True, channel_ttl_ms=TTL_MS)
              + table("[namespaces.keep]", presence=True))
    ch, keep = unique("temp:s"), unique("keep:s")
    srv = HeraldServer(config, name="lifecycle-sqlite-1", workers=2).start()
    try:
        t0 = time.monotonic()
        for i in range(2):
            assert await http_publish(srv, ch, i, key=None) == {"offset": i + 1}
        assert await http_publish(srv, keep, "kept", key=None) == {"offset": 1}
        epoch0 = (await http_history(srv, ch, key=None))["epoch"]
        assert (await http_history(srv, keep, key=None))["epoch"] == epoch0
        srv.stop_checked()
    finally:
        srv.kill()
    await asyncio.sleep(max(0.0, t0 + TTL_MS / 1000 + 0.5 - time.monotonic()))

    srv = HeraldServer(config, name="lifecycle-sqlite-2", workers=2).start()
    try:
        hist = await http_history(srv, ch, key=None)
        assert hist["events"] == [] and hist["offset"] == 0 and hist["epoch"] != epoch0, hist
        kept = await http_history(srv, keep, key=None)
        assert kept["epoch"] == epoch0 and datas(kept["events"]) == ["kept"], kept
        c = await user(srv)
        reply = await c.call({"type": "subscribe", "channel": ch,
                              "recover": {"epoch": epoch0, "offset": 2}})
        assert reply["type"] == "subscribed", reply
        assert (reply["epoch"], reply["offset"], reply["recovered"], reply["events"]) == \
            (hist["epoch"], 0, False, []), reply
        reply = await c.call({"type": "presence", "channel": ch})
        assert reply["type"] == "presence" and reply["members"] == [member(c.client_id)], reply
        assert await http_publish(srv, ch, "new", key=None) == {"offset": 1}
        await c.close()
        srv.stop_checked()
    finally:
        srv.kill()


# -- admin routes --------------------------------------------------------------------------

@runs_async
async def test_channel_list_counts_subscribers_across_workers(server):
    p = unique("room:list")
    a, b, c, d = f"{p}-a", f"{p}-b", f"{p}-c", f"{p}-d"
    conns = [await user(server) for _ in range(6)]
    for i in (0, 1, 2):
        await subscribe_all([conns[i]], a)
    await subscribe_all([conns[3]], b)
    for i in (0, 4, 5):
        await subscribe_all([conns[i]], c)
    await http_publish(server, d, "no subscribers")  # has history, not listed

    async def listing(query: str, key=Keys.admin) -> tuple[int, dict]:
        return await ahttp(server, "GET", f"/api/channels?{query}", headers=bearer(key))

    status, body = await listing(f"prefix={p}&limit=100")
    assert (status, body) == (200, {"channels": [{"channel": a, "subscribers": 3},
                                                 {"channel": b, "subscribers": 1},
                                                 {"channel": c, "subscribers": 3}],
                                    "total": 3}), (status, body)
    status, body = await listing(f"prefix={p}&limit=2")
    assert (status, body) == (200, {"channels": [{"channel": a, "subscribers": 3},
                                                 {"channel": b, "subscribers": 1}],
                                    "total": 3}), (status, body)
    status, body = await listing(f"prefix={p}-c")
    assert (status, body) == (200, {"channels": [{"channel": c, "subscribers": 3}],
                                    "total": 1}), (status, body)
    for key, want in ((None, (401, "unauthorized")), ("wrong-" + Keys.admin, (401, "unauthorized")),
                      (Keys.presence, (403, "forbidden")), (Keys.destroy, (403, "forbidden")),
                      (Keys.publish, (403, "forbidden"))):
        status, body = await listing(f"prefix={p}", key=key)
        assert_http_error(status, body, *want)

    # b loses its only subscriber, a one of three.
    await conns[3].close()
    assert (await conns[1].call({"type": "unsubscribe", "channel": a}))["type"] == "unsubscribed"
    want = {"channels": [{"channel": a, "subscribers": 2}, {"channel": c, "subscribers": 3}],
            "total": 2}
    deadline = time.monotonic() + 5
    while True:
        status, body = await listing(f"prefix={p}")
        if (status, body) == (200, want) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert (status, body) == (200, want), (status, body)


INFO_KEYS = {"version", "uptime_s", "workers", "connections", "subscriptions", "channels",
             "engine"}


@runs_async
async def test_info_reports_the_servers_state():
    srv = HeraldServer(toml_config(engine={"type": "memory"}) + API_KEYS,
                       name="lifecycle-info", workers=2).start()
    try:
        async def info(key=Keys.admin) -> tuple[int, dict]:
            return await ahttp(srv, "GET", "/api/info", headers=bearer(key))

        conns = [await user(srv) for _ in range(5)]
        await subscribe_all([conns[0], conns[1]], "x:one")
        await subscribe_all([conns[0]], "x:two")
        await subscribe_all([conns[2]], "three")
        await http_publish(srv, "x:four", "nobody listens")
        status, body = await info()
        assert status == 200 and INFO_KEYS <= set(body), (status, body)
        assert isinstance(body["version"], str) and body["version"], body
        assert isinstance(body["uptime_s"], (int, float)) and 0 <= body["uptime_s"] < 600, body
        assert (body["workers"], body["connections"], body["subscriptions"], body["channels"],
                body["engine"]) == (2, 5, 4, 3, "memory"), body

        for key, want in ((None, (401, "unauthorized")), (Keys.presence, (403, "forbidden")),
                          (Keys.destroy, (403, "forbidden")), (Keys.publish, (403, "forbidden"))):
            status, body = await info(key)
            assert_http_error(status, body, *want)

        await conns[2].close()        # "three" loses its only subscriber
        conns[4].ws.transport.abort()  # no close frame
        want = (3, 3, 2)
        deadline = time.monotonic() + 5
        while True:
            status, body = await info(Keys.everything)
            got = (body.get("connections"), body.get("subscriptions"), body.get("channels"))
            if (status, got) == (200, want) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert status == 200 and got == want, (status, body)
        for c in (conns[0], conns[1], conns[3]):
            await c.close()
        srv.stop_checked()
    finally:
        srv.kill()
