# Protocol v1 commands against a real herald server with the python3-websockets
# client: connect (explicit and anonymous), subscribe/unsubscribe (also in the
# middle of an event stream), publish with ack and event fan-out to subscribers
# on both workers, own event before ack, requests without id, ids echoed byte
# for byte, field order of replies, unknown fields, raw splicing of `data`,
# ephemeral events, presence refusal and max_channels_per_connection.
import asyncio
import json
import time

import pytest

from harness import (HeraldServer, WSClient, assert_error, runs_async, toml_config, unique)

MAX_CHANNELS = 4


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(toml_config(limits={"max_channels_per_connection": MAX_CHANNELS}),
                       name="protocol")
    srv.start()
    yield srv
    srv.stop_checked()


async def subscribe(c: WSClient, channel: str, **extra) -> dict:
    reply = await c.call({"type": "subscribe", "channel": channel, **extra})
    assert reply["type"] == "subscribed", reply
    return reply


def assert_event(msg: dict, raw: str, *, channel: str, event: str, data_raw: str,
                 offset: int | None, from_client: str | None) -> None:
    assert msg["type"] == "event", msg
    assert msg["channel"] == channel, msg
    assert msg["event"] == event, msg
    assert msg["data"] == json.loads(data_raw), msg
    assert data_raw in raw, f"data not spliced byte-for-byte: sent {data_raw!r}, got {raw!r}"
    if offset is None:
        assert "offset" not in msg, f"ephemeral event must not carry an offset: {msg}"
    else:
        assert msg["offset"] == offset, msg
    assert isinstance(msg["ts"], int), msg
    assert abs(msg["ts"] - time.time() * 1000) < 60_000, f"ts not server time in ms: {msg}"
    if from_client is not None:
        assert msg["from"]["client"] == from_client, msg


# -- connect -------------------------------------------------------------------

@runs_async
async def test_connect_reply(server):
    c = await WSClient.open(server)
    await c.send({"type": "connect", "id": 1})
    reply = await c.recv()
    assert reply["type"] == "connected", reply
    assert reply["id"] == 1
    assert isinstance(reply["client"], str) and reply["client"], reply
    assert reply["ping"] == 25, f"default ping_interval_ms 25000 should give ping 25: {reply}"
    assert reply["version"] == "1", reply
    await c.close()


@runs_async
async def test_connect_echoes_string_id(server):
    c = await WSClient.open(server)
    await c.send({"type": "connect", "id": "hello-1"})
    reply = await c.recv()
    assert reply["type"] == "connected" and reply["id"] == "hello-1", reply
    await c.close()


@runs_async
async def test_client_ids_are_unique(server):
    ids = set()
    clients = []
    for _ in range(6):
        c, reply = await WSClient.connected(server)
        ids.add(reply["client"])
        clients.append(c)
    assert len(ids) == 6, f"client ids repeat: {ids}"
    for c in clients:
        await c.close()


@runs_async
async def test_second_connect_is_bad_request(server):
    c, _ = await WSClient.connected(server)
    await c.send({"type": "connect", "id": 2})
    assert_error(await c.recv(), "bad_request", 2)
    # The connection still works.
    ch = unique()
    reply = await c.call({"type": "subscribe", "channel": ch, "id": 3})
    assert reply["type"] == "subscribed" and reply["channel"] == ch, reply
    await c.close()


@runs_async
async def test_first_command_other_than_connect_connects_anonymously(server):
    c = await WSClient.open(server)
    ch = unique()
    await c.send({"type": "subscribe", "channel": ch, "id": 7})
    reply = await c.recv()  # no `connected` is sent for an anonymous connection
    assert reply["type"] == "subscribed" and reply["id"] == 7 and reply["channel"] == ch, reply
    # ...and the anonymous connection is fully usable.
    await c.send({"type": "publish", "id": 8, "channel": ch, "event": "e", "data": 1})
    ev = await c.recv()
    assert ev["type"] == "event" and ev["offset"] == 1 and ev["data"] == 1, ev
    ack = await c.recv()
    assert ack == {"type": "ack", "id": 8, "offset": 1}, ack
    # Already connected (anonymously): a connect now is a bad request.
    await c.send({"type": "connect", "id": 9})
    assert_error(await c.recv(), "bad_request", 9)
    await c.close()


