# Protocol-level error replies of a real herald server (python3-websockets
# client): invalid_json, unknown_type, bad_request (missing or wrong-typed
# fields, bad channel names), not_subscribed; errors carry the request id only
# when one was sent, and after every error the connection stays open and a
# valid command still gets its normal reply.
import json

import pytest

from harness import HeraldServer, WSClient, assert_error, runs_async, unique


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(name="errors")  # default limits: max_channel_length 255
    srv.start()
    yield srv
    srv.stop_checked()


async def assert_still_works(c: WSClient) -> None:
    """A valid command after an error gets its normal reply, and nothing else
    arrived in between."""
    ch = unique("after-error")
    reply = await c.call({"type": "subscribe", "channel": ch})
    assert reply["type"] == "subscribed" and reply["channel"] == ch, reply
    assert c.backlog == [], f"unexpected extra messages after the error: {c.backlog}"
    reply = await c.call({"type": "publish", "channel": ch, "event": "e", "data": {"ok": 1}})
    assert reply["type"] == "ack" and reply["offset"] == 1, reply


INVALID_JSON = [
    "not json",
    "{",
    '{"type":"publish",',
    "",
    "   ",
    '{"type":"connect"} trailing',
    "{'type':'connect'}",
    '{"type":"connect",}',
    "[1, 2, 3]",
    '[{"type":"connect"}]',
    "42",
    '"a string"',
    "null",
    "true",
    '{"type":"connect","x":"\\ud800"}',                # lone surrogate escape
    '{"type":"connect","x":"a\tb"}',                    # raw control character
    '\ufeff{"type":"connect"}',                         # byte order mark
    '{"type":"publish","channel":"a","event":"e","data":NaN}',
    '{"type":"publish","channel":"a","event":"e","data":Infinity}',
    '{"type":"connect"} /* comment */',
    '{"type":"connect"}{"type":"connect"}',
]


@pytest.mark.parametrize("text", INVALID_JSON)
@runs_async
async def test_invalid_json(server, text):
    c, _ = await WSClient.connected(server)
    await c.send(text)
    err = await c.recv()
    assert_error(err, "invalid_json", has_id=False)
    await assert_still_works(c)
    await c.close()


@runs_async
async def test_invalid_json_as_first_frame(server):
    c = await WSClient.open(server)
    await c.send("}{")
    err = await c.recv()
    assert_error(err, "invalid_json", has_id=False)
    reply = await c.call({"type": "connect"})
    assert reply["type"] == "connected", reply
    await c.close()


def nested_publish(channel: str, id_: int, depth: int) -> str:
    return ('{"type":"publish","id":%d,"channel":"%s","event":"e","data":' % (id_, channel)
            + "[" * depth + "]" * depth + "}")


@runs_async
async def test_nesting_depth_limit(server):
    """At most 128 levels counting the message itself: data may nest 127."""
    c, _ = await WSClient.connected(server)
    ch = unique()
    await c.send(nested_publish(ch, 1, 127))
    reply = await c.recv()
    assert reply == {"type": "ack", "id": 1, "offset": 1}, reply
    await c.send(nested_publish(ch, 2, 128))
    assert_error(await c.recv(), "invalid_json")
    await c.send(nested_publish(ch, 3, 20000))
    assert_error(await c.recv(), "invalid_json")
    await c.send('{"type":"publish","id":4,"channel":"%s","event":"e","data":%s}'
                 % (ch, '{"a":' * 200 + "1" + "}" * 200))
    assert_error(await c.recv(), "invalid_json")
    await assert_still_works(c)
    await c.close()


@runs_async
async def test_unknown_type(server):
    c, _ = await WSClient.connected(server)
    await c.send({"type": "frobnicate", "id": 5})
    assert_error(await c.recv(), "unknown_type", 5)
    await c.send({"type": "frobnicate"})
    assert_error(await c.recv(), "unknown_type", has_id=False)
    await c.send({"type": "Subscribe", "id": "s", "channel": "x"})
    assert_error(await c.recv(), "unknown_type", "s")
    await assert_still_works(c)
    await c.close()


@runs_async
async def test_missing_type(server):
    c, _ = await WSClient.connected(server)
    await c.send({"id": 6, "channel": "x"})
    err = await c.recv()
    assert err["type"] == "error" and err["code"] in ("bad_request", "unknown_type"), err
    assert err.get("id") == 6, err
    await c.send({"type": 7, "id": 8})
    err = await c.recv()
    assert err["type"] == "error" and err["code"] in ("bad_request", "unknown_type"), err
    assert err.get("id") == 8, err
    await assert_still_works(c)
    await c.close()


