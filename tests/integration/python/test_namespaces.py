# Channel namespaces and JSON Schema validation against a real herald server
# (python3-websockets and plain HTTP): every namespace option's effect on
# the WebSocket and HTTP paths, validation_failed with every violation's
# pointer, write-only fields that subscribers and history never see, and
# reload by SIGHUP and by POST /api/admin/reload (connections stay open, the
# new schema applies, a bad config is refused and the old one stays).
import asyncio
import contextlib
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

from harness import HeraldServer, WSClient, assert_error, runs_async, unique

CHAT_SCHEMA = {
    "chat.message": {
        "type": "object",
        "required": ["text", "author"],
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 50},
            "author": {"type": "string"},
            "token": {"type": "string", "writeOnly": True},
            "attachments": {"type": "array", "items": {"$ref": "#/definitions/attachment"}},
        },
        "additionalProperties": False,
        "definitions": {
            "attachment": {
                "type": "object",
                "required": ["url"],
                "properties": {"url": {"type": "string"}, "signature": {"writeOnly": True}},
            }
        },
    },
    "chat.typing": {"type": "object", "properties": {"who": {"type": "string"}}},
}

CONFIG = """
[engine]
type = "{engine}"

[history]
size = 100

[defaults]
allow_unknown = {allow_unknown}

[namespaces.chat]
schema = "schemas/chat.json"
strict_events = true

[namespaces.loose]
schema = "schemas/chat.json"

[namespaces.feed]
client_publish = false
recover = false
history_size = 3
max_message_bytes = 64
"""


def make_server(name: str, allow_unknown: bool = False, schema=None, engine: str = "memory",
                **kwargs) -> HeraldServer:
    srv = HeraldServer(config=CONFIG.format(allow_unknown=str(allow_unknown).lower(),
                                            engine=engine), name=name, **kwargs)
    write_schema(srv, schema or CHAT_SCHEMA)
    return srv


@contextlib.contextmanager
def running(srv: HeraldServer):
    """Starts `srv`; at the end stops it and checks its log for sanitizer
    reports (a plain `with srv:` only kills it)."""
    srv.start()
    try:
        yield srv
    finally:
        srv.stop_checked()


def write_schema(srv: HeraldServer, schema, name: str = "chat.json") -> None:
    os.makedirs(os.path.join(srv.tmpdir, "schemas"), exist_ok=True)
    with open(os.path.join(srv.tmpdir, "schemas", name), "w") as f:
        f.write(schema if isinstance(schema, str) else json.dumps(schema))


