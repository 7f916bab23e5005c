# permessage-deflate (RFC 7692) against the real herald binary: python
# websockets negotiates it by default, so this checks the negotiated response
# header, events compressed once and received intact by several subscribers
# (compressed and not), messages the client compresses, frames below the
# threshold, a refused offer and server.compression = false falling back to
# uncompressed, and, over a raw socket, what is on the wire: RSV1 set and
# fewer bytes than the event, a compression bomb closed with 1009 before
# anything is published, corrupt data (1007) and RSV1 without the extension
# (1002); and compression over TLS (wss://), where frames are encrypted
# after they are compressed.
import json
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

import pytest
import websockets

from harness import (OP_TEXT, RECV_TIMEOUT, HeraldServer, RawWS, WSClient, http_publish,
                     runs_async, toml_config, unique)
from test_tls import TlsServer, make_ca, make_cert

MAX_MESSAGE = 64 * 1024
MIN_BYTES = 256


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(toml_config(server={"compression": True,
                                           "compression_min_bytes": MIN_BYTES},
                                   limits={"max_message_bytes": MAX_MESSAGE}),
                       name="deflate")
    srv.start()
    yield srv
    srv.stop_checked()


def chat_data(n_bytes: int) -> dict:
    words = "hello there the room is quiet today see you at the meeting soon".split()
    text = ""
    i = 0
    while len(text) < n_bytes:
        text += words[i % len(words)] + " "
        i += 7
    return {"user": "alice", "room": "lobby", "text": text[:n_bytes]}