BAD_CHANNELS = [
    "",
    "x" * 256,
    "has space",
    "percent%sign",
    "star*",
    "semi;colon",
    "caf\u00e9",
    "emoji\U0001F600",
    "tab\tch",
    "nul\u0000ch",
    "new\nline",
    "quote\"d",
    "back\\slash",
    "percent%20",
    "plus+",
    "semi;colon",
]
WRONG_TYPED_CHANNELS = [None, 5, True, ["a"], {"a": 1}]


def bad_requests():
    """(name, command) pairs that must each be answered with bad_request."""
    ok = "valid:channel"
    cases = []
    for i, ch in enumerate(BAD_CHANNELS):
        cases.append((f"subscribe-bad-channel-{i}", {"type": "subscribe", "channel": ch}))
        cases.append((f"publish-bad-channel-{i}",
                      {"type": "publish", "channel": ch, "event": "e", "data": 1}))
        cases.append((f"history-bad-channel-{i}", {"type": "history", "channel": ch}))
    for i, ch in enumerate(WRONG_TYPED_CHANNELS):
        cases.append((f"subscribe-channel-type-{i}", {"type": "subscribe", "channel": ch}))
        cases.append((f"unsubscribe-channel-type-{i}", {"type": "unsubscribe", "channel": ch}))
        cases.append((f"publish-channel-type-{i}",
                      {"type": "publish", "channel": ch, "event": "e", "data": 1}))
    cases += [
        ("subscribe-no-channel", {"type": "subscribe"}),
        ("unsubscribe-no-channel", {"type": "unsubscribe"}),
        ("unsubscribe-bad-channel", {"type": "unsubscribe", "channel": "bad channel"}),
        ("publish-no-channel", {"type": "publish", "event": "e", "data": 1}),
        ("publish-no-event", {"type": "publish", "channel": ok, "data": 1}),
        ("publish-no-data", {"type": "publish", "channel": ok, "event": "e"}),
        ("publish-event-number", {"type": "publish", "channel": ok, "event": 5, "data": 1}),
        ("publish-event-null", {"type": "publish", "channel": ok, "event": None, "data": 1}),
        ("publish-event-empty", {"type": "publish", "channel": ok, "event": "", "data": 1}),
        ("publish-ephemeral-string",
         {"type": "publish", "channel": ok, "event": "e", "data": 1, "ephemeral": "yes"}),
        ("subscribe-history-string", {"type": "subscribe", "channel": ok, "history": "5"}),
        ("subscribe-history-negative", {"type": "subscribe", "channel": ok, "history": -1}),
        ("subscribe-recover-not-object", {"type": "subscribe", "channel": ok, "recover": 5}),
        ("subscribe-recover-no-epoch",
         {"type": "subscribe", "channel": ok, "recover": {"offset": 1}}),
        ("subscribe-recover-offset-string",
         {"type": "subscribe", "channel": ok, "recover": {"epoch": "x", "offset": "1"}}),
        ("history-no-channel", {"type": "history"}),
        ("history-limit-string", {"type": "history", "channel": ok, "limit": "10"}),
        ("history-limit-negative", {"type": "history", "channel": ok, "limit": -3}),
        ("history-before-string", {"type": "history", "channel": ok, "before": "3"}),
        ("history-after-negative", {"type": "history", "channel": ok, "after": -1}),
        ("history-limit-float", {"type": "history", "channel": ok, "limit": 10.5}),
        ("history-limit-null", {"type": "history", "channel": ok, "limit": None}),
        ("subscribe-history-null", {"type": "subscribe", "channel": ok, "history": None}),
        ("subscribe-recover-null", {"type": "subscribe", "channel": ok, "recover": None}),
        ("publish-ephemeral-null",
         {"type": "publish", "channel": ok, "event": "e", "data": 1, "ephemeral": None}),
        ("publish-event-space", {"type": "publish", "channel": ok, "event": "a b", "data": 1}),
        ("publish-event-slash", {"type": "publish", "channel": ok, "event": "a/b", "data": 1}),
        ("publish-event-at", {"type": "publish", "channel": ok, "event": "a@b", "data": 1}),
        ("publish-event-unicode", {"type": "publish", "channel": ok, "event": "\u00e9", "data": 1}),
        ("publish-event-129", {"type": "publish", "channel": ok, "event": "e" * 129, "data": 1}),
        ("type-number", {"type": 7}),
        ("type-null", {"type": None}),
        ("no-type", {"channel": ok}),
    ]
    return cases


BAD_REQUESTS = bad_requests()


@pytest.mark.parametrize("command", [c for _, c in BAD_REQUESTS],
                         ids=[n for n, _ in BAD_REQUESTS])
