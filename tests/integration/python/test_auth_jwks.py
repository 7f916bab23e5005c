# Keys from a JWK Set over HTTP (auth.jwks_url, docs/config.md) against a
# real herald server: the set is served by a local http.server thread of
# this test; tokens of its keys are accepted, keys marked use "enc" are not;
# key rotation (a token with a new kid that appears in the served set is
# accepted: refetch on an unknown kid), the refetch is limited by
# jwks_min_refetch_ms, the periodic refresh (jwks_refresh_ms) drops keys
# removed from the set, and after the JWKS server stops the last good set
# keeps working.
import asyncio
import base64
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from authkit import (NO_AUTH_FAILURE_LIMIT, auth_key, confused_token, connect, expect_refused,
                     jwk_of, login, new_secret, next_event, publish, rsa_key, subscribe, table,
                     token)
from harness import HeraldServer, runs_async, unique


class JwksServer:
    """Serves {"keys": [...]} at /jwks.json on 127.0.0.1 from a thread;
    counts the requests. set_keys() changes what the next request gets."""

    def __init__(self):
        self.keys: list[dict] = []
        self.body: bytes | None = None  # served instead of the set when not None
        self.requests = 0
        self.lock = threading.Lock()
        self.httpd = None
        self.port = 0

    def set_keys(self, keys: list[dict]) -> None:
        with self.lock:
            self.keys = list(keys)

    def count(self) -> int:
        with self.lock:
            return self.requests

    def start(self, port: int = 0) -> "JwksServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.requests += 1
                    body = outer.body if outer.body is not None else \
                        json.dumps({"keys": outer.keys}).encode()
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"


def herald_for(jwks: JwksServer, name: str, refresh_ms: int, min_refetch_ms: int) -> HeraldServer:
    return HeraldServer(
        "[engine]\ntype = \"memory\"\n\n"
        + table("[auth]", jwks_url=jwks.url, jwks_refresh_ms=refresh_ms,
                jwks_min_refetch_ms=min_refetch_ms, jwks_timeout_ms=2000)
        + NO_AUTH_FAILURE_LIMIT
        + table("[namespaces.room]"),
        name=name, workers=2)


class Keys:
    def __init__(self):
        self.k1 = rsa_key()
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.enc = rsa_key()
        self.k2 = rsa_key()
        self.private_key = rsa_key()
        self.oct_secret = os.urandom(32)

    def initial(self) -> list[dict]:
        enc = jwk_of(self.enc, "enc-1", "RS256")
        enc["use"] = "enc"
        # A private JWK (with "d") and a symmetric one: both must be skipped.
        from jwt.algorithms import RSAAlgorithm
        private = json.loads(RSAAlgorithm.to_jwk(self.private_key))
        private.update({"kid": "private-1", "alg": "RS256"})
        oct_ = {"kty": "oct", "kid": "oct-1", "alg": "HS256",
                "k": base64.urlsafe_b64encode(self.oct_secret).rstrip(b"=").decode()}
        return [jwk_of(self.k1, "k1", "RS256"), jwk_of(self.ec, "ec1", "ES256"), enc,
                private, oct_]


@pytest.fixture(scope="module")
def keys():
    return Keys()


@pytest.fixture(scope="module")
def rotating(keys):
    """Herald with refetch on every unknown kid (min_refetch 0) and a long
    refresh period, and its JWKS server."""
    jwks = JwksServer()
    jwks.set_keys(keys.initial())
    jwks.start()
    srv = herald_for(jwks, "auth-jwks", refresh_ms=600000, min_refetch_ms=0)
    try:
        srv.start()
        yield srv, jwks
        srv.stop_checked()
    finally:
        jwks.stop()


