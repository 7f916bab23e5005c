# WebSocket-level behaviour of a real herald server, driven with hand-made
# frames over raw TCP sockets: close codes for binary frames (1003), invalid
# UTF-8 (1007), oversized messages (1009) and protocol violations (1002);
# ping -> pong; fragmented messages; the close handshake and invalid close
# frames; refused upgrade requests (400/403/404/426), accepted upgrade
# variants, the handshake timeout, and the server staying up after each.
import asyncio
import json
import socket
import struct
import time

import pytest

from harness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, HeraldServer,
                     RawWS, WSClient, raw_http, runs_async, toml_config, unique)

MAX_MESSAGE = 65536  # the default limits.max_message_bytes


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(name="websocket-level")
    srv.start()
    yield srv
    srv.stop_checked()


def assert_server_serves(server: HeraldServer, headers: dict | None = None) -> None:
    """After whatever a test did, the server still answers HTTP and WebSocket."""
    assert server.alive(), "herald process died"
    assert server.healthy(), "/healthz no longer answers 200"
    with RawWS(server.port, headers=headers) as ws:
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        reply = ws.read_json()
        assert reply["type"] == "connected" and reply["id"] == 1, reply


def expect_failed_with(ws: RawWS, code: int) -> None:
    got = ws.read_close()
    assert got == code, f"expected close code {code}, got {got}"
    ws.send_close(code)
    ws.expect_eof()


def publish_text(channel: str, id_: int, pad: int = 0) -> str:
    return json.dumps({"type": "publish", "id": id_, "channel": channel, "event": "e",
                       "data": "x" * pad})


# -- data frames that fail the connection ------------------------------------------

def test_binary_frame_closes_1003(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_BINARY, b'{"type":"connect","id":1}')
        expect_failed_with(ws, 1003)
    assert_server_serves(server)


@pytest.mark.parametrize("payload", [
    b'{"type":"publish","channel":"a","event":"e","data":"\xff"}',
    b'{"data":"\xc0\xaf"}',          # overlong encoding
    b'{"data":"\xed\xa0\x80"}',      # UTF-16 surrogate
    b'{"data":"\xf4\x90\x80\x80"}',  # above U+10FFFF
    b'{"data":"\xe2\x82"}',          # truncated sequence
], ids=["ff", "overlong", "surrogate", "too-high", "truncated"])
def test_invalid_utf8_closes_1007(server, payload):
    with RawWS(server.port) as ws:
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        assert ws.read_json()["type"] == "connected"
        ws.send_frame(OP_TEXT, payload)
        expect_failed_with(ws, 1007)
    assert_server_serves(server)


def test_invalid_utf8_in_fragments_closes_1007(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_TEXT, b'{"type":"connect","data":"', fin=False)
        ws.send_frame(OP_CONT, b"\xe2\x82", fin=False)
        ws.send_frame(OP_CONT, b'"}', fin=True)  # the sequence never completes
        expect_failed_with(ws, 1007)
    assert_server_serves(server)


def test_message_at_limit_accepted_over_limit_closes_1009(server):
    ch = unique()
    with RawWS(server.port) as ws:
        text = publish_text(ch, 1)
        text = publish_text(ch, 1, MAX_MESSAGE - len(text))
        assert len(text.encode()) == MAX_MESSAGE
        ws.send_text(text)
        reply = ws.read_json()
        assert reply == {"type": "ack", "id": 1, "offset": 1}, reply
        ws.send_text(publish_text(ch, 2, MAX_MESSAGE - len(publish_text(ch, 2)) + 1))
        expect_failed_with(ws, 1009)
    assert_server_serves(server)


def test_fragmented_message_over_limit_closes_1009(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_TEXT, b'{"type":"connect","data":"' + b"x" * 40000, fin=False)
        ws.send_frame(OP_CONT, b"x" * 40000, fin=False)
        expect_failed_with(ws, 1009)
    assert_server_serves(server)


def test_huge_declared_length_closes_1009(server):
    """A frame header announcing 2^40 bytes must be refused at once, not buffered."""
    with RawWS(server.port) as ws:
        ws.sock.sendall(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 40) + b"\0\0\0\0")
        expect_failed_with(ws, 1009)
    assert_server_serves(server)


# -- protocol violations (1002) ---------------------------------------------------

