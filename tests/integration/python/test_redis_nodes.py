# Several Herald nodes on one Redis (engine.type = "redis", issue 13): real
# herald processes on one real redis-server started by the test. What must
# hold whichever node a client uses: every subscriber, on every node, gets
# each stored event of its channels exactly once and in offset order, equal
# to the channel's history; recovery works from any node; losing the
# pub/sub connection or Redis itself loses nothing acknowledged.
import asyncio
import threading

import pytest

from harness import HeraldServer, WSClient, assert_error, http_publish, runs_async, unique
from test_redis_engine import DurableRedis, redis_config


def start_nodes(redis_port: int, n: int, name: str, config: str | None = None) -> list[HeraldServer]:
    """`n` herald nodes on the Redis at `redis_port`, all with `config` (by
    default redis_config with a history that holds every event of a test: the
    checks compare with it); none is left running if one fails to start."""
    config = config or redis_config(redis_port, history_size=10000)
    nodes = []
    try:
        for i in range(n):
            nodes.append(HeraldServer(config, name=f"{name}-{i}").start())
    except BaseException:
        for s in nodes:
            s.kill()
        raise
    return nodes


def stop_nodes(nodes: list[HeraldServer]) -> None:
    for s in nodes:
        s.stop_checked()


def history(node: HeraldServer, channel: str) -> list[dict]:
    """The channel's whole history, read from `node` over HTTP, oldest first."""
    import json
    import time
    import urllib.error
    import urllib.request
    events, after = [], 0
    while True:
        url = node.http_url(f"/api/channels/{channel}/history?after={after}&limit=1000")
        for attempt in range(100):  # 503 `unavailable`: this node still reconnects to Redis
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    page = json.loads(r.read())
                break
            except urllib.error.HTTPError as e:
                if e.code != 503 or attempt == 99:
                    raise
                time.sleep(0.1)
        if not page["events"]:
            return events
        events += page["events"]
        after = page["events"][-1]["offset"]


# The epoch each subscriber got per channel, for its recovery after a
# `resubscribe` (keyed by the client object).
EPOCHS: dict[int, dict[str, str]] = {}


async def subscribe_all(client: WSClient, channels: list[str]) -> None:
    for ch in channels:
        reply = await client.call({"type": "subscribe", "channel": ch})
        assert reply["type"] == "subscribed", reply
        EPOCHS.setdefault(id(client), {})[ch] = reply["epoch"]


async def collect(client: WSClient, want: dict[str, int], timeout: float = 20.0) -> dict:
    """Events received per channel until each channel has `want[ch]` of them
    (more are kept too: a duplicate must show). Behaves as the protocol asks
    of a client (and as @herald/client does): `unsubscribed` with reason
    `resubscribe` (the node could not prove the order, e.g. Redis came back)
    is answered by subscribing again with `recover` from the last event
    received, whose reply's events count like live ones."""
    got: dict[str, list] = {ch: [] for ch in want}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    epochs = EPOCHS.get(id(client), {})

    def take(msg) -> None:
        if msg.get("type") == "event":
            got[msg["channel"]].append((msg["offset"], msg["data"]))
        elif msg.get("type") == "subscribed" and msg.get("recovered") is not None:
            assert msg["recovered"] is True, msg
            for e in msg["events"]:
                got[msg["channel"]].append((e["offset"], e["data"]))
        elif msg.get("type") == "unsubscribed":
            assert msg.get("reason") == "resubscribe", msg
            ch = msg["channel"]
            last = got[ch][-1][0] if got[ch] else 0
            # With an id: a command without one gets no reply, and the
            # recovered events come in the `subscribed` reply.
            pending.append({"type": "subscribe", "id": f"recover-{ch}-{last}", "channel": ch,
                            "recover": {"epoch": epochs[ch], "offset": last}})

    pending: list[dict] = []
    while any(len(got[ch]) < n for ch, n in want.items()):
        while pending:
            await client.send(pending.pop(0))
        left = deadline - loop.time()
        assert left > 0, {ch: len(v) for ch, v in got.items()}
        take(await client.recv(timeout=left))
    # Anything still in flight (a duplicate) arrives within a moment.
    try:
        while True:
            take(await client.recv(timeout=0.3))
    except AssertionError as e:
        if "no message" not in str(e):
            raise
    return got


def check_equals_history(node: HeraldServer, got: dict, where: str) -> None:
    for ch, events in got.items():
        stored = [(e["offset"], e["data"]) for e in history(node, ch)]
        assert [o for o, _ in stored] == list(range(1, len(stored) + 1)), f"{ch}: offsets not 1..N"
        assert events == stored, f"{where} {ch}: received {len(events)} events, history {len(stored)}"


