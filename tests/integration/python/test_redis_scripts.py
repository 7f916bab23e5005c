# The Redis engine's Lua scripts (src/engine/redis/scripts, LAYOUT.md there)
# against a real redis-server: offsets, idempotency keys, retention, remove,
# the PUBLISH payload, hash tags (also on a one-node Redis Cluster) and
# NOSCRIPT. No herald binary involved.
import shutil
import threading
import time
import uuid

import pytest

redis = pytest.importorskip("redis", reason="python3-redis is not installed")
if shutil.which("redis-server") is None:
    pytest.skip("redis-server is not installed", allow_module_level=True)

import redis_kit as rk  # noqa: E402

TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def server():
    s = rk.RedisServer()
    yield s
    s.stop()


@pytest.fixture
def scripts(server):
    return rk.Scripts(server.connect())


@pytest.fixture
def channel():
    return f"test:{uuid.uuid4().hex[:12]}"


def subscribe(server, name):
    ps = server.connect().pubsub()
    ps.subscribe(name)
    assert ps.get_message(timeout=5)["type"] == "subscribe"
    return ps


def messages_until(ps, pred, timeout=5.0):
    """Payloads received until one satisfies pred (included)."""
    got, deadline = [], time.time() + timeout
    while time.time() < deadline:
        m = ps.get_message(timeout=0.2)
        if m and m["type"] == "message":
            got.append(rk.decode_payload(m["data"]))
            if pred(got[-1]):
                return got
    raise AssertionError(f"no matching message; got {got}")


def test_offsets_gap_free_under_concurrent_publishers(server, scripts, channel):
    threads, per_thread = 8, 500
    acked = {}  # data -> offset
    errors = []
    lock = threading.Lock()

    def publisher(t):
        client = server.connect()
        try:
            for i in range(per_thread):
                data = f'"{t}:{i}"'
                st, off, ep, _ = scripts.publish(channel, ts=TS + i, data=data,
                                                 max_events=10000, epoch=f"ep{t}", client=client)
                assert st == "ok"
                with lock:
                    acked[data] = (off, ep)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts_ = [threading.Thread(target=publisher, args=(t,)) for t in range(threads)]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join(120)
    assert not errors, errors
    n = threads * per_thread
    assert sorted(o for o, _ in acked.values()) == list(range(1, n + 1))
    assert len({ep for _, ep in acked.values()}) == 1  # one candidate won, the others were ignored
    h = scripts.read(channel, now=TS, limit=n, max_events=10000)
    assert h["last"] == n and h["first"] == 1 and len(h["events"]) == n
    assert [e[0] for e in h["events"]] == list(range(1, n + 1))
    assert {e[3]: e[0] for e in h["events"]} == {d: o for d, (o, _) in acked.items()}


def test_replay_returns_original_offset_without_xadd_or_publish(server, scripts, channel):
    ps_name = rk.pubsub_channel(channel)
    ps = subscribe(server, ps_name)
    stream = rk.channel_keys(channel)[1]
    first = scripts.publish(channel, ts=TS, data='"hi"', key="1234567890123456789",
                            fingerprint=18446744073709551615, pubsub=ps_name, epoch="epA")
    assert first == ("ok", 1, "epA", TS)
    for i in range(3):
        again = scripts.publish(channel, ts=TS + 10 + i, data='"hi"', key="1234567890123456789",
                                fingerprint=18446744073709551615, pubsub=ps_name, epoch="epB")
        assert again == ("replayed", 1, "epA", TS)
    assert server.client.xlen(stream) == 1
    sentinel = scripts.publish(channel, ts=TS + 20, data='"end"', pubsub=ps_name)
    assert sentinel[:2] == ("ok", 2)
    got = messages_until(ps, lambda p: p["data"] == '"end"')
    assert [p["offset"] for p in got] == [1, 2]
    ps.close()


