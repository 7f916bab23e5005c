# The sqlite engine against the real binary: acknowledged events survive a
# SIGKILL of the server (also one in the middle of a stream of publishes from
# WebSocket and HTTP publishers), offsets continue and the epoch stays the same
# after a restart on the same data directory, recovery from before the restart
# works (also for a client that subscribed while the channel was still empty),
# subscribe-with-recover stays exact while publishes continue (reads
# that go to the database), and a corrupt database gives a clear start-up
# error instead of a crash.
import asyncio
import json
import os
import urllib.request

import pytest
import websockets.exceptions

from harness import (Closed, HeraldServer, ServerError, WSClient, runs_async, toml_config,
                     unique)


def sqlite_config(data_dir: str, size: int = 1000, **engine) -> str:
    return toml_config(engine={"type": "sqlite", "data_dir": data_dir, **engine},
                       history={"size": size, "max_request": size})


def http_publish(server: HeraldServer, channel: str, data) -> dict:
    body = json.dumps({"channel": channel, "event": "e", "data": data}).encode()
    req = urllib.request.Request(server.http_url("/api/publish"), data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def history(c: WSClient, channel: str, **query) -> dict:
    reply = await c.call({"type": "history", "channel": channel, **query})
    assert reply["type"] == "history", reply
    return reply


async def publish_pipelined(c: WSClient, channel: str, n: int, tag: str) -> dict:
    """Sends n publishes without waiting, then collects their acks: {data_n: offset}."""
    ids = {}
    for i in range(n):
        msg_id = c.new_id()
        ids[msg_id] = i
        await c.send({"type": "publish", "id": msg_id, "channel": channel, "event": "e",
                      "data": {"tag": tag, "n": i}})
    acked = {}
    for msg_id, i in ids.items():
        ack = await c.reply_to(msg_id)
        assert ack["type"] == "ack", ack
        acked[i] = ack["offset"]
    return acked


@runs_async
async def test_acknowledged_events_survive_sigkill_and_offsets_continue(tmp_path):
    data_dir = str(tmp_path / "data")
    config = sqlite_config(data_dir)
    channels = [unique("dur"), unique("dur")]
    n = 200
    srv = HeraldServer(config, name="sqlite-1").start()
    try:
        pubs = [(await WSClient.connected(srv))[0] for _ in range(2)]
        acks = await asyncio.gather(
            *(publish_pipelined(p, ch, n, f"ws{k}") for k, (p, ch) in
              enumerate(zip(pubs, channels))))
        for a in acks:
            assert sorted(a.values()) == list(range(1, n + 1))
        # Plus a few through HTTP.
        for i in range(5):
            assert http_publish(srv, channels[0], {"tag": "http", "n": i}) == {"offset": n + 1 + i}
        before = await history(pubs[0], channels[0], limit=1)
        epoch = before["epoch"]
        assert before["offset"] == n + 5
    finally:
        srv.kill()  # SIGKILL: no shutdown, no final commit

    srv2 = HeraldServer(config, name="sqlite-2").start()
    try:
        c, _ = await WSClient.connected(srv2)
        for k, ch in enumerate(channels):
            h = await history(c, ch, limit=1000)
            last = n + 5 if k == 0 else n
            assert h["epoch"] == epoch, (h["epoch"], epoch)
            assert h["offset"] == last
            assert [e["offset"] for e in h["events"]] == list(range(1, last + 1))
            for i, off in acks[k].items():
                assert h["events"][off - 1]["data"] == {"tag": f"ws{k}", "n": i}
        # Offsets continue after the restart.
        assert http_publish(srv2, channels[1], {"after": "restart"}) == {"offset": n + 1}
        # A client that had seen up to offset 150 before the restart recovers.
        sub, _ = await WSClient.connected(srv2)
        reply = await sub.call({"type": "subscribe", "channel": channels[0],
                                "recover": {"epoch": epoch, "offset": 150}})
        assert reply["type"] == "subscribed", reply
        assert reply["recovered"] is True, reply
        assert reply["epoch"] == epoch
        assert [e["offset"] for e in reply["events"]] == list(range(151, n + 6))
        # Nothing missed: recovered with no events.
        sub2, _ = await WSClient.connected(srv2)
        reply = await sub2.call({"type": "subscribe", "channel": channels[1],
                                 "recover": {"epoch": epoch, "offset": n + 1}})
        assert reply["recovered"] is True and reply["events"] == [], reply
        # Another epoch cannot be recovered.
        sub3, _ = await WSClient.connected(srv2)
        reply = await sub3.call({"type": "subscribe", "channel": channels[1],
                                 "recover": {"epoch": "other", "offset": 3}})
        assert reply["recovered"] is False and reply["events"] == [], reply
        for x in (c, sub, sub2, sub3):
            await x.close()
    finally:
        srv2.stop_checked()


@runs_async
async def test_sigkill_in_the_middle_of_publishing_loses_no_acknowledged_event(tmp_path):
    """Three WebSocket publishers and two HTTP publishers on one channel; the
    server is killed while they are still publishing."""
    data_dir = str(tmp_path / "data")
    config = sqlite_config(data_dir, size=20000)
    ch = unique("mid")
    srv = HeraldServer(config, name="sqlite-mid").start()
    acked = {}  # offset -> data
    killed = asyncio.Event()
    ws_ready = []

    async def ws_publisher(tag: str):
        pub, _ = await WSClient.connected(srv)
        ws_ready.append(tag)
        for i in range(2000):
            await pub.send({"type": "publish", "id": i, "channel": ch, "event": "e",
                            "data": {"tag": tag, "n": i}})
        try:
            while not killed.is_set():
                msg = await pub.recv()
                assert msg["type"] == "ack", msg
                assert msg["offset"] not in acked, "offset given twice"
                acked[msg["offset"]] = {"tag": tag, "n": msg["id"]}
        except Exception:
            if not killed.is_set():
                raise

    def http_publisher(tag: str):
        i = 0
        while not killed.is_set():
            try:
                reply = http_publish(srv, ch, {"tag": tag, "n": i})
            except OSError:
                return  # the server is gone
            acked[reply["offset"]] = {"tag": tag, "n": i}
            i += 1

    async def killer():
        # Every WebSocket publisher must be connected first: on a slow
        # (sanitized, busy) machine the HTTP publishers alone could reach the
        # count before them.
        while len(acked) < 1000 or len(ws_ready) < 3:
            await asyncio.sleep(0.005)
        srv.kill()
        killed.set()

    try:
        await asyncio.gather(*(ws_publisher(f"ws{k}") for k in range(3)),
                             *(asyncio.to_thread(http_publisher, f"http{k}") for k in range(2)),
                             killer())
    finally:
        srv.kill()
        killed.set()

    srv2 = HeraldServer(config, name="sqlite-mid-2").start()
    try:
        c, _ = await WSClient.connected(srv2)
        events = []
        while True:  # page forwards with `after`
            h = await history(c, ch, limit=1000, after=events[-1]["offset"] if events else 0)
            if not h["events"]:
                break
            events += h["events"]
        offsets = [e["offset"] for e in events]
        assert offsets == list(range(1, len(offsets) + 1)), "offsets not contiguous"
        assert h["offset"] == len(offsets)
        assert len(offsets) >= max(acked), (len(offsets), max(acked))
        datas = [json.dumps(e["data"], sort_keys=True) for e in events]
        assert len(set(datas)) == len(datas), "an event was stored twice"
        for off, data in acked.items():
            assert events[off - 1]["data"] == data, (off, data, events[off - 1])
        await c.close()
    finally:
        srv2.stop_checked()


@runs_async
async def test_recover_stays_exact_while_publishing_with_database_reads(tmp_path):
    """Subscribers join with recover from offset 1 while a publisher keeps
    publishing. The hot window is tiny, so every recovery reads the database
    asynchronously; events committed meanwhile must be in the reply or come
    after it, never lost or duplicated."""
    data_dir = str(tmp_path / "data")
    srv = HeraldServer(sqlite_config(data_dir, hot_window=4), workers=2,
                       name="sqlite-race").start()
    try:
        ch = unique("race")
        pub, _ = await WSClient.connected(srv)
        first = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": 0})
        assert first["offset"] == 1
        epoch = (await history(pub, ch, limit=1))["epoch"]
        total = 600
        stop = asyncio.Event()

        async def publisher():
            for i in range(1, total):
                await pub.send({"type": "publish", "channel": ch, "event": "e", "data": i})
                if i % 5 == 0:
                    await asyncio.sleep(0.002)
            await pub.call({"type": "history", "channel": ch, "limit": 1})  # all processed
            stop.set()

        async def subscriber(delay: float):
            await asyncio.sleep(delay)
            s, _ = await WSClient.connected(srv)
            reply = await s.call({"type": "subscribe", "channel": ch,
                                  "recover": {"epoch": epoch, "offset": 1}})
            assert reply["type"] == "subscribed" and reply["recovered"] is True, reply
            seen = [e["offset"] for e in reply["events"]]
            assert seen == list(range(2, reply["offset"] + 1)), "recovered events not exact"
            while not seen or seen[-1] < total:
                msg = await s.recv()
                if msg["type"] == "event":
                    seen.append(msg["offset"])
            assert seen == list(range(2, total + 1)), "gap or duplicate around the reply"
            await s.close()
            return len(reply["events"])

        results = await asyncio.gather(publisher(),
                                       *(subscriber(0.01 * k) for k in range(24)))
        assert stop.is_set()
        recovered_counts = results[1:]
        assert len(set(recovered_counts)) > 1, recovered_counts  # they did interleave
        await pub.close()
    finally:
        srv.stop_checked()


@runs_async
async def test_subscriber_of_an_empty_channel_recovers_after_restart(tmp_path):
    """A client that subscribed before the channel's first event got offset 0
    and the database's epoch; the channel keeps that epoch once created, so
    after a restart the client recovers everything."""
    data_dir = str(tmp_path / "data")
    config = sqlite_config(data_dir)
    ch = unique("empty")
    srv = HeraldServer(config, name="sqlite-empty").start()
    try:
        sub, _ = await WSClient.connected(srv)
        reply = await sub.call({"type": "subscribe", "channel": ch})
        assert reply["offset"] == 0, reply
        epoch = reply["epoch"]
        for i in range(3):
            assert http_publish(srv, ch, i) == {"offset": i + 1}
    finally:
        srv.kill()
    srv2 = HeraldServer(config, name="sqlite-empty-2").start()
    try:
        c, _ = await WSClient.connected(srv2)
        reply = await c.call({"type": "subscribe", "channel": ch,
                              "recover": {"epoch": epoch, "offset": 0}})
        assert reply["recovered"] is True and reply["epoch"] == epoch, reply
        assert [e["data"] for e in reply["events"]] == [0, 1, 2], reply
        await c.close()
    finally:
        srv2.stop_checked()


def test_corrupt_database_is_a_clear_startup_error(tmp_path):
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)
    db = os.path.join(data_dir, "herald.db")
    with open(db, "wb") as f:
        f.write(b"\x00garbage, not a database" * 400)
    srv = HeraldServer(sqlite_config(data_dir), name="sqlite-corrupt")
    with pytest.raises(ServerError):
        srv.start()
    log = srv.log_text()
    assert "cannot start" in log and db in log and "not a database" in log, log
    assert srv.proc.returncode == 1, srv.proc.returncode
    srv.check_log_clean()


