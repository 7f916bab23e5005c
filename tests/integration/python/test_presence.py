# Presence, join/leave and capacity against a real herald server with three
# workers (docs/protocol.md sections 6, 7, 8, 10 and 13): presence stays
# exact under a random churn of subscribes, unsubscribes and closes (some
# without a close frame) on every worker, a user with two tabs joins and
# leaves once, a member gets its own join after `subscribed` and never its
# own leave, a connection that vanishes leaves after the ping timeout, a
# channel over presence_max_members keeps counts only, max_users refuses the
# next user with channel_full, presence on a namespace without it is
# forbidden, and the HTTP presence routes need the `presence` scope. Every
# refusal also checks that nothing was delivered or changed.
import asyncio
import json
import random
import time

import pytest
import websockets.exceptions

from authkit import (NO_AUTH_FAILURE_LIMIT, ahttp, assert_quiet, auth_key, login, new_secret,
                     still_open, table, token)
from harness import HeraldServer, WSClient, assert_error, runs_async, toml_config, unique
from presencekit import (API_KEYS, Keys, RawMember, assert_exact, assert_http_error,
                         assert_members, bearer, check_presence, expect_next, http_presence,
                         http_presence_stats, join_msg, leave_msg, member, q,
                         subscribed_then_own_join, sync_all, ws_presence, ws_stats)

SECRET = new_secret()
WORKERS = 3

CONFIG = (
    "[engine]\ntype = \"memory\"\n\n"
    + auth_key("app", ["HS256"], secret=SECRET)
    + NO_AUTH_FAILURE_LIMIT
    + API_KEYS
    + table("[defaults]", allow_unknown=False)
    + table("[namespaces.room]", anonymous=True, presence=True, join_leave=True)
    + table("[namespaces.lobby]", anonymous=True, presence=True)
    + table("[namespaces.plain]", anonymous=True)
    + table("[namespaces.crowd]", anonymous=True, presence=True, join_leave=True,
            presence_max_members=3)
    + table("[namespaces.cap]", anonymous=True, presence=True, join_leave=True, max_users=2)
)


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(CONFIG, name="presence", workers=WORKERS)
    srv.start()
    yield srv
    srv.stop_checked()


def tok(sub: str, **claims) -> str:
    return token(SECRET, "HS256", sub=sub, **claims)


async def user(server, sub: str | None, info=None) -> WSClient:
    """A connection of `sub` (None: anonymous), with the token's `info`."""
    c = await login(server, tok(sub, info=info) if sub else None)
    c.info = info
    return c


async def marker_next(server, clients: list, ch: str) -> None:
    """A marker published on `ch` is the next message of every client
    subscribed to it; the others stay quiet."""
    await sync_all(server, clients, ch, allowed=())


# -- churn -------------------------------------------------------------------------

CHURN_SEED = 20251204
CHURN_CONNECTIONS = 40
CHURN_CHANNELS = 5
CHURN_ROUNDS = 20
USERS = [f"u{i}" for i in range(6)]
INFO = {"u0": {"name": "U0"}, "u1": {"name": "U1", "tags": [1, 2]}, "u2": "plain"}


