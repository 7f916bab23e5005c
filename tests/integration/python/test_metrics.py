# GET /metrics: the Prometheus counters move with what clients do (connections,
# messages, publishes, deliveries, socket writes, protocol closes), and the
# corking they reveal holds: a burst to many subscribers needs fewer socket
# writes than deliveries. The per-worker gauges and histograms are there for
# every worker, the message size histogram follows publishes, and the whole
# exposition passes `promtool check metrics` (the prometheus package; the
# test is skipped without it unless HERALD_REQUIRE_PROMTOOL is set).
import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from harness import HeraldServer, RawWS, WSClient, runs_async, unique

SUBSCRIBERS = 20
MESSAGES = 50
WORKERS = 2  # HeraldServer's default

GAUGES = ["herald_subscriptions", "herald_channels", "herald_presence_members"]
HISTOGRAMS = ["herald_publish_delivery_seconds", "herald_engine_append_seconds",
              "herald_history_read_seconds", "herald_message_bytes"]

SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)")


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(name="metrics")
    srv.start()
    yield srv
    srv.stop_checked()


def fetch(server: HeraldServer) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


def parse(text: str) -> dict[str, float]:
    """Sample values keyed by series as written: `herald_publishes_total`,
    `herald_subscriptions{worker="0"}`,
    `herald_message_bytes_bucket{worker="1",le="+Inf"}`. Integers stay int."""
    values = {}
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.fullmatch(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        values[name + labels] = int(value) if re.fullmatch(r"\d+", value) else float(value)
        # Every sample has its HELP and TYPE (a histogram's _bucket, _sum and
        # _count go under the histogram's name).
        family = name
        if family not in types:
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert types.get(family) == "histogram", f"no TYPE for {name}"
        assert family in helps, f"no HELP for {name}"
    return values


def scrape(server: HeraldServer) -> dict[str, float]:
    return parse(fetch(server))


def total(values: dict[str, float], name: str, **labels: str) -> float:
    """The sum of `name` over every series carrying `labels` (e.g. le="64")."""
    out = 0
    for series, value in values.items():
        base, _, rest = series.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            out += value
    return out


@runs_async
async def test_counters_follow_traffic(server):
    before = scrape(server)
    channel = unique("metrics")
    subs = [await WSClient.open(server) for _ in range(SUBSCRIBERS)]
    for s in subs:
        reply = await s.call({"type": "subscribe", "channel": channel})
        assert reply["type"] == "subscribed", reply
    pub = await WSClient.open(server)
    # The client sees the 101 before the server's worker has counted the
    # connection (it does so once its write of the 101 completes): the
    # publisher, which has sent nothing yet, may need a moment.
    deadline = time.monotonic() + 5
    while True:
        during = scrape(server)
        opened = during["herald_ws_connections"] - before["herald_ws_connections"]
        if opened == SUBSCRIBERS + 1 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    assert opened == SUBSCRIBERS + 1

    # A burst, so the corked writes can carry several frames each.
    for i in range(MESSAGES):
        await pub.send({"type": "publish", "channel": channel, "event": "m", "data": i})
    await pub.call({"type": "publish", "channel": channel, "event": "m", "data": "last"})
    for s in subs:
        seen = 0
        while seen < MESSAGES + 1:
            msg = await s.recv()
            if msg["type"] == "event":
                seen += 1
    after = scrape(server)

    def delta(name):
        return after[name] - before[name]

    assert delta("herald_publishes_total") == MESSAGES + 1
    assert delta("herald_deliveries_total") == SUBSCRIBERS * (MESSAGES + 1)
    assert delta("herald_ws_messages_received_total") == SUBSCRIBERS + MESSAGES + 1
    assert delta("herald_ws_connections_opened_total") == SUBSCRIBERS + 1
    assert delta("herald_socket_writes_total") < delta("herald_frames_queued_total")
    assert delta("herald_bytes_written_total") > 0
    assert after["herald_workers"] == 2

    # The publish path's hops: every publish reached its owner and was
    # answered back; each event went to each worker with subscribers (one or
    # both, as the connections fell), whose writes followed in some turn.
    def stage(name):
        return (total(after, "herald_publish_stage_seconds_count", stage=name)
                - total(before, "herald_publish_stage_seconds_count", stage=name))

    assert stage("to_owner") == MESSAGES + 1
    assert stage("ack") == MESSAGES + 1
    assert MESSAGES + 1 <= stage("to_worker") <= WORKERS * (MESSAGES + 1)
    assert 1 <= stage("to_write") <= stage("to_worker")

    for c in subs + [pub]:
        await c.ws.close()
    for _ in range(50):
        if scrape(server)["herald_ws_connections"] == before["herald_ws_connections"]:
            break
        await asyncio.sleep(0.1)
    assert scrape(server)["herald_ws_connections"] == before["herald_ws_connections"]


def test_protocol_close_is_counted(server):
    before = scrape(server)["herald_protocol_closes_total"]
    with RawWS(server.port) as ws:
        ws.send_frame(0x2, b"binary")  # binary frames are refused with 1003
        assert ws.read_close() == 1003
    assert scrape(server)["herald_protocol_closes_total"] == before + 1


def test_http_publish_is_counted(server):
    before = scrape(server)
    body = json.dumps({"channel": unique("metrics"), "event": "e", "data": 1}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/publish", data=body,
                                 method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    after = scrape(server)
    assert after["herald_publishes_total"] == before["herald_publishes_total"] + 1
    # The scrape itself and the publish are HTTP requests.
    assert after["herald_http_requests_total"] >= before["herald_http_requests_total"] + 2


def test_flooding_publisher_is_paused_not_dropped():
    # With a tiny limit of requests in flight, a client that sends publishes
    # without waiting is slowed down by not being read (counted), and every
    # publish still gets its ack, in order, with contiguous offsets.
    srv = HeraldServer("[limits]\nmax_pending_requests = 2\n", name="pending")
    srv.start()
    try:
        async def flood():
            pub = await WSClient.open(srv)
            channel = unique("flood")
            n = 2000
            for i in range(n):
                await pub.send({"type": "publish", "id": i, "channel": channel, "event": "e",
                                "data": i})
            offsets = []
            for i in range(n):
                msg = await pub.recv()
                assert msg["type"] == "ack" and msg["id"] == i, msg
                offsets.append(msg["offset"])
            assert offsets == list(range(1, n + 1))
            await pub.ws.close()

        asyncio.run(flood())
        assert scrape(srv)["herald_read_pauses_total"] > 0
    finally:
        srv.stop_checked()


def promtool() -> str | None:
    return shutil.which("promtool") or (
        "/usr/bin/promtool" if os.access("/usr/bin/promtool", os.X_OK) else None)


def http_publish(server: HeraldServer, channel: str, data) -> None:
    body = json.dumps({"channel": channel, "event": "e", "data": data}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/publish", data=body,
                                 method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


@runs_async
async def test_gauges_and_histograms_by_worker(server):
    before = scrape(server)
    channel = unique("metrics")
    c = await WSClient.open(server)
    reply = await c.call({"type": "subscribe", "channel": channel})
    assert reply["type"] == "subscribed", reply
    # `data` is measured as the raw JSON value sent: a string's quotes count.
    sizes = []
    for data in ["x" * 10, "y" * 5000, 7]:
        reply = await c.call({"type": "publish", "channel": channel, "event": "e", "data": data})
        assert reply["type"] == "ack", reply
        sizes.append(len(json.dumps(data)))
    http_publish(server, channel, "z" * 300)
    sizes.append(302)
    reply = await c.call({"type": "history", "channel": channel})
    assert reply["type"] == "history" and len(reply["events"]) == 4, reply
    url = (f"http://127.0.0.1:{server.port}/api/channels/"
           f"{urllib.parse.quote(channel, safe='')}/history")
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200 and len(json.loads(r.read())["events"]) == 4
    after = scrape(server)
    await c.ws.close()

    for w in range(WORKERS):
        for name in GAUGES:
            assert f'{name}{{worker="{w}"}}' in after, (name, w)
        for name in HISTOGRAMS:
            assert f'{name}_bucket{{worker="{w}",le="+Inf"}}' in after, (name, w)
            assert f'{name}_sum{{worker="{w}"}}' in after, (name, w)
            count = after[f'{name}_count{{worker="{w}"}}']
            assert count == after[f'{name}_bucket{{worker="{w}",le="+Inf"}}'], (name, w)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    # Every publish (WebSocket and HTTP) is measured where it is received.
    assert delta("herald_message_bytes_count") == len(sizes)
    assert delta("herald_message_bytes_count") == delta("herald_publishes_total")
    assert delta("herald_message_bytes_sum") == sum(sizes)
    assert delta("herald_message_bytes_bucket", le="64") == 2  # 12 and 1 bytes
    assert delta("herald_message_bytes_bucket", le="256") == 2
    assert delta("herald_message_bytes_bucket", le="1024") == 3  # and 302
    assert delta("herald_message_bytes_bucket", le="4096") == 3
    assert delta("herald_message_bytes_bucket", le="16384") == 4  # and 5002
    assert delta("herald_message_bytes_bucket", le="+Inf") == 4


@runs_async
async def test_promtool_accepts_the_exposition(server):
    tool = promtool()
    if tool is None:
        if os.environ.get("HERALD_REQUIRE_PROMTOOL"):
            pytest.fail("promtool not found and HERALD_REQUIRE_PROMTOOL is set "
                        "(scripts/install-deps.sh installs the prometheus package)")
        pytest.skip("promtool not installed (the prometheus package)")
    # Some traffic first, so that histograms have samples in several buckets.
    channel = unique("metrics")
    c = await WSClient.open(server)
    assert (await c.call({"type": "subscribe", "channel": channel}))["type"] == "subscribed"
    for data in [1, "a" * 100, "b" * 20000]:
        reply = await c.call({"type": "publish", "channel": channel, "event": "e", "data": data})
        assert reply["type"] == "ack", reply
    http_publish(server, channel, {"k": "v"})
    assert (await c.call({"type": "history", "channel": channel}))["type"] == "history"
    await c.ws.close()

    text = fetch(server)
    assert total(parse(text), "herald_message_bytes_count") > 0
    run = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True,
                         timeout=30)
    report = (run.stdout + run.stderr).decode()
    assert run.returncode == 0, f"promtool check metrics:\n{report}\n--- exposition:\n{text}"
