# Helpers for the tests of Herald's Redis scripts (src/engine/redis/scripts,
# LAYOUT.md there): a real redis-server on a free 127.0.0.1 port with its own
# temp dir, the channel key names (hash tag and escaping as the C++ engine
# must build them), a script runner that loads with SCRIPT LOAD and reloads
# on NOSCRIPT (as the engine will), and a decoder of the PUBLISH payload.
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[3]
SCRIPTS_DIR = REPO / "src" / "engine" / "redis" / "scripts"
PREFIX = "herald"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server without persistence in a temp dir; `cluster=True` starts a
    one-node cluster owning every slot (so scripts get Redis Cluster's slot
    checks)."""

    def __init__(self, cluster: bool = False):
        self.dir = tempfile.mkdtemp(prefix="herald-redis-")
        self.port = free_port()
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--appendonly", "no",
                "--logfile", os.path.join(self.dir, "redis.log")]
        if cluster:
            # the bus port defaults to port + 10000, which may not exist
            args += ["--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                     "--cluster-config-file", os.path.join(self.dir, "nodes.conf")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.client = self.connect()
        deadline = time.time() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.time() > deadline or self.proc.poll() is not None:
                    log = self.log()
                    self.stop()
                    raise RuntimeError("redis-server did not start: " + log)
                time.sleep(0.02)
        if cluster:
            self.client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            while b"cluster_state:ok" not in self.client.execute_command("CLUSTER", "INFO"):
                if time.time() > deadline:
                    raise RuntimeError("cluster did not become ok")
                time.sleep(0.05)

    def connect(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def log(self) -> str:
        try:
            return Path(self.dir, "redis.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self):
        """Stops redis-server (SIGTERM, then SIGKILL after 5 s), keeping its
        directory."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def tag(channel: str) -> str:
    """The hash tag of a channel: its name with '%' and '}' percent-escaped,
    so that the tag ends at our own '}' whatever the name holds."""
    return channel.replace("%", "%25").replace("}", "%7D")


def channel_keys(channel: str) -> list[str]:
    """KEYS of every script, in order: meta, stream, keys, keyq."""
    base = f"{PREFIX}:{{{tag(channel)}}}:"
    return [base + "meta", base + "stream", base + "keys", base + "keyq"]


def pubsub_channel(channel: str) -> str:
    return f"{PREFIX}:{{{tag(channel)}}}:events"


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XModem), as Redis Cluster's key slot."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key: str | bytes) -> int:
    k = key.encode() if isinstance(key, str) else key
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    return crc16(k) % 16384


class Scripts:
    """EVALSHA of the scripts, loaded with SCRIPT LOAD and loaded again after
    NOSCRIPT (SCRIPT FLUSH, a restarted or failed-over Redis)."""

    NAMES = ("publish", "read", "remove")

    def __init__(self, client: redis.Redis):
        self.client = client
        self.source = {n: (SCRIPTS_DIR / f"{n}.lua").read_text() for n in self.NAMES}
        self.sha: dict[str, str] = {}
        self.loads = 0
        self.load()

    def load(self):
        for name, src in self.source.items():
            self.sha[name] = self.client.script_load(src)
        self.loads += 1

    def run(self, name: str, keys: list[str], args: list, client: redis.Redis | None = None):
        c = client or self.client
        try:
            return c.evalsha(self.sha[name], len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.load()
            return c.evalsha(self.sha[name], len(keys), *keys, *args)

    def publish(self, channel: str, *, ts: int, event: str = "m", data: str = "{}",
                from_client: str = "", from_user: str = "", from_info: str = "",
                max_events: int = 1000, max_age_ms: int = 0, key: str = "",
                fingerprint: int = 0, window_ms: int = 120000, max_keys: int = 10000,
                pubsub: str | None = None, command: str = "PUBLISH", idle_ttl_ms: int = 86400000,
                epoch: str = "e0000000", client: redis.Redis | None = None,
                origin: str = "node-test"):
        """publish.lua; `key` is the key's 64-bit hash as decimal (as the
        engine passes it); `origin` the publishing node's id (first field of
        the payload). Returns (status, offset, epoch, created_ms)."""
        r = self.run("publish", channel_keys(channel),
                     [epoch, ts, event, data, from_client, from_user, from_info, max_events,
                      max_age_ms, key, fingerprint, window_ms, max_keys,
                      "" if pubsub is None else pubsub, command, idle_ttl_ms, origin], client)
        return (r[0].decode(), r[1], r[2].decode(), r[3])

    def read(self, channel: str, *, now: int, limit: int = 100, before: int | None = None,
             after: int | None = None, max_events: int = 1000, max_age_ms: int = 0,
             idle_ttl_ms: int = 86400000, epoch: str = "e0000000"):
        """read.lua, as a dict; events as tuples (offset, ts, event, data,
        from_client, from_user, from_info) with str fields."""
        r = self.run("read", channel_keys(channel),
                     [epoch, now, limit, "" if before is None else before,
                      "" if after is None else after, max_events, max_age_ms, idle_ttl_ms])
        events = [(e[0], e[1]) + tuple(x.decode() for x in e[2:]) for e in r[4]]
        return {"epoch": r[0].decode(), "last": r[1], "first": r[2], "created": r[3],
                "events": events}

    def remove(self, channel: str, epoch: str, idle_ttl_ms: int = 86400000):
        r = self.run("remove", channel_keys(channel), [epoch, idle_ttl_ms])
        return (r[0].decode(), r[1].decode())


def decode_payload(payload: bytes) -> dict:
    """A message on a channel's pub/sub channel (LAYOUT.md, "PUBLISH payload"):
    a 2-byte kind then netstrings (<decimal length>:<bytes>,), nothing after:
    b"H2" (an event stored by publish.lua: 9 fields), b"E2" (an ephemeral
    event another node broadcast: 7), b"R2" (a reset: 2), b"J2" or b"L2" (a
    presence join or leave: 5). The dict has "kind" ("H2", "E2", "R2", "J2",
    "L2") and the fields by name."""
    names = {
        b"H2": ("origin", "offset", "ts", "epoch", "event", "data", "from_client", "from_user",
                "from_info"),
        b"E2": ("origin", "ts", "event", "data", "from_client", "from_user", "from_info"),
        b"R2": ("origin", "reason"),
        b"J2": ("origin", "client", "user", "info", "user_edge"),
        b"L2": ("origin", "client", "user", "info", "user_edge"),
    }.get(payload[:2])
    if names is None:
        raise ValueError("unknown payload version")
    pos, fields = 2, []
    for _ in names:
        colon = payload.index(b":", pos)
        digits = payload[pos:colon]
        if not digits.isdigit() or (len(digits) > 1 and digits[:1] == b"0"):
            raise ValueError("bad netstring length")
        n = int(digits)
        start = colon + 1
        fields.append(payload[start:start + n])
        if payload[start + n:start + n + 1] != b",":
            raise ValueError("netstring without ','")
        pos = start + n + 1
    if pos != len(payload):
        raise ValueError("trailing bytes")
    out = {k: v.decode() for k, v in zip(names, fields)}
    out["kind"] = payload[:2].decode()
    for k in ("offset", "ts"):
        if k in out:
            out[k] = int(out[k])
    return out
