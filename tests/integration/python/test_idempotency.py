# Exactly-once publish (issue 12, /work/notes/idempotency-spec.md) against the
# real binary: `idempotency_key` on the WebSocket `publish` and on
# POST /api/publish (body field or `Idempotency-Key` header). A replay within
# the namespace's idempotency_window_ms answers the original offset with
# `replayed: true` and stores and delivers nothing; the same key for another
# user, event or data bytes is `idempotency_conflict` (HTTP 409); after the
# window the key is new again; keys are per channel; bad keys are
# `bad_request` naming `idempotency_key`; with sqlite the keys survive a
# restart and a SIGKILL between commit and ack (publishers retry with the same
# keys and every event is stored exactly once), and a destroyed channel
# forgets its keys. Every refusal also checks that nothing was delivered or
# stored (and that the next publish gets the next offset: no gap).
import asyncio
import json
import os
import signal
import time
from urllib.parse import quote

import pytest
import websockets.exceptions

from authkit import (NO_AUTH_FAILURE_LIMIT, ahttp, assert_quiet, auth_key, http, login,
                     new_secret, next_event, table, token)
from harness import Closed, HeraldServer, WSClient, assert_error, runs_async, toml_config, unique

SECRET = new_secret()
WINDOW_MS = 1000

CONFIG = (
    "[engine]\ntype = \"memory\"\n\n"
    + auth_key("app", ["HS256"], secret=SECRET)
    + NO_AUTH_FAILURE_LIMIT
    + table("[defaults]", anonymous=True)
    + table("[namespaces.short]", anonymous=True, idempotency_window_ms=WINDOW_MS)
)


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(CONFIG, name="idempotency", workers=2)
    srv.start()
    yield srv
    srv.stop_checked()


def tok(sub: str) -> str:
    return token(SECRET, "HS256", sub=sub)


# -- helpers ------------------------------------------------------------------------------

def publish_msg(ch: str, data, key=None, event: str = "msg", **fields) -> dict:
    msg = {"type": "publish", "channel": ch, "event": event, "data": data}
    if key is not None:
        msg["idempotency_key"] = key
    msg.update(fields)
    return msg


async def publish(c: WSClient, ch: str, data, key=None, event: str = "msg", **fields) -> dict:
    return await c.call(publish_msg(ch, data, key, event, **fields))


def assert_ack(reply: dict, offset: int, replayed: bool = False) -> None:
    """A first publish: exactly {"type":"ack","id":..,"offset":N}; a replay:
    exactly {"type":"ack","id":..,"offset":N,"replayed":true}, in that order."""
    assert reply.get("type") == "ack", f"expected an ack at offset {offset}, got {reply}"
    want = {"type": "ack", "id": reply.get("id"), "offset": offset}
    if replayed:
        want["replayed"] = True
    assert reply == want, f"expected {want}, got {reply}"
    assert list(reply) == list(want), f"fields out of order: {reply}"


def assert_conflict(reply: dict, key: str, ch: str, offset: int) -> None:
    assert_error(reply, "idempotency_conflict")
    msg = reply["message"]
    assert key in msg and ch in msg and f"offset {offset}" in msg, \
        f"conflict message should name key {key!r}, channel {ch!r} and offset {offset}: {reply}"


def assert_bad_key(reply: dict, prefix: str = "idempotency_key:") -> None:
    assert_error(reply, "bad_request")
    assert reply["message"].startswith(prefix), f"expected a message starting {prefix!r}: {reply}"


async def watcher(server: HeraldServer, ch: str) -> WSClient:
    w = await login(server)
    reply = await w.call({"type": "subscribe", "channel": ch})
    assert reply["type"] == "subscribed", reply
    return w


async def expect_event(c: WSClient, ch: str, offset: int, data, event: str = "msg") -> None:
    ev = await next_event(c, ch)
    assert (ev.get("offset"), ev["event"], ev["data"]) == (offset, event, data), \
        f"expected event {offset} {event} {data}, got {ev}"


