# Who may do what on which channel, against a real herald server with an
# HS256 key (docs/config.md: namespace keys anonymous, subscribe_access,
# publish_access, history_access, user_channels; docs/security.md): the
# access levels public / authenticated / capability / none, the `caps` claim
# and its patterns, the `channels` claim (server-side subscriptions),
# user channels (dm:#ana,bob), subscription tokens, and `from` taken from the
# verified identity. Every refusal also checks that nothing was delivered to
# a subscriber that has the right, and nothing stored in history.
import asyncio

import pytest

from authkit import (NO_AUTH_FAILURE_LIMIT, assert_quiet, auth_key, connect, datas,
                     http_history, http_publish, login, marker_is_next, new_secret, next_event,
                     publish, still_open, subscribe, table, token)
from harness import HeraldServer, WSClient, assert_error, runs_async, unique

SECRET = new_secret()
OTHER_SECRET = new_secret()  # signs nothing the server knows

CONFIG = (
    "[engine]\ntype = \"memory\"\n\n"
    + auth_key("app", ["HS256"], secret=SECRET)
    + NO_AUTH_FAILURE_LIMIT
    + table("[defaults]", allow_unknown=False)
    + table("[namespaces.pub]", anonymous=True)
    + table("[namespaces.members]")
    + table("[namespaces.authd]", anonymous=True, subscribe_access="authenticated",
            publish_access="authenticated", history_access="authenticated")
    + table("[namespaces.chat]", subscribe_access="capability", publish_access="capability",
            history_access="capability")
    + table("[namespaces.feed]", anonymous=True, publish_access="none")
    + table("[namespaces.oldfeed]", anonymous=True, client_publish=False)
    + table("[namespaces.user]", subscribe_access="capability", publish_access="none",
            history_access="capability")
    + table("[namespaces.dm]", user_channels=True)
    + table("[namespaces.team]", user_channels=True, subscribe_access="capability",
            publish_access="capability", history_access="capability")
)


@pytest.fixture(scope="module")
def server():
    srv = HeraldServer(CONFIG, name="auth-access", workers=2)
    srv.start()
    yield srv
    srv.stop_checked()


def tok(sub="ana", **claims) -> str:
    return token(SECRET, "HS256", sub=sub, **claims)


async def refused(c: WSClient, msg: dict, code: str, op: str, channel: str) -> dict:
    """msg must be refused with `code`, naming the operation and the channel."""
    reply = await c.call(msg)
    assert_error(reply, code, reply.get("id"))
    assert op in reply["message"] and channel in reply["message"], reply
    return reply


async def refused_all(c: WSClient, channel: str, code: str, ops=("subscribe", "publish",
                                                                   "history")) -> None:
    msgs = {"subscribe": {"type": "subscribe", "channel": channel},
            "publish": {"type": "publish", "channel": channel, "event": "msg",
                        "data": "refused"},
            "history": {"type": "history", "channel": channel}}
    for op in ops:
        await refused(c, msgs[op], code, op, channel)


async def watch(server, channel: str, tok_: str | None = None) -> WSClient:
    w = await login(server, tok_ or tok(sub="watcher", caps={channel: ["subscribe"]}))
    reply = await subscribe(w, channel)
    assert reply["type"] == "subscribed", reply
    return w


async def nothing_happened(server, watcher: WSClient, refused_client: WSClient, channel: str,
                           stored_before: list) -> None:
    """After refusals on `channel`: the watcher's next event is a marker, the
    history holds only `stored_before` and markers, and the refused
    client got nothing and is still connected."""
    await marker_is_next(server, watcher, channel)
    stored = http_history(server, channel)
    assert stored[-1]["event"] == "marker", stored
    assert [e["data"] for e in stored if e["event"] != "marker"] == stored_before
    await assert_quiet(refused_client)
    await still_open(refused_client)


# -- levels -------------------------------------------------------------------------

