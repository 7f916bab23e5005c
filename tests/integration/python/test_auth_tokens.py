# Connecting to a real herald server with JWTs (docs/config.md [auth],
# docs/security.md): `connect` must come first once keys exist, `connected`
# carries the verified user and expiry, every supported key source and
# algorithm (HS256/HS512 from secret, secret_file and secret_env; RS256, PS256,
# ES256, ES384 from PEM public keys and a certificate; a JWK Set file) is
# accepted, and every bad token (alg none, algorithm confusion, wrong key,
# tampering, unknown kid, clock, iss/aud, size, no sub, EdDSA, key `use`) is
# refused with `unauthorized` and close 4001 without running anything sent
# after it. Also `?token=` on the WebSocket URL, anonymous connections, and a
# server without keys, which stays open as before.
# Every token is made by PyJWT from keys generated here.
import asyncio
import json
import os

import pytest
import websockets.exceptions
from cryptography.hazmat.primitives.asymmetric import ec

from authkit import (NO_AUTH_FAILURE_LIMIT, KeyDir, assert_quiet, auth_key, confused_token,
                     connect, expect_refused, http_history, jwk_of, login, marker_is_next,
                     new_secret, next_event, now, publish, rsa_key, still_open, subscribe, table,
                     tampered, token)
from harness import HeraldServer, WSClient, assert_error, runs_async, unique

ISSUER = "https://idp.herald.test"
AUDIENCE = "herald-tests"
MAX_TOKEN_BYTES = 4096
ENV_SECRET_VAR = "HERALD_TEST_AUTH_ENV_SECRET"


class Env:
    """The module's keys and server."""
    keys: KeyDir
    secret: str          # "app": HS256, no kid
    file_secret: str     # HS512 from secret_file, kid "file-secret"
    env_secret: str      # HS256 from secret_env, kid "env-secret"
    conn_secret: str     # HS256, use = connection, kid "conn-only"
    sub_secret: str      # HS256, use = subscription, kid "sub-only"
    server: HeraldServer


def make_config(env: Env) -> str:
    k = env.keys
    for name in ("rsa", "pss", "cert"):
        k.add_rsa(name, cert=(name == "cert"))
    k.add_ec("ec256", ec.SECP256R1())
    k.add_ec("ec384", ec.SECP384R1())
    k.add_ed25519("ed")
    jwks_key = rsa_key()
    k.private["jwks"] = jwks_key
    jwks_path = k.write("jwks.json", json.dumps(
        {"keys": [jwk_of(jwks_key, "jwks-file-1", "RS256")]}).encode())
    secret_file = k.write("hs512.secret", (env.file_secret + "\n").encode())
    return (
        "[engine]\ntype = \"memory\"\n\n"
        + auth_key("app", ["HS256"], secret=env.secret)
        + auth_key("rsa", ["RS256"], kid="rsa-1", public_key_file=k.files["rsa"])
        + auth_key("pss", ["PS256"], kid="pss-1", public_key_file=k.files["pss"])
        + auth_key("cert", ["RS256"], kid="cert-1", public_key_file=k.files["cert"])
        + auth_key("ec256", ["ES256"], kid="ec-256", public_key_file=k.files["ec256"])
        + auth_key("ec384", ["ES384"], kid="ec-384", public_key_file=k.files["ec384"])
        + auth_key("hs512", ["HS512"], kid="file-secret", secret_file=secret_file)
        + auth_key("envsecret", ["HS256"], kid="env-secret", secret_env=ENV_SECRET_VAR)
        + auth_key("conn", ["HS256"], kid="conn-only", secret=env.conn_secret, use="connection")
        + auth_key("sub", ["HS256"], kid="sub-only", secret=env.sub_secret, use="subscription")
        + table("[auth]", issuer=ISSUER, audience=AUDIENCE, leeway_ms=5000,
                max_token_bytes=MAX_TOKEN_BYTES, jwks_file=jwks_path)
        + NO_AUTH_FAILURE_LIMIT
        + table("[server]", log_level="debug")
        + table("[namespaces.pub]", anonymous=True)
        + table("[namespaces.priv]")
        + table("[namespaces.chat]", subscribe_access="capability",
                publish_access="capability", history_access="capability")
    )


