# The SSE fallback (issue 16 item 3; docs/protocol.md section 14): GET /sse
# streams a channel's events as text/event-stream, against the real binary,
# with a raw-socket HTTP client that parses the stream as EventSource does.
# What must hold: the response head (200, text/event-stream, no-cache,
# X-Accel-Buffering), `retry:` first, then `connected` and `subscribed`;
# every message's data is exactly the JSON a WebSocket client gets (also
# pretty-printed data over several data: lines); stored events carry
# `id: <epoch>:<offset>` (a combined id for several channels), ephemeral
# ones none; a reconnect with Last-Event-ID (header or query) gets exactly
# the missed events, in order, without duplicates, for one and two channels,
# also after a cut in the middle of a message; a stale epoch answers
# recovered:false; refusals (no token, bad token, forbidden channel, bad
# requests) are HTTP errors with nothing delivered; a client that never
# reads is cut off at max_outbound_bytes and the server stays healthy; the
# same stream over TLS (https://) recovers the same way.
from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from authkit import NO_AUTH_FAILURE_LIMIT, auth_key, new_secret, table, token
from harness import RECV_TIMEOUT, HeraldServer, WSClient, http_publish, runs_async, unique
from test_tls import TlsServer, pki  # noqa: F401 (pki: the certificates fixture)

SECRET = new_secret()