@runs_async
async def test_public_namespace_without_anonymous_needs_a_user(server):
    ch = unique("members:r")
    anon = await login(server)
    watcher = await watch(server, ch)
    await refused_all(anon, ch, "unauthorized")
    await nothing_happened(server, watcher, anon, ch, [])
    # Any verified user, no caps needed.
    ana = await login(server, tok())
    assert (await subscribe(ana, ch))["type"] == "subscribed"
    assert (await publish(ana, ch, "by ana"))["type"] == "ack"
    assert (await ana.call({"type": "history", "channel": ch}))["type"] == "history"


@runs_async
async def test_authenticated_level_refuses_anonymous_even_when_admitted(server):
    ch = unique("authd:r")
    anon = await login(server)
    watcher = await watch(server, ch)
    await refused_all(anon, ch, "unauthorized")
    await nothing_happened(server, watcher, anon, ch, [])
    ana = await login(server, tok())
    assert (await subscribe(ana, ch))["type"] == "subscribed"
    assert (await publish(ana, ch, "by ana"))["type"] == "ack"
    assert (await next_event(watcher, ch))["data"] == "by ana"
    hist = await ana.call({"type": "history", "channel": ch})
    assert datas(hist["events"])[-1] == "by ana", hist


@runs_async
async def test_capability_level_without_caps_is_forbidden(server):
    ch = unique("chat:r")
    watcher = await watch(server, ch)
    ana = await login(server, tok(caps={"chat:unrelated": ["subscribe", "publish", "history"]}))
    await refused_all(ana, ch, "forbidden")
    await nothing_happened(server, watcher, ana, ch, [])
    anon = await login(server)
    await refused_all(anon, ch, "unauthorized")
    await nothing_happened(server, watcher, anon, ch, [])


@runs_async
async def test_caps_grant_per_operation_and_pattern(server):
    u = unique("t")
    room1, room2, outside = f"chat:{u}-room1", f"chat:{u}-room2", f"chat:{u}"
    ana = await login(server, tok(caps={f"chat:{u}-*": ["subscribe", "publish"],
                                        room1: ["history"]}))
    # room2: the prefix grant only.
    assert (await subscribe(ana, room2))["type"] == "subscribed"
    assert (await publish(ana, room2, "two"))["type"] == "ack"
    assert (await next_event(ana, room2))["data"] == "two"
    await refused(ana, {"type": "history", "channel": room2}, "forbidden", "history", room2)
    # room1: both grants.
    assert (await subscribe(ana, room1))["type"] == "subscribed"
    assert (await publish(ana, room1, "one"))["type"] == "ack"
    assert (await next_event(ana, room1))["data"] == "one"
    hist = await ana.call({"type": "history", "channel": room1})
    assert hist["type"] == "history" and datas(hist["events"]) == ["one"], hist
    # "chat:<u>" does not start with the prefix "chat:<u>-".
    watcher = await watch(server, outside)
    await refused_all(ana, outside, "forbidden")
    await nothing_happened(server, watcher, ana, outside, [])


@pytest.mark.parametrize("pattern", ["*", "chat*", "ch*at:x"])
@runs_async
async def test_wildcards_must_keep_the_namespace(server, pattern):
    ch = unique("chat:wild")
    watcher = await watch(server, ch)
    c, reply = await connect(server, tok(caps={pattern: ["subscribe", "publish", "history"]}))
    if reply["type"] == "error":
        # Refusing such a token outright is fine too.
        assert_error(reply, "unauthorized")
        assert (await c.expect_closed()).code == 4001
    else:
        assert reply["type"] == "connected", reply
        await refused_all(c, ch, "forbidden")
        await nothing_happened(server, watcher, c, ch, [])
    await marker_is_next(server, watcher, ch)


