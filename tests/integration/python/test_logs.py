# Logs (issue 17 item 5) against the real binary: server.log_format = "json"
# gives one parseable JSON object per line with time, level and message;
# server.access_log gives a line per HTTP request (method, path without the
# query, status, bytes, duration, peer) and per WebSocket connect and close
# (close code, duration); a ?token= secret never reaches the log, in either
# format. Off by default.
import asyncio
import json
import time
import urllib.request

import pytest

from harness import HeraldServer, WSClient, raw_http, runs_async, toml_config

SECRET = "s3cr3t-token-value-that-must-not-be-logged"


async def traffic(srv: HeraldServer) -> None:
    """An HTTP request with a secret in its query, a WebSocket connect and a
    clean close (1000), and a WebSocket opened with ?token= (an open server
    takes it as anonymous) that the client closes with 4100."""
    with urllib.request.urlopen(srv.http_url(f"/healthz?token={SECRET}&x=1"), timeout=5) as r:
        assert r.status == 200
    c, _ = await WSClient.connected(srv)
    await c.close()
    other = await WSClient.open(srv, f"/ws?token={SECRET}")
    assert (await other.recv())["type"] == "connected"
    await asyncio.wait_for(other.ws.close(code=4100), 5)


def wait_for(srv, predicate, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate(srv.log_text()):
            return
        time.sleep(0.05)


def json_lines(srv):
    out = []
    for line in srv.log_text().splitlines():
        if not line.strip() or line.startswith("$ "):  # the harness's command line
            continue
        obj = json.loads(line)  # every line parses
        assert isinstance(obj, dict), line
        for field in ("time", "level", "message"):
            assert field in obj, line
        out.append(obj)
    return out


@runs_async
async def test_json_logs_with_access_lines():
    srv = HeraldServer(config=toml_config(server={"log_format": "json", "access_log": True}),
                       name="json-logs").start()
    try:
        await traffic(srv)
        wait_for(srv, lambda t: t.count('"event":"close"') >= 2)
        srv.stop_checked()
        lines = json_lines(srv)
        assert any("listening on" in o["message"] and o["level"] == "info" for o in lines)
        assert all(o["time"].endswith("Z") and "T" in o["time"] for o in lines)

        http = [o for o in lines if o.get("kind") == "http" and o["path"] == "/healthz"]
        assert http, lines
        h = http[0]
        assert h["logger"] == "access" and h["method"] == "GET" and h["status"] == 200
        assert h["bytes"] > 0 and h["duration_ms"] >= 0 and h["peer"] == "127.0.0.1"

        connects = [o for o in lines if o.get("kind") == "ws" and o["event"] == "connect"]
        closes = [o for o in lines if o.get("kind") == "ws" and o["event"] == "close"]
        assert len(connects) == 2 and len(closes) == 2, lines
        assert {c["client"] for c in connects} == {c["client"] for c in closes}
        codes = sorted(c["close_code"] for c in closes)
        assert codes == [1000, 4100], codes
        assert all(c["duration_ms"] >= 0 and c["peer"] == "127.0.0.1" for c in closes)

        assert SECRET not in srv.log_text()
    finally:
        srv.kill()


@runs_async
async def test_text_access_log_keeps_tokens_out():
    srv = HeraldServer(config=toml_config(server={"access_log": True}), name="text-logs").start()
    try:
        await traffic(srv)
        wait_for(srv, lambda t: t.count("ws close") >= 2)
        srv.stop_checked()
        text = srv.log_text()
        assert "http GET /healthz 200 bytes=" in text
        assert text.count("ws connect client=") == 2 and "close_code=1000" in text
        assert SECRET not in text
        assert "token=" not in text.replace("query_token", "")
        with pytest.raises(json.JSONDecodeError):
            json_lines(srv)  # text stays text
    finally:
        srv.kill()


@runs_async
async def test_access_log_off_by_default():
    srv = HeraldServer(name="no-access-log").start()
    try:
        await traffic(srv)
        await asyncio.sleep(0.3)
        srv.stop_checked()
        text = srv.log_text()
        assert "http GET" not in text and "ws connect" not in text
        assert SECRET not in text
    finally:
        srv.kill()


def test_refused_upgrade_is_an_access_line_without_its_token():
    srv = HeraldServer(config=toml_config(server={"access_log": True,
                                                  "allowed_origins": ["https://ok.example"]}),
                       name="refused-upgrade").start()
    try:
        request = (f"GET /ws?token={SECRET} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Origin: https://evil.example\r\n\r\n").encode()
        status, _, _ = raw_http(srv.port, request)
        assert status == 403
        wait_for(srv, lambda t: "http GET /ws 403" in t)
        srv.stop_checked()
        text = srv.log_text()
        assert "http GET /ws 403 bytes=" in text
        assert "ws connect" not in text and SECRET not in text
    finally:
        srv.kill()