@runs_async
async def test_ids_are_echoed_byte_for_byte(server):
    c, _ = await WSClient.connected(server)
    for id_raw in ['1.50', '12345678901234567890', '-0', '1e3', '"a-1"', '"\u00e9"', '""']:
        await c.send('{"type":"unsubscribe","id":%s,"channel":"%s"}' % (id_raw, unique()))
        err = await c.recv()
        assert_error(err, "not_subscribed")
        assert '"id":%s' % id_raw in c.last_raw, f"id {id_raw} not echoed as sent: {c.last_raw}"
    await c.close()


@runs_async
async def test_reply_fields_come_in_documented_order(server):
    c, hello = await WSClient.connected(server)
    assert list(hello) == ["type", "id", "client", "ping", "version"], hello
    ch = unique()
    sub = await c.call({"type": "subscribe", "channel": ch, "id": 2})
    assert list(sub) == ["type", "id", "channel", "epoch", "offset", "events"], sub
    await c.send({"type": "publish", "id": 3, "channel": ch, "event": "e", "data": 1})
    ev = await c.recv()
    assert list(ev) == ["type", "channel", "event", "offset", "ts", "from", "data"], ev
    ack = await c.recv()
    assert list(ack) == ["type", "id", "offset"], ack
    hist = await c.call({"type": "history", "channel": ch, "id": 4})
    assert list(hist) == ["type", "id", "channel", "epoch", "offset", "events"], hist
    rec = await c.call({"type": "subscribe", "channel": ch, "id": 5})
    assert list(rec) == ["type", "id", "code", "message"], rec
    uns = await c.call({"type": "unsubscribe", "channel": ch, "id": 6})
    assert list(uns) == ["type", "id", "channel"], uns
    await c.close()


@runs_async
async def test_unknown_fields_are_ignored_and_names_may_be_escaped(server):
    c = await WSClient.open(server)
    await c.send('{"\u0074ype":"connect","id":1,"token":"ignored","data":{"x":[1]},"extra":null}')
    reply = await c.recv()
    assert reply["type"] == "connected" and reply["id"] == 1, reply
    ch = unique()
    await c.send('{"type":"subscribe","id":2,"channel":"%s","mine":{"a":[1,2]},"token":"t"}' % ch)
    reply = await c.recv()
    assert reply["type"] == "subscribed", reply
    await c.send('{"type":"publish","id":3,"ch\u0061nnel":"%s","event":"e","data":7,"x":1}' % ch)
    ev = await c.recv()
    assert ev["type"] == "event" and ev["data"] == 7, ev
    assert (await c.recv()) == {"type": "ack", "id": 3, "offset": 1}
    await c.close()


# -- subscribe / unsubscribe -----------------------------------------------------

@runs_async
async def test_subscribe_reply_on_new_channel(server):
    c, _ = await WSClient.connected(server)
    ch = unique("chat:room")
    await c.send({"type": "subscribe", "id": 5, "channel": ch})
    reply = await c.recv()
    assert reply["type"] == "subscribed", reply
    assert reply["id"] == 5 and reply["channel"] == ch, reply
    assert isinstance(reply["epoch"], str) and reply["epoch"], reply
    assert reply["offset"] == 0, reply
    assert reply["events"] == [], reply
    assert "recovered" not in reply, f"recovered only when recover was asked: {reply}"
    await c.close()


@runs_async
async def test_subscribe_reports_last_offset_without_events(server):
    pub, _ = await WSClient.connected(server)
    ch = unique()
    for i in range(3):
        ack = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": i})
        assert ack["type"] == "ack" and ack["offset"] == i + 1, ack
    sub, _ = await WSClient.connected(server)
    reply = await subscribe(sub, ch)
    assert reply["offset"] == 3 and reply["events"] == [], reply
    await pub.close()
    await sub.close()


