# Herald on Redis Cluster (engine.redis_cluster = true, issue 13 items 2, 3,
# 7): a real 3-master cluster of redis-server processes started by the test
# (each on free ports, its own temp dir, slots split in thirds, joined with
# CLUSTER MEET) and 3 real herald nodes given one master as their seed.
# What must hold: channels whose slots live on every master each have one
# ordered stream (its keys on its slot's master only); publishers on every
# node, subscribers on every node see exactly the channel's history (no gap,
# no duplicate, offset order); history and recovery work from any node; and
# moving a busy channel's slot to another master while it is published to
# (CLUSTER SETSLOT MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE) loses nothing
# acknowledged while subscribers stay exact; a channel's master killed and
# its replica promoted is followed (publishes `unavailable` meanwhile, then
# accepted; subscribers exact); a seed that is no cluster node, or a URL
# with a db, is refused at start with nothing stored.
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from harness import HeraldServer, ServerError, WSClient, http_publish, runs_async, toml_config, unique
from redis_kit import free_port
from test_redis_nodes import check_equals_history, collect, history, publish_everywhere_and_check, \
    start_nodes, stop_nodes, subscribe_all


class RedisCluster:
    """`n` redis-server masters in one cluster, slots split evenly."""

    def __init__(self, n: int = 3):
        self.dir = tempfile.mkdtemp(prefix="herald-cluster-")
        # Every port (client and bus) chosen before any server binds one,
        # and distinct: a bus port chosen later could be a later node's port.
        ports: list[int] = []
        while len(ports) < 2 * n:
            p = free_port()
            if p not in ports:
                ports.append(p)
        self.ports, self._bus_ports = ports[:n], ports[n:]
        self.procs = []
        try:
            self.clients, self.buses = [], []
            for p in self.ports:
                self._start(p)
            per = 16384 // n
            for i, c in enumerate(self.clients):
                last = 16383 if i == n - 1 else (i + 1) * per - 1
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
            for i in range(1, n):
                self.clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[i],
                                                self.buses[i])
            deadline = time.time() + 20
            while not all(self._ok(c, n) for c in self.clients):
                assert time.time() < deadline, "cluster did not become ok: " + self.log()
                time.sleep(0.05)
            self.ids = [c.execute_command("CLUSTER", "MYID").decode() for c in self.clients]
        except BaseException:
            self.stop()
            raise

    def _start(self, p: int) -> None:
        bus = self._bus_ports.pop(0) if self._bus_ports else free_port()
        self.procs.append(subprocess.Popen(
            ["redis-server", "--port", str(p), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-port", str(bus),
             "--cluster-config-file", os.path.join(self.dir, f"nodes-{p}.conf"),
             "--cluster-node-timeout", "1000",
             "--dir", self.dir, "--appendonly", "no", "--save", "",
             "--logfile", os.path.join(self.dir, f"redis-{p}.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        self._wait_ping(p)
        self.clients.append(self.connect(p))
        self.buses.append(bus)

    def add_replica(self, master: int) -> int:
        """Starts a replica of master `master`; returns its index."""
        p = free_port()
        self.ports.append(p)
        self._start(p)
        r = self.clients[-1]
        r.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0], self.buses[0])
        deadline = time.time() + 20
        while self.ids[master].encode() not in r.execute_command("CLUSTER", "NODES"):
            assert time.time() < deadline, "replica did not meet the cluster"
            time.sleep(0.05)
        r.execute_command("CLUSTER", "REPLICATE", self.ids[master])
        self.wait_replicated(master, len(self.ports) - 1)
        return len(self.ports) - 1

    def wait_replicated(self, master: int, replica: int) -> None:
        deadline = time.time() + 20
        while True:
            m = self.clients[master].info("replication")
            r = self.clients[replica].info("replication")
            if r.get("master_link_status") == "up" and \
                    r.get("slave_repl_offset") == m.get("master_repl_offset"):
                return
            assert time.time() < deadline, f"replica not in sync: {m} {r}"
            time.sleep(0.05)

    def kill(self, i: int) -> None:
        self.procs[i].kill()
        self.procs[i].wait()

    @staticmethod
    def _ok(c: redis.Redis, n: int) -> bool:
        info = c.execute_command("CLUSTER", "INFO").decode()
        return "cluster_state:ok" in info and f"cluster_known_nodes:{n}" in info

    def _wait_ping(self, port: int) -> None:
        deadline = time.time() + 10
        c = self.connect(port)
        while True:
            try:
                c.ping()
                return
            except redis.ConnectionError:
                assert time.time() < deadline, "redis-server did not start: " + self.log()
                time.sleep(0.02)

    def connect(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)

    def slot(self, key: str) -> int:
        return self.clients[0].execute_command("CLUSTER", "KEYSLOT", key)

    def owner(self, slot: int, via: int = 0) -> int:
        """Index of the master serving `slot` (as node `via` sees it)."""
        for start, end, master, *_ in self.clients[via].execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return self.ports.index(int(master[1]))
        raise AssertionError(f"slot {slot} unserved")

    def move_slot(self, slot: int, dst: int, pause: float = 0.0) -> None:
        """Moves `slot` and its keys to master `dst`, as redis-cli --cluster
        reshard does (IMPORTING, MIGRATING, MIGRATE in batches, SETSLOT NODE),
        waiting `pause` seconds in each state (MIGRATING with the keys on the
        source, then on the target) so that traffic meets both."""
        src = self.owner(slot)
        s, d = self.clients[src], self.clients[dst]
        d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.ids[src])
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.ids[dst])
        time.sleep(pause)
        while True:
            keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10)
            if not keys:
                break
            s.execute_command("MIGRATE", "127.0.0.1", self.ports[dst], "", 0, 5000, "KEYS", *keys)
        time.sleep(pause)
        for c in (d, s) + tuple(c for i, c in enumerate(self.clients) if i not in (src, dst)):
            c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", self.ids[dst])

    def log(self) -> str:
        out = ""
        for p in getattr(self, "ports", []):
            try:
                out += f"--- {p}\n" + Path(self.dir, f"redis-{p}.log").read_text(
                    errors="replace")[-1500:]
            except OSError:
                pass
        return out

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_cluster():
    c = RedisCluster(3)
    try:
        yield c
    finally:
        c.stop()