def test_conflict_returns_original_offset_and_stores_nothing(server, scripts, channel):
    ps_name = rk.pubsub_channel(channel)
    ps = subscribe(server, ps_name)
    assert scripts.publish(channel, ts=TS, key="42", fingerprint=7, pubsub=ps_name)[:2] == ("ok", 1)
    assert scripts.publish(channel, ts=TS + 1)[:2] == ("ok", 2)
    # fingerprints above 2^53 differ only in their last digits: compared as strings
    assert scripts.publish(channel, ts=TS + 2, key="42", fingerprint=8,
                           pubsub=ps_name) == ("conflict", 1, "e0000000", TS)
    assert scripts.publish(channel, ts=TS + 3, key="43", fingerprint=9007199254740993)[:2] == ("ok", 3)
    assert scripts.publish(channel, ts=TS + 4, key="43",
                           fingerprint=9007199254740992)[:2] == ("conflict", 3)
    assert scripts.publish(channel, ts=TS + 5, key="43",
                           fingerprint=9007199254740993)[:2] == ("replayed", 3)
    assert server.client.xlen(rk.channel_keys(channel)[1]) == 3
    assert scripts.publish(channel, ts=TS + 6, data='"end"', pubsub=ps_name)[:2] == ("ok", 4)
    assert [p["offset"] for p in messages_until(ps, lambda p: p["offset"] == 4)] == [1, 4]
    ps.close()


def test_key_forgotten_after_window(scripts, channel):
    assert scripts.publish(channel, ts=TS, key="5", fingerprint=1, window_ms=100)[:2] == ("ok", 1)
    assert scripts.publish(channel, ts=TS + 99, key="5", fingerprint=1,
                           window_ms=100)[:2] == ("replayed", 1)
    # KeyIndex: remembered while expiry (ts + window) > now
    assert scripts.publish(channel, ts=TS + 100, key="5", fingerprint=2,
                           window_ms=100)[:2] == ("ok", 2)
    # stored again: the new record answers from now on
    assert scripts.publish(channel, ts=TS + 150, key="5", fingerprint=2,
                           window_ms=100)[:2] == ("replayed", 2)


def test_key_forgotten_beyond_max_keys(server, scripts, channel):
    keys_key, keyq_key = rk.channel_keys(channel)[2:]
    assert scripts.publish(channel, ts=TS, key="77", fingerprint=1, max_keys=3)[:2] == ("ok", 1)
    scripts.publish(channel, ts=TS, max_keys=3)  # unkeyed events count too
    scripts.publish(channel, ts=TS, max_keys=3)
    # offset 1 is one of the last 3 (1..3)
    assert scripts.publish(channel, ts=TS, key="77", fingerprint=1, max_keys=3)[:2] == ("replayed", 1)
    scripts.publish(channel, ts=TS, max_keys=3)  # last 4: keys of 2..4 only
    assert scripts.publish(channel, ts=TS, key="77", fingerprint=1, max_keys=3)[:2] == ("ok", 5)
    # memory stays bounded: one record per remembered key
    for i in range(200):
        scripts.publish(channel, ts=TS + i, key=str(1000 + i), fingerprint=1, max_keys=10)
    assert server.client.hlen(keys_key) == 10
    assert server.client.llen(keyq_key) == 10
    assert scripts.publish(channel, ts=TS + 500, key="1190", fingerprint=1,
                           max_keys=10)[:2] == ("replayed", 196)
    assert scripts.publish(channel, ts=TS + 500, key="1189", fingerprint=1,
                           max_keys=10)[:2] == ("ok", 206)


def model_read(held, last, limit, before=None, after=None):
    """The memory engine's read (memory_engine.cpp) over held offsets."""
    if not held:
        return []
    lo, hi = held[0], last
    if after is not None:
        if after >= hi:
            return []
        lo = max(lo, after + 1)
    if before is not None:
        if before <= lo:
            return []
        hi = min(hi, before - 1)
    count = min(limit, hi - lo + 1)
    if count <= 0:
        return []
    start = lo if after is not None else hi - count + 1
    return list(range(start, start + count))


