# Presence across several Herald nodes on one Redis (engine.type = "redis";
# docs/protocol.md section 13, "Several nodes"): real herald processes on one
# real redis-server started by the test. Members subscribed on different
# nodes are all listed by `presence`/`presence_stats` on any node (WebSocket
# and HTTP); a join or leave on one node reaches the channel's subscribers on
# the others; a node killed with SIGKILL stops refreshing its members, which
# disappear from every other node's presence within
# engine.redis_presence_ttl_ms (and a live node's members outlast several
# ttls: they are refreshed); a destroy empties presence on every node, a
# dead node's members included, at once; Redis down makes presence
# `unavailable`. Each was seen failing with its rule disabled (no refresh,
# no J2/L2 broadcast, no expiry check on read, remove.lua keeping the hash).
import asyncio
import time

import pytest

from authkit import NO_AUTH_FAILURE_LIMIT, auth_key, login, new_secret, table, token
from harness import HeraldServer, WSClient, assert_error, runs_async, unique
from presencekit import (API_KEYS, assert_members, check_presence, expect_next, http_destroy,
                         http_presence, join_msg, leave_msg, member, subscribed_then_own_join,
                         sync_all, ws_presence)
from test_redis_engine import DurableRedis
from test_redis_nodes import start_nodes as start_redis_nodes, stop_nodes

SECRET = new_secret()
TTL_MS = 1500  # short, so that a killed node's members go within the test


def config(redis_port: int) -> str:
    return (
        table("[engine]", type="redis", redis_url=f"redis://127.0.0.1:{redis_port}",
              redis_command_timeout_ms=1000, redis_reconnect_max_ms=200,
              redis_presence_ttl_ms=TTL_MS)
        + auth_key("app", ["HS256"], secret=SECRET)
        + NO_AUTH_FAILURE_LIMIT
        + API_KEYS
        + table("[defaults]", allow_unknown=False)
        + table("[namespaces.room]", anonymous=True, presence=True, join_leave=True)
    )


def start_nodes(redis_port: int, n: int, name: str) -> list[HeraldServer]:
    return start_redis_nodes(redis_port, n, name, config(redis_port))


async def user(node: HeraldServer, sub: str | None, info=None) -> WSClient:
    c = await login(node, token(SECRET, "HS256", sub=sub, info=info) if sub else None)
    c.info = info
    return c