def cluster_config(seed_port: int) -> str:
    return toml_config(
        engine={"type": "redis", "redis_url": f"redis://127.0.0.1:{seed_port}",
                "redis_cluster": True, "redis_command_timeout_ms": 1000,
                "redis_reconnect_max_ms": 200},
        history={"size": 10000},
        defaults={"allow_unknown": True},
    )


def channels_on_every_master(cluster: RedisCluster, per_master: int, prefix: str) -> list[str]:
    """Fresh channel names, `per_master` of them served by each master."""
    want = {i: per_master for i in range(len(cluster.ports))}
    out = []
    while any(want.values()):
        ch = unique(prefix)
        m = cluster.owner(cluster.slot(ch))
        if want[m]:
            want[m] -= 1
            out.append(ch)
    return out


@runs_async
async def test_cluster_channels_on_every_master_one_ordered_stream_each(redis_cluster):
    cluster = redis_cluster
    nodes = start_nodes(cluster.ports[0], 3, "cluster", cluster_config(cluster.ports[0]))
    try:
        channels = channels_on_every_master(cluster, 2, "room:c")
        subs = []
        for node in nodes:
            c, _ = await WSClient.connected(node)
            await subscribe_all(c, channels)
            subs.append(c)

        per_publisher = 15  # per channel, from a WebSocket and an HTTP publisher on each node
        await publish_everywhere_and_check(nodes, subs, channels, per_publisher)
        total = 2 * len(nodes) * per_publisher

        # Each channel's keys are on its slot's master, and nowhere else.
        for ch in channels:
            key = f"herald:{{{ch}}}:stream"
            m = cluster.owner(cluster.slot(key))
            assert cluster.clients[m].xlen(key) == total, ch
            for i, c in enumerate(cluster.clients):
                if i != m:
                    with pytest.raises(redis.ResponseError, match="MOVED"):
                        c.xlen(key)

        # Recovery from any node: missed on node 0, recovered on node 2.
        ch = channels[-1]
        c0, _ = await WSClient.connected(nodes[0])
        sub = await c0.call({"type": "subscribe", "channel": ch})
        epoch, seen = sub["epoch"], sub["offset"]
        await c0.close()
        for i in range(5):
            assert http_publish(nodes[1], ch, f"missed-{i}")[0] == 200
        c2, _ = await WSClient.connected(nodes[2])
        rec = await c2.call({"type": "subscribe", "channel": ch,
                             "recover": {"epoch": epoch, "offset": seen}})
        assert rec["recovered"] is True, rec
        assert [e["data"] for e in rec["events"]] == [f"missed-{i}" for i in range(5)], rec
        await c2.close()
    finally:
        stop_nodes(nodes)


