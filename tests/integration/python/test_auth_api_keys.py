# API keys of the HTTP API ([[api.keys]], [api] protect_metrics,
# docs/config.md) against a real herald server: every key source (key,
# key_env, key_file, sha256), both ways of sending one (Authorization:
# Bearer, X-API-Key), 401 `unauthorized` for a missing or unknown key, 403
# `forbidden` for a key without the route's scope (publish, history, admin),
# /healthz always open, /metrics protected on request, and admin keys
# answering remote peers. A refused request changes nothing: no event
# delivered or stored, nobody disconnected or unsubscribed.
import hashlib
import json
import os
import secrets
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest

from authkit import (ahttp, auth_key, http, login, marker_is_next, new_secret, next_event,
                     still_open, subscribe, table, token)
from harness import HeraldServer, runs_async, unique

SECRET = new_secret()
ENV_VAR = "HERALD_TEST_API_KEY_HISTORY"


class Keys:
    publish = "pub-" + secrets.token_hex(16)
    history = "hist-" + secrets.token_hex(16)       # from key_env
    admin = "admin-" + secrets.token_hex(16)        # from key_file
    everything = "all-" + secrets.token_hex(16)     # given as sha256


@pytest.fixture(scope="module")
def server():
    os.environ[ENV_VAR] = Keys.history
    srv = HeraldServer(None, name="auth-api-keys", workers=2, listen_host="0.0.0.0")
    key_file = os.path.join(srv.tmpdir, "admin.key")
    with open(key_file, "w") as f:
        f.write(Keys.admin + "\n")
    srv.config_text = (
        "[engine]\ntype = \"memory\"\n\n"
        + auth_key("app", ["HS256"], secret=SECRET)
        + table("[rate_limits]", auth_failures_per_ip_per_minute=0)
        + table("[[api.keys]]", name="publisher", key=Keys.publish, scopes=["publish"])
        + table("[[api.keys]]", name="reader", key_env=ENV_VAR, scopes=["history"])
        + table("[[api.keys]]", name="ops", key_file=key_file, scopes=["admin"])
        + table("[[api.keys]]", name="all",
                sha256=hashlib.sha256(Keys.everything.encode()).hexdigest(),
                scopes=["publish", "history", "admin", "presence"])
        + table("[api]", protect_metrics=True)
        + table("[namespaces.pub]", anonymous=True)
        + table("[namespaces.room]")
    )
    srv.config_path = os.path.join(srv.tmpdir, "herald.toml")
    with open(srv.config_path, "w") as f:
        f.write(srv.config_text)
    try:
        srv.start()
        yield srv
        srv.stop_checked()
    finally:
        os.environ.pop(ENV_VAR, None)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def xkey(key: str) -> dict:
    return {"X-API-Key": key}


def history_path(ch: str) -> str:
    return f"/api/channels/{urllib.parse.quote(ch, safe='')}/history"


def stored(server, ch: str) -> list:
    status, body = http(server, "GET", history_path(ch), headers=bearer(Keys.everything))
    assert status == 200, (status, body)
    return body["events"]