async def eventually_members(node: HeraldServer, ch: str, want: list,
                             timeout: float = 5.0, reconnecting: bool = False) -> float:
    """Polls HTTP presence on `node` until it lists exactly `want`; returns
    when (time.monotonic()). Another node's write may still be on its way
    to Redis when its client got its reply, hence the poll. `reconnecting`:
    503 unavailable is also polled through (Redis just restarted)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = await http_presence(node, ch)
        if reconnecting and status == 503 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            continue
        assert status == 200, (status, body)
        try:
            assert_members(body["members"], want)
            return time.monotonic()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


@runs_async
async def test_presence_on_any_node_lists_the_members_of_every_node(redis_server):
    nodes = start_nodes(redis_server.port, 3, "pres-all")
    try:
        ch = unique("room:all")
        ana = await user(nodes[0], "ana", {"name": "Ana"})
        bob = await user(nodes[1], "bob")
        anon = await user(nodes[2], None)
        ana2 = await user(nodes[2], "ana", {"name": "Ana"})  # a second tab, on another node
        clients = [ana, bob, anon, ana2]
        for c in clients:
            reply = await c.call({"type": "subscribe", "channel": ch})
            assert reply["type"] == "subscribed", reply
        want = [member(ana.client_id, "ana", {"name": "Ana"}), member(bob.client_id, "bob"),
                member(anon.client_id), member(ana2.client_id, "ana", {"name": "Ana"})]
        for node in nodes:
            await eventually_members(node, ch, want)
        # Every route on every node: WS presence and presence_stats, HTTP both
        # (2 users: ana's two tabs count once, the anonymous one not at all).
        for node, c in zip(nodes, [ana, bob, anon]):
            await check_presence(node, c, ch, want)

        # A member that leaves is gone on every node.
        reply = await bob.call({"type": "unsubscribe", "channel": ch})
        assert reply["type"] == "unsubscribed", reply
        want = [m for m in want if m["client"] != bob.client_id]
        for node in nodes:
            await eventually_members(node, ch, want)
        for c in clients:
            await c.close()
        for node in nodes:
            await eventually_members(node, ch, [])
    finally:
        stop_nodes(nodes)


@runs_async
async def test_join_and_leave_reach_subscribers_on_the_other_nodes(redis_server):
    nodes = start_nodes(redis_server.port, 2, "pres-jl")
    try:
        ch = unique("room:jl")
        ana = await user(nodes[0], "ana")
        await subscribed_then_own_join(ana, ch, "ana")
        # Node 0 receives the channel's pub/sub messages from now on: an event
        # published on node 1 reached ana.
        await sync_all(nodes[1], [ana], ch)

        bob = await user(nodes[1], "bob", {"name": "Bob"})
        await subscribed_then_own_join(bob, ch, "bob", {"name": "Bob"})
        await expect_next(ana, join_msg(ch, bob.client_id, "bob", {"name": "Bob"}))
        # Node 1 receives the channel's pub/sub messages too.
        await sync_all(nodes[0], [ana, bob], ch, allowed=())

        # A second tab of bob, on node 1: user_joined is false there, and here.
        bob2 = await user(nodes[1], "bob")
        await subscribed_then_own_join(bob2, ch, "bob", user_joined=False)
        await expect_next(bob, join_msg(ch, bob2.client_id, "bob", user_joined=False))
        await expect_next(ana, join_msg(ch, bob2.client_id, "bob", user_joined=False))

        # ana's join on node 0 was before bob subscribed: bob is not told of it.
        # A new member on node 0 reaches both of node 1's.
        cy = await user(nodes[0], "cy")
        await subscribed_then_own_join(cy, ch, "cy")
        await expect_next(ana, join_msg(ch, cy.client_id, "cy"))
        for c in (bob, bob2):
            await expect_next(c, join_msg(ch, cy.client_id, "cy"))

        reply = await bob2.call({"type": "unsubscribe", "channel": ch})
        assert reply["type"] == "unsubscribed", reply
        for c in (ana, cy, bob):
            await expect_next(c, leave_msg(ch, bob2.client_id, "bob", user_left=False))
        await bob.close()
        for c in (ana, cy):
            await expect_next(c, leave_msg(ch, bob.client_id, "bob", {"name": "Bob"}))
        await cy.close()
        await expect_next(ana, leave_msg(ch, cy.client_id, "cy"))
        # Nothing else (no echo of node 0's own joins and leaves back to it).
        await sync_all(nodes[1], [ana], ch, allowed=())
        await ana.close()
    finally:
        stop_nodes(nodes)


@runs_async
async def test_members_of_a_killed_node_disappear_within_the_ttl(redis_server):
    nodes = start_nodes(redis_server.port, 3, "pres-kill")
    try:
        ch = unique("room:kill")
        ana = await user(nodes[0], "ana")
        bob = await user(nodes[1], "bob")
        cy = await user(nodes[2], "cy")
        for c in (ana, bob, cy):
            reply = await c.call({"type": "subscribe", "channel": ch})
            assert reply["type"] == "subscribed", reply
        everyone = [member(ana.client_id, "ana"), member(bob.client_id, "bob"),
                    member(cy.client_id, "cy")]
        await eventually_members(nodes[0], ch, everyone)

        # Live nodes refresh their members: after several ttls all are there.
        await asyncio.sleep(3 * TTL_MS / 1000)
        await eventually_members(nodes[0], ch, everyone, timeout=0)

        nodes[1].kill()  # SIGKILL: no unsubscribe, no HDEL
        killed_at = time.monotonic()
        survivors = [m for m in everyone if m["client"] != bob.client_id]
        for node in (nodes[0], nodes[2]):
            gone_at = await eventually_members(node, ch, survivors, timeout=TTL_MS / 1000 + 2)
            assert gone_at - killed_at <= TTL_MS / 1000 + 0.5, gone_at - killed_at
        reply = await ws_presence(cy, ch)
        assert_members(reply["members"], survivors)
        assert reply["complete"] is True
        # The expired field was deleted from Redis by the read.
        key = f"herald:{{{ch}}}:presence"
        assert sorted(k.decode() for k in redis_server.client.hkeys(key)) == \
            sorted(m["client"] for m in survivors)
        for c in (ana, cy):
            await c.close()
    finally:
        for s in (nodes[0], nodes[2]):
            s.stop_checked()
        nodes[1].kill()


@runs_async
async def test_destroy_empties_presence_on_every_node(redis_server):
    nodes = start_nodes(redis_server.port, 2, "pres-destroy")
    try:
        ch = unique("room:destroy")
        ana = await user(nodes[0], "ana")
        await subscribed_then_own_join(ana, ch, "ana")
        await sync_all(nodes[1], [ana], ch)  # node 0 watches the channel
        bob = await user(nodes[1], "bob")
        await subscribed_then_own_join(bob, ch, "bob")
        await expect_next(ana, join_msg(ch, bob.client_id, "bob"))
        await sync_all(nodes[0], [ana, bob], ch, allowed=())  # node 1 watches it too
        for node in nodes:
            await eventually_members(node, ch, [member(ana.client_id, "ana"),
                                                member(bob.client_id, "bob")])

        status, body = await http_destroy(nodes[0], ch)
        assert status == 200, (status, body)
        for c in (ana, bob):
            msg = await c.recv()
            assert msg == {"type": "unsubscribed", "channel": ch, "reason": "destroyed"}, msg
        for node in nodes:
            status, body = await http_presence(node, ch)
            assert status == 200 and body["members"] == [], (status, body)
        # And it stays empty: no refresh writes the destroyed members back.
        await asyncio.sleep(TTL_MS / 1000)
        assert redis_server.client.hlen(f"herald:{{{ch}}}:presence") == 0
        for node in nodes:
            status, body = await http_presence(node, ch)
            assert status == 200 and body["members"] == [], (status, body)
        for c in (ana, bob):
            await c.close()
    finally:
        stop_nodes(nodes)


@runs_async
async def test_presence_is_unavailable_while_redis_is_down():
    r = DurableRedis()
    nodes = []
    try:
        nodes = start_nodes(r.port, 1, "pres-down")
        ch = unique("room:down")
        ana = await user(nodes[0], "ana")
        reply = await ana.call({"type": "subscribe", "channel": ch})
        assert reply["type"] == "subscribed", reply
        await eventually_members(nodes[0], ch, [member(ana.client_id, "ana")])
        r.kill()
        reply = await ana.call({"type": "presence", "channel": ch})
        assert_error(reply, "unavailable")
        status, body = await http_presence(nodes[0], ch)
        assert status == 503 and body["code"] == "unavailable", (status, body)
        r.restart()  # AOF: ana is still there (and refreshed again)
        await eventually_members(nodes[0], ch, [member(ana.client_id, "ana")], timeout=10,
                                 reconnecting=True)
        await ana.close()
    finally:
        stop_nodes(nodes)
        r.stop()


@runs_async
async def test_destroy_removes_a_dead_nodes_members_at_once(redis_server):
    # remove.lua deletes the whole hash: a killed node's members, which
    # nobody would delete otherwise, go with the destroy, not a ttl later.
    nodes = start_nodes(redis_server.port, 2, "pres-dead")
    try:
        ch = unique("room:dead")
        ana = await user(nodes[0], "ana")
        bob = await user(nodes[1], "bob")
        for c in (ana, bob):
            reply = await c.call({"type": "subscribe", "channel": ch})
            assert reply["type"] == "subscribed", reply
        await eventually_members(nodes[0], ch, [member(ana.client_id, "ana"),
                                                member(bob.client_id, "bob")])
        nodes[1].kill()
        status, body = await http_destroy(nodes[0], ch)
        assert status == 200, (status, body)
        status, body = await http_presence(nodes[0], ch)
        assert status == 200 and body["members"] == [], (status, body)
        await ana.close()
    finally:
        nodes[0].stop_checked()
        nodes[1].kill()