async def history(server: HeraldServer, ch: str, limit: int = 1000, after: int = 0) -> dict:
    status, body = await ahttp(server, "GET",
                               f"/api/channels/{quote(ch, safe='')}/history"
                               f"?limit={limit}&after={after}")
    assert status == 200, (status, body)
    return body


async def stored(server: HeraldServer, ch: str) -> list:
    """(offset, event, data) of every stored event of the channel."""
    return [(e["offset"], e["event"], e["data"]) for e in (await history(server, ch))["events"]]


async def http_publish(server: HeraldServer, ch: str, data, key=None, event: str = "msg",
                       headers: dict | None = None, **fields) -> tuple[int, dict]:
    body = {"channel": ch, "event": event, "data": data, **fields}
    if key is not None:
        body["idempotency_key"] = key
    return await ahttp(server, "POST", "/api/publish", body, headers=headers)


async def http_destroy(server: HeraldServer, ch: str) -> dict:
    status, body = await ahttp(server, "DELETE", f"/api/channels/{quote(ch, safe='')}")
    assert status == 200, (status, body)
    return body


# -- WebSocket: replay, conflict, window, bad keys -----------------------------------------

@runs_async
async def test_ws_replay_returns_the_original_offset_and_stores_nothing(server):
    ch = unique("idem")
    w = await watcher(server, ch)
    p = await watcher(server, ch)  # the publisher is subscribed too
    other = await login(server)    # another anonymous connection: the same user ""
    data = {"text": "hi", "n": 1}

    r = await publish(p, ch, data, key="k-1")
    assert_ack(r, 1)
    await expect_event(p, ch, 1, data)  # the publisher got its event before the ack
    await expect_event(w, ch, 1, data)

    assert_ack(await publish(p, ch, data, key="k-1"), 1, replayed=True)
    assert_ack(await publish(other, ch, data, key="k-1"), 1, replayed=True)
    assert_ack(await publish(p, ch, data, key="k-1", id="str-id"), 1, replayed=True)

    # Nothing was delivered by the replays, and the next publish gets offset 2.
    assert_ack(await publish(p, ch, {"plain": True}), 2)
    await expect_event(w, ch, 2, {"plain": True})
    await expect_event(p, ch, 2, {"plain": True})
    assert_ack(await publish(p, ch, data, key="k-2"), 3)
    await expect_event(w, ch, 3, data)
    await expect_event(p, ch, 3, data)
    assert_ack(await publish(other, ch, data, key="k-1"), 1, replayed=True)
    assert_ack(await publish(other, ch, data, key="k-2"), 3, replayed=True)
    assert_ack(await publish(other, ch, {"plain": 2}), 4)
    await expect_event(w, ch, 4, {"plain": 2})
    await expect_event(p, ch, 4, {"plain": 2})
    await assert_quiet(w)
    await assert_quiet(p)
    assert await stored(server, ch) == [(1, "msg", data), (2, "msg", {"plain": True}),
                                        (3, "msg", data), (4, "msg", {"plain": 2})]
    for c in (w, p, other):
        await c.close()