@runs_async
async def test_subscribe_twice_is_bad_request(server):
    c, _ = await WSClient.connected(server)
    ch = unique()
    await subscribe(c, ch)
    await c.send({"type": "subscribe", "id": 10, "channel": ch})
    assert_error(await c.recv(), "bad_request", 10)
    # Still subscribed exactly once: one publish gives one event.
    await c.send({"type": "publish", "id": 11, "channel": ch, "event": "e", "data": "x"})
    ev = await c.recv()
    assert ev["type"] == "event" and ev["offset"] == 1, ev
    ack = await c.recv()
    assert ack["type"] == "ack" and ack["id"] == 11, f"duplicate delivery or missing ack: {ack}"
    await c.close()


@runs_async
async def test_unsubscribe(server):
    c, _ = await WSClient.connected(server)
    ch = unique()
    await subscribe(c, ch)
    await c.send({"type": "unsubscribe", "id": 20, "channel": ch})
    assert await c.recv() == {"type": "unsubscribed", "id": 20, "channel": ch}
    await c.send({"type": "unsubscribe", "id": 21, "channel": ch})
    assert_error(await c.recv(), "not_subscribed", 21)
    await c.send({"type": "unsubscribe", "id": 22, "channel": unique()})
    assert_error(await c.recv(), "not_subscribed", 22)
    await c.close()


@runs_async
async def test_no_events_after_unsubscribe(server):
    sub, _ = await WSClient.connected(server)
    pub, _ = await WSClient.connected(server)
    ch = unique()
    await subscribe(sub, ch)
    reply = await sub.call({"type": "unsubscribe", "channel": ch})
    assert reply["type"] == "unsubscribed", reply
    ack = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": "missed"})
    assert ack["offset"] == 1, ack
    # Subscribe again (this would fail if the first subscription were still
    # there) and publish once more: the first event received must be offset 2;
    # offset 1 would have arrived first had the unsubscribe not taken effect.
    reply = await subscribe(sub, ch)
    assert reply["offset"] == 1 and reply["events"] == [], reply
    ack = await pub.call({"type": "publish", "channel": ch, "event": "e", "data": "seen"})
    assert ack["offset"] == 2, ack
    ev = await sub.recv()
    assert ev["type"] == "event" and ev["offset"] == 2 and ev["data"] == "seen", ev
    await sub.close()
    await pub.close()


@runs_async
async def test_max_channels_per_connection(server):
    c, _ = await WSClient.connected(server)
    channels = [unique() for _ in range(MAX_CHANNELS)]
    for ch in channels:
        await subscribe(c, ch)
    await c.send({"type": "subscribe", "id": 30, "channel": unique()})
    assert_error(await c.recv(), "forbidden", 30)
    # Freeing one slot allows one more subscription.
    reply = await c.call({"type": "unsubscribe", "channel": channels[0]})
    assert reply["type"] == "unsubscribed", reply
    await subscribe(c, unique())
    await c.send({"type": "subscribe", "id": 31, "channel": unique()})
    assert_error(await c.recv(), "forbidden", 31)
    # The limit is per connection: another connection is not affected.
    other, _ = await WSClient.connected(server)
    await subscribe(other, channels[1])
    await c.close()
    await other.close()


@runs_async
async def test_channel_name_limits_accepted(server):
    c, _ = await WSClient.connected(server)
    for ch in ["aZ09_-:.@=/" + unique(), "x" * 255, "a"]:
        reply = await subscribe(c, ch)
        assert reply["channel"] == ch, reply
        await c.call({"type": "unsubscribe", "channel": ch})
    await c.close()


# -- publish -------------------------------------------------------------------

@runs_async
async def test_publish_reaches_every_subscriber(server):
    ch = unique("fanout")
    subs = []
    for _ in range(8):  # enough connections to land on both workers
        s, _ = await WSClient.connected(server)
        await subscribe(s, ch)
        subs.append(s)
    pub, hello = await WSClient.connected(server)
    for n in (1, 2, 3):
        data = '{"n": %d, "text": "hi \\u00e9 \u00fc \U0001F600"}' % n
        await pub.send('{"type":"publish","id":%d,"channel":"%s","event":"chat.message","data":%s}'
                       % (n, ch, data))
        ack = await pub.recv()
        assert ack == {"type": "ack", "id": n, "offset": n}, ack
        for s in subs:
            ev = await s.recv()
            assert_event(ev, s.last_raw, channel=ch, event="chat.message", data_raw=data,
                         offset=n, from_client=hello["client"])
    for s in subs + [pub]:
        await s.close()


