# App backend hooks ([proxy], docs/backend-hooks.md) against a real herald
# server and a real backend: a small HTTP/1.1 keep-alive server in a thread
# of the test, whose answer per hook each test sets. Every hook's allow,
# deny, disconnect, modified data, timeout, malformed reply and backend
# down; allow-listed headers and cookies (and only they) reach the backend;
# a slow hook for one client does not delay another's deliveries; the
# concurrency bound answers `unavailable` at once. Every refusal is checked
# together with "nothing was delivered or stored".
import asyncio
import http.server
import json
import signal
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest
import websockets

from harness import HeraldServer, WSClient, assert_error, free_port, runs_async, unique

SECRET = "s3cret-hook-key-never-logged"


class Backend:
    """The app's backend: POST /<hook> answers with what `self.replies[hook]`
    gives for the request body (a dict, or a (status, raw body) pair, after
    `self.delays[hook]` seconds, or for the clients in self.slow_clients);
    every request is recorded with its headers."""

    def __init__(self, tls=None):
        self.replies = {}
        self.delays = {}
        self.requests = []  # (hook, headers dict (lower-case names), body dict)
        self.lock = threading.Lock()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the pool expects
            wbufsize = 1 << 16  # the reply in one write (no Nagle/delayed-ACK stall)

            def log_message(self, *args):
                pass

            def do_POST(self):
                hook = self.path.strip("/")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with backend.lock:
                    backend.requests.append((hook, headers, body))
                delay = backend.delays.get(hook, 0)
                if callable(delay):
                    delay = delay(body)
                if delay:
                    time.sleep(delay)
                reply = backend.replies.get(hook, {"result": {}})
                if callable(reply):
                    reply = reply(body)
                if isinstance(reply, tuple):
                    status, raw = reply
                else:
                    status, raw = 200, json.dumps(reply)
                data = raw.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls:  # (cert file, key file): serve https
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, hook):
        return f"http://127.0.0.1:{self.port}/{hook}"

    def of(self, hook):
        with self.lock:
            return [(h, b) for (k, h, b) in self.requests if k == hook]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def config(backend_port, *, timeout_ms=1000, max_concurrent=64, extra="", typed=False):
    url = lambda hook: f"http://127.0.0.1:{backend_port}/{hook}"  # noqa: E731
    # No [engine]: the suite's engine (HERALD_TEST_ENGINE=redis runs it on redis).
    return f"""
[proxy]
connect_url = "{url('connect')}"
subscribe_url = "{url('subscribe')}"
publish_url = "{url('publish')}"
rpc_url = "{url('rpc')}"
timeout_ms = {timeout_ms}
max_concurrent = {max_concurrent}
forward_headers = ["X-App-Version", "authorization"]
forward_cookies = ["session"]
static_headers = ["X-Herald-Secret: {SECRET}"]

[namespaces.room]
proxy_subscribe = true
proxy_publish = true
presence = true

[namespaces.open]
{extra}
""" + ("""
[namespaces.typed]
proxy_publish = true
schema = "typed.json"
strict_events = true
""" if typed else "")


@pytest.fixture(scope="module")
def env():
    backend = Backend()
    server = HeraldServer(config(backend.port, typed=True), name="proxy-hooks", workers=2)
    with open(os.path.join(server.tmpdir, "typed.json"), "w") as f:
        json.dump({"m": {"type": "object", "required": ["text"],
                         "properties": {"text": {"type": "string"}}}}, f)
    server.start()
    yield backend, server
    try:
        server.stop_checked()
    finally:
        backend.stop()
    assert SECRET not in server.log_text()  # the static headers are never logged


@pytest.fixture(autouse=True)
def reset(env):
    backend, _ = env
    backend.replies.clear()
    backend.delays.clear()
    with backend.lock:
        backend.requests.clear()


async def open_client(server, headers=None):
    return await WSClient.open(server, extra_headers=headers) if headers else \
        await WSClient.open(server)


async def connected(server, backend, user="u1", headers=None, **result):
    backend.replies["connect"] = {"result": {"user": user, **result}}
    c = await open_client(server, headers)
    reply = await c.call({"type": "connect"})
    assert reply["type"] == "connected", reply
    return c, reply


async def history_of(c, channel):
    reply = await c.call({"type": "history", "channel": channel})
    assert reply["type"] == "history", reply
    return reply["events"]