@runs_async
async def test_ws_conflicts_store_and_deliver_nothing(server):
    ch = unique("idem")
    w = await watcher(server, ch)
    ana = await login(server, tok("ana"))
    ana2 = await login(server, tok("ana"))
    bob = await login(server, tok("bob"))
    anon = await login(server)
    data = {"text": "hi"}
    key = "order-7f3a"

    assert_ack(await publish(ana, ch, data, key=key), 1)
    await expect_event(w, ch, 1, data)

    # Same key, other data / other event / same value in other bytes / other users.
    assert_conflict(await publish(ana, ch, {"text": "bye"}, key=key), key, ch, 1)
    assert_conflict(await publish(ana, ch, data, key=key, event="other"), key, ch, 1)
    raw = ('{"type":"publish","id":77,"channel":"%s","event":"msg","data":{"text":"hi"},'
           '"idempotency_key":"%s"}' % (ch, key))  # json.dumps wrote {"text": "hi"}
    await ana.send(raw)
    assert_conflict(await ana.reply_to(77), key, ch, 1)
    assert_conflict(await publish(bob, ch, data, key=key), key, ch, 1)
    assert_conflict(await publish(anon, ch, data, key=key), key, ch, 1)
    status, body = await http_publish(server, ch, data, key=key)
    assert status == 409, (status, body)
    assert_conflict(body, key, ch, 1)

    # The same user on another connection replays.
    assert_ack(await publish(ana2, ch, data, key=key), 1, replayed=True)

    # An anonymous key conflicts for a user, too.
    assert_ack(await publish(anon, ch, data, key="anon-key"), 2)
    await expect_event(w, ch, 2, data)
    assert_conflict(await publish(ana, ch, data, key="anon-key"), "anon-key", ch, 2)
    assert_ack(await publish(anon, ch, data, key="anon-key"), 2, replayed=True)

    # Nothing was stored or delivered by the refusals: the next offset is 3.
    assert_ack(await publish(bob, ch, {"plain": 1}), 3)
    await expect_event(w, ch, 3, {"plain": 1})
    await assert_quiet(w)
    assert await stored(server, ch) == [(1, "msg", data), (2, "msg", data), (3, "msg", {"plain": 1})]
    for c in (w, ana, ana2, bob, anon):
        await c.close()


@runs_async
async def test_key_is_new_again_after_the_window(server):
    ch = unique("short:w")          # idempotency_window_ms = 1000
    long_ch = unique("idem")        # default window (120 s)
    w = await watcher(server, ch)
    p = await login(server)
    a, b = {"v": "a"}, {"v": "b"}

    assert_ack(await publish(p, ch, a, key="K"), 1)
    assert_ack(await publish(p, ch, a, key="K2"), 2)
    assert_ack(await publish(p, long_ch, a, key="K"), 1)
    assert_ack(await publish(p, ch, a, key="K"), 1, replayed=True)
    assert_conflict(await publish(p, ch, b, key="K2"), "K2", ch, 2)
    await expect_event(w, ch, 1, a)
    await expect_event(w, ch, 2, a)

    await asyncio.sleep(WINDOW_MS / 1000 + 0.6)

    # Past the window: the same key stores a new event, other data too.
    assert_ack(await publish(p, ch, a, key="K"), 3)
    await expect_event(w, ch, 3, a)
    assert_ack(await publish(p, ch, a, key="K"), 3, replayed=True)
    assert_ack(await publish(p, ch, b, key="K2"), 4)
    await expect_event(w, ch, 4, b)
    # The default window of another namespace has not passed.
    assert_ack(await publish(p, long_ch, a, key="K"), 1, replayed=True)
    await assert_quiet(w)
    assert await stored(server, ch) == [(1, "msg", a), (2, "msg", a), (3, "msg", a), (4, "msg", b)]
    assert await stored(server, long_ch) == [(1, "msg", a)]
    for c in (w, p):
        await c.close()


