# Helpers of the presence and channel-lifecycle integration tests
# (test_presence.py, test_lifecycle.py; docs/protocol.md section 13): API
# keys per scope, the HTTP routes of presence, destroy, the channel list and
# the server info, exact checks of join/leave/presence messages (fields and
# their order, section 7), and a raw WebSocket member (RawWS) that can vanish
# without a close frame.
from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import time
import urllib.parse

from authkit import ahttp, table
from harness import OP_CLOSE, OP_TEXT, RECV_TIMEOUT, RawWS, WSClient


class Keys:
    """One API key per scope, and one with every scope."""
    presence = "pres-" + secrets.token_hex(16)
    destroy = "dest-" + secrets.token_hex(16)
    admin = "admin-" + secrets.token_hex(16)
    publish = "pub-" + secrets.token_hex(16)
    everything = "all-" + secrets.token_hex(16)


API_KEYS = (
    table("[[api.keys]]", name="presence", key=Keys.presence, scopes=["presence"])
    + table("[[api.keys]]", name="destroy", key=Keys.destroy, scopes=["destroy"])
    + table("[[api.keys]]", name="admin", key=Keys.admin, scopes=["admin"])
    + table("[[api.keys]]", name="publish", key=Keys.publish, scopes=["publish", "history"])
    + table("[[api.keys]]", name="all", key=Keys.everything,
            scopes=["publish", "history", "admin", "presence", "destroy"])
)