class Churner:
    """One connection of the churn test: WSClient (closes with a close frame,
    or aborts the TCP connection) or RawMember (socket shutdown, no close
    frame), with the set of channels it is subscribed to."""

    def __init__(self, k: int, sub: str | None, raw: bool):
        self.k, self.sub, self.raw = k, sub, raw
        self.info = INFO.get(sub) if sub else None
        self.subs: set[str] = set()
        self.closed = False
        self.rng = random.Random(CHURN_SEED * 1000 + k)

    async def open(self, server) -> None:
        tok_ = tok(self.sub, info=self.info) if self.sub else None
        if self.raw:
            self.c = await asyncio.to_thread(RawMember, server.port, tok_)
        else:
            self.c = await login(server, tok_)
        self.client_id = self.c.client_id

    async def run(self, ops: list) -> list:
        if self.raw:
            return await asyncio.to_thread(self.c.call_many, ops)
        ids = []
        for op in ops:
            ids.append(self.c.new_id())
            await self.c.send({**op, "id": ids[-1]})
        replies = {}
        while len(replies) < len(ids):
            msg = await self.c.recv()
            if msg.get("id") in ids:
                replies[msg["id"]] = msg
        return [replies[i] for i in ids]

    async def churn(self, channels: list) -> None:
        rng = self.rng
        for round_ in range(CHURN_ROUNDS):
            await asyncio.sleep(rng.random() * 0.02)
            if round_ >= 5 and rng.random() < 0.05:
                await self.close(channels)
                return
            # 1 to 3 pipelined operations on distinct channels, each valid
            # after the previous one.
            ops, subs, touched = [], set(self.subs), set()
            for _ in range(rng.randint(1, 3)):
                free = [ch for ch in channels if ch not in subs and ch not in touched]
                mine = sorted(ch for ch in subs if ch not in touched)
                if mine and (not free or rng.random() < 0.5):
                    ch = rng.choice(mine)
                    subs.discard(ch)
                    ops.append({"type": "unsubscribe", "channel": ch})
                elif free:
                    ch = rng.choice(free)
                    subs.add(ch)
                    ops.append({"type": "subscribe", "channel": ch})
                else:
                    break
                touched.add(ch)
            replies = await self.run(ops)
            for op, reply in zip(ops, replies):
                want = "subscribed" if op["type"] == "subscribe" else "unsubscribed"
                assert reply["type"] == want and reply["channel"] == op["channel"], \
                    (self.k, op, reply)
            self.subs = subs

    async def close(self, channels: list) -> None:
        rng = self.rng
        self.closed = True
        # Sometimes with a subscribe still on its way: the server must not
        # keep a member for it either.
        free = [ch for ch in channels if ch not in self.subs]
        if free and rng.random() < 0.5:
            msg = {"type": "subscribe", "channel": rng.choice(free)}
            if self.raw:
                await asyncio.to_thread(self.c.ws.send_text, json.dumps(msg))
            else:
                await self.c.send(msg)
        if self.raw:
            await asyncio.to_thread(self.c.vanish)
        elif rng.random() < 0.5:
            await close_draining(self.c)     # close frame
        else:
            self.c.ws.transport.abort()      # TCP reset, no close frame
        self.subs = set()

    def member(self) -> dict:
        return member(self.client_id, self.sub, self.info)


async def close_draining(c: WSClient) -> None:
    """Closes with a close frame while reading what is still queued: a
    client with unread messages would otherwise wait for its close_timeout
    (python-websockets stops reading the socket when its queue is full)."""
    async def drain():
        try:
            while True:
                await c.ws.recv()
        except websockets.exceptions.ConnectionClosed:
            pass
    drainer = asyncio.create_task(drain())
    await c.close()
    await asyncio.wait_for(drainer, 5)
    assert c.ws.close_code == 1000, f"close handshake did not complete: {c.ws.close_code}"


async def settled_presence(watcher: WSClient, ch: str, model: dict, want: list,
                           timeout: float = 20.0) -> list:
    """Asks `presence` until it answers `want` (closes are noticed by the
    server a moment later). Applies every join/leave the watcher got before
    each reply to `model` (client -> member) and checks that the model
    equals that reply: join/leave and presence are exact and ordered."""
    deadline = time.monotonic() + timeout
    while True:
        msg_id = watcher.new_id()
        await watcher.send({"type": "presence", "id": msg_id, "channel": ch})
        while True:
            msg = await watcher.recv()
            if msg.get("id") == msg_id:
                break
            if msg == {"type": "ping"}:  # a slow run (ASan) may see one
                await watcher.send({"type": "pong"})
                continue
            assert msg["type"] in ("join", "leave") and msg["channel"] == ch, msg
            m = {k: msg[k] for k in ("client", "user", "info") if k in msg}
            if msg["type"] == "join":
                assert msg["client"] not in model, f"join of a member already there: {msg}"
                model[msg["client"]] = m
            else:
                assert model.get(msg["client"]) == m, f"leave of a non-member: {msg}"
                del model[msg["client"]]
        assert msg["type"] == "presence" and msg["complete"] is True, msg
        assert_members(msg["members"], list(model.values()))
        if by_client_ids(msg["members"]) == by_client_ids(want):
            return msg["members"]
        if time.monotonic() > deadline:
            assert_members(msg["members"], want)
        await asyncio.sleep(0.1)


def by_client_ids(members: list) -> list:
    return sorted(m["client"] for m in members)