@pytest.mark.parametrize("ns", ["feed", "oldfeed"])
@runs_async
async def test_publish_access_none_leaves_publishing_to_http(server, ns):
    ch = unique(f"{ns}:r")
    anon = await login(server)
    assert (await subscribe(anon, ch))["type"] == "subscribed"
    ana = await login(server, tok(caps={f"{ns}:*": ["subscribe", "publish", "history"]}))
    for c in (anon, ana):
        reply = await publish(c, ch, "refused")
        assert_error(reply, "forbidden")
        assert ch in reply["message"], reply
    status, body = http_publish(server, ch, "from the backend")
    assert status == 200 and body == {"offset": 1}, (status, body)
    ev = await next_event(anon, ch)
    assert ev["data"] == "from the backend" and "from" not in ev, ev
    assert datas(http_history(server, ch)) == ["from the backend"]
    await assert_quiet(anon)


@runs_async
async def test_anonymous_rule_comes_before_publish_none(server):
    ch = unique("user:anon")  # anonymous = false, publish_access = none
    anon = await login(server)
    await refused(anon, {"type": "publish", "channel": ch, "event": "msg", "data": 1},
                  "unauthorized", "publish", ch)
    assert http_history(server, ch) == []


# -- the channels claim -------------------------------------------------------------

@runs_async
async def test_channels_claim_subscribes_at_connect(server):
    u = unique("u")
    mine, also = f"user:{u}", f"user:{u}-alerts"
    c = await WSClient.open(server)
    await c.send({"type": "connect", "id": 1, "token": tok(sub=u, channels=[mine, also])})
    connected = await c.recv()
    assert connected["type"] == "connected" and connected["user"] == u, connected
    subs = [await c.recv(), await c.recv()]
    for s in subs:
        assert s["type"] == "subscribed" and "id" not in s, s
        assert s["events"] == [] and "recovered" not in s, s
    assert sorted(s["channel"] for s in subs) == sorted([mine, also]), subs
    # Events published there reach it.
    status, _ = http_publish(server, mine, {"note": 1})
    assert status == 200
    ev = await next_event(c, mine)
    assert ev["data"] == {"note": 1}, ev
    # The claim grants subscribe and history on those channels (not publish:
    # the namespace's publish_access is none anyway).
    hist = await c.call({"type": "history", "channel": mine})
    assert hist["type"] == "history" and datas(hist["events"]) == [{"note": 1}], hist
    reply = await subscribe(c, mine)
    assert_error(reply, "bad_request")  # already subscribed
    assert (await c.call({"type": "unsubscribe", "channel": also}))["type"] == "unsubscribed"
    assert (await subscribe(c, also))["type"] == "subscribed"
    # Someone else has no right there: nothing reaches them.
    bob = await login(server, tok(sub="bob"))
    await refused_all(bob, mine, "forbidden", ops=("subscribe", "history"))
    await marker_is_next(server, c, mine)
    await assert_quiet(bob)


# -- user channels ---------------------------------------------------------------

@runs_async
async def test_user_channels_admit_only_the_listed_users(server):
    a, b = unique("ana"), unique("bob")
    ch = f"dm:#{a},{b}"
    ana = await login(server, tok(sub=a))
    bob = await login(server, tok(sub=b))
    assert (await subscribe(bob, ch))["type"] == "subscribed"
    assert (await subscribe(ana, ch))["type"] == "subscribed"
    assert (await publish(ana, ch, "hi bob"))["type"] == "ack"
    ev = await next_event(bob, ch)
    assert ev["data"] == "hi bob" and ev["from"]["user"] == a, ev
    assert (await next_event(ana, ch))["data"] == "hi bob"
    hist = await bob.call({"type": "history", "channel": ch})
    assert datas(hist["events"]) == ["hi bob"], hist
    # Others: a third user (also one whose name is a prefix of a listed
    # one) is forbidden, an anonymous connection unauthorized.
    for sub in (unique("carol"), a[:-1], f"{a},{b}"):
        other = await login(server, tok(sub=sub))
        await refused_all(other, ch, "forbidden")
        await assert_quiet(other)
    anon = await login(server)
    await refused_all(anon, ch, "unauthorized")
    await marker_is_next(server, bob, ch)
    assert datas(http_history(server, ch))[:-1] == ["hi bob"]
    await assert_quiet(anon)
    # A capability that grants the operation opens it to someone else too.
    mod = await login(server, tok(sub=unique("mod"), caps={"dm:*": ["subscribe", "history"]}))
    assert (await subscribe(mod, ch))["type"] == "subscribed"
    hist = await mod.call({"type": "history", "channel": ch})
    assert hist["type"] == "history", hist
    await refused(mod, {"type": "publish", "channel": ch, "event": "msg", "data": "no"},
                  "forbidden", "publish", ch)
    mark = await marker_is_next(server, bob, ch)
    assert (await next_event(mod, ch))["data"] == mark["data"]