def test_count_trimming_as_seen_by_read(server, scripts, channel):
    for i in range(250):
        scripts.publish(channel, ts=TS + i, data=str(i + 1), max_events=50)
    xlen = server.client.xlen(rk.channel_keys(channel)[1])
    assert 50 <= xlen <= 50 + 100  # MAXLEN ~ frees whole nodes only
    h = scripts.read(channel, now=TS, limit=1000, max_events=50)
    assert (h["last"], h["first"]) == (250, 201)
    assert [e[0] for e in h["events"]] == list(range(201, 251))
    assert all(e[3] == str(e[0]) for e in h["events"])
    queries = [dict(limit=10), dict(limit=10, after=100), dict(limit=10, after=205),
               dict(limit=10, before=205), dict(limit=3, before=230, after=210),
               dict(limit=10, after=250), dict(limit=10, before=201), dict(limit=0),
               dict(limit=10, before=0), dict(limit=10, after=249),
               dict(limit=18446744073709551615)]
    for q in queries:
        got = [e[0] for e in scripts.read(channel, now=TS, max_events=50, **q)["events"]]
        assert got == model_read(list(range(201, 251)), 250, **q), q
    # a smaller limit at read time (a reload) applies at once
    h = scripts.read(channel, now=TS, limit=1000, max_events=7)
    assert h["first"] == 244 and [e[0] for e in h["events"]] == list(range(244, 251))


def test_age_trimming_as_seen_by_read(server, scripts, channel):
    stream = rk.channel_keys(channel)[1]
    for i in range(20):
        scripts.publish(channel, ts=TS + 100 * i, max_age_ms=1000)
    # each publish drops what is older than its ts - max_age from the oldest end
    assert server.client.xlen(stream) == 11  # ts 900..1900 (relative)
    assert 0 < server.client.pttl(stream) <= 1000  # gone when the newest is too old
    h = scripts.read(channel, now=TS + 2500, limit=100, max_age_ms=1000)
    assert (h["last"], h["first"]) == (20, 16)
    assert [e[0] for e in h["events"]] == [16, 17, 18, 19, 20]
    h = scripts.read(channel, now=TS + 3000, limit=100, max_age_ms=1000)
    assert (h["last"], h["first"], h["events"]) == (20, 0, [])
    assert h["created"] == TS  # kept after its event is gone
    # no age limit at read: everything still held
    assert scripts.read(channel, now=TS + 3000, limit=100)["first"] == 10


def test_age_trimming_keeps_held_events_contiguous(scripts, channel):
    # ts from several nodes' clocks need not grow with offsets; like the
    # memory engine, only the oldest end is dropped, up to the first young one.
    for ts in (500, 1200, 900, 1300):
        scripts.publish(channel, ts=TS + ts)
    h = scripts.read(channel, now=TS + 2000, max_age_ms=1000)
    assert h["first"] == 2 and [e[0] for e in h["events"]] == [2, 3, 4]
    # more expired entries than one XRANGE batch of read.lua (32)
    other = channel + ":many"
    for i in range(100):
        scripts.publish(other, ts=TS + i)
    h = scripts.read(other, now=TS + 1095, max_age_ms=1000, limit=3)
    assert h["first"] == 96 and [e[0] for e in h["events"]] == [98, 99, 100]


def test_age_trimming_in_steps_after_retention_lowered(server, scripts, channel):
    stream = rk.channel_keys(channel)[1]
    for i in range(100):
        scripts.publish(channel, ts=TS + i)
    scripts.publish(channel, ts=TS + 10000, max_age_ms=1000)
    assert server.client.xlen(stream) == 101 - 16  # at most 16 per publish
    for i in range(6):
        scripts.publish(channel, ts=TS + 10001 + i, max_age_ms=1000)
    assert server.client.xlen(stream) == 7


def test_history_of_zero_events(server, scripts, channel):
    scripts.publish(channel, ts=TS)
    assert scripts.publish(channel, ts=TS, max_events=0)[:2] == ("ok", 2)
    assert not server.client.exists(rk.channel_keys(channel)[1])
    h = scripts.read(channel, now=TS, max_events=0)
    assert (h["last"], h["first"], h["events"]) == (2, 0, [])


def test_read_of_missing_channel_stores_the_epoch(server, scripts, channel):
    h = scripts.read(channel, now=TS, epoch="early")
    assert h == {"epoch": "early", "last": 0, "first": 0, "created": 0, "events": []}
    assert 0 < server.client.pttl(rk.channel_keys(channel)[0]) <= 86400000
    assert scripts.read(channel, now=TS, epoch="other")["epoch"] == "early"
    assert scripts.publish(channel, ts=TS, epoch="late") == ("ok", 1, "early", TS)


