# The sqlite engine when its disk is full, end to end against the real binary:
# the server runs with a small RLIMIT_FSIZE and SIGXFSZ ignored, so SQLite's
# writes past the limit fail with EFBIG like on a full disk and its commits
# fail. Publishes then get an `internal` error and no ack, nothing that was
# not acknowledged is delivered or appears in history, failed publishes use
# up no offset, the server keeps serving, and once the limit is raised (the
# space is back) publishes are stored again.

from harness import HeraldServer, http_publish, WSClient, assert_error, runs_async, toml_config, unique

# Room for the schema and a few dozen small commits in the WAL, and far below
# the WAL's auto-checkpoint size (1000 pages), so the WAL fills up first.
FILE_SIZE_LIMIT = 192 * 1024


@runs_async
async def test_full_disk_fails_publishes_without_losing_or_inventing_events(tmp_path):
    config = toml_config(engine={"type": "sqlite", "data_dir": str(tmp_path / "data")})
    srv = HeraldServer(config, name="sqlite-full", file_size_limit=FILE_SIZE_LIMIT).start()
    try:
        ch = unique("full")
        pub, _ = await WSClient.connected(srv)
        sub, _ = await WSClient.connected(srv)
        reply = await sub.call({"type": "subscribe", "channel": ch})
        assert reply["type"] == "subscribed" and reply["offset"] == 0, reply

        # Publish one at a time until the disk is full.
        acked = {}  # offset -> data
        failed = []
        pad = "x" * 400
        for i in range(2000):
            data = {"n": i, "pad": pad}
            r = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": data})
            if r["type"] == "ack":
                assert r["offset"] == len(acked) + 1, (r, "failed publishes must use no offset")
                acked[r["offset"]] = data
                continue
            assert_error(r, "internal")
            assert "storage error" in r["message"], r
            failed.append(data)
            break
        assert failed, f"no publish failed with RLIMIT_FSIZE={FILE_SIZE_LIMIT}"
        assert len(acked) >= 5, f"only {len(acked)} publishes fit before the limit"

        # While the disk stays full: more failures, over WebSocket and HTTP,
        # and the server still answers.
        for i in range(5):
            data = {"n": f"full-{i}", "pad": pad}
            r = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": data})
            if r["type"] == "ack":  # the commit may fit in the WAL's rolled-back space
                assert r["offset"] == len(acked) + 1, r
                acked[r["offset"]] = data
            else:
                assert_error(r, "internal")
                failed.append(data)
        status, body = http_publish(srv, ch, {"n": "http-full", "pad": pad})
        if status == 200:
            assert body == {"offset": len(acked) + 1}, body
            acked[body["offset"]] = {"n": "http-full", "pad": pad}
        else:
            assert status == 500 and body["code"] == "internal", (status, body)
            failed.append({"n": "http-full", "pad": pad})
        assert srv.healthy()

        # Space is back: the next publish is stored with the next offset.
        srv.set_file_size_limit(None)
        data = {"n": "after", "pad": pad}
        r = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": data})
        assert r["type"] == "ack" and r["offset"] == len(acked) + 1, r
        acked[r["offset"]] = data
        last = r["offset"]

        # The subscriber got exactly the acknowledged events, in order.
        delivered = []
        while len(delivered) < last:
            msg = await sub.recv()
            assert msg["type"] == "event", msg
            delivered.append((msg["offset"], msg["data"]))
        assert delivered == sorted(acked.items()), "a failed publish was delivered, or one was lost"

        # History holds exactly the acknowledged events; no failed one.
        h = await pub.call({"type": "history", "channel": ch, "limit": 1000})
        assert h["offset"] == last, h
        assert [(e["offset"], e["data"]) for e in h["events"]] == sorted(acked.items())
        for data in failed:
            assert data not in [e["data"] for e in h["events"]], data
        await pub.close()
        await sub.close()
    finally:
        srv.stop_checked()

    # Also from the database after a restart (what was committed, not a cache).
    srv2 = HeraldServer(config, name="sqlite-full-2").start()
    try:
        c, _ = await WSClient.connected(srv2)
        h = await c.call({"type": "history", "channel": ch, "limit": 1000})
        assert [(e["offset"], e["data"]) for e in h["events"]] == sorted(acked.items())
        await c.close()
    finally:
        srv2.stop_checked()
