# The command-line client (`herald sub|pub|history|presence`, issue 17 item
# 2, docs/operations.md "Command-line client") against the real binary and a
# real server: pub then history shows the event; sub prints live events as
# JSON lines, flushed one by one, in order; sub --history / --from; sub
# across a server restart recovers exactly (no gap, no duplicate), and says
# on stderr when the server cannot recover; each exit code (1 refused with
# nothing stored, 2 bad input with nothing sent, 3 unreachable); secrets
# never printed. Runs on the redis engine too (HERALD_TEST_ENGINE=redis).
import asyncio
import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

import harness
from authkit import NO_AUTH_FAILURE_LIMIT, auth_key, login, new_secret, table, token
from harness import TEST_ENGINE, HeraldServer, free_port, herald_bin, runs_async, server_env, unique

CLI_TIMEOUT = 60  # generous: the ASan build is slow


def cli_env(server: HeraldServer | None, **extra) -> dict:
    env = {k: v for k, v in server_env().items()
           if k not in ("HERALD_URL", "HERALD_TOKEN", "HERALD_API_KEY")}
    if server is not None:
        env["HERALD_URL"] = server.http_url("")
    env.update(extra)
    return env


def cli(server, *args, input=None, **env):
    return subprocess.run([herald_bin(), *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          env=cli_env(server, **env))


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def history(server, channel, **args) -> list[dict]:
    extra = [a for k, v in args.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    r = cli(server, "history", channel, *extra)
    assert r.returncode == 0, r.stderr
    return lines(r.stdout)


def http_json(server, method, path, body=None, headers=None):
    req = urllib.request.Request(server.http_url(path), method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def publish(server, channel, data, event="msg", headers=None) -> int:
    status, body = http_json(server, "POST", "/api/publish",
                             {"channel": channel, "event": event, "data": data}, headers)
    assert status == 200, body
    return body["offset"]


class Sub:
    """A running `herald sub`; its stdout lines arrive in a queue."""

    def __init__(self, server, *args, **env):
        self.proc = subprocess.Popen([herald_bin(), "sub", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     env=cli_env(server, **env))
        self.queue: queue.Queue = queue.Queue()
        self.stderr = b""
        threading.Thread(target=self._read_out, daemon=True).start()
        self.err_reader = threading.Thread(target=self._read_err, daemon=True)
        self.err_reader.start()

    def _read_out(self):
        for line in self.proc.stdout:
            self.queue.put(line)
        self.queue.put(None)

    def _read_err(self):
        self.stderr = self.proc.stderr.read()

    def line(self, timeout=20.0) -> dict:
        raw = self.queue.get(timeout=timeout)
        assert raw is not None, f"sub exited: {self.wait()} {self.err()}"
        assert raw.endswith(b"\n")
        return json.loads(raw)

    def wait(self, timeout=CLI_TIMEOUT) -> int:
        code = self.proc.wait(timeout=timeout)
        self.err_reader.join(timeout=10)  # all of stderr read
        return code

    def err(self) -> str:
        return self.stderr.decode()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_subscribed(server, channel, n=1, timeout=20.0, headers=None):
    """Until the server lists `n` subscriptions to `channel` (GET /api/channels)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_json(server, "GET", f"/api/channels?prefix={channel}",
                                 headers=headers)
        if status == 200 and any(c["channel"] == channel and c["subscribers"] >= n
                                 for c in body["channels"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"{channel} has no {n} subscribers after {timeout}s")


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(table("[namespaces.room]", presence=True), name="cli").start()
    yield srv
    srv.stop_checked()


# -- pub and history ----------------------------------------------------------

def test_pub_prints_the_offset_and_history_shows_the_event(server):
    ch = unique("cli")
    data = '{"text":"h\\u00e9","n":1e400,"big":123456789012345678901234567890}'
    r = cli(server, "pub", ch, "chat.message", data)
    assert (r.returncode, r.stdout, r.stderr) == (0, "1\n", "")
    r = cli(server, "pub", ch, "chat.message", "-", input='[2]\n')
    assert (r.returncode, r.stdout) == (0, "2\n"), r.stderr
    r = cli(server, "history", ch)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    # data byte for byte, as the server relays it
    assert first.endswith(',"data":' + data + "}")
    events = lines(r.stdout)
    assert [(e["channel"], e["event"], e["offset"]) for e in events] == \
        [(ch, "chat.message", 1), (ch, "chat.message", 2)]
    assert events[1]["data"] == [2]
    assert len({e["epoch"] for e in events}) == 1 and events[0]["epoch"]
    assert all(isinstance(e["ts"], int) and "from" not in e for e in events)


def test_history_limit_since_reverse_and_paging(server):
    ch = unique("cli")
    for i in range(1, 8):
        publish(server, ch, i)
    assert [e["data"] for e in history(server, ch, limit=3)] == [5, 6, 7]
    assert [e["data"] for e in history(server, ch, limit=3, since=2)] == [3, 4, 5]
    r = cli(server, "history", ch, "--limit", "3", "--reverse")
    assert [e["data"] for e in lines(r.stdout)] == [7, 6, 5]
    assert history(server, unique("cli")) == []


def test_history_pages_past_the_servers_cap():
    with HeraldServer(table("[history]", max_request=3)) as srv:
        ch = unique("cli")
        for i in range(1, 11):
            publish(srv, ch, i)
        assert [e["offset"] for e in history(srv, ch, limit=8)] == list(range(3, 11))
        assert [e["offset"] for e in history(srv, ch, limit=100, since=1)] == list(range(2, 11))


# -- sub ----------------------------------------------------------------------

def test_sub_count_prints_live_events_in_order_one_line_at_a_time(server):
    ch = unique("cli")
    sub = Sub(server, ch, "--count", "20")
    try:
        wait_subscribed(server, ch)
        publish(server, ch, {"i": 0}, event="first")
        # The first line arrives while the process still runs: flushed per line.
        first = sub.line()
        assert sub.proc.poll() is None
        assert first["event"] == "first" and first["data"] == {"i": 0} and first["offset"] == 1
        assert list(first) == ["channel", "event", "offset", "epoch", "ts", "data"]
        for i in range(1, 20):
            publish(server, ch, {"i": i})
        got = [first] + [sub.line() for _ in range(19)]
        assert sub.wait() == 0, sub.err()
        assert [e["offset"] for e in got] == list(range(1, 21))
        assert [e["data"]["i"] for e in got] == list(range(20))
        assert sub.queue.get(timeout=5) is None  # nothing more
    finally:
        sub.kill()


def test_sub_several_channels_and_ephemeral(server):
    a, b = unique("cli"), unique("cli")
    sub = Sub(server, a, b, "--count", "3")
    try:
        wait_subscribed(server, a)
        wait_subscribed(server, b)
        publish(server, a, 1)
        publish(server, b, 2)
        status, _ = http_json(server, "POST", "/api/publish",
                              {"channel": a, "event": "typing", "data": True, "ephemeral": True})
        assert status == 200
        got = [sub.line() for _ in range(3)]
        assert sub.wait() == 0, sub.err()
        assert [(e["channel"], e["data"]) for e in got] == [(a, 1), (b, 2), (a, True)]
        assert "offset" not in got[2]
    finally:
        sub.kill()


def test_sub_history_and_from(server):
    ch = unique("cli")
    for i in range(1, 6):
        publish(server, ch, i)
    r = cli(server, "sub", ch, "--history", "3", "--count", "3")
    assert r.returncode == 0, r.stderr
    events = lines(r.stdout)
    assert [e["offset"] for e in events] == [3, 4, 5]
    r = cli(server, "sub", ch, "--from", "2", "--count", "3")
    assert r.returncode == 0, r.stderr
    assert [e["offset"] for e in lines(r.stdout)] == [3, 4, 5]
    r = cli(server, "sub", ch, "--from", f"{events[0]['epoch']}:3", "--count", "2")
    assert r.returncode == 0, r.stderr
    assert [e["offset"] for e in lines(r.stdout)] == [4, 5]
    # then live events follow the recovered ones
    sub = Sub(server, ch, "--from", "4", "--count", "3")
    try:
        assert sub.line()["offset"] == 5
        wait_subscribed(server, ch)
        publish(server, ch, 6)
        publish(server, ch, 7)
        assert [sub.line()["offset"], sub.line()["offset"]] == [6, 7]
        assert sub.wait() == 0
    finally:
        sub.kill()


def test_sub_stops_on_sigint_with_exit_0(server):
    ch = unique("cli")
    sub = Sub(server, ch)
    try:
        wait_subscribed(server, ch)
        sub.proc.send_signal(signal.SIGINT)
        assert sub.wait(timeout=10) == 0, sub.err()
    finally:
        sub.kill()


def test_sub_timeout(server):
    ch = unique("cli")
    publish(server, ch, 1)
    started = time.monotonic()
    r = cli(server, "sub", ch, "--history", "1", "--count", "2", "--timeout-ms", "700")
    assert r.returncode == 3 and "timed out" in r.stderr and "1 of 2" in r.stderr
    assert lines(r.stdout)[0]["data"] == 1
    assert time.monotonic() - started < 10
    # without --count the timeout is the end of a normal run
    r = cli(server, "sub", ch, "--timeout-ms", "1500")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr


def restartable_config(tmp_path) -> str:
    """A server whose history survives a restart: sqlite on a data dir, or
    the suite's redis (an [engine] table would keep it from redis)."""
    if TEST_ENGINE == "redis":
        return ""
    return f'[engine]\ntype = "sqlite"\ndata_dir = "{tmp_path}"\n'


def restart_on_same_port(srv: HeraldServer, monkeypatch) -> None:
    port = srv.port
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(15) == 0
    monkeypatch.setattr(harness, "free_port", lambda: port)
    srv.start()


def test_sub_recovers_across_a_server_restart_exactly(tmp_path, monkeypatch):
    srv = HeraldServer(restartable_config(tmp_path), name="cli-restart").start()
    sub = None
    try:
        ch = unique("cli")
        sub = Sub(srv, ch, "--count", "12")
        wait_subscribed(srv, ch)
        for i in range(1, 5):
            publish(srv, ch, i)
        assert [sub.line()["data"] for _ in range(4)] == [1, 2, 3, 4]
        restart_on_same_port(srv, monkeypatch)
        # Published while the subscriber is away (it waits its backoff)...
        for i in range(5, 9):
            publish(srv, ch, i)
        got = [sub.line(timeout=30) for _ in range(4)]
        # ...and after it is back.
        wait_subscribed(srv, ch)
        for i in range(9, 13):
            publish(srv, ch, i)
        got += [sub.line() for _ in range(4)]
        assert sub.wait() == 0, sub.err()
        assert [e["data"] for e in got] == list(range(5, 13))
        assert [e["offset"] for e in got] == list(range(5, 13))
        assert "reconnecting" in sub.err() and "cannot recover" not in sub.err()
    finally:
        if sub:
            sub.kill()
        srv.stop_checked()


def test_sub_says_when_the_server_cannot_recover(monkeypatch):
    # The memory engine starts a new epoch at every start: nothing to recover.
    srv = HeraldServer('[engine]\ntype = "memory"\n', name="cli-epoch").start()
    sub = None
    try:
        ch = unique("cli")
        sub = Sub(srv, ch, "--count", "2")
        wait_subscribed(srv, ch)
        publish(srv, ch, "old")
        assert sub.line()["data"] == "old"
        restart_on_same_port(srv, monkeypatch)
        wait_subscribed(srv, ch)
        publish(srv, ch, "new")
        new = sub.line()
        assert sub.wait() == 0
        assert (new["data"], new["offset"]) == ("new", 1)
        assert "cannot recover " + ch in sub.err()
    finally:
        if sub:
            sub.kill()
        srv.stop_checked()


# -- presence -----------------------------------------------------------------

@runs_async
async def test_presence_lists_the_members(server):
    ch = "room:" + unique("p")
    c = await login(server)
    reply = await c.call({"type": "subscribe", "channel": ch})
    assert reply["type"] == "subscribed"
    r = await asyncio.to_thread(cli, server, "presence", ch)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"channel": ch, "members": [{"client": c.client_id}],
                                    "complete": True}
    r = await asyncio.to_thread(cli, server, "presence", ch, "--stats")
    assert json.loads(r.stdout) == {"channel": ch, "clients": 1, "users": 0}
    # presence is off on other namespaces: refused, exit 1
    r = await asyncio.to_thread(cli, server, "presence", unique("cli"))
    assert r.returncode == 1 and "presence refused: forbidden: " in r.stderr
    await c.close()


# -- exit codes ---------------------------------------------------------------

def test_data_that_is_not_json_is_exit_2_and_nothing_is_stored(server):
    ch = unique("cli")
    for bad in ["{", "hello", "{'a': 1}", "[1,]", "NaN", "", '1,"ephemeral":true', "1]"]:
        r = cli(server, "pub", ch, "e", bad)
        assert r.returncode == 2, (bad, r.stderr)
        assert r.stderr == "herald: DATA is not valid JSON (nothing was sent)\n"
        assert r.stdout == ""
    r = cli(server, "pub", ch, "bad event", "1")
    assert r.returncode == 2 and "event: invalid character ' '" in r.stderr
    r = cli(server, "pub", "bad channel", "e", "1")
    assert r.returncode == 2 and "channel: invalid character ' '" in r.stderr
    assert history(server, ch) == []


def test_usage_errors_are_exit_2(server):
    assert cli(server, "sub").returncode == 2
    assert cli(server, "sub", "a", "--history", "1", "--from", "3").returncode == 2
    assert cli(server, "sub", "a", "--from", "x").returncode == 2
    assert cli(server, "sub", "a", "a").returncode == 2
    assert cli(server, "pub", "a", "e").returncode == 2
    assert cli(server, "history", "a", "--url", "ftp://x").returncode == 2
    assert cli(server, "history", "a", "--limit", "-1").returncode == 2
    # --url wins over HERALD_URL (which cli() sets to the server)
    assert cli(server, "history", "a", "--url", f"http://127.0.0.1:{free_port()}").returncode == 3


def test_unreachable_server_is_exit_3():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["pub", "a", "e", "1"], ["history", "a"], ["presence", "a"], ["sub", "a"]):
        r = cli(None, *args, "--url", url)
        assert r.returncode == 3, (args, r.stderr)
        assert "cannot connect" in r.stderr, r.stderr
    r = cli(None, "pub", "a", "e", "1", "--token", "t0ken", HERALD_URL=url)
    assert r.returncode == 3 and "t0ken" not in r.stderr


SECRET = new_secret()


@pytest.fixture(scope="module")
def auth_server():
    config = (auth_key("app", ["HS256"], secret=SECRET) + NO_AUTH_FAILURE_LIMIT
              + table("[[api.keys]]", name="pub", key="right-key-0123456789abcdef", scopes=["publish", "history", "admin"])
              + table("[namespaces.chat]", anonymous=False)
              + table("[namespaces.feed]", publish_access="none"))
    srv = HeraldServer(config, name="cli-auth").start()
    yield srv
    srv.stop_checked()


def test_refused_publish_is_exit_1_and_nothing_is_stored(auth_server):
    ch = "chat:" + unique("x")
    r = cli(auth_server, "pub", ch, "e", "1", "--api-key", "wrong-key-0123456789abcdef")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("herald: publish refused: unauthorized: "), r.stderr
    assert "wrong-key-0123456789abcdef" not in r.stderr
    r = cli(auth_server, "history", ch, HERALD_API_KEY="right-key-0123456789abcdef")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    r = cli(auth_server, "pub", ch, "e", "1", HERALD_API_KEY="right-key-0123456789abcdef")
    assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr


def test_token_over_the_websocket_and_never_printed(auth_server):
    tok = token(SECRET, sub="ana")
    ch = "chat:" + unique("x")
    sub = Sub(auth_server, ch, "--count", "2", HERALD_TOKEN=tok)
    try:
        wait_subscribed(auth_server, ch, headers={"X-API-Key": "right-key-0123456789abcdef"})
        # only a token: pub goes over the WebSocket, as ana
        r = cli(auth_server, "pub", ch, "e", '{"a":1}', "--token", tok)
        assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr
        r = cli(auth_server, "pub", ch, "e", "2", HERALD_API_KEY="right-key-0123456789abcdef")
        assert r.returncode == 0, r.stderr
        got = [sub.line(), sub.line()]
        assert sub.wait() == 0
        assert got[0]["from"]["user"] == "ana" and "from" not in got[1]
        assert tok not in sub.err()
        r = cli(auth_server, "history", ch, "--token", tok)
        assert r.returncode == 0 and len(lines(r.stdout)) == 2
        assert tok not in r.stdout + r.stderr
    finally:
        sub.kill()
    # publish_access = "none": the WebSocket publish is refused, nothing stored
    feed = "feed:" + unique("x")
    r = cli(auth_server, "pub", feed, "e", "1", "--token", tok)
    assert r.returncode == 1 and "publish refused: forbidden: " in r.stderr
    assert tok not in r.stdout + r.stderr
    r = cli(auth_server, "history", feed, "--api-key", "right-key-0123456789abcdef")
    assert (r.returncode, r.stdout) == (0, "")
    # a refused token: exit 1, with the server's code, and the token unprinted
    bad = token(SECRET, sub="ana", ttl=-60)
    for args in (["sub", ch], ["pub", ch, "e", "1"], ["history", ch]):
        r = cli(auth_server, *args, "--token", bad)
        assert r.returncode == 1, (args, r.stderr)
        assert "connect refused: unauthorized: " in r.stderr
        assert bad not in r.stdout + r.stderr
    # anonymous on a namespace that needs a user: the subscribe is refused
    r = cli(auth_server, "sub", "chat:" + unique("y"))
    assert r.returncode == 1 and "refused: unauthorized: " in r.stderr


def test_sub_does_not_reconnect_after_an_admin_disconnect(auth_server):
    # 4003 means "do not reconnect on your own": exit 1 with the close code.
    tok = token(SECRET, sub="bob")
    ch = "chat:" + unique("x")
    admin = {"X-API-Key": "right-key-0123456789abcdef"}
    sub = Sub(auth_server, ch, HERALD_TOKEN=tok)
    try:
        wait_subscribed(auth_server, ch, headers=admin)
        status, body = http_json(auth_server, "POST", "/api/disconnect",
                                 {"user": "bob", "reason": "bye"}, admin)
        assert (status, body) == (200, {"disconnected": 1})
        assert sub.wait(timeout=20) == 1
        assert "closed by the server (4003 bye)" in sub.err()
        assert "reconnecting" not in sub.err() and tok not in sub.err()
    finally:
        sub.kill()


def test_ws_path():
    with HeraldServer(table("[server]", ws_path="/socket")) as srv:
        ch = unique("cli")
        publish(srv, ch, 1)
        r = cli(srv, "sub", ch, "--history", "1", "--count", "1", "--ws-path", "/socket")
        assert r.returncode == 0 and lines(r.stdout)[0]["data"] == 1, r.stderr
        r = cli(srv, "sub", ch, "--count", "1")  # /ws: no WebSocket there
        assert r.returncode == 3 and "cannot connect to ws://" in r.stderr


class TlsProxy:
    """A TLS-terminating TCP forwarder to `port` on 127.0.0.1, as a reverse
    proxy in front of Herald would be."""

    def __init__(self, port: int, cert, key):
        self.target = port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            front = self.ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        back = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=self._pump, args=(back, front), daemon=True).start()
        self._pump(front, back)

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()


def test_https_and_wss_through_a_tls_proxy(server, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    proxy = TlsProxy(server.port, cert, key)
    try:
        url = f"https://127.0.0.1:{proxy.port}"
        ch = unique("cli")
        r = cli(server, "pub", ch, "e", '"tls"', "--url", url, "--ca-file", str(cert))
        assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr
        r = cli(server, "sub", ch, "--history", "1", "--count", "1", "--url", url,
                "--ca-file", str(cert))
        assert r.returncode == 0, r.stderr
        assert lines(r.stdout)[0]["data"] == "tls"
        # The system's CAs do not trust the certificate; nor does it name localhost.
        for args in (["--url", url], ["--url", f"https://localhost:{proxy.port}",
                                      "--ca-file", str(cert)]):
            for command in (["pub", ch, "e", "1"], ["sub", ch]):
                r = cli(server, *command, *args)
                assert r.returncode == 3 and "TLS handshake" in r.stderr, (args, r.stderr)
        assert len(history(server, ch)) == 1
    finally:
        proxy.close()
