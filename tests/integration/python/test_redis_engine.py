# engine.type = "redis" end to end (issue 13): the real herald binary on a
# real redis-server that the test starts (redis_kit.RedisServer, its own port
# and temp dir). One node here: what a user of one node sees (publish,
# history, recovery, idempotency keys, destroy, Redis going away and coming
# back). Several nodes: test_redis_nodes.py.
import asyncio
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
import redis

from harness import HeraldServer, WSClient, assert_error, http_publish, runs_async, toml_config, unique
from redis_kit import RedisServer, channel_keys, free_port


class DurableRedis(RedisServer):
    """RedisServer with AOF and fsync on every write (what Redis acknowledged
    survives its restart), which can be killed and started again on the same
    port and directory. `aof=False`: snapshots only, taken when the test
    calls SAVE (a restart goes back to the last one)."""

    def __init__(self, aof: bool = True):  # noqa: the parent's start-up is not used (no AOF there)
        self.dir = tempfile.mkdtemp(prefix="herald-redis-")
        self.port = free_port()
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                     "--dir", self.dir, "--save", "", "--appendonly", "yes" if aof else "no",
                     "--appendfsync", "always", "--logfile", os.path.join(self.dir, "redis.log")]
        self.client = self.connect()
        self.restart()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def restart(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                assert time.time() < deadline and self.proc.poll() is None, self.log()
                time.sleep(0.02)


def redis_config(redis_port: int, history_size: int = 100, **engine) -> str:
    return toml_config(
        engine={"type": "redis", "redis_url": f"redis://127.0.0.1:{redis_port}",
                "redis_command_timeout_ms": 1000, "redis_reconnect_max_ms": 200, **engine},
        history={"size": history_size},
        defaults={"allow_unknown": True},
    )


def post(server: HeraldServer, path: str, body: dict, headers=None) -> tuple[int, dict]:
    req = urllib.request.Request(server.http_url(path), data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@runs_async
async def test_publish_history_recover_and_keys_on_redis(redis_server):
    srv = HeraldServer(redis_config(redis_server.port), name="redis-one").start()
    try:
        ch = unique("room:r")
        sub, _ = await WSClient.connected(srv)
        got = await sub.call({"type": "subscribe", "channel": ch})
        assert got["type"] == "subscribed" and got["offset"] == 0, got
        epoch = got["epoch"]

        pub, _ = await WSClient.connected(srv)
        for i in range(3):
            ack = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": {"i": i}})
            assert ack["type"] == "ack" and ack["offset"] == i + 1, ack
        status, body = http_publish(srv, ch, {"i": 3})
        assert status == 200 and body["offset"] == 4, body
        live = [await sub.recv() for _ in range(4)]
        assert [(m["type"], m["offset"], m["data"]["i"]) for m in live] == \
            [("event", n + 1, n) for n in range(4)], live

        # The events are in Redis, in the channel's stream, under its hash tag.
        r = redis_server.client
        assert r.xlen(channel_keys(ch)[1]) == 4
        assert r.hget(channel_keys(ch)[0], "epoch").decode() == epoch

        # History and recovery come from the stream.
        hist = await pub.call({"type": "history", "channel": ch, "limit": 2})
        assert [e["offset"] for e in hist["events"]] == [3, 4] and hist["epoch"] == epoch, hist
        again, _ = await WSClient.connected(srv)
        rec = await again.call({"type": "subscribe", "channel": ch,
                                "recover": {"epoch": epoch, "offset": 1}})
        assert rec["recovered"] is True and [e["offset"] for e in rec["events"]] == [2, 3, 4], rec

        # An idempotency key is honoured by publish.lua: the replay stores nothing.
        first = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": 5,
                                "idempotency_key": "k-5"})
        replay = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": 5,
                                 "idempotency_key": "k-5"})
        assert first["offset"] == 5 and replay["offset"] == 5 and replay.get("replayed") is True
        conflict = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": 6,
                                   "idempotency_key": "k-5"})
        assert_error(conflict, "idempotency_conflict")
        assert r.xlen(channel_keys(ch)[1]) == 5
        ev = await sub.recv()
        assert ev["offset"] == 5
        with pytest.raises(AssertionError, match="no message"):
            await sub.recv(timeout=0.3)  # the replay was not delivered again
        for c in (sub, pub, again):
            await c.close()
    finally:
        srv.stop_checked()


@pytest.fixture
def durable_redis():
    r = DurableRedis()
    try:
        yield r
    finally:
        r.stop()