@runs_async
async def test_subscribed_publisher_gets_own_event_before_ack(server):
    c, hello = await WSClient.connected(server)
    ch = unique()
    await subscribe(c, ch)
    for n in range(1, 6):
        await c.send({"type": "publish", "id": f"p{n}", "channel": ch, "event": "e",
                      "data": {"n": n}})
        ev = await c.recv()
        assert ev["type"] == "event", f"own event must come before the ack: {ev}"
        assert ev["offset"] == n and ev["data"] == {"n": n}, ev
        assert ev["from"]["client"] == hello["client"], ev
        ack = await c.recv()
        assert ack == {"type": "ack", "id": f"p{n}", "offset": n}, ack
    await c.close()


@runs_async
async def test_requests_without_id_get_no_success_reply(server):
    c, _ = await WSClient.connected(server)
    ch = unique()
    # subscribe without id: no `subscribed`, but events flow.
    await c.send({"type": "subscribe", "channel": ch})
    # publish without id: no ack, but the event is stored (offset 1).
    await c.send({"type": "publish", "channel": ch, "event": "e", "data": "a"})
    await c.send({"type": "publish", "id": 2, "channel": ch, "event": "e", "data": "b"})
    msgs = [await c.recv() for _ in range(3)]
    assert [m["type"] for m in msgs] == ["event", "event", "ack"], msgs
    assert [m.get("offset") for m in msgs] == [1, 2, 2], msgs
    assert msgs[2]["id"] == 2, msgs
    # unsubscribe without id: no reply; the next reply is for the next request.
    await c.send({"type": "unsubscribe", "channel": ch})
    reply = await c.call({"type": "unsubscribe", "channel": ch, "id": 3})
    assert_error(reply, "not_subscribed", 3)
    assert c.backlog == [], f"unexpected messages: {c.backlog}"
    await c.close()


@runs_async
async def test_publisher_need_not_subscribe(server):
    sub, _ = await WSClient.connected(server)
    ch = unique()
    await subscribe(sub, ch)
    pub, hello = await WSClient.connected(server)
    await pub.send({"type": "publish", "id": 1, "channel": ch, "event": "e", "data": None})
    assert await pub.recv() == {"type": "ack", "id": 1, "offset": 1}
    ev = await sub.recv()
    assert ev["type"] == "event" and ev["data"] is None and ev["offset"] == 1, ev
    assert ev["from"]["client"] == hello["client"], ev
    await sub.close()
    await pub.close()


DATA_SAMPLES = [
    '{"a" : [1, 2.50, -0e0, 1E+3],  "s":"\\u00e9\\ud83d\\ude00 \\"q\\" \\\\ \\/", "n":null}',
    '"plain string with \u00fc\u00e9 and \U0001F680"',
    '12345678901234567890',
    '1.000',
    '-0.5e-7',
    '[]',
    '{}',
    '[ {"deep": [[[[{"x": [true, false, null]}]]]]} ]',
    'true',
    'null',
    '"\\u0000\\t\\n"',
]


@pytest.mark.parametrize("data_raw", DATA_SAMPLES, ids=[f"sample{i}" for i in range(len(DATA_SAMPLES))])
@runs_async
async def test_data_is_spliced_byte_for_byte(server, data_raw):
    sub, _ = await WSClient.connected(server)
    ch = unique()
    await subscribe(sub, ch)
    pub, hello = await WSClient.connected(server)
    # `data` first and odd spacing: field order must not matter.
    await pub.send('{"data":%s,"type":"publish","channel":"%s","event":"raw.test","id":1}'
                   % (data_raw, ch))
    ack = await pub.recv()
    assert ack == {"type": "ack", "id": 1, "offset": 1}, ack
    ev = await sub.recv()
    assert_event(ev, sub.last_raw, channel=ch, event="raw.test", data_raw=data_raw, offset=1,
                 from_client=hello["client"])
    await sub.close()
    await pub.close()