def pem_of(key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def rs(key, kid, sub="ana", **claims):
    return token(key, "RS256", kid=kid, sub=sub, **claims)


@runs_async
async def test_jwks_keys_verify_tokens(rotating, keys):
    srv, jwks = rotating
    assert jwks.count() >= 1  # fetched at start
    ch = unique("room:j")
    c = await login(srv, rs(keys.k1, "k1"))
    assert c.user == "ana"
    assert (await subscribe(c, ch))["type"] == "subscribed"
    assert (await publish(c, ch, 1))["type"] == "ack"
    assert (await next_event(c, ch))["from"]["user"] == "ana"
    c = await login(srv, token(keys.ec, "ES256", kid="ec1", sub="eve"))
    assert c.user == "eve"
    # A key marked use "enc", a private JWK, a symmetric JWK, a key impostor
    # under a known kid, an HS256 token, an HS256 token whose secret is the
    # RSA key's PEM (algorithm confusion): refused.
    for bad in (rs(keys.enc, "enc-1"), rs(keys.private_key, "private-1"),
                token(keys.oct_secret, "HS256", kid="oct-1", sub="ana"),
                rs(rsa_key(), "k1"), token("x" * 40, "HS256", kid="k1", sub="ana"),
                confused_token(pem_of(keys.k1), kid="k1")):
        c, reply = await connect(srv, bad)
        await expect_refused(c, reply)


@runs_async
async def test_rotation_new_kid_is_fetched(rotating, keys):
    srv, jwks = rotating
    k_new = rsa_key()
    kid = unique("k")
    before = jwks.count()
    jwks.set_keys(keys.initial() + [jwk_of(k_new, kid, "RS256")])
    c = await login(srv, rs(k_new, kid, sub="rotated"))
    assert c.user == "rotated"
    assert jwks.count() > before, "the unknown kid did not make herald fetch the set again"
    # The old keys still work with the new set.
    await login(srv, rs(keys.k1, "k1"))
    # A kid that is in no set is refused (after a refetch).
    c, reply = await connect(srv, rs(rsa_key(), unique("nowhere")))
    await expect_refused(c, reply)


@runs_async
async def test_last_good_set_stays_when_the_jwks_server_is_gone(rotating, keys):
    srv, jwks = rotating
    k_late = rsa_key()
    kid = unique("late")
    jwks.set_keys(keys.initial() + [jwk_of(k_late, kid, "RS256")])
    await login(srv, rs(k_late, kid))  # fetched now
    # A set that does not parse, then an HTTP error: the last good set stays.
    for body in (b"{not json", b'{"keys": "none"}'):
        jwks.body = body
        before = jwks.count()
        c, reply = await connect(srv, rs(rsa_key(), unique("broken")))
        await expect_refused(c, reply)
        assert jwks.count() > before
        await login(srv, rs(keys.k1, "k1"))
    jwks.body = None
    port = jwks.port
    jwks.stop()
    try:
        # A token of an unknown kid makes herald try to fetch and fail...
        c, reply = await connect(srv, rs(rsa_key(), unique("gone")))
        await expect_refused(c, reply)
        # ... and the keys it had keep working.
        for key, kid_ in ((keys.k1, "k1"), (k_late, kid)):
            c = await login(srv, rs(key, kid_, sub="still"))
            assert c.user == "still"
    finally:
        jwks.start(port)


@runs_async
async def test_refetch_on_unknown_kid_is_rate_limited(keys):
    jwks = JwksServer()
    jwks.set_keys(keys.initial())
    jwks.start()
    srv = herald_for(jwks, "auth-jwks-min-refetch", refresh_ms=600000, min_refetch_ms=60000)
    try:
        srv.start()
        await login(srv, rs(keys.k1, "k1"))
        k2, k3 = rsa_key(), rsa_key()
        jwks.set_keys(keys.initial() + [jwk_of(k2, "k2", "RS256")])
        c, first = await connect(srv, rs(k2, "k2"))
        jwks.set_keys(keys.initial() + [jwk_of(k2, "k2", "RS256"), jwk_of(k3, "k3", "RS256")])
        c, second = await connect(srv, rs(k3, "k3"))
        # At most one refetch within jwks_min_refetch_ms (the start-up fetch
        # plus one).
        assert jwks.count() <= 2, jwks.count()
        assert not (first["type"] == "connected" and second["type"] == "connected"), \
            (first, second)
        if second["type"] != "connected":
            await expect_refused(c, second)
        await asyncio.to_thread(srv.stop_checked)  # the loop keeps answering closes
    finally:
        srv.kill()
        jwks.stop()


@runs_async
async def test_periodic_refresh_drops_removed_keys(keys):
    jwks = JwksServer()
    k_old = rsa_key()
    jwks.set_keys(keys.initial() + [jwk_of(k_old, "old", "RS256")])
    jwks.start()
    srv = herald_for(jwks, "auth-jwks-refresh", refresh_ms=1000, min_refetch_ms=60000)
    try:
        srv.start()
        await login(srv, rs(k_old, "old"))
        jwks.set_keys(keys.initial())
        start = jwks.count()
        deadline = time.monotonic() + 5
        while jwks.count() < start + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert jwks.count() > start, "no refresh within 5 s (jwks_refresh_ms = 1000)"
        # Once the fetched set is installed (bounded wait), the removed key
        # verifies no new token.
        deadline = time.monotonic() + 3
        while True:
            c, reply = await connect(srv, rs(k_old, "old"))
            if reply["type"] != "connected":
                break
            assert time.monotonic() < deadline, "the removed key still verifies new tokens"
            await c.close()
            await asyncio.sleep(0.05)
        await expect_refused(c, reply)
        await login(srv, rs(keys.k1, "k1"))
        await asyncio.to_thread(srv.stop_checked)  # the loop keeps answering closes
    finally:
        srv.kill()
        jwks.stop()


@runs_async
async def test_rotation_works_beside_a_static_key_without_kid(keys):
    jwks = JwksServer()
    jwks.set_keys(keys.initial())
    jwks.start()
    secret = new_secret()
    srv = HeraldServer(
        "[engine]\ntype = \"memory\"\n\n"
        + auth_key("app", ["HS256"], secret=secret)
        + table("[auth]", jwks_url=jwks.url, jwks_refresh_ms=600000, jwks_min_refetch_ms=0,
                jwks_timeout_ms=2000)
        + NO_AUTH_FAILURE_LIMIT,
        name="auth-jwks-and-static", workers=2)
    try:
        srv.start()
        await login(srv, token(secret, "HS256", sub="static"))
        await login(srv, rs(keys.k1, "k1"))
        k_new = rsa_key()
        jwks.set_keys(keys.initial() + [jwk_of(k_new, "rotated", "RS256")])
        before = jwks.count()
        c, reply = await connect(srv, rs(k_new, "rotated", sub="rotated"))
        assert jwks.count() > before, f"no refetch for the unknown kid; got {reply}"
        assert reply["type"] == "connected" and reply["user"] == "rotated", reply
        await asyncio.to_thread(srv.stop_checked)  # the loop keeps answering closes
    finally:
        srv.kill()
        jwks.stop()