class SSE:
    """One GET /sse over a plain socket; parses messages as EventSource does
    (fields data/id/retry, comments, blank line dispatches)."""

    def __init__(self, port: int, query: str, headers: dict | None = None,
                 path: str = "/sse", method: str = "GET", tls=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT)
        if tls is not None:  # an ssl.SSLContext that trusts the server
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        head = f"{method} {path}?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.raw = b""  # every byte of the body received
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"no response head: {buf!r}")
            buf += chunk
        head_bytes, rest = buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode().split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        self.buf = rest
        self.raw = rest
        self.last_id = ""      # EventSource's last event id
        self.retry = None
        self.comments = 0

    def body(self) -> bytes:
        """The whole body of a non-streaming (refusal) response."""
        n = int(self.headers["content-length"])
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        return self.buf[:n]

    def _fill(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        self.raw += chunk
        return True

    def next(self, timeout: float = RECV_TIMEOUT) -> dict:
        """The next dispatched message: {"data": str, "json": obj, "id": the
        id field of this message or None, "last_id": the last event id}."""
        deadline = time.monotonic() + timeout
        data: list[str] = []
        own_id = None
        while True:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no SSE message in {timeout}s; have {self.buf[:200]!r}")
                if not self._fill(left):
                    raise EOFError("stream ended")
            line, self.buf = self.buf.split(b"\n", 1)
            text = line.decode()
            if text == "":
                if not data:
                    continue  # e.g. the block of `retry:` only
                joined = "\n".join(data)
                return {"data": joined, "json": json.loads(joined), "id": own_id,
                        "last_id": self.last_id}
            if text.startswith(":"):
                self.comments += 1
                continue
            name, _, value = text.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "id":
                own_id = value
                self.last_id = value
            elif name == "retry":
                self.retry = int(value)

    def next_of(self, type_: str, timeout: float = RECV_TIMEOUT) -> dict:
        while True:
            m = self.next(timeout)
            if m["json"]["type"] == type_:
                return m

    def expect_eof(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self._fill(deadline - time.monotonic()):
                    return
            except ConnectionResetError:
                return
            except socket.timeout:
                break
        raise AssertionError("the stream did not end")

    def close(self) -> None:
        self.sock.close()


def publish_raw(server: HeraldServer, body: bytes) -> dict:
    req = urllib.request.Request(server.http_url("/api/publish"), data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        return json.loads(r.read())


def publish(server: HeraldServer, channel: str, data) -> int:
    status, body = http_publish(server, channel, data)
    assert status == 200, body
    return body["offset"]


def open_stream(server: HeraldServer, *channels: str, headers: dict | None = None,
                extra: str = "") -> tuple[SSE, list[dict]]:
    """An accepted stream: returns it and its `subscribed` messages."""
    q = "&".join(f"channel={c}" for c in channels) + extra
    s = SSE(server.port, q, headers)
    assert s.status == 200, s.buf
    assert s.next()["json"]["type"] == "connected"
    subs = [s.next_of("subscribed") for _ in channels]
    return s, subs


def sub_of(subs: list[dict], channel: str) -> dict:
    """The `subscribed` message of `channel`: channels on different owners
    answer in any order."""
    return next(m["json"] for m in subs if m["json"]["channel"] == channel)


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer("[engine]\ntype = \"memory\"\n[limits]\nping_interval_ms = 300\n",
                       name="sse", workers=2)
    srv.start()
    yield srv
    srv.stop_checked()


def test_stream_head_retry_and_events_in_order_with_ids(server):
    ch = unique("sse")
    s, [sub] = open_stream(server, ch)
    assert s.headers["content-type"] == "text/event-stream"
    assert s.headers["cache-control"] == "no-cache"
    assert s.headers["x-accel-buffering"] == "no"
    assert "content-length" not in s.headers
    assert s.raw.startswith(b"retry: 2000\n\n"), s.raw[:40]
    epoch = sub["json"]["epoch"]
    assert sub["id"] == f"{epoch}:0"
    offsets = [publish(server, ch, {"n": i}) for i in range(5)]
    for i, off in enumerate(offsets):
        m = s.next_of("event")
        assert m["json"]["data"] == {"n": i} and m["json"]["offset"] == off
        assert m["id"] == f"{epoch}:{off}"
    s.close()


def test_data_is_the_websocket_json_byte_for_byte_even_pretty_printed(server):
    async def run():
        ch = unique("pretty")
        ws = await WSClient.open(server)
        await ws.call({"type": "connect", "id": 1})
        await ws.call({"type": "subscribe", "id": 2, "channel": ch})
        s, _ = open_stream(server, ch)
        body = ('{"channel": "%s", "event": "e", "data": {\n  "a": 1,\r\n  "b": [\n    "x\\ny"\n  ]\n}}'
                % ch).encode()
        publish_raw(server, body)
        ws_text = await ws.recv_raw()
        while '"type":"event"' not in ws_text:  # pings (ping_interval_ms is short here)
            ws_text = await ws.recv_raw()
        m = s.next_of("event")
        assert "\n" in ws_text
        assert m["data"] == ws_text.replace("\r\n", "\n")
        assert m["json"]["data"] == {"a": 1, "b": ["x\ny"]}
        data_lines = [l for l in s.raw.split(b"\n") if l.startswith(b"data:")]
        assert len(data_lines) >= 5  # one per line of the pretty-printed JSON
        s.close()
        await ws.close()
    runs_async(run)()


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(server):
    ch = unique("rec")
    s, [sub] = open_stream(server, ch)
    for i in range(2):
        publish(server, ch, i)
    last = [s.next_of("event") for _ in range(2)][-1]["last_id"]
    s.close()
    missed = [publish(server, ch, 10 + i) for i in range(3)]  # published during the gap
    s2, [sub2] = open_stream(server, ch, headers={"Last-Event-ID": last})
    j = sub2["json"]
    assert j["recovered"] is True
    assert [e["offset"] for e in j["events"]] == missed
    assert [e["data"] for e in j["events"]] == [10, 11, 12]
    assert sub2["id"] == f"{j['epoch']}:{missed[-1]}"
    live = publish(server, ch, "live")
    m = s2.next_of("event")
    assert m["json"]["offset"] == live == missed[-1] + 1
    s2.close()


def test_last_event_id_query_parameter_for_clients_without_headers(server):
    ch = unique("recq")
    s, [sub] = open_stream(server, ch)
    epoch = sub["json"]["epoch"]
    s.close()
    off = publish(server, ch, "gap")
    s2, [sub2] = open_stream(server, ch, extra=f"&last_event_id={epoch}%3A0")
    assert sub2["json"]["recovered"] is True
    assert [e["offset"] for e in sub2["json"]["events"]] == [off]
    s2.close()


def test_two_channels_combined_id_recovers_each_channel(server):
    a, b = unique("ca"), unique("cb")
    s, subs = open_stream(server, a, b)
    ea, eb = sub_of(subs, a)["epoch"], sub_of(subs, b)["epoch"]
    assert subs[1]["id"] == f"{ea}:0,{eb}:0"
    publish(server, a, "a1")
    publish(server, b, "b1")
    publish(server, a, "a2")
    got = [s.next_of("event") for _ in range(3)]
    assert [(m["json"]["channel"], m["json"]["data"]) for m in got] == [(a, "a1"), (b, "b1"), (a, "a2")]
    assert got[-1]["id"] == f"{ea}:2,{eb}:1"
    s.close()
    publish(server, b, "b2")
    publish(server, a, "a3")
    publish(server, b, "b3")
    s2, subs2 = open_stream(server, a, b, headers={"Last-Event-ID": got[-1]["id"]})
    by = {m["json"]["channel"]: m["json"] for m in subs2}
    assert by[a]["recovered"] and [e["data"] for e in by[a]["events"]] == ["a3"]
    assert by[b]["recovered"] and [e["data"] for e in by[b]["events"]] == ["b2", "b3"]
    assert s2.last_id == f"{ea}:3,{eb}:3"
    s2.close()


def test_streams_with_other_ids_get_their_own_id_lines(server):
    # Id lines are shared between streams whose combined id is the same
    # (same channels, same positions); streams of the same channels in
    # another order, or at other positions, must each get their own.
    a, b = unique("oa"), unique("ob")
    s1, subs1 = open_stream(server, a, b)
    s2, subs2 = open_stream(server, b, a)
    s3, subs3 = open_stream(server, a, b)
    ea, eb = sub_of(subs1, a)["epoch"], sub_of(subs1, b)["epoch"]
    publish(server, a, 1)
    assert s1.next_of("event")["id"] == f"{ea}:1,{eb}:0"
    assert s2.next_of("event")["id"] == f"{eb}:0,{ea}:1"
    assert s3.next_of("event")["id"] == f"{ea}:1,{eb}:0"
    s3.close()
    publish(server, b, 2)
    publish(server, a, 3)
    s4, subs4 = open_stream(server, a, b, headers={"Last-Event-ID": f"{ea}:1,{eb}:0"})
    assert [e["offset"] for e in sub_of(subs4, a)["events"]] == [2]
    assert [e["offset"] for e in sub_of(subs4, b)["events"]] == [1]
    publish(server, b, 4)
    assert [s1.next_of("event")["id"] for _ in range(3)][-1] == f"{ea}:2,{eb}:2"
    assert s4.next_of("event")["id"] == f"{ea}:2,{eb}:2"
    for s in (s1, s2, s4):
        s.close()


def test_stale_epoch_answers_recovered_false(server):
    ch = unique("stale")
    publish(server, ch, 1)
    s, [sub] = open_stream(server, ch, headers={"Last-Event-ID": "not-the-epoch:1"})
    j = sub["json"]
    assert j["recovered"] is False and j["events"] == []
    assert sub["id"] == f"{j['epoch']}:{j['offset']}"  # the new starting point
    s.close()


def test_cut_in_the_middle_of_a_message_then_reconnect_loses_and_repeats_nothing(server):
    ch = unique("cut")
    s, _ = open_stream(server, ch)
    offsets = [publish(server, ch, {"n": i, "pad": "x" * 3000}) for i in range(6)]
    for _ in range(6):
        s.next_of("event")
    s.close()
    # What a proxy that cut the stream in the middle of the 4th event
    # delivered: everything up to half of that message.
    body = s.raw
    start4 = body.index(b'"offset":%d' % offsets[3])
    seen = SSE.__new__(SSE)
    seen.buf, seen.raw, seen.last_id, seen.retry, seen.comments = body[:start4 + 500], b"", "", None, 0
    seen.sock = socket.socket()  # never read: the cut bytes are all there is
    seen._fill = lambda timeout: False
    got = []
    try:
        while True:
            m = seen.next(0.1)
            if m["json"]["type"] == "event":
                got.append(m["json"]["offset"])
    except EOFError:
        pass
    seen.sock.close()
    assert got == offsets[:3]
    s2, [sub] = open_stream(server, ch, headers={"Last-Event-ID": seen.last_id})
    rest = [e["offset"] for e in sub["json"]["events"]]
    assert sub["json"]["recovered"] is True
    assert got + rest == offsets  # no loss, no duplicate
    s2.close()


def test_ephemeral_events_have_no_id_and_keep_the_last_one(server):
    ch = unique("eph")
    s, [sub] = open_stream(server, ch)
    publish_raw(server, json.dumps({"channel": ch, "event": "typing", "data": 1,
                                    "ephemeral": True}).encode())
    m = s.next_of("event")
    assert "offset" not in m["json"]
    assert m["id"] is None and m["last_id"] == sub["id"]
    s.close()


def test_heartbeat_comments_at_the_ping_interval(server):
    ch = unique("hb")
    s, _ = open_stream(server, ch)
    deadline = time.monotonic() + 10
    while s.comments < 2 and time.monotonic() < deadline:
        try:
            s.next(0.5)
        except TimeoutError:
            pass
    assert s.comments >= 2
    assert b'"type":"ping"' not in s.raw  # no WebSocket-style ping message on SSE
    s.close()


def test_bad_requests_are_http_errors(server):
    for query, headers in [("", {}), ("channel=a&channel=a%zz", {}),
                           ("channel=a", {"Last-Event-ID": "x:1,y:2"}),
                           ("channel=a", {"Last-Event-ID": "x:notanumber"}),
                           ("&".join(f"channel=c{i}" for i in range(300)), {})]:
        s = SSE(server.port, query, headers)
        assert s.status == 400, (query, s.status)
        body = json.loads(s.body())
        assert body["type"] == "error" and body["code"] == "bad_request"
        s.close()
    s = SSE(server.port, "channel=a", method="POST")
    assert s.status == 405 and s.headers["allow"] == "GET"
    s.close()


def test_metrics_count_sse_streams(server):
    ch = unique("m")
    s, _ = open_stream(server, ch)
    with urllib.request.urlopen(server.http_url("/metrics"), timeout=10) as r:
        text = r.read().decode()
    gauge = [l for l in text.splitlines() if l.startswith("herald_sse_connections ")]
    assert gauge and int(gauge[0].split()[1]) >= 1
    s.close()


# -- auth -----------------------------------------------------------------------

AUTH_CONFIG = (
    "[engine]\ntype = \"memory\"\n\n"
    + auth_key("app", ["HS256"], secret=SECRET)
    + NO_AUTH_FAILURE_LIMIT
    + table("[defaults]", allow_unknown=False)
    + table("[namespaces.members]")
    + table("[namespaces.chat]", subscribe_access="capability", publish_access="capability",
            history_access="capability")
)


@pytest.fixture(scope="module")
def auth_server():
    srv = HeraldServer(AUTH_CONFIG, name="sse-auth", workers=2)
    srv.start()
    yield srv
    srv.stop_checked()


def refused(srv: HeraldServer, query: str, status: int, code: str,
            headers: dict | None = None) -> None:
    s = SSE(srv.port, query, headers)
    assert s.status == status, (query, s.status, s.buf)
    assert s.headers["content-type"] == "application/json"
    body = json.loads(s.body())
    assert body["type"] == "error" and body["code"] == code, body
    s.expect_eof()
    s.close()


def test_refusals_deliver_nothing(auth_server):
    ch = "members:" + unique("r")
    # A subscriber that may read the channel, to show the events flowed.
    ok, _ = open_stream(auth_server, ch, extra="&token=" + token(SECRET, sub="bob"))
    refused(auth_server, f"channel={ch}", 401, "unauthorized")  # no token
    refused(auth_server, f"channel={ch}&token=not.a.jwt", 401, "unauthorized")
    refused(auth_server, f"channel={ch}&token=" + token(new_secret(), sub="eve"), 401,
            "unauthorized")  # signed by a key the server does not know
    refused(auth_server, f"channel={ch}&token=" + token(SECRET, sub="ana", ttl=-60), 401,
            "unauthorized")  # expired
    chat = "chat:" + unique("private")
    refused(auth_server, f"channel={chat}&token=" + token(SECRET, sub="ana"), 403, "forbidden")
    # One forbidden channel refuses the whole stream.
    refused(auth_server, f"channel={ch}&channel={chat}&token=" + token(SECRET, sub="ana"), 403,
            "forbidden")
    publish(auth_server, ch, "after")
    assert ok.next_of("event")["json"]["data"] == "after"
    ok.close()


def test_token_in_a_cookie_and_capabilities_of_the_token(auth_server):
    chat = "chat:" + unique("room")
    tok = token(SECRET, sub="ana", caps={chat: ["subscribe"]})
    s, [sub] = open_stream(auth_server, chat, headers={"Cookie": f"a=b; herald_token={tok}"})
    assert sub["json"]["channel"] == chat
    publish(auth_server, chat, "hi")
    assert s.next_of("event")["json"]["data"] == "hi"
    s.close()


# -- slow client ----------------------------------------------------------------

def test_client_that_never_reads_is_cut_off_and_the_server_stays_healthy():
    srv = HeraldServer("[engine]\ntype = \"memory\"\n[limits]\nmax_outbound_bytes = 65536\n",
                       name="sse-slow", workers=1)
    srv.start()
    try:
        ch = unique("slow")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(f"GET /sse?channel={ch} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.3)
        payload = "y" * 16000
        offsets = [publish(srv, ch, {"n": i, "pad": payload}) for i in range(400)]
        assert offsets[-1] == 400
        # Now read: what was queued before the cut, then the end of the stream.
        sock.settimeout(15)
        received = b""
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        sock.close()
        assert received.startswith(b"HTTP/1.1 200")
        assert received.count(b'"type":"event"') < 400
        with urllib.request.urlopen(srv.http_url("/metrics"), timeout=10) as r:
            text = r.read().decode()
        closes = [l for l in text.splitlines() if l.startswith("herald_slow_consumer_closes_total ")]
        assert int(closes[0].split()[1]) >= 1
        assert srv.healthy()
        s, _ = open_stream(srv, ch)  # a new stream works
        publish(srv, ch, "fine")
        assert s.next_of("event")["json"]["data"] == "fine"
        s.close()
    finally:
        srv.stop_checked()


# -- TLS ------------------------------------------------------------------------

def test_stream_over_tls_delivers_and_recovers(pki):  # noqa: F811
    srv = TlsServer(pki, name="sse-tls", workers=2)
    srv.start()
    try:
        ch = unique("tls")
        s = SSE(srv.port, f"channel={ch}", tls=srv.ctx)
        assert s.status == 200 and s.headers["content-type"] == "text/event-stream"
        sub = s.next_of("subscribed")
        status, body = srv.request("/api/publish", {"channel": ch, "event": "e", "data": 1})
        assert status == 200
        m = s.next_of("event")
        assert m["json"]["data"] == 1 and m["id"] == f"{sub['json']['epoch']}:1"
        s.close()
        srv.request("/api/publish", {"channel": ch, "event": "e", "data": 2})
        s2 = SSE(srv.port, f"channel={ch}", {"Last-Event-ID": m["id"]}, tls=srv.ctx)
        j = s2.next_of("subscribed")["json"]
        assert j["recovered"] is True and [e["data"] for e in j["events"]] == [2]
        s2.close()
    finally:
        srv.stop_checked()