def test_lost_meta_gives_new_epoch_and_drops_leftovers(server, scripts, channel):
    meta, stream, keys, keyq = rk.channel_keys(channel)
    scripts.publish(channel, ts=TS, key="9", fingerprint=1, epoch="old")
    scripts.publish(channel, ts=TS + 1, epoch="old")
    server.client.delete(meta)  # e.g. expired, or evicted despite noeviction
    assert scripts.publish(channel, ts=TS + 2, key="9", fingerprint=1,
                           epoch="new") == ("ok", 1, "new", TS + 2)
    assert [e[0] for e in scripts.read(channel, now=TS)["events"]] == [1]
    assert server.client.hlen(keys) == 1 and server.client.llen(keyq) == 1


def test_expiries(server, scripts, channel):
    meta, stream, keys, keyq = rk.channel_keys(channel)
    c = server.client
    scripts.publish(channel, ts=TS, key="1", fingerprint=1, window_ms=120000,
                    max_age_ms=0, idle_ttl_ms=60000)
    assert 119000 < c.pttl(meta) <= 120000  # max(idle, age, window)
    assert 119000 < c.pttl(stream) <= 120000
    assert 119000 < c.pttl(keys) <= 120000 and 119000 < c.pttl(keyq) <= 120000
    scripts.publish(channel, ts=TS, window_ms=1000, max_age_ms=5000, idle_ttl_ms=60000)
    assert 59000 < c.pttl(meta) <= 60000
    assert 4000 < c.pttl(stream) <= 5000
    scripts.publish(channel, ts=TS, window_ms=1000, max_age_ms=0, idle_ttl_ms=0)
    assert c.pttl(meta) == -1 and c.pttl(stream) == -1  # 0: never expire


def test_remove_gives_new_epoch_and_forgets_keys(server, scripts, channel):
    meta, stream, keys, keyq = rk.channel_keys(channel)
    scripts.publish(channel, ts=TS, key="11", fingerprint=1, epoch="one")
    scripts.publish(channel, ts=TS + 1, epoch="one")
    assert scripts.remove(channel, "one") == ("same_epoch", "one")
    assert scripts.read(channel, now=TS)["last"] == 2  # nothing changed
    assert scripts.remove(channel, "two") == ("ok", "two")
    assert not any(server.client.exists(k) for k in (stream, keys, keyq))
    h = scripts.read(channel, now=TS, epoch="three")
    assert h == {"epoch": "two", "last": 0, "first": 0, "created": 0, "events": []}
    assert scripts.publish(channel, ts=TS + 5, key="11", fingerprint=1,
                           epoch="four") == ("ok", 1, "two", TS + 5)
    assert scripts.publish(channel, ts=TS + 6, epoch="four") == ("ok", 2, "two", TS + 5)
    # a removed channel that was never published to keeps its new epoch too
    fresh = channel + ":fresh"
    assert scripts.remove(fresh, "five") == ("ok", "five")
    assert scripts.publish(fresh, ts=TS, epoch="six")[:3] == ("ok", 1, "five")


def test_payload_decodes_to_the_stream_entry(server, scripts, channel):
    ps_name = rk.pubsub_channel(channel)
    ps = subscribe(server, ps_name)
    data = '{"text":"ünï 12:3, x\\n","n":[1,2]}'
    scripts.publish(channel, ts=TS + 7, event="chat.message", data=data, from_client="c-1",
                    from_user="alice:1,2", from_info='{"name":"Äl"}', pubsub=ps_name,
                    epoch="epP", origin="n:1,")
    scripts.publish(channel, ts=TS + 8, event="x", data="", pubsub=ps_name)
    got = messages_until(ps, lambda p: p["offset"] == 2)
    assert got[0] == {"kind": "H2", "origin": "n:1,", "offset": 1, "ts": TS + 7, "epoch": "epP",
                      "event": "chat.message", "data": data, "from_client": "c-1",
                      "from_user": "alice:1,2", "from_info": '{"name":"Äl"}'}
    assert got[1]["origin"] == "node-test"
    h = scripts.read(channel, now=TS)
    for p, e in zip(got, h["events"]):
        assert (p["offset"], p["ts"], p["event"], p["data"], p["from_client"], p["from_user"],
                p["from_info"]) == e
        assert p["epoch"] == h["epoch"]
    raw = server.client.xrange(rk.channel_keys(channel)[1])
    assert raw[0][0] == b"1-0"
    assert list(raw[0][1]) == [b"t", b"e", b"d", b"c", b"u", b"i"]
    ps.close()