@runs_async
async def test_user_channels_need_no_caps_even_at_capability_level(server):
    a, b = unique("ana"), unique("bob")
    ch = f"team:#{a},{b}"
    ana = await login(server, tok(sub=a))
    assert (await subscribe(ana, ch))["type"] == "subscribed"
    assert (await publish(ana, ch, "x"))["type"] == "ack"
    assert (await next_event(ana, ch))["data"] == "x"
    carol = await login(server, tok(sub=unique("carol")))
    await refused_all(carol, ch, "forbidden")
    await marker_is_next(server, ana, ch)
    await assert_quiet(carol)


@runs_async
async def test_channel_names_may_contain_hash_and_comma(server):
    ch = unique("pub:a#b,c")
    c = await login(server)
    reply = await subscribe(c, ch)
    assert reply["type"] == "subscribed" and reply["channel"] == ch, reply
    assert (await publish(c, ch, 1))["type"] == "ack"
    assert (await next_event(c, ch))["channel"] == ch
    assert datas(http_history(server, ch)) == [1]


# -- subscription tokens -----------------------------------------------------------

def sub_tok(sub: str, channel: str, secret: str = SECRET, **claims) -> str:
    claims.setdefault("ttl", 300)
    return token(secret, "HS256", sub=sub, channel=channel, **claims)


@runs_async
async def test_subscription_token_grants_its_channel(server):
    ch = unique("chat:s")
    watcher = await watch(server, ch)
    ana = await login(server, tok())
    # Default grant: subscribe, history and presence, not publish.
    reply = await subscribe(ana, ch, token=sub_tok("ana", ch))
    assert reply["type"] == "subscribed", reply
    hist = await ana.call({"type": "history", "channel": ch})
    assert hist["type"] == "history", hist
    await refused(ana, {"type": "publish", "channel": ch, "event": "msg", "data": "no"},
                  "forbidden", "publish", ch)
    await marker_is_next(server, watcher, ch)
    assert (await next_event(ana, ch))["event"] == "marker"
    assert [e["event"] for e in http_history(server, ch)] == ["marker"]
    # caps in the token: exactly these operations.
    ch2 = unique("chat:s2")
    reply = await subscribe(ana, ch2, token=sub_tok("ana", ch2, caps=["subscribe", "publish"]))
    assert reply["type"] == "subscribed", reply
    assert (await publish(ana, ch2, "yes"))["type"] == "ack"
    assert (await next_event(ana, ch2))["data"] == "yes"
    await refused(ana, {"type": "history", "channel": ch2}, "forbidden", "history", ch2)


@runs_async
async def test_leaked_or_bad_subscription_tokens_are_refused(server):
    ch, other_ch = unique("chat:leak"), unique("chat:other")
    watcher = await watch(server, ch)
    ana = await login(server, tok())
    cases = [
        ("forbidden", sub_tok("bob", ch)),             # another user's token
        ("forbidden", sub_tok("ana", other_ch)),        # another channel's token
        ("unauthorized", sub_tok("ana", ch, secret=OTHER_SECRET)),  # bad signature
        ("unauthorized", sub_tok("ana", ch, ttl=-60)),  # expired beyond leeway
        ("unauthorized", token(None, "none", sub="ana", channel=ch)),
    ]
    for code, t in cases:
        reply = await subscribe(ana, ch, token=t)
        assert_error(reply, code, reply.get("id"))
        if code == "unauthorized":
            assert reply["message"].startswith("subscription token"), reply
    await nothing_happened(server, watcher, ana, ch, [])
    # Publishing with a token field does nothing either.
    reply = await publish(ana, ch, "x", token=sub_tok("ana", ch, caps=["publish"]))
    assert_error(reply, "forbidden")
    await nothing_happened(server, watcher, ana, ch, [])


