# Graceful shutdown of a real herald server: on SIGTERM or SIGINT every
# connected WebSocket client receives close code 1001 and the process exits
# with code 0 within a few seconds, also with idle TCP connections, clients in
# the middle of a frame and clients that never answer the close frame.
import asyncio
import json
import signal
import socket
import time

import pytest

from harness import HeraldServer, RawWS, WSClient, runs_async, toml_config, unique

EXIT_WITHIN = 8.0  # seconds; shutdown_timeout_ms defaults to 5000


async def wait_exit(srv: HeraldServer, timeout: float) -> int | None:
    return await asyncio.get_running_loop().run_in_executor(None, srv.wait_exit, timeout)


async def shutdown_with_clients(sig: int) -> None:
    with HeraldServer(name=f"shutdown-{signal.Signals(sig).name}") as srv:
        ch = unique()
        clients = []
        for i in range(8):  # enough to have clients on both workers
            c, _ = await WSClient.connected(srv)
            if i % 2 == 0:
                reply = await c.call({"type": "subscribe", "channel": ch})
                assert reply["type"] == "subscribed", reply
            clients.append(c)
        anonymous = await WSClient.open(srv)  # upgraded, never sent a frame
        clients.append(anonymous)
        idle_tcp = socket.create_connection(("127.0.0.1", srv.port))  # no HTTP request
        half_frame = RawWS(srv.port)
        half_frame.sock.sendall(bytes([0x81, 0x80 | 100]) + b"\1\2\3\4" + b"x" * 10)
        # An idle HTTP/1.1 keep-alive connection after one request.
        keepalive = socket.create_connection(("127.0.0.1", srv.port))
        keepalive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        keepalive.settimeout(10)
        assert keepalive.recv(65536).startswith(b"HTTP/1.1 200")

        started = time.monotonic()
        srv.signal(sig)
        closes = await asyncio.gather(*(c.expect_closed(timeout=EXIT_WITHIN) for c in clients))
        for i, closed in enumerate(closes):
            assert closed.code == 1001, f"client {i}: expected close 1001, got {closed}"
        code = await wait_exit(srv, EXIT_WITHIN)
        elapsed = time.monotonic() - started
        assert code is not None, f"herald still running {EXIT_WITHIN}s after {sig!r}"
        assert code == 0, f"herald exited with code {code} after {sig!r}"
        srv.check_log_clean()
        idle_tcp.close()
        half_frame.close()
        keepalive.close()
        print(f"exited {elapsed:.2f}s after the signal")


@runs_async
async def test_sigterm_closes_clients_with_1001_and_exits_0():
    await shutdown_with_clients(signal.SIGTERM)


@runs_async
async def test_sigint_closes_clients_with_1001_and_exits_0():
    await shutdown_with_clients(signal.SIGINT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_exit_0_without_clients(sig):
    with HeraldServer(name="shutdown-idle") as srv:
        srv.signal(sig)
        code = srv.wait_exit(EXIT_WITHIN)
        assert code == 0, f"exit code {code} (None: did not exit within {EXIT_WITHIN}s)"
        srv.check_log_clean()


def test_shutdown_timeout_bounds_exit_when_clients_ignore_close():
    """A client that neither reads nor answers the close frame cannot hold the
    process past server.shutdown_timeout_ms."""
    config = toml_config(server={"shutdown_timeout_ms": 1000})
    with HeraldServer(config, name="shutdown-timeout") as srv:
        stubborn = []
        for _ in range(4):
            ws = RawWS(srv.port)
            ws.send_text(json.dumps({"type": "connect", "id": 1}))
            assert ws.read_json()["type"] == "connected"
            stubborn.append(ws)  # from now on: never read, never answer
        started = time.monotonic()
        srv.signal(signal.SIGTERM)
        code = srv.wait_exit(EXIT_WITHIN)
        elapsed = time.monotonic() - started
        assert code == 0, f"exit code {code} (None: did not exit within {EXIT_WITHIN}s)"
        assert elapsed < 1.0 + 3.0, f"took {elapsed:.1f}s with shutdown_timeout_ms=1000"
        for ws in stubborn:
            got = ws.read_close()
            assert got == 1001, got
            ws.close()
        srv.check_log_clean()


@runs_async
async def test_shutdown_while_publishing():
    """SIGTERM in the middle of a stream of publishes: subscribers see a
    contiguous prefix of the offsets, then close 1001; exit code 0."""
    with HeraldServer(name="shutdown-busy") as srv:
        ch = unique()
        sub, _ = await WSClient.connected(srv)
        assert (await sub.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
        pub, _ = await WSClient.connected(srv)
        for i in range(200):
            await pub.send({"type": "publish", "channel": ch, "event": "e", "data": i})
        first = await sub.recv()
        assert first["type"] == "event" and first["offset"] == 1, first
        srv.signal(signal.SIGTERM)
        offsets = [1]
        while True:
            try:
                msg = await sub.recv(timeout=EXIT_WITHIN)
            except Exception as e:
                assert getattr(e, "code", None) == 1001, f"expected close 1001, got {e!r}"
                break
            assert msg["type"] == "event", msg
            offsets.append(msg["offset"])
        assert offsets == list(range(1, len(offsets) + 1)), offsets
        code = await wait_exit(srv, EXIT_WITHIN)
        assert code == 0, f"exit code {code}"
        srv.check_log_clean()
