# TLS for clients (issue 16 item 1): wss:// and https:// on server.listen
# with server.tls_cert_file / tls_key_file, against the real binary and a CA
# and certificates the test makes with the openssl command line. What must
# hold: the WebSocket protocol (connect, subscribe, live events) and the HTTP
# API (publish, history) work over TLS with a client that trusts the test CA;
# a plaintext client on the TLS port gets no HTTP answer and the server
# carries on; SIGHUP re-reads the certificate for new connections while an
# open one keeps working, and a bad new pair leaves the old one in use,
# saying why; a subscriber that stops reading gets every event intact once
# it reads again, and one too far behind is closed with 4008; an expired,
# mismatched or missing certificate stops start-up
# (and check-config) with a message naming the file and never its contents;
# server.listen_plain serves plain HTTP beside it.
from __future__ import annotations

import asyncio
import base64
import json
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets

from harness import (OP_TEXT, RECV_TIMEOUT, HeraldServer, RawWS,
                     WSClient, free_port, herald_bin, runs_async, server_env, toml_config, unique)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN=herald test {name}", cwd=d)


def make_cert(d: Path, name: str, ca: str = "ca") -> None:
    """`name`.crt (for localhost and 127.0.0.1, CN "herald <name>", signed by
    `ca`, followed by the CA's certificate: a chain) and `name`.key."""
    (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=herald {name}",
            cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.leaf", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)
    (d / f"{name}.crt").write_text((d / f"{name}.leaf").read_text() +
                                   (d / f"{ca}.crt").read_text())


def make_expired_cert(d: Path, name: str) -> None:
    """A self-signed `name`.crt valid for one day in 2020 (openssl ca sets
    dates in the past; req and x509 cannot), and `name`.key."""
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
        "serial = serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=herald {name}",
            cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", f"{name}.key",
            "-in", f"{name}.csr", "-out", f"{name}.crt", "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", "-notext", cwd=d)