# -- connect ------------------------------------------------------------------

@runs_async
async def test_connect_result_is_the_identity_and_data(env):
    backend, server = env
    c, reply = await connected(server, backend, user="ann", info={"name": "Ann"},
                               data={"theme": "dark"}, channels=["news:ann"],
                               expire_at=int(time.time()) + 3600,
                               headers={"X-App-Version": "7", "X-Other": "no",
                                        "Authorization": "Bearer t",
                                        "Cookie": "session=abc; tracking=xyz"})
    assert reply["user"] == "ann"
    assert reply["data"] == {"theme": "dark"}
    assert reply["expires"] > time.time()
    sub = await c.recv()
    assert sub["type"] == "subscribed" and sub["channel"] == "news:ann" and "id" not in sub
    [(headers, body)] = backend.of("connect")
    assert body["client"] == reply["client"]
    assert body["transport"] == "websocket" and body["protocol"] == "json"
    assert body["ip"].endswith("127.0.0.1")
    assert body["data"] is None
    # Only the allow-listed headers and cookies reached the backend.
    assert body["headers"] == {"x-app-version": "7", "authorization": "Bearer t",
                               "cookie": "session=abc"}
    assert "tracking" not in json.dumps(body) and "tracking" not in json.dumps(headers)
    assert headers["x-herald-secret"] == SECRET
    await c.close()


@runs_async
async def test_connect_data_reaches_the_hook(env):
    backend, server = env
    backend.replies["connect"] = {"result": {"user": "bob"}}
    c = await WSClient.open(server)
    reply = await c.call({"type": "connect", "data": {"invite": [1, 2]}})
    assert reply["type"] == "connected" and "data" not in reply
    assert backend.of("connect")[0][1]["data"] == {"invite": [1, 2]}
    await c.close()


@runs_async
async def test_commands_before_connect_are_refused(env):
    backend, server = env
    c = await WSClient.open(server)
    assert_error(await c.call({"type": "subscribe", "channel": "open:x"}), "unauthorized")
    assert backend.of("connect") == []
    await c.close()


@pytest.mark.parametrize("code,close", [("unauthorized", 4001), ("forbidden", 4003),
                                        ("made_up", 4003)])
@runs_async
async def test_connect_error_then_close(env, code, close):
    backend, server = env
    backend.replies["connect"] = {"error": {"code": code, "message": "who are you"}}
    c = await WSClient.open(server)
    reply = await c.call({"type": "connect"})
    assert_error(reply, code if code != "made_up" else "forbidden")
    assert reply["message"] == "who are you"
    assert (await c.expect_closed()).code == close


@runs_async
async def test_connect_disconnect(env):
    backend, server = env
    backend.replies["connect"] = {"disconnect": {"code": 4500, "reason": "banned"}}
    c = await WSClient.open(server)
    await c.send({"type": "connect", "id": 1})
    closed = await c.expect_closed()
    assert (closed.code, closed.reason) == (4500, "banned")


@pytest.mark.parametrize("reply,code", [
    ((200, "not json"), "internal"),
    ((200, '{"result":{"user":5}}'), "internal"),
    ((200, '{"nothing":1}'), "internal"),
    ((500, '{"result":{"user":"x"}}'), "unavailable"),
])
@runs_async
async def test_connect_bad_reply(env, reply, code):
    backend, server = env
    backend.replies["connect"] = reply
    c = await WSClient.open(server)
    assert_error(await c.call({"type": "connect"}), code)
    assert (await c.expect_closed()).code == 1011
    if code == "internal":
        assert "proxy connect hook: malformed reply" in server.log_text()


@runs_async
async def test_connect_timeout(env):
    backend, server = env
    backend.delays["connect"] = 2  # timeout_ms is 1000
    c = await WSClient.open(server)
    started = time.monotonic()
    assert_error(await c.call({"type": "connect"}), "unavailable")
    assert 0.9 < time.monotonic() - started < 1.9
    await c.expect_closed()


# -- subscribe ----------------------------------------------------------------