@runs_async
async def test_churn_presence_is_exact_on_all_workers(server):
    """40 connections of 6 users and anonymous ones subscribe, unsubscribe
    and close at random (fixed seed) on 5 channels at once; afterwards the
    presence of every channel (WebSocket and HTTP), its stats, the channel
    list, and a watcher's join/leave stream all equal the live
    subscriptions."""
    u = unique("room:churn")
    channels = [f"{u}-{i}" for i in range(CHURN_CHANNELS)]
    watchers, models = {}, {}
    for ch in channels:
        w = await user(server, "watcher")
        await subscribed_then_own_join(w, ch, "watcher")
        reply = await ws_presence(w, ch)
        assert_members(reply["members"], [member(w.client_id, "watcher")])
        watchers[ch] = w
        models[ch] = {m["client"]: m for m in reply["members"]}

    churners = []
    for k in range(CHURN_CONNECTIONS):
        sub = USERS[k % len(USERS)] if k < 32 else None
        churners.append(Churner(k, sub, raw=(k % 4 == 3)))
    await asyncio.gather(*(c.open(server) for c in churners))
    await asyncio.gather(*(c.churn(channels) for c in churners))
    assert any(c.closed for c in churners) and any(c.closed and c.raw for c in churners)

    for ch in channels:
        w = watchers[ch]
        want = [member(w.client_id, "watcher")] + \
            [c.member() for c in churners if not c.closed and ch in c.subs]
        members = await settled_presence(w, ch, models[ch], want)
        assert_members(members, want)
        await check_presence(server, w, ch, want)

    # The channel list counts the same subscriptions, over every worker
    # (asked until it agrees, as the closes may still be on their way to the
    # connections' workers).
    want_list = {"channels": [{"channel": ch,
                               "subscribers": 1 + sum(1 for c in churners
                                                      if not c.closed and ch in c.subs)}
                              for ch in channels],
                 "total": len(channels)}
    deadline = time.monotonic() + 5.0
    while True:
        status, body = await ahttp(server, "GET", f"/api/channels?prefix={u}&limit=100",
                                   headers=bearer(Keys.admin))
        assert status == 200, (status, body)
        if body == want_list or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert body == want_list, body

    # Everyone still connected leaves; only the watchers stay.
    for c in churners:
        if not c.closed:
            if c.raw:
                await asyncio.to_thread(c.c.vanish)
            else:
                await close_draining(c.c)
            c.closed = True
    for ch in channels:
        w = watchers[ch]
        want = [member(w.client_id, "watcher")]
        await settled_presence(w, ch, models[ch], want)
        await check_presence(server, w, ch, want)


# -- join / leave ----------------------------------------------------------------------

@runs_async
async def test_user_with_two_tabs_joins_once_and_leaves_once(server):
    ch = unique("room:tabs")
    ana_info = {"name": "Ana", "color": "#c00"}
    w = await user(server, "watcher")
    await subscribed_then_own_join(w, ch, "watcher")
    tab1 = await user(server, "ana", ana_info)
    tab2 = await user(server, "ana", ana_info)

    await subscribed_then_own_join(tab1, ch, "ana", ana_info, user_joined=True)
    await expect_next(w, join_msg(ch, tab1.client_id, "ana", ana_info, True))

    await subscribed_then_own_join(tab2, ch, "ana", ana_info, user_joined=False)
    for c in (w, tab1):
        await expect_next(c, join_msg(ch, tab2.client_id, "ana", ana_info, False))

    await check_presence(server, w, ch, [member(w.client_id, "watcher"),
                                         member(tab1.client_id, "ana", ana_info),
                                         member(tab2.client_id, "ana", ana_info)])

    reply = await tab1.call({"type": "unsubscribe", "channel": ch})
    assert reply["type"] == "unsubscribed" and "reason" not in reply, reply
    for c in (w, tab2):
        await expect_next(c, leave_msg(ch, tab1.client_id, "ana", ana_info, False))

    await tab2.close()  # with a close frame
    await expect_next(w, leave_msg(ch, tab2.client_id, "ana", ana_info, True))

    # Exactly those: the next thing the watcher sees is a marker, and the
    # unsubscribed tab got nothing (no leave of its own).
    await marker_next(server, [w], ch)
    await assert_quiet(tab1)
    await check_presence(server, w, ch, [member(w.client_id, "watcher")])