@runs_async
async def test_bad_keys_are_refused_naming_the_field(server):
    ch = unique("idem")
    w = await watcher(server, ch)
    p = await login(server)
    d = {"x": 1}
    cases = [
        ("k" * 129, "idempotency_key: too long"),
        ("", "idempotency_key:"),
        ("a b", "idempotency_key: invalid character ' ' at 1"),
        ("ok/no", "idempotency_key: invalid character '/' at 2"),
        ("ké", "idempotency_key: invalid character 'é' at 1"),
        # Not printable: shown as a byte, as for names (docs/protocol.md section 2).
        ("tab\there", "idempotency_key: invalid byte 0x09 at 3"),
        (123, "idempotency_key: must be a string"),
        (["k"], "idempotency_key: must be a string"),
        (None, "idempotency_key:"),  # null is not "absent"
    ]
    for key, prefix in cases:
        msg = publish_msg(ch, d)
        msg["idempotency_key"] = key
        assert_bad_key(await p.call(msg), prefix)
    assert_bad_key(await publish(p, ch, d, key="k", ephemeral=True),
                   "idempotency_key: not allowed on ephemeral events")
    await p.send('{"type":"publish","id":9,"channel":"%s","event":"msg","data":1,'
                 '"idempotency_key":"a","idempotency_key":"a"}' % ch)
    assert_bad_key(await p.reply_to(9), "idempotency_key: duplicate field")
    # Over HTTP, body field and header.
    for key in ("a b", "k" * 129, ""):
        status, body = await http_publish(server, ch, d, key=key)
        assert status == 400, (status, body)
        assert_bad_key(body)
    for key in ("a b", "k" * 129, "a/b"):
        status, body = await http_publish(server, ch, d, headers={"Idempotency-Key": key})
        assert status == 400, (status, body)
        assert_error(body, "bad_request")
        assert "idempotency" in body["message"].lower(), body
    status, body = await http_publish(server, ch, d, key="k", ephemeral=True)
    assert status == 400, (status, body)
    assert_bad_key(body, "idempotency_key: not allowed on ephemeral events")
    status, body = await http_publish(server, ch, d, ephemeral=True,
                                      headers={"Idempotency-Key": "k"})
    assert status == 400, (status, body)
    assert_error(body, "bad_request")

    # Nothing was stored or delivered; the limits themselves are accepted.
    await assert_quiet(w)
    assert await stored(server, ch) == []
    assert_ack(await publish(p, ch, d, key="k" * 128), 1)
    assert_ack(await publish(p, ch, d, key="AZaz09_-.:"), 2)
    assert_ack(await publish(p, ch, d, key="0f9c5a5e-3c1b-4d8e-9a47-2b6f0c1d2e3f",
                             ephemeral=False), 3)
    assert_ack(await publish(p, ch, d, key="x"), 4)
    for off in (1, 2, 3, 4):
        await expect_event(w, ch, off, d)
    assert_ack(await publish(p, ch, d, key="k" * 128), 1, replayed=True)
    await assert_quiet(w)
    assert await stored(server, ch) == [(o, "msg", d) for o in (1, 2, 3, 4)]
    for c in (w, p):
        await c.close()


# -- HTTP ---------------------------------------------------------------------------------