def test_payload_decoder_is_strict():
    ok = b"R2" + b"3:n-1," + b"11:resubscribe,"
    assert rk.decode_payload(ok) == {"kind": "R2", "origin": "n-1", "reason": "resubscribe"}
    assert rk.decode_payload(b"E21:o,2:42,1:e,2:{},0:,0:,0:,")["ts"] == 42
    for bad in (b"H11:7,", ok + b"x", b"R23:n-1;11:resubscribe,", b"R203:n-1,11:resubscribe,",
                b"R2-1:,11:resubscribe,", b"X23:n-1,11:resubscribe,"):
        with pytest.raises(ValueError):
            rk.decode_payload(bad)


WEIRD = ["a{b}c:d", "}x", "{", "}", "x}", "%7D", "ünïcode:✓/#,@=", "a%b"]


def test_channel_names_with_braces_and_unicode(server, scripts):
    base = uuid.uuid4().hex[:6]
    names = [base + n for n in WEIRD] + [n + base for n in WEIRD]
    all_keys = set()
    for n in names:
        ks = rk.channel_keys(n)
        slots = {rk.key_slot(k) for k in ks + [rk.pubsub_channel(n)]}
        assert len(slots) == 1, n  # one slot per channel: Redis Cluster runs the scripts
        assert rk.key_slot(ks[0]) == rk.crc16(rk.tag(n).encode()) % 16384
        all_keys.update(ks)
    assert len(all_keys) == 4 * len(names)  # the escape is one-to-one
    for i, n in enumerate(names):
        for j in range(i + 1):
            scripts.publish(n, ts=TS, data=str(j), key=str(j), fingerprint=1)
    for i, n in enumerate(names):
        h = scripts.read(n, now=TS)
        assert h["last"] == i + 1 and [e[3] for e in h["events"]] == [str(j) for j in range(i + 1)]


def test_one_node_cluster_with_spublish():
    s = rk.RedisServer(cluster=True)
    try:
        sc = rk.Scripts(s.connect())
        sub = s.connect().connection_pool.get_connection("_")
        names = ["chat:lobby", "a}b", "}", "ünï:{x}"]
        for n in names:
            sub.send_command("SSUBSCRIBE", rk.pubsub_channel(n))
            assert sub.read_response()[0] == b"ssubscribe"
        for n in names:
            assert sc.publish(n, ts=TS, data='"1"', pubsub=rk.pubsub_channel(n),
                              command="SPUBLISH")[:2] == ("ok", 1)
            assert sc.read(n, now=TS)["last"] == 1
            assert sc.remove(n, "new")[0] == "ok"
            msg = sub.read_response()
            assert msg[0] == b"smessage" and msg[1] == rk.pubsub_channel(n).encode()
            assert rk.decode_payload(msg[2])["data"] == '"1"'
        # Redis refuses a shard channel of another slot only when SPUBLISH
        # runs, after the event is stored: publish.lua checks the tag first
        for bad in ("elsewhere", "herald:{chat:othe}:events", "herald:{}:events"):
            with pytest.raises(redis.ResponseError, match="hash tag"):
                sc.publish("chat:other", ts=TS, pubsub=bad, command="SPUBLISH")
            assert not any(s.client.exists(k) for k in rk.channel_keys("chat:other"))
        # plain PUBLISH reaches the whole cluster, whatever the name
        assert sc.publish("chat:other", ts=TS, pubsub="elsewhere")[:2] == ("ok", 1)
    finally:
        s.stop()


def test_noscript_reload(server, channel):
    c = server.connect()
    sc = rk.Scripts(c)
    assert sc.publish(channel, ts=TS)[:2] == ("ok", 1)
    c.script_flush()
    with pytest.raises(redis.exceptions.NoScriptError):
        c.evalsha(sc.sha["publish"], 0)
    assert sc.publish(channel, ts=TS)[:2] == ("ok", 2)  # reloaded, called again
    assert sc.loads == 2
    assert sc.read(channel, now=TS)["last"] == 2


def test_bad_publish_command_writes_nothing(server, scripts, channel):
    with pytest.raises(redis.ResponseError, match="PUBLISH or SPUBLISH"):
        scripts.publish(channel, ts=TS, pubsub="x", command="LPUSH")
    assert not any(server.client.exists(k) for k in rk.channel_keys(channel))