@runs_async
async def test_ephemeral_events(server):
    c, hello = await WSClient.connected(server)
    other, _ = await WSClient.connected(server)
    ch = unique()
    await subscribe(c, ch)
    await subscribe(other, ch)
    ack = await c.call({"type": "publish", "channel": ch, "event": "e", "data": 1})
    assert ack["offset"] == 1
    for s in (c, other):
        assert (await s.recv())["offset"] == 1
    data = '{"typing": true}'
    await c.send('{"type":"publish","id":2,"channel":"%s","event":"typing","data":%s,'
                 '"ephemeral":true}' % (ch, data))
    ev = await c.recv()
    assert_event(ev, c.last_raw, channel=ch, event="typing", data_raw=data, offset=None,
                 from_client=hello["client"])
    ack = await c.recv()
    assert ack == {"type": "ack", "id": 2}, f"ephemeral ack must have no offset: {ack}"
    ev = await other.recv()
    assert_event(ev, other.last_raw, channel=ch, event="typing", data_raw=data, offset=None,
                 from_client=hello["client"])
    # Ephemeral events take no offset: the next stored event gets offset 2.
    ack = await c.call({"type": "publish", "channel": ch, "event": "e", "data": 3,
                        "ephemeral": False})
    assert ack["type"] == "ack" and ack["offset"] == 2, ack
    assert (await other.recv())["offset"] == 2
    # ...and a new subscriber sees offset 2 as the last stored one.
    late, _ = await WSClient.connected(server)
    reply = await subscribe(late, ch)
    assert reply["offset"] == 2, reply
    for s in (c, other, late):
        await s.close()


@runs_async
async def test_offsets_are_per_channel(server):
    c, _ = await WSClient.connected(server)
    a, b = unique(), unique()
    offsets = []
    for ch in (a, b, a, a, b):
        ack = await c.call({"type": "publish", "channel": ch, "event": "e", "data": 0})
        offsets.append(ack["offset"])
    assert offsets == [1, 1, 2, 3, 2], offsets
    await c.close()


@runs_async
async def test_presence_is_forbidden(server):
    c, _ = await WSClient.connected(server)
    ch = unique()
    await subscribe(c, ch)
    await c.send({"type": "presence", "id": 40, "channel": ch})
    assert_error(await c.recv(), "forbidden", 40)
    reply = await c.call({"type": "unsubscribe", "channel": ch})
    assert reply["type"] == "unsubscribed", reply
    await c.close()


@runs_async
async def test_no_event_after_unsubscribed_reply_mid_stream(server):
    """Unsubscribing while events stream in: events may arrive before the
    `unsubscribed` reply, never after it."""
    ch = unique("stream")
    sub, _ = await WSClient.connected(server)
    await subscribe(sub, ch)
    pub, _ = await WSClient.connected(server)
    total = 1500

    async def flood():
        for i in range(1, total + 1):
            await pub.send({"type": "publish", "id": i, "channel": ch, "event": "e", "data": i})
            if i % 100 == 0:
                await pub.reply_to(i - 50)  # keep a bounded number in flight
        await pub.reply_to(total)

    task = asyncio.create_task(flood())
    seen = []
    while len(seen) < 200:
        msg = await sub.recv()
        assert msg["type"] == "event", msg
        seen.append(msg["offset"])
    await sub.send({"type": "unsubscribe", "id": "u", "channel": ch})
    while True:
        msg = await sub.recv()
        if msg["type"] == "unsubscribed":
            assert msg == {"type": "unsubscribed", "id": "u", "channel": ch}, msg
            break
        assert msg["type"] == "event", msg
        seen.append(msg["offset"])
    assert seen == list(range(1, len(seen) + 1)), "events before the reply must be contiguous"
    await task
    # Everything is published now; a round trip on the subscriber's connection
    # flushes anything still queued for it.
    reply = await sub.call({"type": "history", "channel": ch, "limit": 1})
    assert reply["type"] == "history" and reply["offset"] == total, reply
    late = [m for m, _ in sub.backlog if m["type"] == "event"]
    assert late == [], f"{len(late)} events after the unsubscribed reply, first {late[0]}"
    await sub.close()
    await pub.close()
