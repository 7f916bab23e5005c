# Application-level keepalive of a real herald server (python3-websockets
# client), with ping_interval_ms=500 and pong_timeout_ms=500: the server sends
# {"type":"ping"}, keeps clients that answer {"type":"pong"} (idle or busy)
# connected over many intervals, and closes clients that stay silent with 1008.
import asyncio
import time

import pytest

from harness import Closed, HeraldServer, WSClient, runs_async, toml_config, unique

INTERVAL = 0.5
TIMEOUT = 0.5
OBSERVE = 3.0  # six ping intervals


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(toml_config(limits={"ping_interval_ms": int(INTERVAL * 1000),
                                           "pong_timeout_ms": int(TIMEOUT * 1000)}),
                       name="ping")
    srv.start()
    yield srv
    srv.stop_checked()


@runs_async
async def test_server_sends_json_pings(server):
    c, hello = await WSClient.connected(server)
    assert isinstance(hello["ping"], (int, float)) and hello["ping"] > 0, hello
    msg = await c.recv(timeout=10)
    assert msg == {"type": "ping"}, msg
    await c.close()


async def run_for(c: WSClient, seconds: float, on_other=None) -> int:
    """Reads for `seconds`, answering every ping with a pong; returns the
    number of pings. Fails if the server closes the connection."""
    pings = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await c.recv(timeout=left)
        except AssertionError:  # nothing more within the window
            break
        except Closed as e:
            raise AssertionError(f"server closed a client that answers pings: {e}") from None
        if msg == {"type": "ping"}:
            pings += 1
            await c.send({"type": "pong"})
        elif on_other is not None:
            on_other(msg)
        else:
            raise AssertionError(f"unexpected message {msg}")
    return pings


@runs_async
async def test_client_answering_pings_stays_connected(server):
    c, _ = await WSClient.connected(server)
    pings = await run_for(c, OBSERVE)
    assert pings >= 3, f"expected a ping about every {INTERVAL}s, got {pings} in {OBSERVE}s"
    # Still fully usable: pongs get no reply, the next reply is ours.
    reply = await c.call({"type": "subscribe", "channel": unique()})
    assert reply["type"] == "subscribed", reply
    await c.close()


@runs_async
async def test_busy_client_answering_pings_stays_connected(server):
    c, _ = await WSClient.connected(server)
    ch = unique()
    reply = await c.call({"type": "subscribe", "channel": ch})
    assert reply["type"] == "subscribed", reply
    received = []

    def on_other(msg):
        received.append(msg)

    published = 0
    pings = 0
    deadline = time.monotonic() + OBSERVE
    while time.monotonic() < deadline:
        published += 1
        await c.send({"type": "publish", "id": published, "channel": ch, "event": "tick",
                      "data": published})
        pings += await run_for(c, 0.05, on_other)
    pings += await run_for(c, 1.0, on_other)  # drain the last replies
    events = [m for m in received if m["type"] == "event"]
    acks = [m for m in received if m["type"] == "ack"]
    assert [e["offset"] for e in events] == list(range(1, published + 1))
    assert [a["id"] for a in acks] == list(range(1, published + 1))
    assert pings >= 3, pings
    await c.close()


@runs_async
async def test_silent_connected_client_is_closed_1008(server):
    c, _ = await WSClient.connected(server)
    start = time.monotonic()
    first = await c.recv(timeout=10)
    assert first == {"type": "ping"}, first
    closed = await c.expect_closed(timeout=10)
    assert closed.code == 1008, f"expected close 1008 for a client not answering pings, got {closed}"
    assert time.monotonic() - start >= INTERVAL * 0.5, "closed before it could have answered"


@runs_async
async def test_client_that_sends_nothing_is_closed_1008(server):
    c = await WSClient.open(server)  # upgrade only: no frame at all
    closed = await c.expect_closed(timeout=10)
    assert closed.code == 1008, f"expected close 1008, got {closed}"


@runs_async
async def test_silent_clients_closed_while_answering_ones_stay(server):
    """Several clients at once: the ones answering survive while a silent one
    next to them is closed."""
    good = [(await WSClient.connected(server))[0] for _ in range(4)]
    bad = [(await WSClient.connected(server))[0] for _ in range(2)]
    results = await asyncio.gather(*(run_for(c, OBSERVE) for c in good),
                                   *(c.expect_closed(timeout=10) for c in bad))
    for pings in results[:4]:
        assert pings >= 3, results
    for closed in results[4:]:
        assert closed.code == 1008, closed
    for c in good:
        await c.close()
