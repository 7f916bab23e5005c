# rediss:// (issue 13 item 1): the redis engine over TLS, against a real
# redis-server that only listens for TLS (--port 0 --tls-port P), with a CA
# and certificates the test makes with the openssl command line. What must
# hold: everything the engine does (publish, live delivery, history, another
# node's events through pub/sub) works over TLS, also after Redis restarts
# (a new TLS session per connection); a server certificate that does not
# verify (unknown CA, wrong name) or a missing client certificate that
# Redis requires stops Herald at start, with a message saying why, and
# before anything reaches Redis; bad files are named, their contents never
# shown.
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import (SANITIZER_MARKERS, HeraldServer, WSClient, herald_bin, http_publish,
                     runs_async, server_env, toml_config, unique)
from redis_kit import RedisServer, free_port
from test_redis_nodes import history, start_nodes, stop_nodes


def openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_ca(d: str, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN=herald test {name}", cwd=d)


def make_cert(d: str, name: str, ca: str, ext: str) -> None:
    """`name`.crt and `name`.key, signed by `ca`, with the extensions `ext`."""
    Path(d, f"{name}.ext").write_text(ext + "\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=herald test {name}",
            cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)


@pytest.fixture(scope="module")
def pki():
    """A temp dir with ca.crt (signs server.crt, for IP:127.0.0.1 and
    DNS:localhost, and client.crt) and other-ca.crt (signs nothing we use)."""
    d = tempfile.mkdtemp(prefix="herald-tls-")
    try:
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        make_cert(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        make_cert(d, "client", "ca", "extendedKeyUsage=clientAuth")
        yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


class TlsRedis(RedisServer):
    """redis-server listening for TLS only, on 127.0.0.1:`port` (RedisServer's
    log() and stop(); its own start-up, checked with redis-cli over TLS)."""

    def __init__(self, pki: Path, auth_clients: bool = False, port: int | None = None):
        self.pki = pki
        self.auth_clients = auth_clients
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="herald-redis-tls-")
        self.start()

    def start(self) -> None:
        args = ["redis-server", "--port", "0", "--tls-port", str(self.port),
                "--bind", "127.0.0.1", "--dir", self.dir, "--save", "", "--appendonly", "no",
                "--logfile", os.path.join(self.dir, "redis.log"),
                "--tls-cert-file", str(self.pki / "server.crt"),
                "--tls-key-file", str(self.pki / "server.key"),
                "--tls-ca-cert-file", str(self.pki / "ca.crt"),
                "--tls-auth-clients", "yes" if self.auth_clients else "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while self.cli("PING") != "PONG":
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server (TLS) did not start: " + self.log())
            time.sleep(0.05)

    def cli(self, *command: str) -> str:
        """One command through redis-cli over TLS (with the client certificate)."""
        r = subprocess.run(["redis-cli", "--tls", "--cacert", str(self.pki / "ca.crt"),
                            "--cert", str(self.pki / "client.crt"),
                            "--key", str(self.pki / "client.key"),
                            "-h", "127.0.0.1", "-p", str(self.port), *command],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip()

    def herald_keys(self) -> list[str]:
        return [k for k in self.cli("--scan", "--pattern", "herald*").splitlines() if k]



@pytest.fixture
def tls_redis(pki):
    r = TlsRedis(pki)
    try:
        yield r
    finally:
        r.stop()


def tls_config(port: int, **engine) -> str:
    return toml_config(
        engine={"type": "redis", "redis_url": f"rediss://127.0.0.1:{port}",
                "redis_command_timeout_ms": 1000, "redis_reconnect_max_ms": 200,
                "redis_connect_timeout_ms": 2000, **engine},
        history={"size": 1000},
        defaults={"allow_unknown": True},
    )


def start_fails(config: str) -> tuple[int, str]:
    """Runs `herald serve` with `config`, which must stop it during start-up;
    returns its exit code and output (free of sanitizer reports)."""
    d = tempfile.mkdtemp(prefix="herald-it-")
    try:
        path = os.path.join(d, "herald.toml")
        Path(path).write_text(config)
        r = subprocess.run([herald_bin(), "serve", "--listen", f"127.0.0.1:{free_port()}",
                            "--workers", "1", "--config", path],
                           capture_output=True, text=True, timeout=30, cwd=d, env=server_env())
        out = r.stdout + r.stderr
        assert not any(m in out for m in SANITIZER_MARKERS), out
        return r.returncode, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def publish_until_ok(node: HeraldServer, channel: str, data, timeout: float = 15.0) -> dict:
    """An HTTP publish, retried while the node answers 503 (its Redis
    connection is still coming back)."""
    deadline = time.time() + timeout
    while True:
        status, body = http_publish(node, channel, data)
        if status == 200:
            return body
        assert status == 503 and time.time() < deadline, (status, body)
        time.sleep(0.1)


@runs_async
async def test_two_nodes_over_tls_deliver_store_and_survive_a_redis_restart(pki, tls_redis):
    # Node 0 checks the certificate for the URL's address (IP SAN), node 1
    # for a configured name (DNS SAN, sent as SNI).
    nodes = start_nodes(tls_redis.port, 1, "tls-a",
                        tls_config(tls_redis.port, redis_tls_ca_file=str(pki / "ca.crt")))
    nodes += start_nodes(tls_redis.port, 1, "tls-b",
                         tls_config(tls_redis.port, redis_tls_ca_file=str(pki / "ca.crt"),
                                    redis_tls_server_name="localhost"))
    try:
        ch = unique("room:tls")
        subs = []
        for node in nodes:
            sub, _ = await WSClient.connected(node)
            got = await sub.call({"type": "subscribe", "channel": ch})
            assert got["type"] == "subscribed", got
            subs.append(sub)

        # Published on node 0 over HTTP: stored in Redis over TLS, and node 1
        # gets it through its pub/sub connection, over TLS too.
        for i in range(3):
            status, body = http_publish(nodes[0], ch, {"i": i})
            assert status == 200 and body["offset"] == i + 1, body
        for sub in subs:
            live = [await sub.recv() for _ in range(3)]
            assert [(m["type"], m["offset"], m["data"]) for m in live] == \
                [("event", i + 1, {"i": i}) for i in range(3)], live
        for node in nodes:
            assert [(e["offset"], e["data"]) for e in history(node, ch)] == \
                [(i + 1, {"i": i}) for i in range(3)]
        assert any(k.startswith("herald:{" + ch + "}") for k in tls_redis.herald_keys())
        for sub in subs:
            await sub.close()

        # Redis restarts (empty: no persistence): each link makes a new TLS
        # connection; a publish on node 1 reaches a subscriber on node 0.
        tls_redis.kill()
        tls_redis.start()
        ch2 = unique("room:tls2")
        sub, _ = await WSClient.connected(nodes[0])
        deadline = time.time() + 15
        while True:
            got = await sub.call({"type": "subscribe", "channel": ch2})
            if got["type"] == "subscribed":
                break
            assert got.get("code") == "unavailable" and time.time() < deadline, got
            await asyncio.sleep(0.1)
        body = publish_until_ok(nodes[1], ch2, "after restart")
        assert body["offset"] == 1, body
        msg = await sub.recv(timeout=15)
        assert (msg["type"], msg["offset"], msg["data"]) == ("event", 1, "after restart"), msg
        assert [e["data"] for e in history(nodes[0], ch2)] == ["after restart"]
        await sub.close()
    finally:
        stop_nodes(nodes)


def test_a_certificate_from_another_ca_stops_start_up_before_anything_is_sent(pki, tls_redis):
    code, out = start_fails(tls_config(tls_redis.port,
                                       redis_tls_ca_file=str(pki / "other-ca.crt")))
    assert code != 0, out
    assert "certificate verification failed" in out, out
    assert f"127.0.0.1:{tls_redis.port}" in out, out
    assert tls_redis.herald_keys() == []


def test_a_server_name_the_certificate_lacks_stops_start_up(pki, tls_redis):
    code, out = start_fails(tls_config(tls_redis.port, redis_tls_ca_file=str(pki / "ca.crt"),
                                       redis_tls_server_name="redis.example.com"))
    assert code != 0, out
    assert "certificate verification failed" in out and "hostname mismatch" in out, out
    assert tls_redis.herald_keys() == []


def test_the_system_cas_do_not_trust_a_private_ca(tls_redis):
    # No redis_tls_ca_file: the system's CA store, which never signed our CA.
    code, out = start_fails(tls_config(tls_redis.port))
    assert code != 0, out
    assert "certificate verification failed" in out, out
    assert tls_redis.herald_keys() == []


@runs_async
async def test_a_client_certificate_when_redis_requires_one(pki):
    redis = TlsRedis(pki, auth_clients=True)
    try:
        # Without one: Redis ends the handshake; nothing is stored.
        code, out = start_fails(tls_config(redis.port, redis_tls_ca_file=str(pki / "ca.crt")))
        assert code != 0 and "certificate required" in out, out
        assert redis.herald_keys() == []

        # With one: everything works.
        srv = HeraldServer(tls_config(redis.port, redis_tls_ca_file=str(pki / "ca.crt"),
                                      redis_tls_cert_file=str(pki / "client.crt"),
                                      redis_tls_key_file=str(pki / "client.key")),
                           name="tls-client-cert").start()
        try:
            ch = unique("room:cc")
            sub, _ = await WSClient.connected(srv)
            assert (await sub.call({"type": "subscribe", "channel": ch}))["type"] == "subscribed"
            status, body = http_publish(srv, ch, "hello")
            assert status == 200 and body["offset"] == 1, body
            msg = await sub.recv()
            assert (msg["offset"], msg["data"]) == (1, "hello"), msg
            assert [e["data"] for e in history(srv, ch)] == ["hello"]
            await sub.close()
        finally:
            srv.stop_checked()
    finally:
        redis.stop()


def test_bad_tls_files_are_named_and_their_contents_never_shown(pki, tls_redis):
    d = tempfile.mkdtemp(prefix="herald-tls-bad-")
    try:
        missing = os.path.join(d, "missing-ca.pem")
        code, out = start_fails(tls_config(tls_redis.port, redis_tls_ca_file=missing))
        assert code != 0 and missing in out, out

        # A key file that is not PEM: named, and what it holds is not echoed.
        junk = os.path.join(d, "junk.key")
        Path(junk).write_text("TOP-SECRET-NOT-A-KEY\n")
        code, out = start_fails(tls_config(tls_redis.port, redis_tls_ca_file=str(pki / "ca.crt"),
                                           redis_tls_cert_file=str(pki / "client.crt"),
                                           redis_tls_key_file=junk))
        assert code != 0 and junk in out, out
        assert "TOP-SECRET" not in out, out

        # A key that is not the certificate's.
        code, out = start_fails(tls_config(tls_redis.port, redis_tls_ca_file=str(pki / "ca.crt"),
                                           redis_tls_cert_file=str(pki / "client.crt"),
                                           redis_tls_key_file=str(pki / "server.key")))
        assert code != 0 and "does not match" in out and str(pki / "server.key") in out, out

        # A certificate without its key is a configuration error.
        code, out = start_fails(tls_config(tls_redis.port,
                                           redis_tls_cert_file=str(pki / "client.crt")))
        assert code != 0 and "redis_tls_key_file" in out, out
        assert tls_redis.herald_keys() == []
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tls_settings_with_a_plain_redis_url_are_refused(pki):
    config = tls_config(1, redis_tls_ca_file=str(pki / "ca.crt")).replace("rediss://", "redis://")
    code, out = start_fails(config)
    assert code != 0 and "engine.redis_tls_ca_file" in out and "rediss://" in out, out