@pytest.fixture(scope="module")
def env():
    e = Env()
    e.keys = KeyDir()
    e.secret, e.env_secret = new_secret(), new_secret()
    e.file_secret = new_secret() + new_secret()  # HS512: the server wants >= 64 bytes
    e.conn_secret, e.sub_secret = new_secret(), new_secret()
    os.environ[ENV_SECRET_VAR] = e.env_secret
    try:
        e.server = HeraldServer(make_config(e), name="auth-tokens", workers=2)
        e.server.start()
        yield e
        e.server.stop_checked()
    finally:
        os.environ.pop(ENV_SECRET_VAR, None)
        e.keys.cleanup()


@pytest.fixture(scope="module")
def open_server():
    srv = HeraldServer("[engine]\ntype = \"memory\"\n", name="auth-open", workers=2)
    srv.start()
    yield srv
    srv.stop_checked()


def tok(key, alg="HS256", **claims) -> str:
    """A token for this module's server: iss and aud set unless overridden."""
    claims.setdefault("iss", ISSUER)
    claims.setdefault("aud", AUDIENCE)
    return token(key, alg, **claims)


# -- a server without keys ------------------------------------------------------

@runs_async
async def test_server_without_keys_stays_open(open_server):
    ch = unique("any:room")
    # No connect needed: the first command connects anonymously.
    c = await WSClient.open(open_server)
    assert (await subscribe(c, ch))["type"] == "subscribed"
    ack = await publish(c, ch, {"n": 1})
    assert ack["type"] == "ack", ack
    ev = await next_event(c, ch)
    assert ev["from"] == {"client": ev["from"]["client"]}, ev  # no user
    assert (await c.call({"type": "history", "channel": ch}))["type"] == "history"
    # A plain connect without token still works too, and a token is ignored
    # (nothing could verify it): still anonymous.
    for t in (None, "not.a.jwt", token(new_secret(), sub="someone")):
        c2, reply = await connect(open_server, t)
        assert reply["type"] == "connected", reply
        assert "user" not in reply and "expires" not in reply, reply
        assert (await subscribe(c2, ch))["type"] == "subscribed"
        assert (await publish(c2, ch, "anon"))["type"] == "ack"
        ev = await next_event(c2, ch)
        assert "user" not in ev["from"], ev


# -- connect first ----------------------------------------------------------------

@runs_async
async def test_commands_before_connect_are_refused_and_nothing_happens(env):
    srv = env.server
    ch = unique("pub:early")
    watcher = await login(srv)
    assert (await subscribe(watcher, ch))["type"] == "subscribed"
    c = await WSClient.open(srv)
    for msg in ({"type": "subscribe", "channel": ch},
                {"type": "publish", "channel": ch, "event": "msg", "data": "early"},
                {"type": "history", "channel": ch},
                {"type": "unsubscribe", "channel": ch}):
        reply = await c.call(msg)
        assert_error(reply, "unauthorized", reply.get("id"))
        assert "connect first" in reply["message"], reply
    # Without an id, the refusal comes without one.
    await c.send({"type": "publish", "channel": ch, "event": "msg", "data": "early2"})
    err = await c.recv()
    assert_error(err, "unauthorized", has_id=False)
    # Nothing was published, nothing subscribed; the connection is still open
    # and can connect now.
    await marker_is_next(srv, watcher, ch)
    assert [e["event"] for e in http_history(srv, ch)] == ["marker"]
    await assert_quiet(c)
    reply = await c.call({"type": "connect", "token": tok(env.secret, sub="late")})
    assert reply["type"] == "connected" and reply["user"] == "late", reply
    assert (await subscribe(c, ch))["type"] == "subscribed"


@runs_async
async def test_connected_carries_user_and_expiry_in_order(env):
    exp = now() + 900
    c = await WSClient.open(env.server)
    await c.send({"type": "connect", "id": 1, "token": tok(env.secret, sub="ana", exp=exp)})
    reply = await c.recv()
    assert reply["type"] == "connected" and reply["id"] == 1, reply
    assert reply["user"] == "ana" and reply["expires"] == exp, reply
    assert reply["version"] == "1" and isinstance(reply["ping"], int), reply
    assert isinstance(reply["client"], str) and reply["client"], reply
    keys = list(json.loads(c.last_raw, object_pairs_hook=lambda kv: [k for k, _ in kv]))
    assert keys == ["type", "id", "client", "user", "expires", "ping", "version"], c.last_raw
    # A second connect is refused, the connection stays.
    reply = await c.call({"type": "connect", "token": tok(env.secret, sub="bob")})
    assert_error(reply, "bad_request")
    assert "already connected" in reply["message"], reply
    await still_open(c)