@runs_async
async def test_own_join_after_subscribed_and_no_own_leave(server):
    ch = unique("room:own")
    a = await user(server, None)
    b = await user(server, "bob")
    # Anonymous: no user, no info, always user_joined.
    reply = await subscribed_then_own_join(a, ch, None)
    assert reply["offset"] == 0 and reply["events"] == [], reply
    await subscribed_then_own_join(b, ch, "bob")
    await expect_next(a, join_msg(ch, b.client_id, "bob", None, True))

    reply = await b.call({"type": "unsubscribe", "channel": ch})
    assert reply["type"] == "unsubscribed", reply
    await expect_next(a, leave_msg(ch, b.client_id, "bob", None, True))
    await marker_next(server, [a], ch)
    await assert_quiet(b, 0.5)  # neither its own leave nor the marker

    # A second anonymous member: user_joined / user_left always true.
    c = await user(server, None)
    await subscribed_then_own_join(c, ch, None)
    await expect_next(a, join_msg(ch, c.client_id, None, None, True))
    reply = await a.call({"type": "unsubscribe", "channel": ch})
    assert reply["type"] == "unsubscribed", reply
    await expect_next(c, leave_msg(ch, a.client_id, None, None, True))
    await marker_next(server, [c], ch)
    await assert_quiet(a, 0.5)
    await check_presence(server, c, ch, [member(c.client_id)])


@runs_async
async def test_presence_without_join_leave_sends_no_join(server):
    ch = unique("lobby:r")
    a = await user(server, "ana")
    b = await user(server, "bob", {"n": 1})
    for c in (a, b):
        reply = await c.call({"type": "subscribe", "channel": ch})
        assert reply["type"] == "subscribed", reply
    await marker_next(server, [a, b], ch)
    await check_presence(server, a, ch, [member(a.client_id, "ana"),
                                         member(b.client_id, "bob", {"n": 1})])
    await b.close()
    await marker_next(server, [a], ch)
    await check_presence(server, a, ch, [member(a.client_id, "ana")])


# -- a connection that vanishes ----------------------------------------------------------

PING_MS, PONG_MS = 1000, 1000