def test_unmasked_frame_closes_1002(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_TEXT, b'{"type":"connect","id":1}', mask=False)
        expect_failed_with(ws, 1002)
    assert_server_serves(server)


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_reserved_bits_close_1002(server, rsv):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_TEXT, b'{"type":"connect","id":1}', rsv=rsv)
        expect_failed_with(ws, 1002)
    assert_server_serves(server)


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_reserved_opcode_closes_1002(server, opcode):
    with RawWS(server.port) as ws:
        ws.send_frame(opcode, b"x")
        expect_failed_with(ws, 1002)
    assert_server_serves(server)


def test_continuation_without_start_closes_1002(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_CONT, b'{"type":"connect"}', fin=True)
        expect_failed_with(ws, 1002)
    assert_server_serves(server)


def test_new_message_inside_fragmented_message_closes_1002(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_TEXT, b'{"type":', fin=False)
        ws.send_frame(OP_TEXT, b'{"type":"connect"}', fin=True)
        expect_failed_with(ws, 1002)
    assert_server_serves(server)


def test_control_frame_too_long_closes_1002(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_PING, b"p" * 126)
        expect_failed_with(ws, 1002)
    assert_server_serves(server)


def test_fragmented_control_frame_closes_1002(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_PING, b"ping", fin=False)
        expect_failed_with(ws, 1002)
    assert_server_serves(server)


# -- valid frame-level behaviour ----------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(125))],
                         ids=["empty", "hello", "125-bytes"])
def test_ping_gets_pong_with_same_payload(server, payload):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_PING, payload)
        fin, op, got = ws.read_frame()
        assert (fin, op, got) == (True, OP_PONG, payload)
        # The connection is fine afterwards.
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        assert ws.read_json()["type"] == "connected"


def test_unsolicited_pong_is_ignored(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_PONG, b"unasked")
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        reply = ws.read_json()
        assert reply["type"] == "connected" and reply["id"] == 1, reply


def test_fragmented_text_is_reassembled(server):
    ch = unique()
    text = publish_text(ch, 9).replace('"data": ""', '"data": "caf\u00e9 \U0001F600 end"')
    data = text.encode()
    # Split inside the multi-byte characters, with a ping between fragments.
    cut1 = data.index("\u00e9".encode()) + 1
    cut2 = data.index("\U0001F600".encode()) + 2
    with RawWS(server.port) as ws:
        ws.send_text(json.dumps({"type": "subscribe", "channel": ch, "id": 1}))
        sub = ws.read_json()
        assert sub["type"] == "subscribed", sub
        ws.send_frame(OP_TEXT, data[:cut1], fin=False)
        ws.send_frame(OP_CONT, data[cut1:cut2], fin=False)
        ws.send_frame(OP_PING, b"mid")
        ws.send_frame(OP_CONT, b"", fin=False)
        ws.send_frame(OP_CONT, data[cut2:], fin=True)
        fin, op, payload = ws.read_frame()
        assert (op, payload) == (OP_PONG, b"mid"), "the ping between fragments must be answered"
        ev = ws.read_json()
        assert ev["type"] == "event" and ev["data"] == "caf\u00e9 \U0001F600 end", ev
        ack = ws.read_json()
        assert ack == {"type": "ack", "id": 9, "offset": 1}, ack


def test_frames_split_across_tcp_writes(server):
    """A frame that arrives a byte at a time is still one frame."""
    frame = RawWS.frame(OP_TEXT, json.dumps({"type": "connect", "id": "slow"}).encode())
    with RawWS(server.port) as ws:
        ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in frame:
            ws.sock.sendall(bytes([b]))
            time.sleep(0.002)
        reply = ws.read_json()
        assert reply["type"] == "connected" and reply["id"] == "slow", reply


def test_many_frames_in_one_tcp_write(server):
    ch = unique()
    frames = RawWS.frame(OP_TEXT, json.dumps({"type": "subscribe", "channel": ch}).encode())
    for i in range(1, 51):
        frames += RawWS.frame(OP_TEXT, publish_text(ch, i).encode())
    with RawWS(server.port) as ws:
        ws.sock.sendall(frames)
        for i in range(1, 51):
            ev = ws.read_json()
            assert ev["type"] == "event" and ev["offset"] == i, ev
            ack = ws.read_json()
            assert ack == {"type": "ack", "id": i, "offset": i}, ack


def test_client_close_is_answered(server):
    with RawWS(server.port) as ws:
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        assert ws.read_json()["type"] == "connected"
        ws.send_frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
        code = ws.read_close()
        assert code == 1000, f"server should echo the close code 1000, got {code}"
        ws.expect_eof()
    assert_server_serves(server)