@runs_async
async def test_second_connect_while_the_first_is_verified_is_refused(env):
    c = await WSClient.open(env.server)
    await c.send({"type": "connect", "id": 1, "token": tok(env.secret, sub="first")})
    await c.send({"type": "connect", "id": 2, "token": tok(env.secret, sub="second")})
    replies = {m["id"]: m for m in [await c.recv(), await c.recv()]}
    assert replies[1]["type"] == "connected" and replies[1]["user"] == "first", replies
    assert_error(replies[2], "bad_request", 2)
    await assert_quiet(c)


@runs_async
async def test_commands_pipelined_after_connect_wait_for_its_verification(env):
    ch = unique("priv:pipe")
    c = await WSClient.open(env.server)
    # Both in one go: the subscribe must be judged with the verified user.
    await c.send({"type": "connect", "id": "c", "token": tok(env.keys.private["rsa"], "RS256",
                                                             kid="rsa-1", sub="pipe")})
    await c.send({"type": "subscribe", "id": "s", "channel": ch})
    first, second = await c.recv(), await c.recv()
    assert first["type"] == "connected" and first["id"] == "c" and first["user"] == "pipe", first
    assert second["type"] == "subscribed" and second["id"] == "s", second


@runs_async
async def test_anonymous_connect_only_reaches_anonymous_namespaces(env):
    srv = env.server
    pub, priv, other = unique("pub:anon"), unique("priv:anon"), unique("other:anon")
    c, reply = await connect(srv)
    assert reply["type"] == "connected", reply
    assert "user" not in reply and "expires" not in reply, reply
    assert (await subscribe(c, pub))["type"] == "subscribed"
    assert (await publish(c, pub, "hi"))["type"] == "ack"
    ev = await next_event(c, pub)
    assert "user" not in ev["from"] and ev["from"]["client"] == reply["client"], ev
    # anonymous is false by default once keys exist: priv (no setting) and a
    # namespace without a table ([defaults]) refuse, and the connection stays.
    watcher = await login(srv, tok(env.secret, sub="watcher"))
    for ch in (priv, other):
        assert (await subscribe(watcher, ch))["type"] == "subscribed"
        for msg in ({"type": "subscribe", "channel": ch},
                    {"type": "publish", "channel": ch, "event": "msg", "data": "anon"},
                    {"type": "history", "channel": ch}):
            reply = await c.call(msg)
            assert_error(reply, "unauthorized")
            assert ch in reply["message"], reply
        await marker_is_next(srv, watcher, ch)
        assert [e["event"] for e in http_history(srv, ch)] == ["marker"]
    await assert_quiet(c)
    await still_open(c)


# -- keys and algorithms that are accepted -------------------------------------------

GOOD = [
    # (id, key name in env, alg, kid)
    ("hs256-secret", "secret", "HS256", None),
    ("hs512-secret_file", "file_secret", "HS512", "file-secret"),
    ("hs256-secret_env", "env_secret", "HS256", "env-secret"),
    ("rs256-pem", "rsa", "RS256", "rsa-1"),
    ("ps256-pem", "pss", "PS256", "pss-1"),
    ("rs256-certificate", "cert", "RS256", "cert-1"),
    ("es256-pem", "ec256", "ES256", "ec-256"),
    ("es384-pem", "ec384", "ES384", "ec-384"),
    ("rs256-jwks_file", "jwks", "RS256", "jwks-file-1"),
    ("hs256-use-connection", "conn_secret", "HS256", "conn-only"),
]


def signing_key(env: Env, name: str):
    return getattr(env, name) if hasattr(env, name) else env.keys.private[name]