async def recv_answering_pings(c: WSClient, timeout: float) -> dict:
    """The next message that is not a ping; pings are answered on the way."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await c.recv(timeout=max(0.01, deadline - time.monotonic()))
        if msg != {"type": "ping"}:
            return msg
        await c.send({"type": "pong"})


@runs_async
async def test_dropped_connection_leaves_after_the_ping_timeout():
    srv = HeraldServer(toml_config(engine={"type": "memory"},
                                   limits={"ping_interval_ms": PING_MS,
                                           "pong_timeout_ms": PONG_MS})
                       + table("[namespaces.room]", presence=True, join_leave=True),
                       name="presence-ping", workers=2)
    srv.start()
    try:
        ch = unique("room:drop")
        w = await user(srv, None)
        reply = await w.call({"type": "subscribe", "channel": ch})
        assert reply["type"] == "subscribed", reply
        assert_exact(await recv_answering_pings(w, 10), join_msg(ch, w.client_id))

        def join_then_go_silent():
            m = RawMember(srv.port)
            sent = time.monotonic()
            reply = m.call_many([{"type": "subscribe", "channel": ch}])[0]
            assert reply["type"] == "subscribed", reply
            return m, sent

        gone, sent = await asyncio.to_thread(join_then_go_silent)
        # From here the raw member reads nothing and sends nothing (not even
        # a close frame); the watcher answers every ping.
        timeout_s = (PING_MS + PONG_MS) / 1000
        msg = await recv_answering_pings(w, 10)
        assert_exact(msg, join_msg(ch, gone.client_id))
        assert_members((await ws_presence(w, ch))["members"],
                       [member(w.client_id), member(gone.client_id)])
        msg = await recv_answering_pings(w, timeout_s + 8.0)
        left_after = time.monotonic() - sent
        assert_exact(msg, leave_msg(ch, gone.client_id))
        assert left_after >= timeout_s - 0.1, \
            f"left after {left_after:.2f}s of silence, before the ping timeout ({timeout_s}s)"
        assert_members((await ws_presence(w, ch))["members"], [member(w.client_id)])
        # The server closed it with 1008 (after the pings it never read).
        code = await asyncio.to_thread(gone.ws.read_close, 5.0)
        assert code == 1008, code
        gone.ws.close()
        await w.close()
        srv.stop_checked()
    finally:
        srv.kill()


# -- member limit ---------------------------------------------------------------------------

@runs_async
async def test_member_limit_keeps_counts_only_until_empty(server):
    ch = unique("crowd:r")
    ms = [await user(server, f"m{i}") for i in range(4)]
    for i, c in enumerate(ms[:3]):
        await subscribed_then_own_join(c, ch, f"m{i}")
        for prev in ms[:i]:
            await expect_next(prev, join_msg(ch, c.client_id, f"m{i}"))
    three = [member(c.client_id, f"m{i}") for i, c in enumerate(ms[:3])]
    await check_presence(server, ms[0], ch, three)

    # The fourth: over presence_max_members. No join for anyone, not even
    # its own; presence keeps counts only.
    reply = await ms[3].call({"type": "subscribe", "channel": ch})
    assert reply["type"] == "subscribed", reply
    await marker_next(server, ms, ch)

    async def counts_only(clients: int, asker: WSClient) -> None:
        reply = await ws_presence(asker, ch)
        assert reply["members"] == [] and reply["complete"] is False, reply
        stats = await ws_stats(asker, ch)
        assert_exact(stats, {"type": "presence_stats", "id": stats["id"], "channel": ch,
                             "clients": clients})
        status, body = await http_presence(server, ch)
        assert (status, body) == (200, {"channel": ch, "members": [], "complete": False}), \
            (status, body)
        status, body = await http_presence_stats(server, ch)
        assert (status, body) == (200, {"channel": ch, "clients": clients}), (status, body)

    await counts_only(4, ms[0])
    # Back to three members: still counts only (until the channel is empty),
    # and no leave.
    reply = await ms[3].call({"type": "unsubscribe", "channel": ch})
    assert reply["type"] == "unsubscribed", reply
    await marker_next(server, ms[:3], ch)
    await assert_quiet(ms[3])
    await counts_only(3, ms[3])

    for c in ms[:3]:
        reply = await c.call({"type": "unsubscribe", "channel": ch})
        assert reply["type"] == "unsubscribed", reply
    for c in ms:
        await assert_quiet(c)
    await check_presence(server, ms[3], ch, [])

    # Empty again: members and join/leave are back.
    await subscribed_then_own_join(ms[1], ch, "m1")
    await check_presence(server, ms[0], ch, [member(ms[1].client_id, "m1")])
    await subscribed_then_own_join(ms[2], ch, "m2")
    await expect_next(ms[1], join_msg(ch, ms[2].client_id, "m2"))
    await check_presence(server, ms[0], ch, [member(ms[1].client_id, "m1"),
                                             member(ms[2].client_id, "m2")])


# -- capacity ------------------------------------------------------------------------------

@runs_async
async def test_max_users_refuses_the_next_user_with_channel_full(server):
    ch = unique("cap:r")
    ana1, ana2 = await user(server, "ana"), await user(server, "ana")
    bob, carol = await user(server, "bob"), await user(server, "carol")
    anon = await user(server, None)
    await subscribed_then_own_join(ana1, ch, "ana")
    await subscribed_then_own_join(bob, ch, "bob")
    await expect_next(ana1, join_msg(ch, bob.client_id, "bob"))
    # Another tab of a user already in: admitted.
    await subscribed_then_own_join(ana2, ch, "ana", user_joined=False)
    for c in (ana1, bob):
        await expect_next(c, join_msg(ch, ana2.client_id, "ana", None, False))
    inside = [ana1, ana2, bob]
    members = [member(ana1.client_id, "ana"), member(ana2.client_id, "ana"),
               member(bob.client_id, "bob")]

    # A third user, and an anonymous connection (a user of its own): full.
    for c in (carol, anon):
        reply = await c.call({"type": "subscribe", "channel": ch, "history": 10})
        assert_error(reply, "channel_full", reply.get("id"))
        assert list(reply) == ["type", "id", "code", "message"], reply
        assert ch in reply["message"] and "max_users 2" in reply["message"], reply
        await still_open(c)
        # Not subscribed: nothing to unsubscribe, nothing delivered.
        assert_error(await c.call({"type": "unsubscribe", "channel": ch}), "not_subscribed")
    await marker_next(server, inside, ch)  # no join of carol or anon before it
    for c in (carol, anon):
        await assert_quiet(c)
    await check_presence(server, ana1, ch, members)

    # bob leaves: carol gets the place (and anon still does not).
    reply = await bob.call({"type": "unsubscribe", "channel": ch})
    assert reply["type"] == "unsubscribed", reply
    for c in (ana1, ana2):
        await expect_next(c, leave_msg(ch, bob.client_id, "bob", None, True))
    await subscribed_then_own_join(carol, ch, "carol")
    for c in (ana1, ana2):
        await expect_next(c, join_msg(ch, carol.client_id, "carol"))
    assert_error(await anon.call({"type": "subscribe", "channel": ch}), "channel_full")
    await marker_next(server, [ana1, ana2, carol], ch)
    await assert_quiet(anon)
    await assert_quiet(bob)
    await check_presence(server, bob, ch, [members[0], members[1],
                                           member(carol.client_id, "carol")])


@runs_async
async def test_max_users_race_for_the_last_place(server):
    """Several users subscribe at once to a channel with one place left:
    exactly one gets it."""
    ch = unique("cap:race")
    ana = await user(server, "ana")
    await subscribed_then_own_join(ana, ch, "ana")
    racers = [await user(server, f"r{i}") for i in range(6)]
    replies = await asyncio.gather(*(c.call({"type": "subscribe", "channel": ch})
                                     for c in racers))
    won = [c for c, r in zip(racers, replies) if r["type"] == "subscribed"]
    lost = [r for r in replies if r["type"] != "subscribed"]
    assert len(won) == 1, replies
    for r in lost:
        assert_error(r, "channel_full")
    want = [member(ana.client_id, "ana"), member(won[0].client_id, won[0].user)]
    await check_presence(server, ana, ch, want)


# -- presence not enabled, and the HTTP routes ------------------------------------------------

@runs_async
async def test_presence_not_enabled_is_forbidden(server):
    ch = unique("plain:r")
    a, b = await user(server, "ana"), await user(server, None)
    for c in (a, b):
        assert (await c.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
    for c in (a, b):
        for kind in ("presence", "presence_stats"):
            reply = await c.call({"type": kind, "channel": ch})
            assert_error(reply, "forbidden", reply.get("id"))
            assert reply["message"] == f"presence is not enabled on {ch}", reply
    for get in (http_presence, http_presence_stats):
        status, body = await get(server, ch)
        assert_http_error(status, body, 403, "forbidden")
        assert body["message"] == f"presence is not enabled on {ch}", body
    # No join/leave either (join_leave is off), and both still subscribed.
    await marker_next(server, [a, b], ch)
    await b.close()
    await marker_next(server, [a], ch)


@runs_async
async def test_http_presence_routes_need_the_presence_scope(server):
    ch = unique("room:http")
    a = await user(server, "ana", {"name": "Ana"})
    await subscribed_then_own_join(a, ch, "ana", {"name": "Ana"})
    for get in (http_presence, http_presence_stats):
        status, body = await get(server, ch, key=None)
        assert_http_error(status, body, 401, "unauthorized")
        status, body = await get(server, ch, key="wrong-" + Keys.presence)
        assert_http_error(status, body, 401, "unauthorized")
        for key in (Keys.publish, Keys.destroy):
            status, body = await get(server, ch, key=key)
            assert_http_error(status, body, 403, "forbidden")
    # Both routes with the presence key (and with a key holding every scope).
    await check_presence(server, a, ch, [member(a.client_id, "ana", {"name": "Ana"})])
    status, body = await http_presence(server, ch, key=Keys.everything)
    assert status == 200 and body["members"] == [member(a.client_id, "ana", {"name": "Ana"})], \
        (status, body)
    # The channel written as is in the path works too (':' needs no escape).
    status, body = await ahttp(server, "GET", f"/api/channels/{ch}/presence-stats",
                               headers=bearer(Keys.presence))
    assert (status, body) == (200, {"channel": ch, "clients": 1, "users": 1}), (status, body)
    # Methods, names and namespaces.
    status, body = await ahttp(server, "POST", f"/api/channels/{q(ch)}/presence", {},
                               headers=bearer(Keys.presence))
    assert status == 405, (status, body)
    status, body = await http_presence(server, "nowhere:" + ch.split(":", 1)[1])
    assert_http_error(status, body, 404, "unknown_channel")
    status, body = await http_presence(server, "room:bad name")
    assert_http_error(status, body, 400, "bad_request")
    # The refused requests changed nothing: ana is alone and got nothing.
    await marker_next(server, [a], ch)
    await check_presence(server, a, ch, [member(a.client_id, "ana", {"name": "Ana"})])