@runs_async
async def test_http_body_field_and_header(server):
    ch = unique("idem")
    w = await watcher(server, ch)
    d1, d2, d3 = {"n": 1}, {"n": 2}, {"n": 3}

    assert await http_publish(server, ch, d1, key="h-1") == (200, {"offset": 1})
    assert await http_publish(server, ch, d1, key="h-1") == (200, {"offset": 1, "replayed": True})
    await expect_event(w, ch, 1, d1)

    hdr = {"Idempotency-Key": "h-2"}
    assert await http_publish(server, ch, d2, headers=hdr) == (200, {"offset": 2})
    await expect_event(w, ch, 2, d2)
    assert await http_publish(server, ch, d2, headers=hdr) == (200, {"offset": 2, "replayed": True})
    assert await http_publish(server, ch, d2, key="h-2") == (200, {"offset": 2, "replayed": True})
    assert await http_publish(server, ch, d2, key="h-2", headers=hdr) == \
        (200, {"offset": 2, "replayed": True})
    assert await http_publish(server, ch, d1, headers={"Idempotency-Key": "h-1"}) == \
        (200, {"offset": 1, "replayed": True})

    # Header and body differ: 400, and neither key is taken.
    status, body = await http_publish(server, ch, d3, key="h-4", headers={"Idempotency-Key": "h-3"})
    assert status == 400, (status, body)
    assert_error(body, "bad_request")
    assert body["message"] == "Idempotency-Key header and idempotency_key differ", body

    # Conflicts: 409.
    status, body = await http_publish(server, ch, d2, key="h-1")
    assert status == 409, (status, body)
    assert_conflict(body, "h-1", ch, 1)
    status, body = await http_publish(server, ch, d1, key="h-1", event="other")
    assert status == 409, (status, body)
    assert_conflict(body, "h-1", ch, 1)
    status, body = await http_publish(server, ch, d1, headers={"Idempotency-Key": "h-2"})
    assert status == 409, (status, body)
    assert_conflict(body, "h-2", ch, 2)

    # The refused keys are free (other data than the refused request: no conflict).
    assert await http_publish(server, ch, d1, key="h-3") == (200, {"offset": 3})
    assert await http_publish(server, ch, d1, headers={"Idempotency-Key": "h-4"}) == \
        (200, {"offset": 4})
    await expect_event(w, ch, 3, d1)
    await expect_event(w, ch, 4, d1)

    # HTTP publishes have no user, like anonymous connections: the WebSocket replays them.
    anon = await login(server)
    assert_ack(await publish(anon, ch, d1, key="h-1"), 1, replayed=True)
    assert_ack(await publish(anon, ch, {"ws": 1}, key="w-1"), 5)
    await expect_event(w, ch, 5, {"ws": 1})
    assert await http_publish(server, ch, {"ws": 1}, key="w-1") == \
        (200, {"offset": 5, "replayed": True})
    # A user's key conflicts over HTTP.
    ana = await login(server, tok("ana"))
    assert_ack(await publish(ana, ch, d1, key="ana-1"), 6)
    await expect_event(w, ch, 6, d1)
    status, body = await http_publish(server, ch, d1, key="ana-1")
    assert status == 409, (status, body)
    assert_conflict(body, "ana-1", ch, 6)

    assert await http_publish(server, ch, "plain") == (200, {"offset": 7})
    await expect_event(w, ch, 7, "plain")
    await assert_quiet(w)
    assert await stored(server, ch) == [(1, "msg", d1), (2, "msg", d2), (3, "msg", d1),
                                        (4, "msg", d1), (5, "msg", {"ws": 1}), (6, "msg", d1),
                                        (7, "msg", "plain")]
    for c in (w, anon, ana):
        await c.close()


# -- keys per channel, destroy -------------------------------------------------------------

@runs_async
async def test_keys_are_per_channel(server):
    ch1, ch2 = unique("idem"), unique("idem")
    w1, w2 = await watcher(server, ch1), await watcher(server, ch2)
    p = await login(server)
    d = {"same": "data"}
    assert_ack(await publish(p, ch2, "first"), 1)
    assert_ack(await publish(p, ch1, d, key="K"), 1)
    assert_ack(await publish(p, ch2, d, key="K"), 2)
    assert await http_publish(server, ch2, d, key="H") == (200, {"offset": 3})
    assert await http_publish(server, ch1, d, key="H") == (200, {"offset": 2})
    assert_ack(await publish(p, ch1, d, key="K"), 1, replayed=True)
    assert_ack(await publish(p, ch2, d, key="K"), 2, replayed=True)
    assert_conflict(await publish(p, ch2, "other", key="K"), "K", ch2, 2)
    await expect_event(w1, ch1, 1, d)
    await expect_event(w1, ch1, 2, d)
    await expect_event(w2, ch2, 1, "first")
    await expect_event(w2, ch2, 2, d)
    await expect_event(w2, ch2, 3, d)
    await assert_quiet(w1)
    await assert_quiet(w2)
    assert await stored(server, ch1) == [(1, "msg", d), (2, "msg", d)]
    assert await stored(server, ch2) == [(1, "msg", "first"), (2, "msg", d), (3, "msg", d)]
    for c in (w1, w2, p):
        await c.close()


@runs_async
async def test_destroy_forgets_the_channels_keys(server):
    ch = unique("idem")
    p = await login(server)
    assert_ack(await publish(p, ch, "a", key="K"), 1)
    assert_ack(await publish(p, ch, "a", key="K"), 1, replayed=True)
    epoch = (await http_destroy(server, ch))["epoch"]
    w = await watcher(server, ch)
    # Other data with the old key: no conflict, a new event.
    assert_ack(await publish(p, ch, "b", key="K"), 1)
    await expect_event(w, ch, 1, "b")
    assert_ack(await publish(p, ch, "b", key="K"), 1, replayed=True)
    await assert_quiet(w)
    h = await history(server, ch)
    assert h["epoch"] == epoch and [(e["offset"], e["data"]) for e in h["events"]] == [(1, "b")], h
    for c in (w, p):
        await c.close()


