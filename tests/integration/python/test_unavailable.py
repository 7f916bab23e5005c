# `unavailable` (docs/protocol.md, error codes), end to end against the real
# binary: a storage engine that cannot take a request now refuses it with
# `unavailable` (HTTP 503) instead of `internal`, and nothing of a refused
# publish is stored or delivered. Here the sqlite engine's queue is one
# operation long (engine.queue_limit = 1), so a burst of pipelined publishes
# overflows it: every publish is either acknowledged or refused with
# `unavailable`; the acknowledged ones are exactly the history and exactly
# what a subscriber receives, in offset order with no gap; the server goes on.
import asyncio
import threading

from harness import HeraldServer, http_publish, WSClient, runs_async, toml_config, unique

BURST = 400


@runs_async
async def test_a_full_storage_queue_refuses_with_unavailable_and_loses_nothing(tmp_path):
    config = toml_config(engine={"type": "sqlite", "data_dir": str(tmp_path / "data"),
                                 "queue_limit": 1})
    srv = HeraldServer(config, name="unavailable").start()
    try:
        ch = unique("busy")
        pub, _ = await WSClient.connected(srv)
        sub, _ = await WSClient.connected(srv)
        # Even a subscribe may find the queue full (it loads the channel and
        # reads its history: two operations): `unavailable` says retry.
        for _ in range(50):
            reply = await sub.call({"type": "subscribe", "channel": ch})
            if reply["type"] == "subscribed":
                break
            assert reply["type"] == "error" and reply["code"] == "unavailable", reply
            await asyncio.sleep(0.05)
        assert reply["type"] == "subscribed", reply

        # HTTP publishes from threads at the same time as the WebSocket burst.
        http_results: list[tuple[int, dict, dict]] = []

        def http_burst(t: int) -> None:
            for i in range(20):
                data = {"http": t, "n": i}
                status, body = http_publish(srv, ch, data)
                http_results.append((status, body, data))

        threads = [threading.Thread(target=http_burst, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()

        sent = {}  # id -> data
        for i in range(BURST):
            id_ = pub.new_id()
            sent[id_] = {"ws": i}
            await pub.send({"type": "publish", "id": id_, "channel": ch, "event": "e",
                            "data": sent[id_]})
        acked = {}  # offset -> data
        refused = 0
        for _ in range(BURST):
            r = await pub.recv(timeout=30)
            assert r.get("id") in sent, r
            if r["type"] == "ack":
                assert r["offset"] not in acked, r
                acked[r["offset"]] = sent[r["id"]]
            else:
                assert r["type"] == "error" and r["code"] == "unavailable", r
                assert "retry" in r["message"], r
                refused += 1
        for t in threads:
            await asyncio.to_thread(t.join)
        for status, body, data in http_results:
            if status == 200:
                assert body["offset"] not in acked, body
                acked[body["offset"]] = data
            else:
                assert status == 503 and body["code"] == "unavailable", (status, body)
                refused += 1
        assert refused > 0, "queue_limit = 1 never overflowed: the test proves nothing"
        assert sorted(acked) == list(range(1, len(acked) + 1)), "refusals used no offset"

        # The subscriber got exactly the acknowledged events, in order.
        got = []
        while len(got) < len(acked):
            m = await sub.recv(timeout=10)
            if m["type"] == "event":
                got.append((m["offset"], m["data"]))
        assert got == sorted(acked.items()), "delivered != acknowledged"

        # History holds exactly them too, and the server still works.
        for _ in range(50):
            h = await pub.call({"type": "history", "channel": ch, "limit": 1000})
            if h["type"] == "history":
                break
            assert h["type"] == "error" and h["code"] == "unavailable", h
            await asyncio.sleep(0.05)
        assert h["type"] == "history", h
        assert [(e["offset"], e["data"]) for e in h["events"]] == sorted(acked.items())
        r = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": {"after": 1}})
        assert r["type"] == "ack" and r["offset"] == len(acked) + 1, r
        assert srv.healthy()
    finally:
        srv.stop_checked()
