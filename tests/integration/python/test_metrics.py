# GET /metrics: the Prometheus counters move with what clients do (connections,
# messages, publishes, deliveries, socket writes, protocol closes), and the
# corking they reveal holds: a burst to many subscribers needs fewer socket
# writes than deliveries.
import asyncio
import json
import re
import time
import urllib.request

import pytest

from harness import HeraldServer, RawWS, WSClient, runs_async, unique

SUBSCRIBERS = 20
MESSAGES = 50


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(name="metrics")
    srv.start()
    yield srv
    srv.stop_checked()


def scrape(server: HeraldServer) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.fullmatch(r"([a-z_]+) (\d+)", line)
        assert m, f"not a Prometheus sample line: {line!r}"
        values[m.group(1)] = int(m.group(2))
    # Every sample has its HELP and TYPE.
    for name in values:
        assert f"# TYPE {name} " in text, name
        assert f"# HELP {name} " in text, name
    return values


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