# -- sqlite --------------------------------------------------------------------------------

def sqlite_config(data_dir: str, size: int = 1000) -> str:
    return toml_config(engine={"type": "sqlite", "data_dir": data_dir},
                       history={"size": size, "max_request": 1000})


def sigterm_and_wait(srv: HeraldServer) -> None:
    srv.signal(signal.SIGTERM)
    code = srv.wait_exit(15)
    assert code == 0, f"herald exited with {code} on SIGTERM\n{srv.log_tail()}"
    srv.check_log_clean()


@runs_async
async def test_sqlite_keys_survive_a_restart_and_destroy_forgets_them(tmp_path):
    config = sqlite_config(str(tmp_path / "data"))
    ch, ch_b = unique("idem"), unique("idem")
    a, b = {"v": "a"}, {"v": "b"}
    srv = HeraldServer(config, name="idem-sqlite-1").start()
    try:
        p = await login(srv)
        assert_ack(await publish(p, ch, a, key="K1"), 1)
        assert_ack(await publish(p, ch, "plain"), 2)
        assert await http_publish(srv, ch, a, key="K2") == (200, {"offset": 3})
        assert_ack(await publish(p, ch_b, a, key="K1"), 1)
        await p.close()
        sigterm_and_wait(srv)
    finally:
        srv.kill()

    srv2 = HeraldServer(config, name="idem-sqlite-2").start()
    try:
        w = await watcher(srv2, ch)
        p = await login(srv2)
        assert_ack(await publish(p, ch, a, key="K1"), 1, replayed=True)
        assert await http_publish(srv2, ch, a, key="K2") == (200, {"offset": 3, "replayed": True})
        assert_ack(await publish(p, ch, a, key="K2"), 3, replayed=True)
        assert_conflict(await publish(p, ch, b, key="K1"), "K1", ch, 1)
        status, body = await http_publish(srv2, ch, b, headers={"Idempotency-Key": "K2"})
        assert status == 409, (status, body)
        assert_conflict(body, "K2", ch, 3)
        assert_ack(await publish(p, ch_b, a, key="K1"), 1, replayed=True)
        assert_ack(await publish(p, ch, "next"), 4)
        await expect_event(w, ch, 4, "next")
        await assert_quiet(w)
        assert await stored(srv2, ch) == [(1, "msg", a), (2, "msg", "plain"), (3, "msg", a),
                                          (4, "msg", "next")]

        # Destroy forgets the keys: other data under the old keys is a new event.
        await http_destroy(srv2, ch)
        assert_ack(await publish(p, ch, b, key="K1"), 1)
        assert_ack(await publish(p, ch, b, key="K2"), 2)
        assert await stored(srv2, ch) == [(1, "msg", b), (2, "msg", b)]
        # The other channel kept its key.
        assert_ack(await publish(p, ch_b, a, key="K1"), 1, replayed=True)
        for c in (w, p):
            await c.close()
        sigterm_and_wait(srv2)
    finally:
        srv2.kill()

    srv3 = HeraldServer(config, name="idem-sqlite-3").start()
    try:
        p = await login(srv3)
        # The keys of the new epoch survived, the destroyed ones did not come back.
        assert_ack(await publish(p, ch, b, key="K1"), 1, replayed=True)
        assert_ack(await publish(p, ch, b, key="K2"), 2, replayed=True)
        assert_conflict(await publish(p, ch, a, key="K1"), "K1", ch, 1)
        assert_ack(await publish(p, ch_b, a, key="K1"), 1, replayed=True)
        assert await stored(srv3, ch) == [(1, "msg", b), (2, "msg", b)]
        await p.close()
    finally:
        srv3.stop_checked()


N_PUB, N_EACH, KILL_AFTER_ACKS = 4, 200, 100