@runs_async
async def test_redis_down_refuses_with_unavailable_and_nothing_acknowledged_is_lost(durable_redis):
    redis_server = durable_redis
    srv = HeraldServer(redis_config(redis_server.port), name="redis-down").start()
    try:
        ch = unique("room:d")
        sub, _ = await WSClient.connected(srv)
        assert (await sub.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
        pub, _ = await WSClient.connected(srv)
        acked = []
        for i in range(5):
            ack = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": i})
            acked.append(ack["offset"])
        for _ in range(5):
            await sub.recv()

        redis_server.kill()
        refused = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": "x"})
        assert_error(refused, "unavailable")
        status, body = http_publish(srv, ch, "y")
        assert status == 503 and body["code"] == "unavailable", (status, body)
        hist = await pub.call({"type": "history", "channel": ch})
        assert_error(hist, "unavailable")
        # Nothing was delivered; the subscriber stays connected (it gets the
        # next event below on the same connection).
        with pytest.raises(AssertionError, match="no message"):
            await sub.recv(timeout=0.3)

        redis_server.restart()
        ack = None
        for _ in range(100):  # the node reconnects with backoff (<= 200 ms here)
            ack = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": 5})
            if ack["type"] == "ack":
                break
            assert_error(ack, "unavailable")
            await asyncio.sleep(0.1)
        assert ack["type"] == "ack" and ack["offset"] == 6, ack
        hist = await pub.call({"type": "history", "channel": ch})
        assert [e["data"] for e in hist["events"]] == [0, 1, 2, 3, 4, 5], hist
        ev = await sub.recv()
        assert ev["offset"] == 6 and ev["data"] == 5, ev
        await sub.close()
        await pub.close()
    finally:
        srv.stop_checked()


def test_unreachable_redis_stops_start_up_without_showing_the_password():
    port = free_port()  # nothing listens there
    srv = HeraldServer(toml_config(engine={"type": "redis",
                                           "redis_url": f"redis://app:s3cret@127.0.0.1:{port}",
                                           "redis_connect_timeout_ms": 500}),
                       name="redis-unreachable")
    with pytest.raises(AssertionError):
        srv.start()
    log = srv.log_text()
    assert f"127.0.0.1:{port}" in log and "redis" in log, log
    assert "s3cret" not in log, log


@runs_async
async def test_redis_back_from_an_older_snapshot_gives_the_channel_a_new_epoch():
    # Redis restarted from a snapshot taken before the last acknowledged
    # events: its `last` went back, and the next publishes would get the lost
    # events' offsets under the same epoch, so a client that saw those
    # offsets would skip the new events. The node watching the channel sees
    # it (its check after the pub/sub reconnect, or its own append's offset)
    # and gives the channel a new epoch: subscribers resubscribe, their
    # recovery says `recovered: false`, and the new events come under it.
    rs = DurableRedis(aof=False)
    srv = HeraldServer(redis_config(rs.port), name="redis-rollback").start()
    try:
        ch = unique("room:rb")
        sub, _ = await WSClient.connected(srv)
        got = await sub.call({"type": "subscribe", "channel": ch})
        epoch = got["epoch"]
        for i in range(5):
            status, body = http_publish(srv, ch, i)
            assert status == 200 and body["offset"] == i + 1, body
            if i == 2:
                rs.client.save()  # the snapshot holds offsets 1-3
        assert [(await sub.recv())["offset"] for _ in range(5)] == [1, 2, 3, 4, 5]

        rs.kill()
        rs.restart()
        assert int(rs.client.hget(channel_keys(ch)[0], "last")) == 3  # 4 and 5 are lost
        # The node reconnects (<= 200 ms), checks the channel, and ends the
        # subscription, asking to subscribe again.
        gone = await sub.recv(timeout=10)
        assert gone == {"type": "unsubscribed", "channel": ch, "reason": "resubscribe"}, gone
        again = await sub.call({"type": "subscribe", "channel": ch,
                                "recover": {"epoch": epoch, "offset": 5}})
        assert again["type"] == "subscribed" and again["recovered"] is False, again
        assert again["epoch"] != epoch and again["offset"] == 3, again
        assert rs.client.hget(channel_keys(ch)[0], "epoch").decode() == again["epoch"]

        status, body = http_publish(srv, ch, "after")
        assert status == 200 and body["offset"] == 4, body
        ev = await sub.recv()
        assert (ev["offset"], ev["data"]) == (4, "after"), ev
        await sub.close()
    finally:
        srv.stop_checked()
        rs.stop()