def test_unusable_data_dir_is_a_clear_startup_error(tmp_path):
    parent = str(tmp_path)
    blocker = os.path.join(parent, "file")
    with open(blocker, "w") as f:
        f.write("a file where a directory should be")
    data_dir = os.path.join(blocker, "data")
    srv = HeraldServer(sqlite_config(data_dir), name="sqlite-baddir")
    with pytest.raises(ServerError):
        srv.start()
    log = srv.log_text()
    assert "engine.data_dir" in log and data_dir in log, log
    assert srv.proc.returncode == 1


@runs_async
async def test_connected_subscribers_recover_across_sigkill_while_publishing_goes_on(tmp_path):
    """Subscribers connected when the server is SIGKILLed reconnect to the
    restarted server and recover from their last offset, while a publisher
    keeps publishing before, during (failing) and after the restart: each
    subscriber then has every event exactly once, in order, the same as
    history, and everything it saw before the kill is still there."""
    data_dir = str(tmp_path / "data")
    config = sqlite_config(data_dir, size=20000)
    ch = unique("across")
    current = {"srv": HeraldServer(config, name="sqlite-across-1").start()}
    restarted = asyncio.Event()
    done = asyncio.Event()
    acked = {}  # offset -> data
    epoch = (await history((await WSClient.connected(current["srv"]))[0], ch, limit=1))["epoch"]

    async def publisher():
        n = 0
        after_restart = 0
        while after_restart < 300:
            srv = current["srv"]
            try:
                pub, _ = await WSClient.connected(srv)
                while after_restart < 300:
                    data = {"n": n}
                    n += 1
                    reply = await pub.call({"type": "publish", "channel": ch, "event": "e",
                                            "data": data})
                    assert reply["type"] == "ack", reply
                    assert reply["offset"] not in acked, "offset given twice"
                    acked[reply["offset"]] = data
                    if restarted.is_set():
                        after_restart += 1
            except (OSError, Closed, websockets.exceptions.ConnectionClosed, AssertionError):
                if srv.alive():
                    raise
                await asyncio.sleep(0.02)  # that server was killed: go to the new one
        done.set()

    async def subscriber(k: int):
        seen = []  # (offset, data)
        before_kill = None
        while True:
            try:
                s, _ = await WSClient.connected(current["srv"])
            except OSError:
                await asyncio.sleep(0.02)
                continue
            # Always with recover, so that events published before this
            # subscribe are not missed either.
            reply = await s.call({"type": "subscribe", "channel": ch,
                                  "recover": {"epoch": epoch,
                                              "offset": seen[-1][0] if seen else 0}})
            assert reply["type"] == "subscribed", reply
            assert reply["epoch"] == epoch and reply["recovered"] is True, reply
            seen += [(e["offset"], e["data"]) for e in reply["events"]]
            try:
                while not (done.is_set() and seen and seen[-1][0] >= max(acked)):
                    try:
                        msg = await s.recv(timeout=0.2)
                    except AssertionError as e:
                        if "no message" in str(e):
                            continue  # nothing new: check whether we are done
                        raise
                    assert msg["type"] == "event", msg
                    seen.append((msg["offset"], msg["data"]))
                await s.close()
                return seen, before_kill
            except Closed:
                assert before_kill is None, "closed twice"
                before_kill = list(seen)

    async def killer():
        while len(acked) < 300:
            await asyncio.sleep(0.005)
        current["srv"].kill()
        current["srv"] = HeraldServer(config, name="sqlite-across-2").start()
        restarted.set()

    try:
        results = await asyncio.gather(publisher(), killer(),
                                       *(subscriber(k) for k in range(4)))
        srv = current["srv"]
        c, _ = await WSClient.connected(srv)
        h = await history(c, ch, limit=20000)
        stored = [(e["offset"], e["data"]) for e in h["events"]]
        assert [o for o, _ in stored] == list(range(1, len(stored) + 1)), "offsets not contiguous"
        for off, data in acked.items():
            assert stored[off - 1] == (off, data), (off, data)
        for seen, before_kill in results[2:]:
            assert before_kill is not None, "the subscriber was not connected at the kill"
            assert seen == stored[:len(seen)], "gap, duplicate or a different event"
            assert seen[-1][0] >= max(acked)
            # What it was delivered before the kill was committed.
            assert before_kill == stored[:len(before_kill)]
        await c.close()
    finally:
        current["srv"].stop_checked()