def crash_key(k: int, i: int) -> str:
    return f"crash-{k}-{i:03d}"


def crash_data(k: int, i: int) -> dict:
    return {"key": crash_key(k, i), "p": k, "n": i}


def crash_publish(ch: str, k: int, i: int) -> dict:
    return {"type": "publish", "id": i, "channel": ch, "event": "e", "data": crash_data(k, i),
            "idempotency_key": crash_key(k, i)}


def check_ack_shape(reply: dict, where: str) -> tuple[int, bool]:
    """(offset, replayed) of a WebSocket ack or an HTTP 200 body."""
    assert isinstance(reply.get("offset"), int), f"{where}: {reply}"
    if "replayed" in reply:
        assert reply["replayed"] is True, f"{where}: {reply}"
    return reply["offset"], reply.get("replayed", False)


@runs_async
async def test_sigkill_between_commit_and_ack_retries_store_each_event_once(tmp_path):
    """4 WebSocket publishers pipeline 200 keyed publishes each on one sqlite
    channel; the server is SIGKILLed once 100 acks were read (acks read after
    that count as lost). After a restart each publisher retries every publish
    it has no ack for, with the same key (publishers 0 and 1 over the
    WebSocket, 2 over HTTP with the body field, 3 with the header), until
    acknowledged; publisher 0 also retries its acknowledged ones."""
    config = sqlite_config(str(tmp_path / "data"), size=5000)
    ch = unique("crash")
    srv = HeraldServer(config, name="idem-crash-1").start()
    acked = [dict() for _ in range(N_PUB)]  # i -> offset, acks read before the kill
    killed = asyncio.Event()
    pubs = [await login(srv) for _ in range(N_PUB)]

    def kill_now():
        if not killed.is_set():
            srv.kill()
            killed.set()

    async def publisher(k: int):
        c = pubs[k]

        async def sender():
            try:
                for i in range(N_EACH):
                    await c.send(crash_publish(ch, k, i))
                    if i % 8 == 7:
                        # Paced, so that the kill comes while publishes are
                        # still arriving, committed and acknowledged.
                        await asyncio.sleep(0.002)
            except (websockets.exceptions.ConnectionClosed, OSError):
                if not killed.is_set():
                    raise

        task = asyncio.create_task(sender())
        try:
            while len(acked[k]) < N_EACH and not killed.is_set():
                try:
                    msg = await c.recv(timeout=30)
                except Closed:
                    if killed.is_set():
                        break
                    raise
                if killed.is_set():
                    break  # this ack is lost with the crash
                assert msg["type"] == "ack", msg
                acked[k][msg["id"]] = check_ack_shape(msg, "first publish")[0]
                assert "replayed" not in msg, msg
                if sum(len(a) for a in acked) >= KILL_AFTER_ACKS:
                    kill_now()
        finally:
            await asyncio.gather(task, return_exceptions=True)
            if c.ws.transport is not None:
                c.ws.transport.abort()

    try:
        await asyncio.gather(*(publisher(k) for k in range(N_PUB)))
    finally:
        kill_now()
        srv.kill()
    n_acked = sum(len(a) for a in acked)

    srv2 = HeraldServer(config, name="idem-crash-2").start()
    try:
        h0 = await history(srv2, ch, limit=1)
        at_restart = h0["offset"]  # events committed before the kill
        print(f"acks read before the kill: {n_acked}; committed at restart: {at_restart}")
        for k in range(N_PUB):
            for i, off in acked[k].items():
                assert off <= at_restart, f"acknowledged offset {off} lost ({at_restart} stored)"

        results = {}  # (k, i) -> (offset, replayed)

        async def retry_ws(k: int, indices: list):
            c = await login(srv2)
            pending = list(indices)
            for _attempt in range(5):
                if not pending:
                    break
                for i in pending:
                    await c.send(crash_publish(ch, k, i))
                failed = []
                for i in pending:
                    r = await c.reply_to(i, timeout=30)
                    if r["type"] == "error" and r.get("code") == "internal":
                        failed.append(i)  # retryable
                        continue
                    assert r["type"] == "ack", f"retry of {crash_key(k, i)}: {r}"
                    assert set(r) <= {"type", "id", "offset", "replayed"}, r
                    results[(k, i)] = check_ack_shape(r, f"retry of {crash_key(k, i)}")
                pending = failed
            assert not pending, f"publisher {k}: never acknowledged: {pending}"
            await c.close()

        def retry_http(k: int, indices: list, header: bool):
            for i in indices:
                for _attempt in range(5):
                    body = {"channel": ch, "event": "e", "data": crash_data(k, i)}
                    headers = None
                    if header:
                        headers = {"Idempotency-Key": crash_key(k, i)}
                    else:
                        body["idempotency_key"] = crash_key(k, i)
                    status, reply = http(srv2, "POST", "/api/publish", body, headers=headers)
                    if status == 500:
                        continue
                    assert status == 200, f"retry of {crash_key(k, i)}: {status} {reply}"
                    assert set(reply) <= {"offset", "replayed"}, reply
                    results[(k, i)] = check_ack_shape(reply, f"retry of {crash_key(k, i)}")
                    break
                else:
                    raise AssertionError(f"{crash_key(k, i)} never acknowledged over HTTP")

        unacked = [[i for i in range(N_EACH) if i not in acked[k]] for k in range(N_PUB)]
        await asyncio.gather(
            retry_ws(0, list(range(N_EACH))),  # acknowledged ones too: all must replay
            retry_ws(1, unacked[1]),
            asyncio.to_thread(retry_http, 2, unacked[2], False),
            asyncio.to_thread(retry_http, 3, unacked[3] + sorted(acked[3])[:20], True))

        # History: every key exactly once, nothing missing, contiguous offsets.
        events = []
        while True:
            h = await history(srv2, ch, limit=1000, after=events[-1]["offset"] if events else 0)
            if not h["events"]:
                break
            events += h["events"]
        assert h["epoch"] == h0["epoch"]
        offsets = [e["offset"] for e in events]
        assert offsets == list(range(1, len(events) + 1)), "offsets not contiguous"
        keys = [e["data"]["key"] for e in events]
        dupes = sorted({x for x in keys if keys.count(x) > 1})
        assert not dupes, f"stored more than once: {dupes[:10]} ({len(dupes)} keys)"
        want = {crash_key(k, i) for k in range(N_PUB) for i in range(N_EACH)}
        missing = sorted(want - set(keys))
        assert not missing, f"never stored: {missing[:10]} ({len(missing)} keys)"
        assert len(events) == N_PUB * N_EACH
        by_key = {e["data"]["key"]: e for e in events}
        for k in range(N_PUB):
            for i in range(N_EACH):
                assert by_key[crash_key(k, i)]["data"] == crash_data(k, i)
                assert by_key[crash_key(k, i)]["event"] == "e"
        # Every ack names the offset where history has the key's event.
        for k in range(N_PUB):
            for i, off in acked[k].items():
                assert keys[off - 1] == crash_key(k, i), (k, i, off, keys[off - 1])
        replays = fresh = 0
        for (k, i), (off, replayed) in results.items():
            assert keys[off - 1] == crash_key(k, i), \
                f"retry of {crash_key(k, i)} answered offset {off}, which holds {keys[off - 1]}"
            if i in acked[k]:
                assert (off, replayed) == (acked[k][i], True), (k, i, off, replayed, acked[k][i])
            # Replayed exactly when the event was committed before the kill.
            assert replayed == (off <= at_restart), (crash_key(k, i), off, replayed, at_restart)
            if i not in acked[k]:
                replays += replayed  # committed before the kill, ack lost
                fresh += not replayed
        for k in range(N_PUB):
            assert all((k, i) in results for i in unacked[k]), f"publisher {k} has unacked events"
        print(f"retries {len(results)}; of the unacknowledged: {replays} replayed "
              f"(committed, ack lost), {fresh} stored anew")
    finally:
        srv2.stop_checked()