@runs_async
async def test_cluster_slot_migration_during_publishing_loses_nothing(redis_cluster):
    cluster = redis_cluster
    nodes = start_nodes(cluster.ports[0], 3, "cluster-move", cluster_config(cluster.ports[0]))
    try:
        busy, quiet = channels_on_every_master(cluster, 1, "room:m")[:2]
        slot = cluster.slot(busy)
        src = cluster.owner(slot)
        dst = (src + 1) % 3
        subs = []
        for node in nodes:
            c, _ = await WSClient.connected(node)
            await subscribe_all(c, [busy, quiet])
            subs.append(c)

        n = 200  # per publisher
        acked: dict[str, list] = {busy: [], quiet: []}
        refused = []
        moving = asyncio.Event()

        async def publisher(node: HeraldServer, tag: str):
            c, _ = await WSClient.connected(node)
            await moving.wait()
            for i in range(n):
                ch = quiet if i % 10 == 9 else busy
                await c.send({"type": "publish", "id": f"{tag}-{i}", "channel": ch,
                              "event": "e", "data": f"{tag}-{i}"})
                if i % 5 == 4:  # about 1 s of publishing, while the slot moves
                    await asyncio.sleep(0.025)
            for _ in range(n):
                a = await c.recv()
                i = int(a["id"].split("-")[1])
                ch = quiet if i % 10 == 9 else busy
                if a["type"] == "ack":
                    acked[ch].append(f"{tag}-{i}")
                else:
                    assert a.get("code") == "unavailable", a
                    refused.append(a)
            await c.close()

        async def mover():
            for i in range(5):  # the channel exists (keys on the source) before
                assert http_publish(nodes[i % 3], busy, f"before-{i}")[0] == 200
                acked[busy].append(f"before-{i}")
            moving.set()
            await asyncio.sleep(0.05)
            await asyncio.to_thread(cluster.move_slot, slot, dst, 0.3)

        t0 = time.monotonic()
        await asyncio.gather(mover(), *(publisher(nd, f"p{k}") for k, nd in enumerate(nodes)))
        print(f"publishing: {time.monotonic() - t0:.2f}s")
        assert cluster.owner(slot) == dst
        # Publishing after the move works from every node.
        for k, node in enumerate(nodes):
            status, body = http_publish(node, busy, f"after-{k}")
            assert status == 200, body
            acked[busy].append(f"after-{k}")

        stored = {ch: [e["data"] for e in history(nodes[1], ch)] for ch in (busy, quiet)}
        for ch in (busy, quiet):
            assert set(acked[ch]) <= set(stored[ch]), f"{ch}: acknowledged but not stored"
            assert len(stored[ch]) == len(set(stored[ch])), f"{ch}: stored twice"
        # While the slot moves, the channel's scripts get TRYAGAIN (their
        # optional keys do not exist) and ASK, and are sent again; at the
        # switch (SETSLOT NODE) a channel's retries go one at a time, so none
        # has to be refused for a later one that ran first.
        assert not refused, f"{len(refused)} refused: {refused[:3]}"
        # Each publisher's events are stored in the order it sent them: a
        # redirected publish never overtook an earlier one of its channel.
        for k in range(3):
            mine = [int(d.split("-")[1]) for d in stored[busy] if d.startswith(f"p{k}-")]
            assert mine == sorted(mine), f"publisher {k}: stored out of order: {mine}"
        for ch in (busy, quiet):
            assert not {a["id"] for a in refused} & set(stored[ch]), f"{ch}: refused but stored"
        print(f"migration: {sum(map(len, acked.values()))} acknowledged, {len(refused)} refused")
        want = {ch: len(stored[ch]) for ch in (busy, quiet)}
        for k, c in enumerate(subs):
            t0 = time.monotonic()
            got = await collect(c, want, timeout=30)
            print(f"collect {k}: {time.monotonic() - t0:.2f}s")
            check_equals_history(nodes[(k + 2) % 3], got, f"subscriber on node {k}:")
            await c.close()
        key = f"herald:{{{busy}}}:stream"
        assert cluster.clients[dst].xlen(key) == len(stored[busy])
    finally:
        stop_nodes(nodes)