@pytest.fixture(scope="module")
def pki():
    d = Path(tempfile.mkdtemp(prefix="herald-tls-"))
    try:
        make_ca(d, "ca")
        make_cert(d, "first")
        make_cert(d, "second")
        make_expired_cert(d, "expired")
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def client_context(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class TlsServer(HeraldServer):
    """HeraldServer whose listen address speaks TLS (https://, wss://),
    with its certificate and key copied to server.crt / server.key in its
    own directory (so a test can replace them and send SIGHUP)."""

    def __init__(self, pki: Path, cert: str = "first", extra: dict | None = None, **kw):
        self.pki = pki
        self.ctx = client_context(pki)
        super().__init__(config=None, **kw)
        d = Path(self.tmpdir)
        shutil.copy(pki / f"{cert}.crt", d / "server.crt")
        shutil.copy(pki / f"{cert}.key", d / "server.key")
        server = {"tls_cert_file": str(d / "server.crt"), "tls_key_file": str(d / "server.key")}
        server.update(extra or {})
        self.config_text = toml_config(server=server, engine={"type": "memory"})
        self.config_path = str(d / "herald.toml")
        Path(self.config_path).write_text(self.config_text)

    def use_pair(self, cert: str, key: str | None = None) -> None:
        d = Path(self.tmpdir)
        shutil.copy(self.pki / f"{cert}.crt", d / "server.crt")
        shutil.copy(self.pki / f"{key or cert}.key", d / "server.key")

    def http_url(self, path: str = "/") -> str:
        return f"https://localhost:{self.port}{path}"

    def ws_url(self, path: str = "/ws") -> str:
        return f"wss://localhost:{self.port}{path}"

    def _healthz_ok(self) -> bool:
        status, body = self.get("/healthz")
        return status == 200 and body == {"status": "ok"}

    def request(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.http_url(path), data=data,
                                     headers={"Content-Type": "application/json"},
                                     method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def get(self, path: str) -> tuple[int, dict]:
        return self.request(path)

    def peer_cn(self) -> str:
        """The CN of the certificate a new TLS connection is shown."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with self.ctx.wrap_socket(raw, server_hostname="localhost") as s:
                subject = dict(x[0] for x in s.getpeercert()["subject"])
                return subject["commonName"]


async def open_wss(server: TlsServer) -> WSClient:
    ws = await websockets.connect(server.ws_url(), ssl=server.ctx, ping_interval=None,
                                  max_size=None, compression=None, open_timeout=RECV_TIMEOUT,
                                  close_timeout=5)
    client = WSClient(ws)
    reply = await client.call({"type": "connect"})
    assert reply["type"] == "connected", reply
    return client


async def subscribed(server: TlsServer, channel: str) -> WSClient:
    c = await open_wss(server)
    reply = await c.call({"type": "subscribe", "channel": channel})
    assert reply["type"] == "subscribed", reply
    return c


@runs_async
async def test_wss_and_https_publish_receive_history(pki):
    with TlsServer(pki) as server:
        ch = unique()
        sub = await subscribed(server, ch)
        # Published over the WebSocket (TLS both ways) ...
        pub = await open_wss(server)
        ack = await pub.call({"type": "publish", "channel": ch, "event": "m",
                              "data": {"n": 1}})
        assert ack["type"] == "ack", ack
        msg = await sub.recv()
        assert (msg["type"], msg["data"]) == ("event", {"n": 1}), msg
        # ... and over https, several events in one go arriving in order,
        # some larger than a TLS record (16 KiB).
        big = "x" * 40000
        for n in range(2, 6):
            status, body = await asyncio.to_thread(
                server.request, "/api/publish",
                {"channel": ch, "event": "m", "data": {"n": n, "pad": big if n % 2 else ""}})
            assert status == 200, body
        for n in range(2, 6):
            msg = await sub.recv()
            assert msg["data"]["n"] == n and len(msg["data"]["pad"]) == (40000 if n % 2 else 0)
        status, body = await asyncio.to_thread(server.get, f"/api/channels/{ch}/history?after=0&limit=100")
        assert status == 200, body
        assert [e["data"]["n"] for e in body["events"]] == [1, 2, 3, 4, 5]
        # Health over https, static-free: the HTTP phase and the WebSocket
        # phase share a port.
        assert (await asyncio.to_thread(server.get, "/healthz"))[0] == 200
        await sub.close()
        await pub.close()
        server.stop_checked()


def test_plaintext_client_on_tls_port_gets_nothing_and_server_survives(pki):
    with TlsServer(pki) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            got = b""
            try:
                while chunk := s.recv(4096):
                    got += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        assert b"HTTP/1.1" not in got and b"status" not in got, got
        # A plain ws:// upgrade attempt does no better.
        with pytest.raises(Exception):
            asyncio.run(websockets.connect(f"ws://127.0.0.1:{server.port}/ws",
                                           open_timeout=5).__aenter__())
        assert server.get("/healthz") == (200, {"status": "ok"})
        server.stop_checked()


def test_frames_sent_with_the_upgrade_in_one_record_are_all_served(pki):
    """The upgrade request and a dozen frames in one TLS record: Beast reads
    part of it (the request and some frames: the early bytes), the rest
    stays decrypted inside SSL where epoll cannot see it. Every frame must
    be served without the client sending anything more."""
    with TlsServer(pki) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=RECV_TIMEOUT)
        sock = server.ctx.wrap_socket(raw, server_hostname="localhost")
        ch = unique()
        commands = [{"type": "connect", "id": 1}, {"type": "subscribe", "channel": ch, "id": 2}]
        commands += [{"type": "publish", "channel": ch, "event": "e", "id": 3 + n,
                      "data": {"n": n, "pad": "p" * 1000}} for n in range(10)]
        key = base64.b64encode(b"0123456789abcdef").decode()
        request = (f"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
        data = request + b"".join(RawWS.frame(OP_TEXT, json.dumps(c).encode()) for c in commands)
        assert len(data) < 16384  # one record
        sock.sendall(data)
        ws = RawWS.__new__(RawWS)  # RawWS's frame reading, over the TLS socket
        ws.sock, ws.buf = sock, b""
        assert ws._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101")
        acks, events = [], []
        assert ws.read_json()["type"] == "connected"
        assert ws.read_json()["type"] == "subscribed"
        while len(acks) < 10 or len(events) < 10:
            msg = ws.read_json()
            (acks if msg["type"] == "ack" else events).append(msg)
        assert [a["id"] for a in acks] == list(range(3, 13))
        assert [e["data"]["n"] for e in events] == list(range(10))
        sock.close()
        server.stop_checked()


def tls_raw_ws(server: TlsServer, rcvbuf: int | None = None) -> RawWS:
    """RawWS's frame reading and writing over a TLS socket, upgraded by hand."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(RECV_TIMEOUT)
    raw.connect(("127.0.0.1", server.port))
    sock = server.ctx.wrap_socket(raw, server_hostname="localhost")
    key = base64.b64encode(b"fedcba9876543210").decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    ws = RawWS.__new__(RawWS)
    ws.sock, ws.buf = sock, b""
    assert ws._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101")
    return ws


def test_a_subscriber_that_stops_reading_gets_everything_once_it_reads_again(pki):
    """The server's socket buffer fills (SSL_write: WANT_WRITE, the sealed
    record kept for the retry, EPOLLOUT): once the client reads again every
    event arrives, in order, none twice or torn."""
    with TlsServer(pki) as server:
        ch = unique()
        ws = tls_raw_ws(server, rcvbuf=4096)
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        assert ws.read_json()["type"] == "connected"
        ws.send_text(json.dumps({"type": "subscribe", "channel": ch, "id": 2}))
        assert ws.read_json()["type"] == "subscribed"
        pad = "z" * 3000
        count = 600  # about 1.8 MB: well past the socket buffers, under 4 MiB queued
        for n in range(count):
            status, body = server.request("/api/publish", {"channel": ch, "event": "e",
                                                           "data": {"n": n, "pad": pad}})
            assert status == 200, body
        time.sleep(0.5)  # the server is blocked on this connection meanwhile
        for n in range(count):
            msg = ws.read_json()
            while msg["type"] == "ping":  # a slow run (valgrind) outlasts the ping interval
                msg = ws.read_json()
            assert msg["type"] == "event" and msg["data"]["n"] == n, (n, msg.get("data", {}).get("n"))
            assert msg["data"]["pad"] == pad
        assert server.get("/healthz")[0] == 200
        ws.sock.close()
        server.stop_checked()


def test_a_slow_consumer_over_tls_is_closed_with_4008_and_the_server_carries_on(pki):
    with TlsServer(pki) as server:
        ch = unique()
        ws = tls_raw_ws(server, rcvbuf=4096)
        ws.send_text(json.dumps({"type": "connect", "id": 1}))
        assert ws.read_json()["type"] == "connected"
        ws.send_text(json.dumps({"type": "subscribe", "channel": ch, "id": 2}))
        assert ws.read_json()["type"] == "subscribed"
        pad = "q" * 60000
        for n in range(120):  # about 7 MB, past max_outbound_bytes (4 MiB)
            assert server.request("/api/publish", {"channel": ch, "event": "e",
                                                   "data": {"n": n, "pad": pad}})[0] == 200
        # Reading now: some events, then the close frame with 4008.
        code = None
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                fin, op, payload = ws.read_frame()
            except (EOFError, ConnectionError, ssl.SSLError, OSError):
                break
            if op == 8:
                code = int.from_bytes(payload[:2], "big")
                break
        assert code == 4008, code
        assert server.get("/healthz")[0] == 200
        server.stop_checked()


def wait_for_log(server: HeraldServer, text: str, after: int, timeout: float = 10.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        log = server.log_text()[after:]
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the log\n{server.log_tail()}")


@runs_async
async def test_sighup_new_certificate_for_new_connections_old_ones_keep_working(pki):
    with TlsServer(pki, cert="first") as server:
        assert server.peer_cn() == "herald first"
        ch = unique()
        old = await subscribed(server, ch)
        server.use_pair("second")
        mark = len(server.log_text())
        server.signal(signal.SIGHUP)
        wait_for_log(server, "TLS certificate and key re-read", mark)
        assert await asyncio.to_thread(server.peer_cn) == "herald second"
        # The connection made with the first certificate still works both ways.
        new = await subscribed(server, ch)
        ack = await old.call({"type": "publish", "channel": ch, "event": "m", "data": 7})
        assert ack["type"] == "ack", ack
        for c in (old, new):
            msg = await c.recv()
            assert (msg["type"], msg["data"]) == ("event", 7), msg

        # A bad new pair (second's certificate, first's key) is refused: the
        # log names the files, and new connections still get "second".
        server.use_pair("second", key="first")
        mark = len(server.log_text())
        server.signal(signal.SIGHUP)
        log = wait_for_log(server, "reload refused", mark)
        assert "server.key" in log and "does not match the certificate" in log, log
        assert "BEGIN" not in log
        assert await asyncio.to_thread(server.peer_cn) == "herald second"
        ack = await new.call({"type": "publish", "channel": ch, "event": "m", "data": 8})
        assert ack["type"] == "ack", ack
        assert (await old.recv())["data"] == 8
        await old.close()
        await new.close()
        server.stop_checked()


def test_admin_reload_over_https_rereads_the_certificate(pki):
    with TlsServer(pki, cert="first") as server:
        assert server.peer_cn() == "herald first"
        server.use_pair("second")
        status, body = server.request("/api/admin/reload", {})
        assert status == 200 and body["ok"] is True, body
        assert "server.tls_cert_file" not in body["restart_required"], body
        assert server.peer_cn() == "herald second"
        server.stop_checked()


def test_a_client_that_never_finishes_the_handshake_is_dropped(pki):
    # handshake_timeout_ms bounds the TLS handshake like a slow request.
    server = TlsServer(pki)
    server.config_text += "[limits]\nhandshake_timeout_ms = 300\n"
    Path(server.config_path).write_text(server.config_text)
    with server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
            started = time.time()
            assert s.recv(100) == b""  # closed by the server
            assert time.time() - started < 5
        assert server.get("/healthz")[0] == 200
        server.stop_checked()


def start_error(config: str) -> tuple[int, str]:
    d = tempfile.mkdtemp(prefix="herald-tls-bad-")
    path = Path(d, "herald.toml")
    path.write_text(config)
    port = free_port()
    serve = subprocess.run([herald_bin(), "serve", "--config", str(path), "--listen",
                            f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30,
                           cwd=d, env=server_env(), stdin=subprocess.DEVNULL)
    check = subprocess.run([herald_bin(), "check-config", "--config", str(path)],
                           capture_output=True, text=True, timeout=30, cwd=d,
                           env=server_env(), stdin=subprocess.DEVNULL)
    assert check.returncode != 0 and serve.returncode != 0
    # Nothing listens: the refusal came before the port was bound.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    return serve.returncode, serve.stderr + serve.stdout + "\n" + check.stderr + check.stdout


@pytest.mark.parametrize("case", ["expired", "mismatched", "missing_cert", "missing_key",
                                  "not_pem"])
def test_bad_pair_refused_at_start_naming_the_file(pki, case):
    cert, key = pki / "first.crt", pki / "first.key"
    expect = []
    if case == "expired":
        cert, key = pki / "expired.crt", pki / "expired.key"
        expect = [str(cert), "the certificate expired on"]
    elif case == "mismatched":
        key = pki / "second.key"
        expect = [str(key), "does not match the certificate in", str(cert)]
    elif case == "missing_cert":
        cert = pki / "nope.crt"
        expect = [str(cert), "No such file"]
    elif case == "missing_key":
        key = pki / "nope.key"
        expect = [str(key), "No such file"]
    elif case == "not_pem":
        cert = pki / "ca.cnf"
        expect = [str(cert), "cannot load a PEM certificate"]
    _, out = start_error(toml_config(server={"tls_cert_file": str(cert),
                                             "tls_key_file": str(key)}))
    for text in expect:
        assert out.count(text) >= 2, (text, out)  # from serve and from check-config
    assert "BEGIN" not in out and "PRIVATE" not in out


@runs_async
async def test_listen_plain_beside_tls(pki):
    plain_port = free_port()
    with TlsServer(pki, extra={"listen_plain": f"127.0.0.1:{plain_port}"}) as server:
        ch = unique()
        sub = await subscribed(server, ch)
        # The plain listener: the same server over http:// and ws://.
        with urllib.request.urlopen(f"http://127.0.0.1:{plain_port}/healthz", timeout=10) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        ws = await websockets.connect(f"ws://127.0.0.1:{plain_port}/ws", ping_interval=None,
                                      open_timeout=RECV_TIMEOUT)
        plain = WSClient(ws)
        assert (await plain.call({"type": "connect"}))["type"] == "connected"
        ack = await plain.call({"type": "publish", "channel": ch, "event": "m", "data": "p"})
        assert ack["type"] == "ack", ack
        assert (await sub.recv())["data"] == "p"
        await plain.close()
        await sub.close()
        server.stop_checked()
