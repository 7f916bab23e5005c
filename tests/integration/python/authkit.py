# Helpers of the identity-and-access integration tests (test_auth*.py):
# signing keys generated per test module in a temp dir (python3-cryptography),
# tokens made by PyJWT only, the [[auth.keys]] TOML for those keys, plain
# HTTP calls with optional API-key headers, and the "nothing was delivered or
# stored" checks every refusal test ends with.
from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request

import jwt
from jwt.algorithms import HMACAlgorithm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from harness import RECV_TIMEOUT, Closed, HeraldServer, WSClient, assert_error


# -- keys -----------------------------------------------------------------------

def _pem_private(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _self_signed_cert(key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "herald-test-idp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class KeyDir:
    """A temp dir holding the public halves (PEM files) of freshly generated
    keys; the private keys stay in memory for signing."""

    def __init__(self, prefix: str = "herald-auth-keys-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.private: dict[str, object] = {}
        self.files: dict[str, str] = {}

    def write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def add_rsa(self, name: str, cert: bool = False):
        key = rsa_key()
        self.private[name] = key
        self.files[name] = self.write(f"{name}.pem",
                                      _self_signed_cert(key) if cert else _pem_public(key))
        return key

    def add_ec(self, name: str, curve, cert: bool = False):
        key = ec.generate_private_key(curve)
        self.private[name] = key
        self.files[name] = self.write(f"{name}.pem",
                                      _self_signed_cert(key) if cert else _pem_public(key))
        return key

    def add_ed25519(self, name: str):
        key = ed25519.Ed25519PrivateKey.generate()
        self.private[name] = key
        self.files[name] = self.write(f"{name}.pem", _pem_public(key))
        return key

    def public_pem(self, name: str) -> bytes:
        with open(self.files[name], "rb") as f:
            return f.read()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def new_secret() -> str:
    """An HMAC secret of 43 URL-safe characters (>= 32 bytes)."""
    return secrets.token_urlsafe(32)


def jwk_of(key, kid: str, alg: str) -> dict:
    """The public JWK of a private key, by PyJWT."""
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm
    pub = key.public_key()
    jwk = json.loads((RSAAlgorithm if alg[0] in "RP" else ECAlgorithm).to_jwk(pub))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


# -- tokens (PyJWT only) ----------------------------------------------------------

def now() -> int:
    return int(time.time())


def token(key, alg: str = "HS256", *, sub: str | None = "ana", ttl: int | None = 600,
          kid: str | None = None, **claims) -> str:
    """A JWT signed by PyJWT: `sub`, `iat`, `exp` = now + ttl (None: no exp),
    a random `jti` (so that no two tokens are equal and the server's token
    cache never stands in for a verification) and any other claims given (a
    claim given as None is left out)."""
    payload = {"iat": now(), "jti": os.urandom(8).hex()}
    if sub is not None:
        payload["sub"] = sub
    if ttl is not None:
        payload["exp"] = now() + ttl
    for k, v in claims.items():
        if v is None:
            payload.pop(k, None)
        else:
            payload[k] = v
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


class _LaxHMAC(HMACAlgorithm):
    """PyJWT's HMAC without its refusal of PEM public keys as secrets: how an
    attacker makes an algorithm-confusion token."""

    def prepare_key(self, key):
        return key if isinstance(key, bytes) else key.encode()


def confused_token(public_pem: bytes, kid: str | None = None, **claims) -> str:
    """HS256 token whose HMAC secret is the server's RSA public key PEM (with
    that key's kid in the header, when given)."""
    jws = jwt.PyJWS(algorithms=[])
    jws.register_algorithm("HS256", _LaxHMAC(HMACAlgorithm.SHA256))
    payload = {"sub": "ana", "iat": now(), "exp": now() + 600, **claims}
    return jws.encode(json.dumps(payload).encode(), public_pem, algorithm="HS256",
                      headers={"kid": kid} if kid else None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tampered(tok: str, **changes) -> str:
    """A PyJWT token whose payload was changed afterwards (signature kept)."""
    head, payload, sig = tok.split(".")
    claims = json.loads(_b64url_decode(payload))
    claims.update(changes)
    return ".".join([head, _b64url(json.dumps(claims).encode()), sig])


# -- TOML ------------------------------------------------------------------------

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


def table(header: str, **keys) -> str:
    lines = [header] + [f"{k} = {toml_value(v)}" for k, v in keys.items() if v is not None]
    return "\n".join(lines) + "\n\n"


def auth_key(name: str, algorithms: list[str], **keys) -> str:
    return table("[[auth.keys]]", name=name, algorithms=algorithms, **keys)


# No limit on refused tokens per IP: these suites refuse many tokens from
# 127.0.0.1 on purpose (test_auth_rate_limits.py tests this limit).
NO_AUTH_FAILURE_LIMIT = table("[rate_limits]", auth_failures_per_ip_per_minute=0)


# -- connecting -----------------------------------------------------------------

async def connect(server: HeraldServer, tok: str | None = None, **fields) -> tuple[WSClient, dict]:
    """Opens a connection and sends connect (with the token, if any); returns
    the client and the reply to the connect."""
    c = await WSClient.open(server)
    msg = {"type": "connect", **fields}
    if tok is not None:
        msg["token"] = tok
    reply = await c.call(msg)
    return c, reply


async def login(server: HeraldServer, tok: str | None = None) -> WSClient:
    """connect that must succeed."""
    c, reply = await connect(server, tok)
    assert reply["type"] == "connected", reply
    c.client_id = reply["client"]
    c.user = reply.get("user")
    return c


async def expect_refused(c: WSClient, reply: dict, code: int = 4001,
                         error: str = "unauthorized") -> dict:
    """The reply must be an error `error` with a reason, then the server must
    close with `code`."""
    assert_error(reply, error)
    assert reply["message"], reply
    closed = await c.expect_closed()
    assert closed.code == code, f"expected close {code}, got {closed.code} after {reply}"
    return reply


async def still_open(c: WSClient) -> None:
    """The connection is still open and answering: a command of an unknown
    type always gets an error reply, without side effects."""
    reply = await c.call({"type": "no-such-command"})
    assert_error(reply, "unknown_type")


async def subscribe(c: WSClient, channel: str, **fields) -> dict:
    return await c.call({"type": "subscribe", "channel": channel, **fields})


async def publish(c: WSClient, channel: str, data, event: str = "msg", **fields) -> dict:
    return await c.call({"type": "publish", "channel": channel, "event": event, "data": data,
                         **fields})


async def next_event(c: WSClient, channel: str | None = None,
                     timeout: float = RECV_TIMEOUT) -> dict:
    """The next message, which must be an event (of `channel`, when given)."""
    msg = await c.recv(timeout)
    assert msg["type"] == "event", f"expected an event, got {msg}"
    if channel is not None:
        assert msg["channel"] == channel, msg
    return msg


async def assert_quiet(c: WSClient, seconds: float = 0.25) -> None:
    """Nothing arrives on `c` for a short while (its backlog is empty too)."""
    assert not c.backlog, f"unexpected messages: {c.backlog}"
    try:
        msg = await c.recv_raw(seconds)
    except AssertionError:
        return
    except Closed as e:
        raise AssertionError(f"connection closed unexpectedly ({e})") from None
    raise AssertionError(f"expected nothing, got {msg}")


# -- HTTP -----------------------------------------------------------------------

def http(server: HeraldServer, method: str, path: str, body=None,
         headers: dict | None = None, raw_body: bytes | None = None) -> tuple[int, dict]:
    data = raw_body if raw_body is not None else (
        None if body is None else json.dumps(body).encode())
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(server.http_url(path), data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        text = e.read()
        status = e.code
    try:
        return status, json.loads(text) if text else {}
    except ValueError:
        return status, {"_raw": text.decode("utf-8", "replace")}


async def ahttp(*args, **kwargs) -> tuple[int, dict]:
    """http() off the event loop, so the server's answers to the WebSocket
    clients of the same test keep being read meanwhile."""
    return await asyncio.to_thread(http, *args, **kwargs)


def http_publish(server, channel, data, event="msg", headers=None) -> tuple[int, dict]:
    return http(server, "POST", "/api/publish", {"channel": channel, "event": event, "data": data},
                headers=headers)


def http_history(server, channel, headers=None) -> list:
    from urllib.parse import quote
    status, body = http(server, "GET", f"/api/channels/{quote(channel, safe='')}/history",
                        headers=headers)
    assert status == 200, (status, body)
    return body["events"]


async def marker_is_next(server: HeraldServer, watcher: WSClient, channel: str,
                         headers=None) -> dict:
    """Publishes a marker on `channel` over HTTP; the watcher's next message
    must be that marker event (so nothing else reached it before)."""
    mark = {"marker": os.urandom(4).hex()}
    status, body = await ahttp(server, "POST", "/api/publish",
                               {"channel": channel, "event": "marker", "data": mark},
                               headers=headers)
    assert status == 200, (status, body)
    ev = await next_event(watcher, channel)
    assert ev["data"] == mark, f"expected the marker first, got {ev}"
    return ev


def datas(events: list) -> list:
    return [e["data"] for e in events]
