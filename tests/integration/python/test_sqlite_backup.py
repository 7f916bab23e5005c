# Restoring a backup of the sqlite engine's database against the real binary:
# a `sqlite3 .backup` taken while the server runs, then more publishes, then
# the backup restored over herald.db. The server must not hand out the
# offsets published after the backup again under the old epoch: every
# channel gets a new epoch, clients recovering with the old one get
# `recovered: false`, and history is the backup's. A backup after which
# nothing was published keeps the epoch.
import os
import shutil
import subprocess

from harness import HeraldServer, WSClient, runs_async, toml_config, unique

# The sqlite3 CLI, installed by scripts/install-deps.sh (what operators use).
SQLITE3 = shutil.which("sqlite3") or "sqlite3"


def backup(data_dir: str, dest: str) -> None:
    subprocess.run([SQLITE3, os.path.join(data_dir, "herald.db"), f".backup '{dest}'"],
                   check=True, timeout=30)


def restore(data_dir: str, src: str) -> None:
    db = os.path.join(data_dir, "herald.db")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    shutil.copyfile(src, db)


async def publish(c: WSClient, channel: str, data) -> int:
    r = await c.call({"type": "publish", "channel": channel, "event": "e", "data": data})
    assert r["type"] == "ack", r
    return r["offset"]


async def history(c: WSClient, channel: str) -> dict:
    r = await c.call({"type": "history", "channel": channel, "limit": 1000})
    assert r["type"] == "history", r
    return r


@runs_async
async def test_restored_backup_gets_a_new_epoch_instead_of_reusing_offsets(tmp_path):
    data_dir = str(tmp_path / "data")
    saved = str(tmp_path / "backup.db")
    config = toml_config(engine={"type": "sqlite", "data_dir": data_dir})
    ch, later = unique("bk"), unique("bk-later")
    srv = HeraldServer(config, name="sqlite-backup-1").start()
    try:
        c, _ = await WSClient.connected(srv)
        for i in range(1, 6):
            assert await publish(c, ch, i) == i
        epoch = (await history(c, ch))["epoch"]
        # A subscriber of a channel that is still empty at the backup.
        s, _ = await WSClient.connected(srv)
        sub = await s.call({"type": "subscribe", "channel": later})
        assert sub["offset"] == 0 and sub["epoch"] == epoch, sub
        backup(data_dir, saved)
        for i in range(6, 11):  # after the backup: lost by the restore
            assert await publish(c, ch, i) == i
        assert await publish(c, later, "x") == 1
        await c.close()
        await s.close()
    finally:
        srv.stop_checked()

    restore(data_dir, saved)
    srv2 = HeraldServer(config, name="sqlite-backup-2").start()
    try:
        assert "every channel starts a new epoch" in srv2.log_text(), srv2.log_tail()
        c, _ = await WSClient.connected(srv2)
        h = await history(c, ch)
        assert h["epoch"] != epoch, "offsets 6..10 would be given again under the old epoch"
        assert h["offset"] == 5 and [e["data"] for e in h["events"]] == [1, 2, 3, 4, 5], h
        new_epoch = h["epoch"]
        # A client that saw offset 10 (or 1 on the later channel) cannot
        # recover: it must refetch, not get other events under those offsets.
        for channel, offset in ((ch, 10), (ch, 3), (later, 1)):
            r = await c.call({"type": "subscribe", "channel": channel,
                              "recover": {"epoch": epoch, "offset": offset}})
            assert r["type"] == "subscribed" and r["recovered"] is False, r
            assert r["epoch"] == new_epoch, r
            await c.call({"type": "unsubscribe", "channel": channel})
        # Offsets go on from the backup's, under the new epoch.
        assert await publish(c, ch, "new") == 6
        assert await publish(c, later, "new") == 1
        h = await history(c, ch)
        assert h["epoch"] == new_epoch and h["offset"] == 6
        await c.close()
    finally:
        srv2.stop_checked()

    # The renewal is recorded: the next restart keeps the new epoch.
    srv3 = HeraldServer(config, name="sqlite-backup-3").start()
    try:
        assert "new epoch" not in srv3.log_text(), srv3.log_tail()
        c, _ = await WSClient.connected(srv3)
        h = await history(c, ch)
        assert h["epoch"] == new_epoch and h["offset"] == 6, h
        await c.close()
    finally:
        srv3.stop_checked()


@runs_async
async def test_backup_with_nothing_published_after_it_keeps_the_epoch(tmp_path):
    data_dir = str(tmp_path / "data")
    saved = str(tmp_path / "backup.db")
    config = toml_config(engine={"type": "sqlite", "data_dir": data_dir})
    ch = unique("bk-same")
    srv = HeraldServer(config, name="sqlite-backup-same").start()
    try:
        c, _ = await WSClient.connected(srv)
        for i in range(1, 4):
            await publish(c, ch, i)
        epoch = (await history(c, ch))["epoch"]
        backup(data_dir, saved)
        await c.close()
    finally:
        srv.stop_checked()
    restore(data_dir, saved)
    srv2 = HeraldServer(config, name="sqlite-backup-same-2").start()
    try:
        c, _ = await WSClient.connected(srv2)
        r = await c.call({"type": "subscribe", "channel": ch,
                          "recover": {"epoch": epoch, "offset": 1}})
        assert r["recovered"] is True and r["epoch"] == epoch, r
        assert [e["data"] for e in r["events"]] == [2, 3], r
        await c.close()
    finally:
        srv2.stop_checked()