@runs_async
async def test_bad_request(server, command):
    c, _ = await WSClient.connected(server)
    await c.send({**command, "id": 99})
    assert_error(await c.recv(), "bad_request", 99)
    # The same without an id: still an error, now without id.
    await c.send(command)
    assert_error(await c.recv(), "bad_request", has_id=False)
    await assert_still_works(c)
    await c.close()


@runs_async
async def test_bad_request_channel_in_same_connection_many_times(server):
    """A burst of failing requests on one connection: each gets its error, in
    order, and the connection survives."""
    c, _ = await WSClient.connected(server)
    n = 300
    for i in range(n):
        await c.send({"type": "subscribe", "id": i, "channel": "bad channel"})
    for i in range(n):
        assert_error(await c.recv(), "bad_request", i)
    await assert_still_works(c)
    await c.close()


@runs_async
async def test_event_names_accepted(server):
    c, _ = await WSClient.connected(server)
    ch = unique()
    # Default max_event_length is 128; allowed characters A-Za-z0-9_-.:
    for n, name in enumerate(["e" * 128, "chat.message", "a-Z_0:9.x", "E"], start=1):
        reply = await c.call({"type": "publish", "channel": ch, "event": name, "data": 1})
        assert reply["type"] == "ack" and reply["offset"] == n, (name, reply)
    await c.close()


@pytest.mark.parametrize("id_", [{"x": 1}, [1], True, None], ids=["object", "array", "bool", "null"])
@runs_async
async def test_bad_id_type(server, id_):
    c, _ = await WSClient.connected(server)
    await c.send({"type": "publish", "id": id_, "channel": "ok", "event": "e", "data": 1})
    assert_error(await c.recv(), "bad_request", has_id=False)
    await assert_still_works(c)
    await c.close()


DUPLICATES = [
    ('{"type":"publish","id":1,"channel":"a","channel":"b","event":"e","data":1}', True),
    ('{"type":"publish","id":1,"channel":"a","event":"e","event":"e","data":1}', True),
    ('{"type":"publish","id":1,"channel":"a","event":"e","data":1,"data":2}', True),
    ('{"type":"subscribe","id":1,"channel":"a","history":1,"history":2}', True),
    ('{"type":"publish","id":1,"id":2,"channel":"a","event":"e","data":1}', False),
]


@pytest.mark.parametrize("text,has_id", DUPLICATES, ids=["channel", "event", "data", "history", "id"])
@runs_async
async def test_duplicate_fields_are_bad_request(server, text, has_id):
    c, _ = await WSClient.connected(server)
    await c.send(text.replace('"a"', '"%s"' % unique()))
    err = await c.recv()
    assert_error(err, "bad_request")
    if has_id:
        assert err.get("id") == 1, err
    await assert_still_works(c)
    await c.close()


@runs_async
async def test_unused_duplicate_fields_are_ignored(server):
    c, _ = await WSClient.connected(server)
    ch = unique()
    await c.send('{"type":"publish","id":1,"channel":"%s","event":"e","data":1,"x":1,"x":2}' % ch)
    assert await c.recv() == {"type": "ack", "id": 1, "offset": 1}
    await c.close()


@runs_async
async def test_error_ids_are_echoed_exactly(server):
    c, _ = await WSClient.connected(server)
    for id_ in [0, 1, 123456789, -4, "", "abc", "with \"quotes\" and \u00e9"]:
        await c.send(json.dumps({"type": "frobnicate", "id": id_}))
        err = await c.recv()
        assert_error(err, "unknown_type")
        assert err["id"] == id_ and type(err["id"]) is type(id_), (id_, err)
    await assert_still_works(c)
    await c.close()


@runs_async
async def test_not_subscribed(server):
    c, _ = await WSClient.connected(server)
    await c.send({"type": "unsubscribe", "id": 1, "channel": unique()})
    assert_error(await c.recv(), "not_subscribed", 1)
    await c.send({"type": "unsubscribe", "channel": unique()})
    assert_error(await c.recv(), "not_subscribed", has_id=False)
    await assert_still_works(c)
    await c.close()


@runs_async
async def test_errors_are_per_connection(server):
    """An error on one connection has no effect on another."""
    a, _ = await WSClient.connected(server)
    b, _ = await WSClient.connected(server)
    ch = unique()
    reply = await b.call({"type": "subscribe", "channel": ch})
    assert reply["type"] == "subscribed", reply
    await a.send("garbage")
    assert_error(await a.recv(), "invalid_json", has_id=False)
    reply = await a.call({"type": "publish", "channel": ch, "event": "e", "data": 1})
    assert reply["type"] == "ack", reply
    ev = await b.recv()
    assert ev["type"] == "event" and ev["offset"] == 1, ev
    await a.close()
    await b.close()