def test_abrupt_disconnect_mid_frame(server):
    for _ in range(5):
        ws = RawWS(server.port)
        ws.sock.sendall(bytes([0x81, 0x80 | 126]) + struct.pack("!H", 1000) + b"\1\2\3\4" + b"x" * 10)
        ws.close()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgr")
    sock.close()
    assert_server_serves(server)


@runs_async
async def test_websockets_library_client_roundtrip(server):
    """Sanity check with the library client alongside the raw tests."""
    c, _ = await WSClient.connected(server)
    ch = unique()
    reply = await c.call({"type": "subscribe", "channel": ch})
    assert reply["type"] == "subscribed", reply
    pong_waiter = await c.ws.ping(b"lib")
    await asyncio.wait_for(pong_waiter, 10)
    await c.close()


# -- refused upgrades -------------------------------------------------------------

def upgrade_request(port: int, method="GET", path="/ws", drop=(), **override) -> bytes:
    headers = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    for k in drop:
        headers.pop(k)
    for k, v in override.items():
        headers[k.replace("_", "-")] = v
    body = "Content-Length: 0\r\n" if method == "POST" else ""
    return (f"{method} {path} HTTP/1.1\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + body + "\r\n").encode()


def test_upgrade_without_key_is_400(server):
    status, _, _ = raw_http(server.port, upgrade_request(server.port, drop=["Sec-WebSocket-Key"]))
    assert status == 400
    assert_server_serves(server)


def test_upgrade_with_malformed_key_is_400(server):
    status, _, _ = raw_http(server.port, upgrade_request(server.port,
                                                         Sec_WebSocket_Key="not-base64-16"))
    assert status == 400
    assert_server_serves(server)


def test_upgrade_with_version_12_is_426(server):
    status, headers, _ = raw_http(server.port,
                                  upgrade_request(server.port, Sec_WebSocket_Version="12"))
    assert status == 426
    assert headers.get("sec-websocket-version") == "13", headers
    assert_server_serves(server)


def test_upgrade_without_version_is_refused(server):
    status, _, _ = raw_http(server.port,
                            upgrade_request(server.port, drop=["Sec-WebSocket-Version"]))
    assert status in (400, 426)
    assert_server_serves(server)


def test_upgrade_with_post_is_refused(server):
    status, _, _ = raw_http(server.port, upgrade_request(server.port, method="POST"))
    assert 400 <= status < 500 and status != 404, status
    assert_server_serves(server)


def test_upgrade_without_connection_upgrade_is_refused(server):
    status, _, _ = raw_http(server.port, upgrade_request(server.port, Connection="keep-alive"))
    assert 400 <= status < 500, status
    assert_server_serves(server)


def test_garbage_request_is_refused(server):
    status, _, _ = raw_http(server.port, b"HELLO THERE\r\n\r\n")
    assert status == 400, status
    assert_server_serves(server)


def test_origin_checked_against_allowed_origins():
    config = toml_config(server={"allowed_origins": ["https://good.example"]})
    with HeraldServer(config, name="origins") as srv:
        status, _, _ = raw_http(srv.port, upgrade_request(srv.port, Origin="https://evil.example"))
        assert status == 403, status
        status, _, _ = raw_http(srv.port,
                                upgrade_request(srv.port, Origin="https://good.example.evil"))
        assert status == 403, status
        with RawWS(srv.port, headers={"Origin": "https://good.example"}) as ws:
            ws.send_text(json.dumps({"type": "connect", "id": 1}))
            assert ws.read_json()["type"] == "connected"
        assert_server_serves(srv, headers={"Origin": "https://good.example"})
        srv.stop_checked()


# -- upgrade variants that must be accepted ------------------------------------------

def test_upgrade_with_query_string_is_accepted(server):
    with RawWS(server.port, path="/ws?token=abc&x=1") as ws:
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        assert ws.read_json()["type"] == "connected"


def test_upgrade_header_tokens_are_case_insensitive_lists(server):
    # Firefox sends "Connection: keep-alive, Upgrade"; header values are
    # case-insensitive tokens.
    with RawWS(server.port, headers={"Connection": "keep-alive, Upgrade",
                                     "Upgrade": "WebSocket"}) as ws:
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        assert ws.read_json()["type"] == "connected"


def test_upgrade_declines_extensions_and_subprotocols(server):
    with RawWS(server.port, headers={
            "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
            "Sec-WebSocket-Protocol": "chat, superchat"}) as ws:
        assert "sec-websocket-extensions" not in ws.headers, ws.headers
        assert "sec-websocket-protocol" not in ws.headers, ws.headers
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        assert ws.read_json()["type"] == "connected"


def test_oversized_request_headers_are_refused(server):
    request = (b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n"
               b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    try:
        status, _, _ = raw_http(server.port, request)
        assert 400 <= status < 500, status
    except (ConnectionResetError, BrokenPipeError):
        pass  # closing the connection is an acceptable answer too
    assert_server_serves(server)


def test_connection_that_never_upgrades_is_closed_after_handshake_timeout():
    config = toml_config(limits={"handshake_timeout_ms": 500})
    with HeraldServer(config, name="handshake-timeout") as srv:
        idle = socket.create_connection(("127.0.0.1", srv.port))
        partial = socket.create_connection(("127.0.0.1", srv.port))
        partial.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        for s in (idle, partial):
            s.settimeout(10)
            start = time.monotonic()
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            except socket.timeout:
                raise AssertionError("connection still open 10 s after connecting, "
                                     "with handshake_timeout_ms=500") from None
            assert time.monotonic() - start < 5
            s.close()
        # An upgraded connection is not subject to the handshake timeout.
        with RawWS(srv.port) as ws:
            ws.sock.settimeout(1.5)
            try:
                frame = ws.read_frame(timeout=1.5)
                raise AssertionError(f"unexpected frame on an idle upgraded connection: {frame}")
            except socket.timeout:
                pass
            ws.send_text(json.dumps({"type": "connect", "id": 1}))
            assert ws.read_json()["type"] == "connected"
        assert_server_serves(srv)
        srv.stop_checked()


def test_upgrade_on_another_path_is_404(server):
    status, _, _ = raw_http(server.port, upgrade_request(server.port, path="/wsx"))
    assert status == 404, status
    status, _, _ = raw_http(server.port, upgrade_request(server.port, path="/"))
    assert status in (404, 400), status
    assert_server_serves(server)


def test_ws_path_is_configurable():
    with HeraldServer(toml_config(server={"ws_path": "/realtime"}), name="ws-path") as srv:
        with RawWS(srv.port, path="/realtime") as ws:
            ws.send_text(json.dumps({"type": "connect", "id": 1}))
            assert ws.read_json()["type"] == "connected"
        status, _, _ = raw_http(srv.port, upgrade_request(srv.port, path="/ws"))
        assert status == 404, status
        srv.stop_checked()


# -- close frames from the client -----------------------------------------------------

@pytest.mark.parametrize("payload", [struct.pack("!H", 1005), struct.pack("!H", 1006),
                                     struct.pack("!H", 999), struct.pack("!H", 1004),
                                     struct.pack("!H", 2999), b"\x03"],
                         ids=["1005", "1006", "999", "1004", "2999", "one-byte"])
def test_invalid_close_frame_is_a_protocol_error(server, payload):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_CLOSE, payload)
        expect_failed_with(ws, 1002)
    assert_server_serves(server)


def test_close_reason_must_be_utf8(server):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_CLOSE, struct.pack("!H", 1000) + b"bad \xff reason")
        expect_failed_with(ws, 1007)
    assert_server_serves(server)


@pytest.mark.parametrize("payload", [b"", struct.pack("!H", 4000) + b"app reason",
                                     struct.pack("!H", 1001)], ids=["empty", "4000", "1001"])
def test_valid_close_frames_are_answered(server, payload):
    with RawWS(server.port) as ws:
        ws.send_frame(OP_CLOSE, payload)
        code = ws.read_close()
        assert code in (None, 1000) or payload[:2] == struct.pack("!H", code), code
        ws.expect_eof()
    assert_server_serves(server)


def test_frames_after_close_are_ignored(server):
    with RawWS(server.port) as ws:
        ws.sock.sendall(RawWS.frame(OP_CLOSE, struct.pack("!H", 1000))
                        + RawWS.frame(OP_TEXT, b'{"type":"connect","id":1}'))
        fin, op, payload = ws.read_frame()
        assert op == OP_CLOSE, f"expected only the close answer, got opcode {op}: {payload!r}"
        ws.expect_eof()
    assert_server_serves(server)


def test_64bit_length_with_high_bit_is_refused(server):
    with RawWS(server.port) as ws:
        ws.sock.sendall(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + b"\0\0\0\0")
        code = ws.read_close()
        assert code in (1002, 1009), code
    assert_server_serves(server)