def http(server: HeraldServer, method: str, path: str, body=None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.http_url(path), data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def http_publish(server, channel, event, data) -> tuple[int, dict]:
    return http(server, "POST", "/api/publish", {"channel": channel, "event": event, "data": data})


@pytest.fixture(scope="module")
def server():
    srv = make_server("namespaces")
    srv.start()
    yield srv
    srv.stop_checked()


GOOD = {"text": "hello", "author": "ann"}


async def publish(c: WSClient, channel: str, event: str, data) -> dict:
    return await c.call({"type": "publish", "channel": channel, "event": event, "data": data})


@runs_async
async def test_valid_payloads_pass_on_both_paths(server):
    c, _ = await WSClient.connected(server)
    ch = unique("chat:room")
    assert (await c.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
    reply = await publish(c, ch, "chat.message", GOOD)
    assert reply["type"] == "ack" and reply["offset"] == 1, reply
    ev = await c.recv()
    assert ev["type"] == "event" and ev["data"] == GOOD, ev
    status, body = http_publish(server, ch, "chat.typing", {"who": "bob"})
    assert (status, body) == (200, {"offset": 2})
    ev = await c.recv()
    assert ev["event"] == "chat.typing" and ev["data"] == {"who": "bob"}, ev
    await c.close()


def assert_violations(err: dict, pointers: set[str]) -> None:
    assert err["code"] == "validation_failed", err
    details = err.get("details")
    assert isinstance(details, list) and details, err
    for d in details:
        assert set(d) == {"pointer", "reason"} and isinstance(d["reason"], str) and d["reason"], d
    got = {d["pointer"] for d in details}
    assert pointers <= got, f"expected violations at {pointers}, got {details}"


BAD = {"text": "", "author": 7, "extra": True, "attachments": [{"signature": "s"}]}


@runs_async
async def test_invalid_payloads_are_refused_with_every_violation(server):
    c, _ = await WSClient.connected(server)
    ch = unique("chat:room")
    watcher, _ = await WSClient.connected(server)
    assert (await watcher.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"

    err = await publish(c, ch, "chat.message", BAD)
    assert_error(err, "validation_failed")
    assert_violations(err, {"/text", "/author", "/attachments/0"})
    assert any("extra" in d["reason"] for d in err["details"]), err

    status, body = http_publish(server, ch, "chat.message", BAD)
    assert status == 400, body
    assert_violations(body, {"/text", "/author", "/attachments/0"})

    # Ephemeral publishes are validated too.
    err = await c.call({"type": "publish", "channel": ch, "event": "chat.message", "data": BAD,
                        "ephemeral": True})
    assert_violations(err, {"/text"})

    # Nothing was stored or delivered: the next valid event gets offset 1.
    reply = await publish(c, ch, "chat.message", GOOD)
    assert reply["offset"] == 1, reply
    ev = await watcher.recv()
    assert ev["offset"] == 1 and ev["data"] == GOOD, ev
    hist = await c.call({"type": "history", "channel": ch})
    assert [e["data"] for e in hist["events"]] == [GOOD], hist
    await c.close()
    await watcher.close()


@runs_async
async def test_undeclared_events_strict_and_loose(server):
    c, _ = await WSClient.connected(server)
    strict, loose = unique("chat:r"), unique("loose:r")
    err = await publish(c, strict, "chat.unknown", {"anything": 1})
    assert_error(err, "validation_failed")
    assert "not declared" in err["message"], err
    status, body = http_publish(server, strict, "chat.unknown", 1)
    assert status == 400 and body["code"] == "validation_failed", body
    # Without strict_events an undeclared event passes unchecked, declared
    # ones are still checked.
    reply = await publish(c, loose, "chat.unknown", {"anything": 1})
    assert reply["type"] == "ack", reply
    assert_error(await publish(c, loose, "chat.message", BAD), "validation_failed")
    await c.close()


@runs_async
async def test_write_only_fields_never_reach_subscribers_or_history(server):
    c, _ = await WSClient.connected(server)
    ch = unique("chat:secret")
    sub, _ = await WSClient.connected(server)
    assert (await sub.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
    sent = {"text": "hi", "author": "ann", "token": "s3cret",
            "attachments": [{"url": "u", "signature": "sig"}]}
    assert (await publish(c, ch, "chat.message", sent))["type"] == "ack"
    status, _ = http_publish(server, ch, "chat.message", {**sent, "text": "via http"})
    assert status == 200
    seen = {"text": "hi", "author": "ann", "attachments": [{"url": "u"}]}
    ev1, ev2 = await sub.recv(), await sub.recv()
    assert ev1["data"] == seen, ev1
    assert ev2["data"] == {**seen, "text": "via http"}, ev2
    raw_hist = await c.call({"type": "history", "channel": ch})
    assert [e["data"] for e in raw_hist["events"]] == [seen, {**seen, "text": "via http"}]
    status, body = http(server, "GET", f"/api/channels/{ch}/history")
    assert status == 200 and "s3cret" not in json.dumps(body) and "sig" not in json.dumps(body)
    # A late subscriber asking for history does not see them either.
    late, _ = await WSClient.connected(server)
    reply = await late.call({"type": "subscribe", "channel": ch, "history": 10})
    assert "s3cret" not in json.dumps(reply) and len(reply["events"]) == 2, reply
    for x in (c, sub, late):
        await x.close()


@runs_async
async def test_payloads_without_write_only_fields_stay_byte_for_byte(server):
    c, _ = await WSClient.connected(server)
    ch = unique("chat:bytes")
    assert (await c.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
    data = '{ "who" :  "x",\n "n": 1.50 }'  # chat.typing: no write-only fields
    await c.send('{"type":"publish","id":"p","channel":"%s","event":"chat.typing","data":%s}'
                 % (ch, data))
    got = []
    while len(got) < 2:
        got.append(await c.recv_raw())
    event = next(m for m in got if '"type":"event"' in m)
    assert data in event, event
    await c.close()


@runs_async
async def test_unknown_namespaces_are_refused_everywhere(server):
    c, _ = await WSClient.connected(server)
    for ch in (unique("nope:x"), unique("plain")):
        err = await c.call({"type": "subscribe", "channel": ch})
        assert_error(err, "unknown_channel")
        assert_error(await publish(c, ch, "e", 1), "unknown_channel")
        assert_error(await c.call({"type": "history", "channel": ch}), "unknown_channel")
        status, body = http_publish(server, ch, "e", 1)
        assert status == 404 and body["code"] == "unknown_channel", body
        status, body = http(server, "GET", f"/api/channels/{ch}/history")
        assert status == 404 and body["code"] == "unknown_channel", body
    # The connection is still usable, and a refused subscribe left no trace.
    ch = unique("nope:x")
    err = await c.call({"type": "unsubscribe", "channel": ch})
    assert_error(err, "not_subscribed")
    assert (await c.call({"type": "subscribe", "channel": unique("feed:x")}))["type"] == "subscribed"
    await c.close()


@runs_async
async def test_unknown_namespaces_use_defaults_when_allowed():
    with running(make_server("ns-allow", allow_unknown=True)) as srv:
        c, _ = await WSClient.connected(srv)
        for ch in (unique("other:x"), unique("plain")):
            assert (await c.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
            assert (await publish(c, ch, "anything", [1]))["type"] == "ack"
        await c.close()


@runs_async
async def test_client_publish_off_leaves_only_the_http_api(server):
    c, _ = await WSClient.connected(server)
    ch = unique("feed:news")
    assert (await c.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
    err = await publish(c, ch, "e", {"x": 1})
    assert_error(err, "forbidden")
    err = await c.call({"type": "publish", "channel": ch, "event": "e", "data": 1,
                        "ephemeral": True})
    assert_error(err, "forbidden")
    status, body = http_publish(server, ch, "e", {"x": 1})
    assert (status, body) == (200, {"offset": 1})
    ev = await c.recv()
    assert ev["type"] == "event" and ev["offset"] == 1, ev
    await c.close()


@runs_async
async def test_max_message_bytes_of_a_namespace(server):
    c, _ = await WSClient.connected(server)
    ch = unique("feed:big")
    big = "x" * 80  # 82 bytes as JSON; feed allows 64
    status, body = http_publish(server, ch, "e", big)
    assert status == 413 and body["code"] == "too_large", body
    assert "64" in body["message"], body
    status, body = http_publish(server, ch, "e", "x" * 60)
    assert status == 200, body
    # chat: the default 64 KiB
    assert (await publish(c, unique("chat:r"), "chat.typing", {"who": big}))["type"] == "ack"
    await c.close()


# On both engines (sqlite, the default, keeps the retention across a restart).
@pytest.mark.parametrize("engine", ["memory", "sqlite"])
@runs_async
async def test_history_size_and_recover_of_a_namespace(engine):
    with running(make_server(f"ns-history-{engine}", engine=engine)) as server:
        await check_history_size_and_recover(server, engine)


async def check_history_size_and_recover(server: HeraldServer, engine: str) -> None:
    c, _ = await WSClient.connected(server)
    ch = unique("feed:h")
    for i in range(5):
        assert http_publish(server, ch, "e", i)[0] == 200
    hist = await c.call({"type": "history", "channel": ch, "limit": 100})
    assert [e["data"] for e in hist["events"]] == [2, 3, 4], hist  # feed: history_size = 3
    chat = unique("chat:h")
    for i in range(5):
        assert (await publish(c, chat, "chat.typing", {"who": str(i)}))["type"] == "ack"
    hist = await c.call({"type": "history", "channel": chat, "limit": 100})
    assert len(hist["events"]) == 5, hist  # history.size = 100

    # feed: recover = false -> recovered false, no events, even when all are held.
    reply = await c.call({"type": "subscribe", "channel": ch,
                          "recover": {"epoch": hist["epoch"], "offset": 4}})
    assert reply["type"] == "subscribed" and reply["recovered"] is False, reply
    assert reply["events"] == [] and reply["offset"] == 5, reply
    # chat recovers.
    reply = await c.call({"type": "subscribe", "channel": chat,
                          "recover": {"epoch": hist["epoch"], "offset": 3}})
    assert reply["recovered"] is True and [e["offset"] for e in reply["events"]] == [4, 5], reply
    await c.close()
    if engine == "sqlite":  # read back from the database after a restart
        server.stop_checked()
        server.start()
        c, _ = await WSClient.connected(server)
        assert http_publish(server, ch, "e", 5)[0] == 200
        got = await c.call({"type": "history", "channel": ch, "limit": 100})
        assert [e["data"] for e in got["events"]] == [3, 4, 5], got
        assert [e["offset"] for e in got["events"]] == [4, 5, 6], got
        got = await c.call({"type": "history", "channel": chat, "limit": 100})
        assert len(got["events"]) == 5, got
        await c.close()


def test_bad_schema_stops_start_up():
    srv = make_server("ns-bad-schema", schema={"chat.message": {"type": "object",
                                                                "properties": {"a": {"type": 5}}}})
    with pytest.raises(AssertionError):
        srv.start()
    log = srv.log_text()
    assert "schemas/chat.json" in log and "/chat.message" in log, log
    srv2 = make_server("ns-missing-schema", schema="{ not json")
    with pytest.raises(AssertionError):
        srv2.start()
    assert "not valid JSON" in srv2.log_text()


def reload_http(srv) -> tuple[int, dict]:
    return http(srv, "POST", "/api/admin/reload", {})


async def wait_until(pred, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if await pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("how", ["sighup", "http"])
@runs_async
async def test_reload_applies_a_new_schema_without_dropping_connections(how):
    with running(make_server(f"ns-reload-{how}")) as srv:
        c, _ = await WSClient.connected(srv)
        ch = unique("chat:r")
        assert (await c.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
        assert (await publish(c, ch, "chat.typing", {"who": "a"}))["type"] == "ack"
        await c.recv()

        # The new schema forbids what the old allowed, and adds an event.
        write_schema(srv, {**CHAT_SCHEMA,
                           "chat.typing": {"type": "object", "required": ["who"],
                                           "properties": {"who": {"type": "integer"}}},
                           "chat.new": {"type": "integer"}})
        if how == "sighup":
            srv.signal(signal.SIGHUP)
        else:
            status, body = reload_http(srv)
            assert status == 200 and body == {"ok": True, "namespaces": 3,
                                              "restart_required": []}, body

        async def new_schema_applies():
            r = await publish(c, ch, "chat.new", 5)
            return r["type"] == "ack"
        await wait_until(new_schema_applies)
        assert_error(await publish(c, ch, "chat.typing", {"who": "a"}), "validation_failed")
        # Same connection, same subscription: events still arrive.
        ev = await c.recv()
        assert ev["event"] == "chat.new" and ev["data"] == 5, ev
        # The workers switch before the signal thread logs the reload.
        async def reload_logged():
            return "reloaded" in srv.log_text()
        await wait_until(reload_logged)
        await c.close()


@runs_async
async def test_a_bad_config_is_refused_and_the_old_one_stays():
    with running(make_server("ns-reload-bad")) as srv:
        c, _ = await WSClient.connected(srv)
        ch = unique("chat:r")
        write_schema(srv, '{"chat.message": {"type": "bogus"}}')
        status, body = reload_http(srv)
        assert status == 400 and body["ok"] is False, body
        assert "schemas/chat.json" in body["error"] and "/chat.message" in body["error"], body
        srv.signal(signal.SIGHUP)
        # A bad config file (not only a bad schema) is refused too.
        with open(srv.config_path, "a") as f:
            f.write("\n[namespaces.more]\nrecovr = true\n")
        status, body = reload_http(srv)
        assert status == 400 and "namespaces.more.recovr" in body["error"], body
        # The old configuration keeps running.
        assert (await publish(c, ch, "chat.message", GOOD))["type"] == "ack"
        assert_error(await publish(c, ch, "chat.message", BAD), "validation_failed")
        time.sleep(0.2)
        assert "reload refused" in srv.log_text()
        assert srv.alive()
        await c.close()


@runs_async
async def test_reload_reports_keys_that_need_a_restart():
    with running(make_server("ns-reload-restart")) as srv:
        with open(srv.config_path, "a") as f:
            f.write("\n[limits]\nmax_connections = 7\n\n[namespaces.extra]\nrecover = false\n"
                    "history_size = 2\n")
        status, body = reload_http(srv)
        assert status == 200, body
        assert body == {"ok": True, "namespaces": 4,
                        "restart_required": ["limits.max_connections"]}, body
        c, _ = await WSClient.connected(srv)
        ch = unique("extra:x")
        assert (await c.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
        for i in range(4):
            await publish(c, ch, "e", i)
        hist = await c.call({"type": "history", "channel": ch})
        assert [e["data"] for e in hist["events"]] == [2, 3], hist  # the new namespace's retention
        await c.close()


def test_admin_reload_answers_post_only(server):
    status, body = http(server, "GET", "/api/admin/reload")
    assert status == 405, body
    status, body = reload_http(server)
    assert status == 200 and body["ok"] is True, body


def non_loopback_address() -> str | None:
    """This host's address on its default route, if it has one (a UDP
    connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.parametrize("allow_remote", [False, True])
def test_admin_reload_from_another_address_needs_allow_remote_admin(allow_remote):
    address = non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    srv = make_server(f"ns-remote-admin-{allow_remote}", listen_host="0.0.0.0")
    with open(srv.config_path, "a") as f:
        f.write(f"\n[server]\nallow_remote_admin = {str(allow_remote).lower()}\n")
    with running(srv):
        req = urllib.request.Request(f"http://{address}:{srv.port}/api/admin/reload", data=b"{}",
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, body = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, body = e.code, json.loads(e.read())
        if allow_remote:
            assert status == 200 and body["ok"] is True, body
        else:
            assert status == 403 and body["code"] == "forbidden", body
            assert "loopback" in body["message"], body
        # Loopback peers may always reload.
        assert reload_http(srv)[0] == 200