def metric(server: HeraldServer, name: str) -> float:
    with urllib.request.urlopen(server.http_url("/metrics"), timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


async def open_client(server: HeraldServer, compression: str | None = "deflate") -> WSClient:
    ws = await websockets.connect(server.ws_url(), ping_interval=None, max_size=None,
                                  compression=compression, open_timeout=RECV_TIMEOUT,
                                  close_timeout=5)
    c = WSClient(ws)
    reply = await c.call({"type": "connect"})
    assert reply["type"] == "connected", reply
    c.client_id = reply["client"]
    return c


def negotiated(c: WSClient) -> str:
    return c.ws.response_headers.get("Sec-WebSocket-Extensions", "")


async def subscribe(c: WSClient, ch: str) -> None:
    reply = await c.call({"type": "subscribe", "channel": ch})
    assert reply["type"] == "subscribed", reply


# -- python websockets ---------------------------------------------------------

@runs_async
async def test_negotiated_with_no_context_takeover_and_events_arrive_intact(server):
    c = await open_client(server)
    header = negotiated(c)
    assert header.startswith("permessage-deflate"), header
    assert "server_no_context_takeover" in header and "client_no_context_takeover" in header
    assert [type(e).__name__ for e in c.ws.extensions] == ["PerMessageDeflate"]
    ch = unique("deflate")
    await subscribe(c, ch)
    compressed_before = metric(server, "herald_frames_compressed_total")
    data = chat_data(2000)
    # The client compresses its publish (websockets compresses every frame):
    # the server must inflate it.
    await c.send({"type": "publish", "id": 1, "channel": ch, "event": "chat", "data": data})
    ev = await c.recv()
    assert ev["type"] == "event" and ev["data"] == data, ev
    ack = await c.recv()
    assert ack == {"type": "ack", "id": 1, "offset": 1}, ack
    assert metric(server, "herald_frames_compressed_total") > compressed_before
    assert metric(server, "herald_compression_bytes_saved_total") > 0
    await c.close()


@runs_async
async def test_several_subscribers_compressed_or_not_get_the_same_event(server):
    ch = unique("fanout")
    subs = [await open_client(server) for _ in range(5)]
    plain = [await open_client(server, compression=None) for _ in range(2)]
    for s in plain:
        assert negotiated(s) == ""
    for s in subs + plain:
        await subscribe(s, ch)
    compressed_before = metric(server, "herald_frames_compressed_total")
    for n in range(1, 4):
        data = chat_data(1000 + 500 * n)
        status, body = http_publish(server, ch, data, event="chat.message")
        assert status == 200, body
        for s in subs + plain:
            ev = await s.recv()
            assert ev["offset"] == n and ev["data"] == data, ev
    # One compressed frame per event and subscriber that negotiated it; the
    # uncompressed ones got the plain frame.
    assert metric(server, "herald_frames_compressed_total") - compressed_before >= 15
    for s in subs + plain:
        await s.close()


@runs_async
async def test_frames_below_the_threshold_and_unicode_work(server):
    c = await open_client(server)
    ch = unique("small")
    await subscribe(c, ch)
    for i, data in enumerate([1, "x", {"t": "h\u00e9llo \U0001F600"}, chat_data(MIN_BYTES - 120),
                              chat_data(MIN_BYTES + 50)], start=1):
        await c.send({"type": "publish", "id": i, "channel": ch, "event": "e", "data": data})
        ev = await c.recv()
        assert ev["data"] == data, ev
        assert (await c.recv())["type"] == "ack"
    await c.close()


@runs_async
async def test_compression_off_negotiates_nothing():
    srv = HeraldServer(toml_config(server={"compression": False}), name="deflate-off")
    srv.start()
    try:
        c = await open_client(srv)
        assert negotiated(c) == ""
        assert c.ws.extensions == []
        ch = unique("off")
        await subscribe(c, ch)
        data = chat_data(3000)
        await c.send({"type": "publish", "id": 1, "channel": ch, "event": "e", "data": data})
        assert (await c.recv())["data"] == data
        await c.close()
        assert metric(srv, "herald_frames_compressed_total") == 0
    finally:
        srv.stop_checked()


# -- raw socket: what is on the wire -------------------------------------------

def inflate(payload: bytes) -> bytes:
    return zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")


def deflate(message: bytes) -> bytes:
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = z.compress(message) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def read_message(raw: RawWS) -> tuple[bool, dict]:
    """(was it compressed, the JSON message)."""
    fin, rsv1, op, payload = raw.read_frame_rsv1()
    assert fin and op == OP_TEXT, (fin, op, payload[:80])
    return rsv1, json.loads(inflate(payload) if rsv1 else payload)


def raw_client(server: HeraldServer, offer: str | None) -> RawWS:
    raw = RawWS(server.port, headers={"Sec-WebSocket-Extensions": offer} if offer else {})
    raw.send_text(json.dumps({"type": "connect", "id": 1}))
    compressed, reply = read_message(raw)
    assert reply["type"] == "connected" and not compressed, reply
    return raw


def raw_subscribe(raw: RawWS, ch: str) -> None:
    raw.send_text(json.dumps({"type": "subscribe", "channel": ch, "id": 2}))
    _, reply = read_message(raw)
    assert reply["type"] == "subscribed", reply


def test_wire_frames_are_compressed_and_smaller(server):
    with raw_client(server, "permessage-deflate; client_max_window_bits") as raw:
        assert raw.headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        ch = unique("wire")
        raw_subscribe(raw, ch)
        data = chat_data(1024)
        assert http_publish(server, ch, data)[0] == 200
        fin, rsv1, op, payload = raw.read_frame_rsv1()
        assert fin and rsv1 and op == OP_TEXT, "a 1 KB event must be sent compressed"
        event = inflate(payload)
        assert json.loads(event)["data"] == data
        assert len(payload) * 2 < len(event), (len(payload), len(event))
        # Below the threshold: the plain frame, RSV1 clear.
        assert http_publish(server, ch, {"n": 1})[0] == 200
        compressed, ev = read_message(raw)
        assert not compressed and ev["data"] == {"n": 1}
        # A message the client compresses is inflated (a publish).
        raw.send_frame(OP_TEXT, deflate(json.dumps({"type": "publish", "id": 3, "channel": ch,
                                                    "event": "e", "data": data}).encode()),
                       rsv=4)
        _, ev = read_message(raw)
        assert ev["type"] == "event" and ev["data"] == data, ev
        _, ack = read_message(raw)
        assert ack == {"type": "ack", "id": 3, "offset": 3}, ack


def test_refused_offer_still_works_uncompressed(server):
    # server_max_window_bits below 15 is not honoured (32 KiB window only).
    with raw_client(server, "permessage-deflate; server_max_window_bits=10") as raw:
        assert "sec-websocket-extensions" not in raw.headers
        ch = unique("refused")
        raw_subscribe(raw, ch)
        data = chat_data(2000)
        assert http_publish(server, ch, data)[0] == 200
        compressed, ev = read_message(raw)
        assert not compressed and ev["data"] == data
    # An offer with an unknown parameter: declined, the next one accepted.
    with raw_client(server, "permessage-deflate; foo=1, permessage-deflate") as raw:
        assert raw.headers["sec-websocket-extensions"].startswith("permessage-deflate;")


def history_offset(server: HeraldServer, ch: str) -> int:
    with raw_client(server, None) as raw:
        raw.send_text(json.dumps({"type": "history", "channel": ch, "id": 9}))
        _, reply = read_message(raw)
        assert reply["type"] == "history", reply
        assert reply["events"] == [], reply
        return reply["offset"]


def test_compression_bomb_closes_1009_and_publishes_nothing(server):
    ch = unique("bomb")
    message = json.dumps({"type": "publish", "id": 3, "channel": ch, "event": "e",
                          "data": "A" * (4 * MAX_MESSAGE)}).encode()
    bomb = deflate(message)
    assert len(bomb) < 1024, len(bomb)
    with raw_client(server, "permessage-deflate") as raw:
        raw.send_frame(OP_TEXT, bomb, rsv=4)
        assert raw.read_close() == 1009
        raw.expect_eof()
    assert history_offset(server, ch) == 0, "the bomb's publish must not have happened"


def test_corrupt_compressed_data_closes_1007(server):
    with raw_client(server, "permessage-deflate") as raw:
        raw.send_frame(OP_TEXT, b"\xff\xfe\xfd\xfc not deflate", rsv=4)
        assert raw.read_close() == 1007


def test_rsv1_without_the_extension_is_1002(server):
    with raw_client(server, None) as raw:
        assert "sec-websocket-extensions" not in raw.headers
        raw.send_frame(OP_TEXT, deflate(b'{"type":"ping"}'), rsv=4)
        assert raw.read_close() == 1002
    with raw_client(server, "permessage-deflate") as raw:
        # RSV1 on a continuation frame, even with the extension.
        raw.send_frame(OP_TEXT, b'{"type":', fin=False)
        raw.send_frame(0x0, deflate(b'"ping"}'), rsv=4)
        assert raw.read_close() == 1002


@runs_async
async def test_compression_over_tls():
    d = Path(tempfile.mkdtemp(prefix="herald-deflate-tls-"))
    srv = None
    try:
        make_ca(d, "ca")
        make_cert(d, "first")
        srv = TlsServer(d, extra={"compression": True}, name="deflate-tls")
        srv.start()
        ws = await websockets.connect(srv.ws_url(), ssl=srv.ctx, ping_interval=None,
                                      max_size=None, compression="deflate",
                                      open_timeout=RECV_TIMEOUT, close_timeout=5)
        c = WSClient(ws)
        assert negotiated(c).startswith("permessage-deflate; server_no_context_takeover")
        assert (await c.call({"type": "connect"}))["type"] == "connected"
        ch = unique("tls")
        await subscribe(c, ch)
        for n in range(1, 4):
            data = chat_data(1500 * n)
            await c.send({"type": "publish", "id": n, "channel": ch, "event": "e", "data": data})
            ev = await c.recv()
            assert ev["offset"] == n and ev["data"] == data, ev
            assert (await c.recv())["type"] == "ack"
        await c.close()
    finally:
        if srv is not None:
            srv.stop_checked()
        shutil.rmtree(d, ignore_errors=True)