@pytest.mark.parametrize("name,alg,kid", [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
@runs_async
async def test_good_tokens_connect(env, name, alg, kid):
    user = unique("user")
    exp = now() + 300
    c, reply = await connect(env.server, tok(signing_key(env, name), alg, kid=kid, sub=user,
                                             exp=exp))
    assert reply["type"] == "connected", reply
    assert reply["user"] == user and reply["expires"] == exp, reply
    ch = unique("priv:ok")
    assert (await subscribe(c, ch))["type"] == "subscribed"
    assert (await publish(c, ch, 1))["type"] == "ack"
    ev = await next_event(c, ch)
    assert ev["from"] == {"client": reply["client"], "user": user}, ev


@runs_async
async def test_audience_list_and_leeway_on_nbf(env):
    # aud may be an array containing the audience; nbf 2 s ahead is within
    # the 5 s leeway.
    c, reply = await connect(env.server, tok(env.secret, aud=["other", AUDIENCE],
                                             nbf=now() + 2))
    assert reply["type"] == "connected", reply


# -- refused tokens ---------------------------------------------------------------------

def bad_tokens(env: Env) -> dict:
    k = env.keys.private
    other_rsa = rsa_key()
    good = tok(env.secret, sub="ana")
    long_pad = "x" * MAX_TOKEN_BYTES
    return {
        "alg-none": tok(None, "none"),
        "algorithm-confusion": confused_token(env.keys.public_pem("rsa"), iss=ISSUER,
                                              aud=AUDIENCE),
        "algorithm-confusion-with-kid": confused_token(env.keys.public_pem("rsa"), kid="rsa-1",
                                                       iss=ISSUER, aud=AUDIENCE),
        "wrong-hmac-secret": tok(new_secret()),
        "wrong-rsa-key": tok(other_rsa, "RS256", kid="rsa-1"),
        "tampered-payload": tampered(good, sub="admin"),
        "tampered-exp": tampered(tok(env.secret, ttl=-60), exp=now() + 600),
        "unknown-kid": tok(k["rsa"], "RS256", kid="no-such-kid"),
        "alg-not-allowed-for-key": tok(k["rsa"], "RS512", kid="rsa-1"),
        "expired-beyond-leeway": tok(env.secret, exp=now() - 60),
        "nbf-in-the-future": tok(env.secret, nbf=now() + 60),
        "wrong-issuer": tok(env.secret, iss="https://evil.test"),
        "missing-issuer": tok(env.secret, iss=None),
        "wrong-audience": tok(env.secret, aud="someone-else"),
        "audience-list-without-ours": tok(env.secret, aud=["a", "b"]),
        "missing-audience": tok(env.secret, aud=None),
        "too-long": tok(env.secret, pad=long_pad),
        "no-sub": tok(env.secret, sub=None),
        "empty-sub": tok(env.secret, sub=""),
        "eddsa": tok(k["ed"], "EdDSA"),
        "subscription-only-key": tok(env.sub_secret, kid="sub-only"),
        "not-a-jwt": "not.a.jwt",
        "garbage": "x" * 40,
    }


BAD_IDS = ["alg-none", "algorithm-confusion", "algorithm-confusion-with-kid",
           "wrong-hmac-secret", "wrong-rsa-key", "tampered-payload", "tampered-exp",
           "unknown-kid", "alg-not-allowed-for-key", "expired-beyond-leeway",
           "nbf-in-the-future", "wrong-issuer", "missing-issuer", "wrong-audience",
           "audience-list-without-ours", "missing-audience", "too-long", "no-sub",
           "empty-sub", "eddsa", "subscription-only-key", "not-a-jwt", "garbage"]


@pytest.fixture(scope="module")
def bad(env):
    tokens = bad_tokens(env)
    assert sorted(tokens) == sorted(BAD_IDS)
    return tokens


@pytest.mark.parametrize("case", BAD_IDS)
@runs_async
async def test_bad_connect_tokens_are_refused_with_4001(env, bad, case):
    srv = env.server
    ch = unique("pub:after-bad")
    c = await WSClient.open(srv)
    # A publish pipelined behind the bad connect must never run.
    await c.send({"type": "connect", "id": "c", "token": bad[case]})
    await c.send({"type": "publish", "id": "p", "channel": ch, "event": "msg", "data": case})
    reply = await c.recv()
    assert reply.get("id") == "c", reply
    await expect_refused(c, reply)
    assert http_history(srv, ch) == []
    # The reason is for developers: it never holds the token or a key.
    for secret in (bad[case], bad[case].split(".")[-1], env.secret, env.sub_secret):
        if len(secret) >= 16:
            assert secret not in reply["message"], reply


def sized_token(secret: str, n: int) -> str:
    """A valid token of exactly n bytes (padding in a claim and in an extra
    header field: base64url lengths skip every value = 1 mod 4)."""
    import jwt as pyjwt
    for hpad in range(4):
        for pad in range(max(0, (n - 300) * 3 // 4), n):
            t = pyjwt.encode({"sub": "ana", "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE,
                              "pad": "y" * pad}, secret, algorithm="HS256",
                             headers={"x": "z" * hpad})
            if len(t) == n:
                return t
            if len(t) > n:
                break
    raise AssertionError(f"no token of exactly {n} bytes")


@runs_async
async def test_a_kid_no_key_has_is_tried_with_the_keys_without_kid(env):
    # Signed by "app" (no kid configured), naming a kid that no key has: the
    # kid-less keys are tried (docs/security.md, Tokens, step 3), so a
    # backend that adds a kid the config does not name still works...
    c, reply = await connect(env.server, tok(env.secret, kid="no-such-kid"))
    assert reply["type"] == "connected", reply
    # ...but only with the right key.
    c, reply = await connect(env.server, tok("x" * 48, kid="no-such-kid"))
    await expect_refused(c, reply)


@runs_async
async def test_token_size_limit_is_exact(env):
    at_limit = sized_token(env.secret, MAX_TOKEN_BYTES)
    over = sized_token(env.secret, MAX_TOKEN_BYTES + 1)
    c, reply = await connect(env.server, at_limit)
    assert reply["type"] == "connected", reply
    c, reply = await connect(env.server, over)
    await expect_refused(c, reply)


@runs_async
async def test_bad_token_error_names_the_reason(env, bad):
    # Not the wording, but a refusal must say something specific: different
    # failures give different messages.
    messages = set()
    for case in ("alg-none", "expired-beyond-leeway", "wrong-issuer", "no-sub"):
        c, reply = await connect(env.server, bad[case])
        await expect_refused(c, reply)
        messages.add(reply["message"])
    assert len(messages) == 4, messages


# -- ?token= on the URL -----------------------------------------------------------------

@runs_async
async def test_query_token_connects_at_upgrade(env):
    exp = now() + 300
    c = await WSClient.open(env.server, path="/ws?token=" + tok(env.secret, sub="q", exp=exp))
    msg = await c.recv()
    assert msg["type"] == "connected" and "id" not in msg, msg
    assert msg["user"] == "q" and msg["expires"] == exp, msg
    ch = unique("priv:q")
    assert (await subscribe(c, ch))["type"] == "subscribed"
    reply = await c.call({"type": "connect"})
    assert_error(reply, "bad_request")
    # With a channels claim, the subscriptions follow `connected`.
    mine = unique("priv:mine")
    c = await WSClient.open(env.server, path="/ws?token=" + tok(env.secret, sub="q2",
                                                                channels=[mine]))
    msg = await c.recv()
    assert msg["type"] == "connected" and msg["user"] == "q2", msg
    msg = await c.recv()
    assert msg["type"] == "subscribed" and msg["channel"] == mine and "id" not in msg, msg


@pytest.mark.parametrize("case", ["alg-none", "wrong-hmac-secret", "expired-beyond-leeway",
                                  "garbage"])
@runs_async
async def test_bad_query_token_is_refused_with_4001(env, bad, case):
    ch = unique("pub:q")
    c = await WSClient.open(env.server, path="/ws?token=" + bad[case])
    # Sent at once: it must not run (the connection is refused, maybe already).
    try:
        await c.send({"type": "publish", "channel": ch, "event": "msg", "data": 1})
    except websockets.exceptions.ConnectionClosed:
        pass
    err = await c.recv()
    assert_error(err, "unauthorized", has_id=False)
    closed = await c.expect_closed()
    assert closed.code == 4001, closed
    assert http_history(env.server, ch) == []


# -- key use ------------------------------------------------------------------------------

@runs_async
async def test_key_use_connection_and_subscription(env):
    srv = env.server
    ch = unique("chat:use")
    watcher = await login(srv, tok(env.secret, sub="w", caps={ch: ["subscribe"]}))
    assert (await subscribe(watcher, ch))["type"] == "subscribed"
    c = await login(srv, tok(env.conn_secret, kid="conn-only", sub="ana"))
    # A use = "connection" key does not sign subscription tokens...
    sub_tok = tok(env.conn_secret, kid="conn-only", sub="ana", channel=ch,
                  caps=["subscribe", "publish"])
    reply = await subscribe(c, ch, token=sub_tok)
    assert_error(reply, "unauthorized")
    assert reply["message"].startswith("subscription token"), reply
    await still_open(c)
    reply = await publish(c, ch, "not allowed")
    assert_error(reply, "forbidden")
    await marker_is_next(srv, watcher, ch)
    assert [e["event"] for e in http_history(srv, ch)] == ["marker"]
    # ... a use = "subscription" key does.
    sub_tok = tok(env.sub_secret, kid="sub-only", sub="ana", channel=ch,
                  caps=["subscribe", "publish"])
    reply = await subscribe(c, ch, token=sub_tok)
    assert reply["type"] == "subscribed", reply
    assert (await publish(c, ch, "allowed"))["type"] == "ack"
    assert (await next_event(watcher, ch))["data"] == "allowed"


@runs_async
async def test_other_query_parameters_are_ignored(env):
    for path in ("/ws?v=1&token={t}", "/ws?token={t}&v=1&x="):
        c = await WSClient.open(env.server, path=path.format(t=tok(env.secret, sub="qp")))
        msg = await c.recv()
        assert msg["type"] == "connected" and msg["user"] == "qp", (path, msg)


@runs_async
async def test_token_without_exp_has_no_expires(env):
    c, reply = await connect(env.server, tok(env.secret, ttl=None, sub="forever"))
    assert reply["type"] == "connected" and reply["user"] == "forever", reply
    assert "expires" not in reply, reply
    reply = await c.call({"type": "refresh", "token": tok(env.secret, ttl=None, sub="forever")})
    assert reply["type"] == "refreshed" and "expires" not in reply, reply


def test_the_log_holds_no_secret_and_no_token(env, bad):
    """Runs after the tests above (same module): with log_level debug, the
    server log holds key names, never a secret, a key's PEM or a token."""
    text = env.server.log_text()
    secrets_ = [env.secret, env.file_secret, env.env_secret, env.conn_secret, env.sub_secret]
    for s_ in secrets_:
        assert s_ not in text, "a secret is in the log"
    pem_body = env.keys.public_pem("rsa").decode().splitlines()[1]
    assert pem_body not in text, "a key is in the log"
    for case, t in bad.items():
        for part in (t, t.split(".")[-1]):
            if len(part) >= 16:
                assert part not in text, f"token {case} is in the log"


@runs_async
async def test_subscription_and_refresh_tokens_get_the_same_checks(env):
    ch = unique("chat:checks")
    c = await login(env.server, tok(env.secret, sub="ana"))
    too_long = sized_token(env.secret, MAX_TOKEN_BYTES + 1)
    for bad in (tok(env.secret, sub="ana", channel=ch, iss="https://evil.test"),
                tok(env.secret, sub="ana", channel=ch, aud="someone-else"),
                tok(env.secret, sub="ana", channel=ch, nbf=now() + 60),
                tok(env.secret, sub="ana", channel=ch, pad="p" * MAX_TOKEN_BYTES)):
        reply = await subscribe(c, ch, token=bad)
        assert_error(reply, "unauthorized", reply["id"])
        assert reply["message"].startswith("subscription token"), reply
    for bad in (tok(env.secret, sub="ana", iss="https://evil.test"), too_long,
                tok(env.keys.private["rsa"], "RS256", kid="rsa-1", sub="ana", aud="x")):
        reply = await c.call({"type": "refresh", "token": bad})
        assert_error(reply, "unauthorized", reply["id"])
    await still_open(c)
    await assert_quiet(c)


@runs_async
async def test_query_token_can_be_turned_off(env):
    srv = HeraldServer("[engine]\ntype = \"memory\"\n\n"
                       + auth_key("app", ["HS256"], secret=env.secret)
                       + table("[auth]", query_token=False)
                       + NO_AUTH_FAILURE_LIMIT,
                       name="auth-no-query-token", workers=1)
    srv.start()
    try:
        c = await WSClient.open(srv, path="/ws?token=" + token(env.secret, sub="q"))
        await assert_quiet(c, 0.3)  # no connected
        reply = await subscribe(c, unique("x:y"))
        assert_error(reply, "unauthorized", reply["id"])
        assert "connect first" in reply["message"], reply
        reply = await c.call({"type": "connect", "token": token(env.secret, sub="q")})
        assert reply["type"] == "connected" and reply["user"] == "q", reply
        await asyncio.to_thread(srv.stop_checked)  # the loop keeps answering closes
    finally:
        srv.kill()