@runs_async
async def test_commands_after_a_subscription_token_wait_for_its_verification(server):
    ch = unique("chat:order")
    ana = await login(server, tok())
    # Sent together: the publish must be judged with the subscription's grant.
    await ana.send({"type": "subscribe", "id": "s", "channel": ch,
                    "token": sub_tok("ana", ch, caps=["subscribe", "publish"])})
    await ana.send({"type": "publish", "id": "p", "channel": ch, "event": "msg", "data": 1})
    first = await ana.recv()
    assert first["type"] == "subscribed" and first["id"] == "s", first
    rest = [await ana.recv(), await ana.recv()]
    assert sorted(m["type"] for m in rest) == ["ack", "event"], rest


# -- from -----------------------------------------------------------------------------

@runs_async
async def test_from_is_the_verified_identity(server):
    ch = unique("members:from")
    ana = await login(server, tok(sub="ana-from"))
    assert (await subscribe(ana, ch))["type"] == "subscribed"
    # A client cannot set `from` (or claim another user) itself.
    reply = await ana.call({"type": "publish", "channel": ch, "event": "msg", "data": 1,
                            "from": {"client": "x", "user": "admin"}, "user": "admin"})
    assert reply["type"] == "ack", reply
    ev = await next_event(ana, ch)
    assert ev["from"] == {"client": ana.client_id, "user": "ana-from"}, ev
    stored = http_history(server, ch)
    assert stored[0]["from"] == {"client": ana.client_id, "user": "ana-from"}, stored
    # Ephemeral events too.
    reply = await publish(ana, ch, 2, ephemeral=True, **{"from": {"user": "admin"}})
    assert reply["type"] == "ack", reply
    ev = await next_event(ana, ch)
    assert ev["from"] == {"client": ana.client_id, "user": "ana-from"}, ev


async def check_info(server, ch: str) -> None:
    info = {"name": "Ana", "avatar": "https://example.test/a.png", "n": [1, 2.5, None]}
    ana = await login(server, tok(sub="ana-info", info=info))
    assert (await subscribe(ana, ch))["type"] == "subscribed"
    assert (await publish(ana, ch, 1))["type"] == "ack"
    ev = await next_event(ana, ch)
    assert ev["from"] == {"client": ana.client_id, "user": "ana-info", "info": info}, ev
    # It is stored with the event: history over WebSocket and HTTP.
    hist = await ana.call({"type": "history", "channel": ch})
    assert hist["events"][0]["from"] == ev["from"], hist
    assert http_history(server, ch)[0]["from"] == ev["from"]
    # And for recovery.
    late = await login(server, tok(sub="late-info"))
    first = await subscribe(late, ch, history=1)
    assert first["events"][0]["from"] == ev["from"], first
    await late.call({"type": "unsubscribe", "channel": ch})
    rec = await subscribe(late, ch, recover={"epoch": first["epoch"], "offset": 0})
    assert rec.get("recovered") is True and rec["events"][0]["from"] == ev["from"], rec
    # A connection whose token has no info publishes without it.
    bob = await login(server, tok(sub="bob-info"))
    assert (await publish(bob, ch, 2))["type"] == "ack"
    ev = await next_event(ana, ch)
    assert ev["from"] == {"client": bob.client_id, "user": "bob-info"}, ev


@runs_async
async def test_info_claim_appears_as_from_info(server):
    await check_info(server, unique("members:info"))


@runs_async
async def test_info_claim_is_stored_by_the_sqlite_engine():
    srv = HeraldServer(CONFIG.replace('type = "memory"', 'type = "sqlite"'),
                       name="auth-access-sqlite", workers=2)
    srv.start()
    try:
        await check_info(srv, unique("members:info"))
        await asyncio.to_thread(srv.stop_checked)
    finally:
        srv.kill()