def bearer(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


def q(channel: str) -> str:
    return urllib.parse.quote(channel, safe="")


# -- HTTP routes ------------------------------------------------------------------

async def http_presence(server, ch: str, key: str | None = Keys.presence) -> tuple[int, dict]:
    return await ahttp(server, "GET", f"/api/channels/{q(ch)}/presence", headers=bearer(key))


async def http_presence_stats(server, ch: str,
                              key: str | None = Keys.presence) -> tuple[int, dict]:
    return await ahttp(server, "GET", f"/api/channels/{q(ch)}/presence-stats",
                       headers=bearer(key))


async def http_destroy(server, ch: str, body=None, key: str | None = Keys.destroy,
                       raw_body: bytes | None = None) -> tuple[int, dict]:
    return await ahttp(server, "DELETE", f"/api/channels/{q(ch)}", body, headers=bearer(key),
                       raw_body=raw_body)


async def http_publish(server, ch: str, data, event: str = "msg",
                       key: str | None = Keys.publish) -> dict:
    status, body = await ahttp(server, "POST", "/api/publish",
                               {"channel": ch, "event": event, "data": data},
                               headers=bearer(key))
    assert status == 200, (status, body)
    return body


async def http_history(server, ch: str, key: str | None = Keys.publish) -> dict:
    status, body = await ahttp(server, "GET", f"/api/channels/{q(ch)}/history",
                               headers=bearer(key))
    assert status == 200, (status, body)
    return body


def assert_http_error(status: int, body: dict, want_status: int, code: str) -> None:
    assert status == want_status, (status, body)
    assert body.get("type") == "error" and body.get("code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body


# -- exact messages -----------------------------------------------------------------

def member(client: str, user: str | None = None, info=None) -> dict:
    m = {"client": client}
    if user is not None:
        m["user"] = user
    if info is not None:
        m["info"] = info
    return m


def join_msg(ch: str, client: str, user: str | None = None, info=None,
             user_joined: bool = True) -> dict:
    return {"type": "join", "channel": ch, **member(client, user, info)} | \
        {"user_joined": user_joined}


def leave_msg(ch: str, client: str, user: str | None = None, info=None,
              user_left: bool = True) -> dict:
    return {"type": "leave", "channel": ch, **member(client, user, info)} | \
        {"user_left": user_left}


def assert_exact(msg: dict, want: dict) -> None:
    """Same fields, same values, and the fields in the order of section 7."""
    assert msg == want, f"expected {want}\n     got {msg}"
    assert list(msg) == list(want), f"fields out of order: {list(msg)}, expected {list(want)}"


def by_client(members: list) -> list:
    return sorted(members, key=lambda m: m["client"])


def assert_members(got: list, want: list) -> None:
    assert isinstance(got, list), got
    clients = [m["client"] for m in got]
    assert len(clients) == len(set(clients)), f"a client listed twice: {got}"
    assert by_client(got) == by_client(want), \
        f"members differ:\n  got  {by_client(got)}\n  want {by_client(want)}"
    for m in got:
        assert list(m) == [k for k in ("client", "user", "info") if k in m], m


def stats_of(members: list) -> dict:
    return {"clients": len(members),
            "users": len({m["user"] for m in members if "user" in m})}


async def ws_presence(c: WSClient, ch: str) -> dict:
    reply = await c.call({"type": "presence", "channel": ch})
    assert reply["type"] == "presence", reply
    assert list(reply) == ["type", "id", "channel", "members", "complete"], reply
    assert reply["channel"] == ch, reply
    return reply


async def ws_stats(c: WSClient, ch: str) -> dict:
    reply = await c.call({"type": "presence_stats", "channel": ch})
    assert reply["type"] == "presence_stats", reply
    assert list(reply)[:4] == ["type", "id", "channel", "clients"], reply
    assert reply["channel"] == ch, reply
    return reply


async def check_presence(server, c: WSClient, ch: str, want: list, *,
                         complete: bool = True) -> None:
    """WS presence, WS presence_stats, HTTP presence and presence-stats all
    answer exactly `want` (a list of members)."""
    reply = await ws_presence(c, ch)
    assert reply["complete"] is complete, reply
    assert_members(reply["members"], want)
    stats = await ws_stats(c, ch)
    assert {k: stats[k] for k in stats if k not in ("type", "id", "channel")} == stats_of(want), \
        (stats, want)
    status, body = await http_presence(server, ch)
    assert status == 200, (status, body)
    assert set(body) == {"channel", "members", "complete"}, body
    assert body["channel"] == ch and body["complete"] is complete, body
    assert_members(body["members"], want)
    status, body = await http_presence_stats(server, ch)
    assert status == 200, (status, body)
    assert body == {"channel": ch, **stats_of(want)}, (body, want)


async def subscribed_then_own_join(c: WSClient, ch: str, user: str | None = None, info=None,
                                   user_joined: bool = True, **fields) -> dict:
    """Subscribes; the next two messages must be the `subscribed` reply and
    then the connection's own join (nothing in between)."""
    assert not c.backlog, f"unread messages before subscribing: {c.backlog}"
    msg_id = c.new_id()
    await c.send({"type": "subscribe", "id": msg_id, "channel": ch, **fields})
    reply = await c.recv()
    assert reply["type"] == "subscribed" and reply.get("id") == msg_id, \
        f"expected the subscribed reply first, got {reply}"
    own = await c.recv()
    assert_exact(own, join_msg(ch, c.client_id, user, info, user_joined))
    return reply


async def expect_next(c: WSClient, want: dict, timeout: float = RECV_TIMEOUT) -> dict:
    msg = await c.recv(timeout)
    assert_exact(msg, want)
    return msg


async def read_until_marker(c: WSClient, ch: str, mark, allowed=("join",),
                            timeout: float = RECV_TIMEOUT) -> list:
    """Reads until the event carrying `mark`; every message before it must
    be of a type in `allowed`; returns them."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        msg = await c.recv(max(0.01, deadline - time.monotonic()))
        if msg["type"] == "event" and msg.get("channel") == ch and msg.get("data") == mark:
            return seen
        assert msg["type"] in allowed, f"unexpected {msg} before the marker (seen {seen})"
        seen.append(msg)


async def sync_all(server, clients: list, ch: str, allowed=("join",)) -> list:
    """Publishes a marker on `ch` (HTTP) and reads every client up to it."""
    mark = {"marker": os.urandom(4).hex()}
    await http_publish(server, ch, mark, event="marker")
    return await asyncio.gather(*(read_until_marker(c, ch, mark, allowed) for c in clients))


def final_event(ch: str, event: str, data) -> dict:
    """The shape of a destroy/expiry final event, `ts` left to fill."""
    return {"type": "event", "channel": ch, "event": event, "ts": None, "data": data}


def assert_final_event(msg: dict, ch: str, event: str, data) -> None:
    assert msg.get("type") == "event", f"expected the final event, got {msg}"
    assert isinstance(msg.get("ts"), int) and msg["ts"] > 1_600_000_000_000, msg
    want = final_event(ch, event, data) | {"ts": msg["ts"]}
    assert_exact(msg, want)  # so: no offset, no from


# -- a member over a raw socket --------------------------------------------------------

class RawMember:
    """A protocol client over RawWS (blocking; call its methods through
    asyncio.to_thread). It can vanish without a close frame (shutdown of the
    TCP socket) or simply stop reading and answering."""

    def __init__(self, port: int, tok: str | None = None):
        self.ws = RawWS(port)
        self.next_id = 0
        self.client_id = None
        reply = self.call_many([{"type": "connect", **({"token": tok} if tok else {})}])[0]
        assert reply["type"] == "connected", reply
        self.client_id = reply["client"]

    def call_many(self, msgs: list, timeout: float = RECV_TIMEOUT) -> list:
        """Sends every message with a fresh id, without waiting, then reads
        until each has its reply; other messages are dropped."""
        ids = []
        for m in msgs:
            self.next_id += 1
            ids.append(self.next_id)
            self.ws.send_text(json.dumps({**m, "id": self.next_id}))
        replies = {}
        deadline = time.monotonic() + timeout
        while len(replies) < len(ids):
            left = deadline - time.monotonic()
            assert left > 0, f"raw member: no replies to {ids} within {timeout}s: {replies}"
            fin, op, payload = self.ws.read_frame(left)
            assert op != OP_CLOSE, f"raw member closed by the server: {payload!r}"
            if op != OP_TEXT:
                continue
            msg = json.loads(payload)
            if msg.get("id") in ids:
                replies[msg["id"]] = msg
        return [replies[i] for i in ids]

    def vanish(self) -> None:
        """Ends the TCP connection without a WebSocket close frame."""
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ws.close()