def test_cluster_refuses_a_seed_that_is_not_a_cluster_node_or_selects_a_db(redis_server,
                                                                          redis_cluster):
    for url, why in ((f"redis://127.0.0.1:{redis_server.port}", "not a Redis Cluster node"),
                     (f"redis://127.0.0.1:{redis_cluster.ports[0]}/2", "db 0 only")):
        cfg = toml_config(engine={"type": "redis", "redis_url": url, "redis_cluster": True},
                          defaults={"allow_unknown": True})
        srv = HeraldServer(cfg, name="cluster-refused")
        with pytest.raises(ServerError):
            srv.start()
        assert why in srv.log_text(), srv.log_text()[-2000:]
        # Nothing was stored in the cluster.
        for c in redis_cluster.clients:
            assert c.dbsize() == 0


@runs_async
async def test_cluster_failover_of_a_channels_master_is_followed(redis_cluster):
    """The master of a busy channel dies (kill -9) once its replica holds
    everything; the cluster promotes the replica. Publishes fail with
    `unavailable` (a client retries them) until the nodes find the new
    master; subscribers on every node end with exactly the history."""
    cluster = redis_cluster
    ch = channels_on_every_master(cluster, 1, "room:f")[1]  # not on the seed's master
    slot = cluster.slot(ch)
    master = cluster.owner(slot)
    replica = cluster.add_replica(master)
    nodes = start_nodes(cluster.ports[0], 3, "cluster-failover", cluster_config(cluster.ports[0]))
    try:
        subs = []
        for node in nodes:
            c, _ = await WSClient.connected(node)
            await subscribe_all(c, [ch])
            subs.append(c)
        for i in range(20):
            assert http_publish(nodes[i % 3], ch, f"a-{i}")[0] == 200
        await asyncio.to_thread(cluster.wait_replicated, master, replica)
        cluster.kill(master)
        t0 = time.monotonic()
        refused = 0
        for i in range(20):  # as a client does: retry while `unavailable`
            while True:
                status, body = await asyncio.to_thread(http_publish, nodes[i % 3], ch, f"b-{i}")
                if status == 200:
                    break
                assert status == 503 and body["code"] == "unavailable", body
                assert time.monotonic() - t0 < 20, "the new master was not found"
                refused += 1
                await asyncio.sleep(0.05)
        survivor = next(i for i in range(3) if i != master)
        assert cluster.owner(slot, via=survivor) == replica
        print(f"failover: publishing resumed after {time.monotonic() - t0:.1f}s, {refused} refused")
        stored = [e["data"] for e in history(nodes[2], ch)]
        assert stored == [f"a-{i}" for i in range(20)] + [f"b-{i}" for i in range(20)]
        for k, c in enumerate(subs):
            got = await collect(c, {ch: 40}, timeout=20)
            check_equals_history(nodes[(k + 1) % 3], got, f"subscriber on node {k}:")
            await c.close()
    finally:
        stop_nodes(nodes)