async def publish_everywhere_and_check(nodes: list[HeraldServer], subs: list[WSClient],
                                       channels: list[str], per_publisher: int) -> None:
    """Publishes `per_publisher` events to each channel from a WebSocket and an
    HTTP publisher on every node at once (acks checked), then checks that the
    subscriber of each node (subs[k] on nodes[k], subscribed to every channel)
    received exactly each channel's history, read on another node; closes the
    subscribers."""

    async def ws_publisher(node: HeraldServer, tag: str):
        c, _ = await WSClient.connected(node)
        for i in range(per_publisher):
            for ch in channels:
                await c.send({"type": "publish", "id": f"{tag}-{ch}-{i}", "channel": ch,
                              "event": "e", "data": f"{tag}-{i}"})
        acks = [await c.recv() for _ in range(per_publisher * len(channels))]
        assert all(a["type"] == "ack" for a in acks), [a for a in acks if a["type"] != "ack"]
        await c.close()

    def http_publisher(node: HeraldServer, tag: str):
        for i in range(per_publisher):
            for ch in channels:
                status, body = http_publish(node, ch, f"{tag}-{i}")
                assert status == 200, body

    threads = [threading.Thread(target=http_publisher, args=(n, f"h{k}"))
               for k, n in enumerate(nodes)]
    for t in threads:
        t.start()
    await asyncio.gather(*(ws_publisher(n, f"w{k}") for k, n in enumerate(nodes)))
    await asyncio.to_thread(lambda: [t.join() for t in threads])

    total = 2 * len(nodes) * per_publisher
    for k, (node, c) in enumerate(zip(nodes, subs)):
        got = await collect(c, {ch: total for ch in channels})
        check_equals_history(nodes[(k + 1) % len(nodes)], got, f"subscriber on node {k}:")
        await c.close()


@runs_async
async def test_three_nodes_publishers_and_subscribers_everywhere_see_the_same_ordered_stream(
        redis_server):
    nodes = start_nodes(redis_server.port, 3, "nodes")
    try:
        channels = [unique(f"room:n{i}") for i in range(6)]
        subs = []
        for node in nodes:
            c, _ = await WSClient.connected(node)
            await subscribe_all(c, channels)
            subs.append(c)

        await publish_everywhere_and_check(nodes, subs, channels, per_publisher=20)

        # Recovery from any node: missed on node 0, recovered on node 2.
        ch = channels[0]
        first = await WSClient.connected(nodes[0])
        c0 = first[0]
        sub = await c0.call({"type": "subscribe", "channel": ch})
        epoch, seen = sub["epoch"], sub["offset"]
        await c0.close()
        for i in range(5):
            assert http_publish(nodes[1], ch, f"missed-{i}")[0] == 200
        c2, _ = await WSClient.connected(nodes[2])
        rec = await c2.call({"type": "subscribe", "channel": ch,
                             "recover": {"epoch": epoch, "offset": seen}})
        assert rec["recovered"] is True, rec
        assert [e["data"] for e in rec["events"]] == [f"missed-{i}" for i in range(5)], rec
        await c2.close()
    finally:
        stop_nodes(nodes)


@runs_async
async def test_pubsub_connection_killed_during_a_flood_loses_nothing(redis_server):
    nodes = start_nodes(redis_server.port, 2, "pubsub-kill")
    try:
        ch = unique("room:k")
        sub, _ = await WSClient.connected(nodes[1])
        await subscribe_all(sub, [ch])
        n = 400

        async def flood():
            c, _ = await WSClient.connected(nodes[0])
            for i in range(n):
                await c.send({"type": "publish", "id": i, "channel": ch, "event": "e", "data": i})
                if i % 50 == 0:
                    await asyncio.sleep(0.01)
            acks = [await c.recv() for _ in range(n)]
            assert all(a["type"] == "ack" for a in acks)
            await c.close()

        async def killer():
            r = redis_server.connect()
            for _ in range(8):
                await asyncio.sleep(0.02)
                await asyncio.to_thread(r.client_kill_filter, _type="pubsub")

        await asyncio.gather(flood(), killer())
        got = await collect(sub, {ch: n}, timeout=30)
        check_equals_history(nodes[0], got, "subscriber on node 1:")
        assert [d for _, d in got[ch]] == list(range(n))
        await sub.close()
    finally:
        stop_nodes(nodes)


@runs_async
async def test_redis_stopped_during_publishing_nothing_acknowledged_is_missed():
    redis_server = DurableRedis()
    nodes = start_nodes(redis_server.port, 2, "redis-stop")
    try:
        ch = unique("room:s")
        sub, _ = await WSClient.connected(nodes[1])
        await subscribe_all(sub, [ch])
        pub, _ = await WSClient.connected(nodes[0])
        acked = []

        async def publish(i) -> bool:
            reply = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": i})
            if reply["type"] == "ack":
                acked.append(i)
                return True
            assert_error(reply, "unavailable")
            return False

        for i in range(100):
            assert await publish(i)
        redis_server.kill()
        for i in range(100, 120):
            assert not await publish(i)
        redis_server.restart()
        i = 120
        while len(acked) < 200:
            if not await publish(i):
                await asyncio.sleep(0.02)  # the nodes reconnect with backoff
            i += 1
            assert i < 1000, "publishes still refused long after Redis came back"
        stored = [e["data"] for e in history(nodes[1], ch)]
        assert stored == acked, ("history must hold exactly the acknowledged publishes",
                                 sorted(set(stored) ^ set(acked)), len(stored), len(acked))
        got = await collect(sub, {ch: len(acked)}, timeout=30)
        check_equals_history(nodes[0], got, "subscriber on node 1:")
        await sub.close()
        await pub.close()
    finally:
        stop_nodes(nodes)
        redis_server.stop()