@runs_async
async def test_subscribe_allow_with_data_and_info(env):
    backend, server = env
    c, _ = await connected(server, backend, user="ann")
    ch = unique("room:")
    backend.replies["subscribe"] = {"result": {"data": {"welcome": True}}}
    reply = await c.call({"type": "subscribe", "channel": ch, "data": {"pin": 1}})
    assert reply["type"] == "subscribed" and reply["data"] == {"welcome": True}
    [(_, body)] = backend.of("subscribe")
    assert body == {"client": c.client_id if hasattr(c, "client_id") else body["client"],
                    "user": "ann", "channel": ch, "data": {"pin": 1}}
    # Namespaces without proxy_subscribe never ask.
    assert (await c.call({"type": "subscribe", "channel": unique("open:")}))["type"] == "subscribed"
    assert len(backend.of("subscribe")) == 1
    await c.close()


@runs_async
async def test_subscribe_denied_gets_nothing(env):
    backend, server = env
    c, _ = await connected(server, backend)
    ch = unique("room:")
    backend.replies["subscribe"] = {"error": {"code": "forbidden", "message": "not a member"}}
    reply = await c.call({"type": "subscribe", "channel": ch})
    assert_error(reply, "forbidden")
    assert reply["message"] == "not a member"
    # Nothing of the channel reaches the refused client.
    backend.replies["publish"] = {"result": {}}
    other, _ = await connected(server, backend, user="bob")
    backend.replies["subscribe"] = {"result": {}}
    assert (await other.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
    assert (await other.call({"type": "publish", "channel": ch, "event": "m",
                              "data": 1}))["type"] == "ack"
    assert (await other.recv())["type"] == "event"
    with pytest.raises(AssertionError, match="no message"):
        await c.recv(timeout=0.5)
    await c.close()
    await other.close()


@runs_async
async def test_subscribe_disconnect(env):
    backend, server = env
    c, _ = await connected(server, backend)
    backend.replies["subscribe"] = {"disconnect": {"code": 4100, "reason": "go away"}}
    await c.send({"type": "subscribe", "channel": unique("room:"), "id": 5})
    assert (await c.expect_closed()).code == 4100


# -- publish ------------------------------------------------------------------

async def subscribed_pair(server, backend, ch):
    backend.replies["subscribe"] = {"result": {}}
    sub, _ = await connected(server, backend, user="sub")
    assert (await sub.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
    pub, _ = await connected(server, backend, user="pub")
    return sub, pub


@runs_async
async def test_publish_allowed_and_replaced(env):
    backend, server = env
    ch = unique("room:")
    sub, pub = await subscribed_pair(server, backend, ch)
    backend.replies["publish"] = {"result": {}}
    assert (await pub.call({"type": "publish", "channel": ch, "event": "m",
                            "data": {"text": "hi"}}))["type"] == "ack"
    assert (await sub.recv())["data"] == {"text": "hi"}
    backend.replies["publish"] = lambda body: {"result": {"data": {"text": body["data"]["text"].upper(),
                                                                     "by": body["user"]}}}
    assert (await pub.call({"type": "publish", "channel": ch, "event": "m",
                            "data": {"text": "hey"}}))["type"] == "ack"
    ev = await sub.recv()
    assert ev["data"] == {"text": "HEY", "by": "pub"}
    assert [e["data"] for e in await history_of(sub, ch)] == [{"text": "hi"},
                                                              {"text": "HEY", "by": "pub"}]
    assert backend.of("publish")[0][1] == {"client": backend.of("publish")[0][1]["client"],
                                           "user": "pub", "channel": ch, "event": "m",
                                           "data": {"text": "hi"}}
    await sub.close()
    await pub.close()


@runs_async
async def test_replaced_data_is_checked_against_the_schema(env):
    backend, server = env
    ch = unique("typed:")
    sub, pub = await subscribed_pair(server, backend, ch)
    backend.replies["publish"] = {"result": {"data": {"text": 42}}}
    reply = await pub.call({"type": "publish", "channel": ch, "event": "m",
                            "data": {"text": "fine"}})
    assert_error(reply, "validation_failed")
    assert reply["details"][0]["pointer"] == "/text"
    assert await history_of(sub, ch) == []
    with pytest.raises(AssertionError, match="no message"):
        await sub.recv(timeout=0.3)
    backend.replies["publish"] = {"result": {"data": {"text": "replaced"}}}
    assert (await pub.call({"type": "publish", "channel": ch, "event": "m",
                            "data": {"text": 1}}))["type"] == "ack"  # only the replacement counts
    assert (await sub.recv())["data"] == {"text": "replaced"}
    await sub.close()
    await pub.close()


@runs_async
async def test_subscribe_info_override_shows_in_presence(env):
    backend, server = env
    ch = unique("room:")
    c, _ = await connected(server, backend, user="ann", info={"name": "Ann"})
    backend.replies["subscribe"] = {"result": {"info": {"name": "Ann", "role": "moderator"}}}
    assert (await c.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
    reply = await c.call({"type": "presence", "channel": ch})
    assert reply["type"] == "presence", reply
    assert [m["info"] for m in reply["members"]] == [{"name": "Ann", "role": "moderator"}]
    await c.close()


@pytest.mark.parametrize("reply,code", [
    ({"error": {"code": "forbidden", "message": "muted"}}, "forbidden"),
    ((200, "{"), "internal"),
    ((503, ""), "unavailable"),
])
@runs_async
async def test_publish_refused_stores_and_delivers_nothing(env, reply, code):
    backend, server = env
    ch = unique("room:")
    sub, pub = await subscribed_pair(server, backend, ch)
    backend.replies["publish"] = reply
    assert_error(await pub.call({"type": "publish", "channel": ch, "event": "m", "data": 1}), code)
    with pytest.raises(AssertionError, match="no message"):
        await sub.recv(timeout=0.5)
    assert await history_of(sub, ch) == []
    await sub.close()
    await pub.close()


@runs_async
async def test_publish_timeout_stores_nothing(env):
    backend, server = env
    ch = unique("room:")
    sub, pub = await subscribed_pair(server, backend, ch)
    backend.delays["publish"] = 1.6
    started = time.monotonic()
    assert_error(await pub.call({"type": "publish", "channel": ch, "event": "m", "data": 1}),
                 "unavailable")
    assert time.monotonic() - started < 1.5
    await asyncio.sleep(0.8)  # the backend's late answer changes nothing
    assert await history_of(sub, ch) == []
    with pytest.raises(AssertionError, match="no message"):
        await sub.recv(timeout=0.2)
    await sub.close()
    await pub.close()


# -- rpc ----------------------------------------------------------------------

@runs_async
async def test_rpc(env):
    backend, server = env
    c, _ = await connected(server, backend, user="ann")
    backend.replies["rpc"] = lambda body: {"result": {"data": {"sum": sum(body["data"]["n"])}}}
    reply = await c.call({"type": "rpc", "method": "math.sum", "data": {"n": [1, 2, 3]}})
    assert reply["type"] == "rpc_result" and reply["data"] == {"sum": 6}
    assert backend.of("rpc")[0][1]["method"] == "math.sum"
    assert backend.of("rpc")[0][1]["user"] == "ann"
    backend.replies["rpc"] = {"error": {"code": "bad_request", "message": "no such method"}}
    reply = await c.call({"type": "rpc", "method": "nope"})
    assert_error(reply, "bad_request")
    assert_error(await c.call({"type": "rpc", "data": 1}), "bad_request")  # no method
    await c.close()


# -- robustness ----------------------------------------------------------------

def test_slow_hook_does_not_delay_other_clients():
    # A subscribe hook that takes 2 s for one client; another client's
    # publishes and deliveries on the same worker go on meanwhile (workers=1).
    backend = Backend()
    server = HeraldServer(config(backend.port, timeout_ms=5000), name="proxy-slow",
                          workers=1).start()

    @runs_async
    async def run():
        ch = unique("room:")
        backend.replies["subscribe"] = {"result": {}}
        fast, _ = await connected(server, backend, user="fast")
        assert (await fast.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
        slow, _ = await connected(server, backend, user="slow")
        backend.delays["subscribe"] = lambda body: 2 if body["user"] == "slow" else 0
        await slow.send({"type": "subscribe", "channel": unique("room:"), "id": 1})
        await asyncio.sleep(0.2)  # the slow hook is in flight
        pub, _ = await connected(server, backend, user="pub")
        latencies = []
        for i in range(20):
            started = time.monotonic()
            assert (await pub.call({"type": "publish", "channel": ch, "event": "m",
                                    "data": i}))["type"] == "ack"
            assert (await fast.recv())["data"] == i
            latencies.append(time.monotonic() - started)
        waited = time.monotonic()
        assert (await slow.reply_to(1, timeout=5))["type"] == "subscribed"
        # Measured: every round trip was far below the slow hook's 2 s, and
        # the slow client's own subscribe was still waiting on it.
        print(f"publish->delivery while a 2 s hook is pending: max {max(latencies)*1000:.1f} ms, "
              f"median {sorted(latencies)[10]*1000:.1f} ms")
        assert max(latencies) < 0.5, latencies
        assert time.monotonic() - waited > 0.5
        for c in (fast, slow, pub):
            await c.close()

    try:
        run()
    finally:
        server.kill()
        backend.stop()


def test_concurrency_bound_answers_unavailable_at_once():
    backend = Backend()
    # The publish hook's own bound (publish_max_concurrent), the shared one is 64.
    text = config(backend.port, timeout_ms=5000).replace(
        "[namespaces.room]", "publish_max_concurrent = 1\n[namespaces.room]")
    server = HeraldServer(text, name="proxy-bound", workers=1).start()

    @runs_async
    async def run():
        ch = unique("room:")
        sub, pub = await subscribed_pair(server, backend, ch)
        other, _ = await connected(server, backend, user="other")
        backend.delays["publish"] = 1.5
        await pub.send({"type": "publish", "channel": ch, "event": "m", "data": "slow", "id": 1})
        await asyncio.sleep(0.2)
        started = time.monotonic()
        assert_error(await other.call({"type": "publish", "channel": ch, "event": "m",
                                       "data": "over"}), "unavailable")
        assert time.monotonic() - started < 0.5
        assert (await pub.reply_to(1, timeout=5))["type"] == "ack"
        assert (await sub.recv())["data"] == "slow"
        assert [e["data"] for e in await history_of(sub, ch)] == ["slow"]
        with pytest.raises(AssertionError, match="no message"):
            await sub.recv(timeout=0.3)
        for c in (sub, pub, other):
            await c.close()

    try:
        run()
    finally:
        server.kill()
        backend.stop()


def test_backend_down():
    port = free_port()  # nothing listens there
    server = HeraldServer(config(port), name="proxy-down", workers=1).start()

    @runs_async
    async def run():
        c = await WSClient.open(server)
        started = time.monotonic()
        assert_error(await c.call({"type": "connect"}), "unavailable")
        assert time.monotonic() - started < 1.0
        assert (await c.expect_closed()).code == 1011

    try:
        run()
        assert "proxy connect hook:" in server.log_text()
    finally:
        server.kill()


# -- refresh and rpc routes -----------------------------------------------------

def refresh_server(backend, extra_proxy=""):
    text = config(backend.port).replace(
        "[namespaces.room]",
        f'refresh_url = "{backend.url("refresh")}"\n'
        f'rpc_routes = ["todos.={backend.url("todos")}", "todos.admin.={backend.url("admin")}"]\n'
        f"{extra_proxy}\n[namespaces.room]")
    return HeraldServer(text, name="proxy-refresh", workers=1).start()


def test_refresh_extends_or_ends_the_connection():
    backend = Backend()
    server = refresh_server(backend)

    @runs_async
    async def run():
        # timeout_ms is 1000: the hook is asked a second before expire_at.
        now = int(time.time())
        backend.replies["refresh"] = lambda body: {"result": {"expire_at": body["expire_at"] + 3600,
                                                              "info": {"v": 2}}}
        c, reply = await connected(server, backend, user="ann", expire_at=now + 3)
        assert reply["expires"] == now + 3
        refreshed = await c.recv(timeout=5)
        assert refreshed == {"type": "refreshed", "expires": now + 3 + 3600}
        [(_, body)] = backend.of("refresh")
        assert body == {"client": body["client"], "user": "ann", "expire_at": now + 3}
        await asyncio.sleep(max(0, now + 4 - time.time()))
        assert (await c.call({"type": "subscribe", "channel": unique("open:")}))["type"] == \
            "subscribed"  # still open past the first expire_at

        # A refusal ends the connection at once.
        now = int(time.time())
        backend.replies["refresh"] = {"error": {"code": "unauthorized", "message": "logged out"}}
        d, _ = await connected(server, backend, user="bob", expire_at=now + 3)
        msg = await d.recv(timeout=5)
        assert_error(msg, "token_expired")
        assert msg["message"] == "logged out"
        assert (await d.expect_closed()).code == 4001
        await c.close()

    try:
        run()
    finally:
        server.kill()
        backend.stop()


def test_rpc_routes_by_method_prefix():
    backend = Backend()
    server = refresh_server(backend)

    @runs_async
    async def run():
        for hook in ("rpc", "todos", "admin"):
            backend.replies[hook] = {"result": {"data": hook}}
        c, _ = await connected(server, backend)
        for method, hook in (("todos.add", "todos"), ("todos.admin.wipe", "admin"),
                             ("math.sum", "rpc"), ("todo", "rpc")):
            reply = await c.call({"type": "rpc", "method": method})
            assert reply["data"] == hook, (method, reply)
        assert [b["method"] for _, b in backend.of("todos")] == ["todos.add"]
        await c.close()

    try:
        run()
    finally:
        server.kill()
        backend.stop()


def test_rpc_schemas_checked_both_ways(tmp_path):
    backend = Backend()
    schema_file = tmp_path / "rpc.json"
    schema_file.write_text(json.dumps({
        "todos.add": {
            "request": {"type": "object", "required": ["title"],
                        "properties": {"title": {"type": "string", "maxLength": 20}}},
            "response": {"type": "object", "required": ["id"]},
        },
    }))
    server = refresh_server(backend, extra_proxy=f'rpc_schema = "{schema_file}"')

    @runs_async
    async def run():
        c, _ = await connected(server, backend)
        backend.replies["todos"] = {"result": {"data": {"id": 1}}}
        reply = await c.call({"type": "rpc", "method": "todos.add", "data": {"title": "milk"}})
        assert reply["type"] == "rpc_result" and reply["data"] == {"id": 1}
        # A request that breaks its schema never reaches the backend.
        reply = await c.call({"type": "rpc", "method": "todos.add", "data": {"title": 5}})
        assert_error(reply, "validation_failed")
        assert reply["details"][0]["pointer"] == "/title"
        assert len(backend.of("todos")) == 1
        # A result that breaks its schema is the backend's fault: internal.
        backend.replies["todos"] = {"result": {"data": {"nope": True}}}
        assert_error(await c.call({"type": "rpc", "method": "todos.add",
                                   "data": {"title": "x"}}), "internal")
        # Methods the file does not name are not checked.
        backend.replies["rpc"] = {"result": {"data": 5}}
        assert (await c.call({"type": "rpc", "method": "other", "data": "x"}))["data"] == 5
        await c.close()

    try:
        run()
        assert "method 'todos.add' does not match its response schema" in server.log_text()
    finally:
        server.kill()
        backend.stop()


def test_https_hooks_verify_the_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    backend = Backend(tls=(cert, key))
    backend.replies["connect"] = {"result": {"user": "tls-user"}}

    def server_with(url_host, ca_line):
        text = config(backend.port).replace("http://127.0.0.1:", f"https://{url_host}:").replace(
            "[namespaces.room]", f"{ca_line}\n[namespaces.room]")
        return HeraldServer(text, name="proxy-https", workers=1).start()

    @runs_async
    async def connect(server):
        c = await WSClient.open(server)
        reply = await c.call({"type": "connect"})
        await c.close()
        return reply

    # Trusted through ca_file: works, with the static headers.
    server = server_with("127.0.0.1", f'ca_file = "{cert}"')
    try:
        for _ in range(3):
            assert connect(server)["user"] == "tls-user"
        assert backend.of("connect")[0][0]["x-herald-secret"] == SECRET
    finally:
        server.kill()
    # The system's CAs do not know a self-signed certificate.
    server = server_with("127.0.0.1", "")
    try:
        assert_error(connect(server), "unavailable")
        assert "proxy connect hook: tls handshake" in server.log_text()
    finally:
        server.kill()
    # A certificate for 127.0.0.1 does not name "localhost".
    server = server_with("localhost", f'ca_file = "{cert}"')
    try:
        assert_error(connect(server), "unavailable")
        assert "proxy connect hook: tls handshake" in server.log_text()
    finally:
        server.kill()
        backend.stop()


def test_shutdown_with_hook_requests_in_flight():
    # SIGTERM while hook requests wait on a slow backend: the server closes
    # its connections and exits 0 without waiting for (or crashing on) them.
    backend = Backend()
    server = HeraldServer(config(backend.port, timeout_ms=5000), name="proxy-shutdown",
                          workers=2).start()

    @runs_async
    async def run():
        ch = unique("room:")
        sub, pub = await subscribed_pair(server, backend, ch)
        backend.delays["publish"] = 3
        backend.delays["connect"] = 3
        await pub.send({"type": "publish", "channel": ch, "event": "m", "data": 1, "id": 1})
        waiting = await WSClient.open(server)
        await waiting.send({"type": "connect", "id": 1})
        await asyncio.sleep(0.3)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert (await pub.expect_closed()).code == 1001
        assert time.monotonic() - started < 2.5

    try:
        run()
        assert server.wait_exit(10) == 0
        server.check_log_clean()
    finally:
        server.kill()
        backend.stop()


# -- kept-alive connections to the backend --------------------------------------

class RawBackend:
    """A keep-alive backend on raw sockets, to break connections on purpose:
    answers `{"result": ...}` to each request, except that with `drop_second`
    it reads the second request of a connection and closes without answering
    (as a backend that crashed or closed at that very moment), and with
    `close_idle` it closes each connection 0.1 s after a reply (a short
    keep-alive timeout). Counts the requests per path."""

    def __init__(self, drop_second=False, close_idle=False):
        self.drop_second, self.close_idle = drop_second, close_idle
        self.counts = {}
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        buf, served = b"", 0
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(rest) < length:
                    rest += conn.recv(65536)
                buf = rest[length:]
                with self.lock:
                    self.counts[path] = self.counts.get(path, 0) + 1
                served += 1
                if self.drop_second and served == 2:
                    return  # read, never answered
                body = json.dumps({"result": {"data": {"n": served}}}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Connection: keep-alive\r\nContent-Length: " +
                             str(len(body)).encode() + b"\r\n\r\n" + body)
                if self.close_idle:
                    time.sleep(0.1)
                    return

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def stop(self):
        self.sock.close()


def raw_backend_server(backend):
    url = f"http://127.0.0.1:{backend.port}"
    srv = HeraldServer(f"""
[proxy]
rpc_url = "{url}/rpc"
subscribe_url = "{url}/subscribe"
timeout_ms = 2000

[namespaces.room]
proxy_subscribe = true
""", name="proxy-keepalive")
    srv.start()
    return srv


@runs_async
async def test_an_rpc_is_never_sent_twice_when_its_kept_alive_connection_breaks():
    # The backend reads the second rpc of the connection and closes it: it
    # may have run it, so Herald answers `unavailable` instead of sending it
    # again on a new connection (which would run the method twice).
    backend = RawBackend(drop_second=True)
    srv = raw_backend_server(backend)
    try:
        c = await WSClient.open(srv)
        first = await c.call({"type": "rpc", "method": "pay", "data": 1})
        assert first["type"] == "rpc_result", first
        second = await c.call({"type": "rpc", "method": "pay", "data": 2})
        assert_error(second, "unavailable")
        await asyncio.sleep(0.3)
        assert backend.count("/rpc") == 2
        # A subscribe hook is safe to ask twice: the same break is resent.
        sub = await c.call({"type": "subscribe", "channel": unique("room:")})
        assert sub["type"] == "subscribed", sub
        sub2 = await c.call({"type": "subscribe", "channel": unique("room:")})
        assert sub2["type"] == "subscribed", sub2
        assert backend.count("/subscribe") == 3  # the second one twice
        await c.close()
    finally:
        srv.stop_checked()
        backend.stop()


@runs_async
async def test_a_connection_the_backend_closed_while_idle_is_not_reused():
    # The backend closes each connection 0.1 s after answering (a short
    # keep-alive timeout): the next rpc goes on a new connection, once, and
    # succeeds (sent on the closed one it would fail, and an rpc is not
    # resent).
    backend = RawBackend(close_idle=True)
    srv = raw_backend_server(backend)
    try:
        c = await WSClient.open(srv)
        for i in range(3):
            reply = await c.call({"type": "rpc", "method": "pay", "data": i})
            assert reply["type"] == "rpc_result", reply
            await asyncio.sleep(0.3)
        assert backend.count("/rpc") == 3
        await c.close()
    finally:
        srv.stop_checked()
        backend.stop()