def assert_http_error(status: int, body: dict, want_status: int, code: str) -> None:
    assert status == want_status, (status, body)
    assert body.get("type") == "error" and body.get("code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body


def tok(sub="ana") -> str:
    return token(SECRET, "HS256", sub=sub)


def test_healthz_is_always_open(server):
    status, body = http(server, "GET", "/healthz")
    assert (status, body) == (200, {"status": "ok"})


@pytest.mark.parametrize("headers", [
    {}, bearer("wrong-" + secrets.token_hex(16)), xkey("wrong-" + secrets.token_hex(16)),
    {"Authorization": "Bearer "}, {"Authorization": f"Basic {Keys.publish}"},
    bearer(Keys.publish[:-1]), bearer(Keys.publish + "x"),
    # The digest of a key is not the key.
    bearer(hashlib.sha256(Keys.everything.encode()).hexdigest()),
], ids=["none", "bearer-unknown", "x-api-key-unknown", "bearer-empty", "basic-scheme",
        "truncated", "extended", "sha256-as-key"])
@runs_async
async def test_missing_or_unknown_key_is_401_and_changes_nothing(server, headers):
    ch = unique("pub:k")
    w = await login(server)
    assert (await subscribe(w, ch))["type"] == "subscribed"
    status, body = await ahttp(server, "POST", "/api/publish",
                               {"channel": ch, "event": "msg", "data": "refused"},
                               headers=headers)
    assert_http_error(status, body, 401, "unauthorized")
    status, body = await ahttp(server, "GET", history_path(ch), headers=headers)
    assert_http_error(status, body, 401, "unauthorized")
    await marker_is_next(server, w, ch, headers=bearer(Keys.everything))
    assert [e["event"] for e in stored(server, ch)] == ["marker"]


@pytest.mark.parametrize("key,header", [
    (Keys.publish, bearer), (Keys.publish, xkey), (Keys.everything, bearer),
    (Keys.everything, xkey)], ids=["key-bearer", "key-x-api-key", "sha256-bearer",
                                   "sha256-x-api-key"])
@runs_async
async def test_publish_scope(server, key, header):
    ch = unique("pub:p")
    w = await login(server)
    assert (await subscribe(w, ch))["type"] == "subscribed"
    status, body = await ahttp(server, "POST", "/api/publish",
                               {"channel": ch, "event": "msg", "data": "ok"}, headers=header(key))
    assert (status, body) == (200, {"offset": 1}), (status, body)
    assert (await next_event(w, ch))["data"] == "ok"


@runs_async
async def test_wrong_scope_is_403_and_changes_nothing(server):
    ch = unique("pub:s")
    w = await login(server)
    assert (await subscribe(w, ch))["type"] == "subscribed"
    for key in (Keys.history, Keys.admin):
        status, body = await ahttp(server, "POST", "/api/publish",
                                   {"channel": ch, "event": "msg", "data": "refused"},
                                   headers=bearer(key))
        assert_http_error(status, body, 403, "forbidden")
    for key in (Keys.publish, Keys.admin):
        status, body = await ahttp(server, "GET", history_path(ch), headers=xkey(key))
        assert_http_error(status, body, 403, "forbidden")
    await marker_is_next(server, w, ch, headers=bearer(Keys.publish))
    assert [e["event"] for e in stored(server, ch)] == ["marker"]
    # The history key (from key_env) reads it.
    status, body = await ahttp(server, "GET", history_path(ch), headers=bearer(Keys.history))
    assert status == 200 and [e["event"] for e in body["events"]] == ["marker"], (status, body)


@runs_async
async def test_admin_routes_need_the_admin_scope(server):
    user, ch = unique("u"), unique("room:a")
    c = await login(server, tok(sub=user))
    assert (await subscribe(c, ch))["type"] == "subscribed"
    for key in (None, Keys.publish, Keys.history):
        headers = bearer(key) if key else {}
        want = (403, "forbidden") if key else (401, "unauthorized")
        status, body = await ahttp(server, "POST", "/api/unsubscribe",
                                   {"user": user, "channel": ch}, headers=headers)
        assert_http_error(status, body, *want)
        status, body = await ahttp(server, "POST", "/api/disconnect", {"user": user},
                                   headers=headers)
        assert_http_error(status, body, *want)
        status, body = await ahttp(server, "POST", "/api/admin/reload", {}, headers=headers)
        assert_http_error(status, body, *want)
    # Nothing happened to the user's connection.
    await marker_is_next(server, c, ch, headers=bearer(Keys.publish))
    await still_open(c)
    # The admin key (from key_file) may.
    status, body = await ahttp(server, "POST", "/api/admin/reload", {},
                               headers=bearer(Keys.admin))
    assert status == 200 and body.get("ok") is True, (status, body)
    status, body = await ahttp(server, "POST", "/api/unsubscribe",
                               {"user": user, "channel": ch}, headers=xkey(Keys.admin))
    assert (status, body) == (200, {"unsubscribed": 1}), (status, body)
    msg = await c.recv()
    assert msg == {"type": "unsubscribed", "channel": ch, "reason": "kicked"}, msg
    status, body = await ahttp(server, "POST", "/api/disconnect", {"user": user},
                               headers=bearer(Keys.everything))
    assert (status, body) == (200, {"disconnected": 1}), (status, body)
    assert (await c.expect_closed()).code == 4003


def test_metrics_protected(server):
    status, _ = http(server, "GET", "/metrics")
    assert status == 401, status
    req = urllib.request.Request(server.http_url("/metrics"), headers=bearer(Keys.history))
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        assert b"herald_ws_connections" in r.read()


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_admin_key_answers_remote_peers(server):
    address = non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this host")

    def post(headers, path="/api/admin/reload", body=b"{}"):
        req = urllib.request.Request(f"http://{address}:{server.port}{path}",
                                     data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    status, body = post({})
    assert_http_error(status, body, 401, "unauthorized")
    status, body = post(bearer(Keys.admin))
    assert status == 200 and body.get("ok") is True, (status, body)
    # The other admin routes too, and the scope still matters.
    nobody = json.dumps({"user": unique("nobody")}).encode()
    status, body = post(xkey(Keys.admin), "/api/disconnect", nobody)
    assert (status, body) == (200, {"disconnected": 0}), (status, body)
    status, body = post(xkey(Keys.publish), "/api/disconnect", nobody)
    assert_http_error(status, body, 403, "forbidden")


def test_metrics_open_without_protect_metrics():
    srv = HeraldServer("[engine]\ntype = \"memory\"\n\n"
                       + table("[[api.keys]]", name="publisher", key=Keys.publish,
                               scopes=["publish"]),
                       name="auth-api-keys-open-metrics", workers=1)
    srv.start()
    try:
        status, _ = http(srv, "POST", "/api/publish", {"channel": "x:y", "event": "e", "data": 1})
        assert status == 401, status
        with urllib.request.urlopen(srv.http_url("/metrics"), timeout=10) as r:
            assert r.status == 200 and b"herald_ws_connections" in r.read()
        srv.stop_checked()
    finally:
        srv.kill()


def test_401_says_how_to_authenticate(server):
    req = urllib.request.Request(server.http_url("/api/publish"), data=b"{}", method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("no 401")
    except urllib.error.HTTPError as e:
        assert e.code == 401
        assert e.headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(e.headers)


@runs_async
async def test_reload_reports_api_keys_as_restart_required(server):
    added = "late-" + secrets.token_hex(16)
    with open(server.config_path) as f:
        original = f.read()
    try:
        with open(server.config_path, "w") as f:
            f.write(original + "\n" + table("[[api.keys]]", name="late", key=added,
                                            scopes=["publish", "history", "admin"]))
        status, body = await ahttp(server, "POST", "/api/admin/reload", {},
                                   headers=bearer(Keys.admin))
        assert status == 200 and body.get("ok") is True, (status, body)
        assert "api.keys" in body.get("restart_required", []), body
        # Keys are read at start-up only.
        status, body = await ahttp(server, "GET", history_path(unique("pub:late")),
                                   headers=bearer(added))
        assert_http_error(status, body, 401, "unauthorized")
    finally:
        with open(server.config_path, "w") as f:
            f.write(original)
        status, body = await ahttp(server, "POST", "/api/admin/reload", {},
                                   headers=bearer(Keys.admin))
        assert status == 200, (status, body)


def test_the_log_holds_no_api_key(server):
    """After the tests above (same module): key names only, never a key."""
    text = server.log_text()
    for key in (Keys.publish, Keys.history, Keys.admin, Keys.everything):
        assert key not in text, "an API key is in the log"
