# Shared harness for Herald's Python integration tests: starts and stops the
# real `herald` binary on a free 127.0.0.1 port (binary from env HERALD_BIN,
# default <repo>/build/release/herald), keeps its stderr/stdout in a log file
# for failure reports, and provides three clients: WSClient (the
# python3-websockets asyncio client speaking protocol v1), RawWS (a raw TCP
# socket that does the HTTP upgrade by hand and writes hand-made frames) and
# raw_http (one HTTP request over a raw socket).
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import websockets
import websockets.exceptions

REPO = Path(__file__).resolve().parents[3]
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Generous: the same tests run against the (much slower) ASan build.
READY_TIMEOUT = 30.0
RECV_TIMEOUT = 10.0
TEST_TIMEOUT = 60.0


def herald_bin() -> str:
    return os.environ.get("HERALD_BIN") or str(REPO / "build" / "release" / "herald")


def server_env() -> dict:
    """The test process's environment without Herald settings, so that only
    the test's own config file and flags configure the server."""
    return {k: v for k, v in os.environ.items()
            if not (k.startswith(("HERALD_SERVER_", "HERALD_LIMITS_", "HERALD_HISTORY_",
                                  "HERALD_ENGINE_")) or k == "HERALD_CONFIG")}


# HERALD_TEST_ENGINE=redis runs the suite against the redis engine: every
# server whose config does not choose an engine itself gets engine.type =
# "redis" on one redis-server that this process starts on first use (tests of
# one engine's own behaviour, e.g. sqlite's files, set [engine] and keep it).
TEST_ENGINE = os.environ.get("HERALD_TEST_ENGINE", "")
_SHARED_REDIS = None


def engine_env(config_text: str | None) -> dict:
    """Environment that selects the suite's engine for a server, if any."""
    global _SHARED_REDIS
    if TEST_ENGINE != "redis" or "[engine]" in (config_text or ""):
        return {}
    if _SHARED_REDIS is None:
        from redis_kit import RedisServer
        _SHARED_REDIS = RedisServer()
        import atexit
        atexit.register(_SHARED_REDIS.stop)
    return {"HERALD_ENGINE_TYPE": "redis",
            "HERALD_ENGINE_REDIS_URL": f"redis://127.0.0.1:{_SHARED_REDIS.port}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every server started by this process, so the pytest hook in conftest.py can
# attach the logs of the servers involved in a failing test, and so none
# outlives the test run.
ALL_SERVERS: list["HeraldServer"] = []

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


class ServerError(AssertionError):
    pass


class HeraldServer:
    """One `herald serve` process on 127.0.0.1:<free port> (or on
    `listen_host`, e.g. 0.0.0.0 to be reached from another address; the
    clients still use 127.0.0.1)."""

    def __init__(self, config: str | None = None, static_dir: str | None = None,
                 workers: int = 2, name: str = "herald", file_size_limit: int | None = None,
                 listen_host: str = "127.0.0.1"):
        self.listen_host = listen_host
        self.config_text = config
        self.static_dir = static_dir
        self.workers = workers
        self.name = name
        # RLIMIT_FSIZE of the server process (None: inherited): see
        # set_file_size_limit.
        self.file_size_limit = file_size_limit
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.started_at = 0.0
        self.stopped_at: float | None = None
        self.tmpdir = tempfile.mkdtemp(prefix="herald-it-")
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.config_path = None
        if config is not None:
            self.config_path = os.path.join(self.tmpdir, "herald.toml")
            with open(self.config_path, "w") as f:
                f.write(config)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "HeraldServer":
        binary = herald_bin()
        if not os.access(binary, os.X_OK):
            raise ServerError(f"herald binary not found or not executable: {binary} "
                              "(build it, or set HERALD_BIN)")
        last_error = ""
        for _attempt in range(3):
            self.port = free_port()
            args = [binary, "serve", "--listen", f"{self.listen_host}:{self.port}",
                    "--workers", str(self.workers)]
            if self.config_path:
                args += ["--config", self.config_path]
            if self.static_dir:
                args += ["--static-dir", self.static_dir]
            self.args = args
            log = open(self.log_path, "ab")
            log.write(f"$ {' '.join(args)}\n".encode())
            log.flush()
            self.started_at = time.time()
            self.stopped_at = None
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.tmpdir,
                                         env={**server_env(), **engine_env(self.config_text)},
                                         preexec_fn=(self._preexec if self.file_size_limit
                                                     is not None else None))
            log.close()
            ALL_SERVERS.append(self)
            try:
                self._wait_ready()
                return self
            except ServerError as e:
                last_error = str(e)
                if self.proc.poll() is None:
                    self.kill()
                    raise
                # Exited during start-up: maybe the port was taken; retry.
                self.stopped_at = time.time()
        raise ServerError(last_error)

    def _wait_ready(self) -> None:
        deadline = time.time() + READY_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"herald exited with code {self.proc.returncode} during "
                                  f"start-up\n{self.log_tail()}")
            try:
                if self._healthz_ok():
                    return
            except (OSError, ValueError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise ServerError(f"herald did not answer /healthz within {READY_TIMEOUT}s\n"
                          f"{self.log_tail()}")

    def _healthz_ok(self) -> bool:
        """GET /healthz answered 200 {"status": "ok"} (subclasses reach it
        their own way, e.g. over TLS)."""
        with urllib.request.urlopen(self.http_url("/healthz"), timeout=2) as r:
            return r.status == 200 and json.loads(r.read()) == {"status": "ok"}

    def _preexec(self) -> None:
        """Runs in the child before exec. SIGXFSZ ignored (a disposition of
        SIG_IGN survives exec) turns writes past RLIMIT_FSIZE into EFBIG
        errors instead of killing the server: a full disk, without mounting
        one."""
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_limit, hard))

    def set_file_size_limit(self, limit: int | None) -> None:
        """Changes the running server's largest writable file size (soft
        RLIMIT_FSIZE; None: the hard limit), e.g. to give the "disk" space
        back. The server must have been started with a file_size_limit."""
        assert self.file_size_limit is not None and self.alive()
        _, hard = resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE,
                         (hard if limit is None else limit, hard))
        self.file_size_limit = limit if limit is not None else hard

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int | None:
        """Waits for the process to exit; returns its code, or None on timeout."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.stopped_at = self.stopped_at or time.time()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.stopped_at = self.stopped_at or time.time()

    def stop_checked(self, timeout: float = 15.0) -> None:
        """Teardown of a server shared by a test module: it must still be running
        (no crash), must exit 0 on SIGTERM, and its log must be free of
        sanitizer reports. Kills it in every case."""
        try:
            if self.proc is None:
                return
            if self.proc.poll() is not None:
                raise ServerError(f"herald died during the tests (exit code "
                                  f"{self.proc.returncode})\n{self.log_tail()}")
            self.proc.send_signal(signal.SIGTERM)
            code = self.wait_exit(timeout)
            if code is None:
                raise ServerError(f"herald did not exit within {timeout}s of SIGTERM\n"
                                  f"{self.log_tail()}")
            if code != 0:
                raise ServerError(f"herald exited with code {code} on SIGTERM\n"
                                  f"{self.log_tail()}")
            self.check_log_clean()
        finally:
            self.kill()

    def check_log_clean(self) -> None:
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                raise ServerError(f"sanitizer report in the herald log ({marker!r})\n"
                                  f"{self.log_tail(20000)}")

    def __enter__(self) -> "HeraldServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()

    # -- addresses and logs --------------------------------------------------
    def http_url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str = "/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, limit: int = 6000) -> str:
        text = self.log_text()
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return f"--- {self.name} log ({self.log_path}) ---\n{text}--- end of log ---"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.http_url("/healthz"), timeout=5) as r:
                return r.status == 200 and json.loads(r.read()) == {"status": "ok"}
        except (OSError, ValueError):
            return False



def http_publish(server: "HeraldServer", channel: str, data, event: str = "e") -> tuple[int, dict]:
    """POST /api/publish without an API key; returns (HTTP status, JSON body)."""
    body = json.dumps({"channel": channel, "event": event, "data": data}).encode()
    req = urllib.request.Request(server.http_url("/api/publish"), data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())

def kill_all_servers() -> None:
    for s in ALL_SERVERS:
        s.kill()


def toml_config(**sections: dict) -> str:
    """toml_config(limits={"max_message_bytes": 1024}) -> TOML text."""
    out = []
    for section, keys in sections.items():
        out.append(f"[{section}]")
        for k, v in keys.items():
            out.append(f"{k} = {json.dumps(v)}")
        out.append("")
    return "\n".join(out)


def runs_async(fn):
    """Turns `async def test_x(...)` into a plain pytest test function that runs
    the coroutine with asyncio.run and a global time limit."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        async def bounded():
            try:
                return await asyncio.wait_for(fn(*args, **kwargs), TEST_TIMEOUT)
            finally:
                # Drop connections a failing test left open, at once (a
                # polite close would wait for close_timeout on each).
                for c in _OPEN_CLIENTS:
                    if c.ws.transport is not None and not c.ws.closed:
                        c.ws.transport.abort()
                _OPEN_CLIENTS.clear()
        return asyncio.run(bounded())
    return wrapper


_OPEN_CLIENTS: list["WSClient"] = []


def unique(prefix: str = "ch") -> str:
    return f"{prefix}-{os.urandom(6).hex()}"


# -- protocol v1 client over python3-websockets ------------------------------

class Closed(Exception):
    def __init__(self, code, reason=""):
        super().__init__(f"connection closed (code {code}, reason {reason!r})")
        self.code = code
        self.reason = reason


class WSClient:
    """A protocol v1 client. recv() returns the next message strictly in order;
    call() sends a request with an id and returns the reply with that id,
    keeping any other message for later recv() calls."""

    def __init__(self, ws):
        self.ws = ws
        _OPEN_CLIENTS.append(self)
        self.backlog: list[tuple[dict, str]] = []
        self.last_raw = ""
        self._next_id = 1000

    @classmethod
    async def open(cls, server: HeraldServer, path: str = "/ws", **kwargs) -> "WSClient":
        ws = await websockets.connect(server.ws_url(path), ping_interval=None, max_size=None,
                                      compression=None, open_timeout=RECV_TIMEOUT,
                                      close_timeout=5, **kwargs)
        return cls(ws)

    @classmethod
    async def connected(cls, server: HeraldServer) -> tuple["WSClient", dict]:
        c = await cls.open(server)
        reply = await c.call({"type": "connect"})
        assert reply["type"] == "connected", reply
        c.client_id = reply["client"]
        return c, reply

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def send(self, msg) -> None:
        if isinstance(msg, (dict, list)):
            msg = json.dumps(msg)
        await self.ws.send(msg)

    async def recv_raw(self, timeout: float = RECV_TIMEOUT) -> str:
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no message within {timeout}s") from None
        except websockets.exceptions.ConnectionClosed as e:
            raise Closed(e.rcvd.code if e.rcvd else None,
                         e.rcvd.reason if e.rcvd else "") from None
        assert isinstance(raw, str), f"server sent a binary frame: {raw!r}"
        return raw

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict:
        if self.backlog:
            msg, self.last_raw = self.backlog.pop(0)
            return msg
        raw = await self.recv_raw(timeout)
        self.last_raw = raw
        msg = json.loads(raw)
        assert isinstance(msg, dict) and isinstance(msg.get("type"), str), raw
        return msg

    async def call(self, msg: dict, timeout: float = RECV_TIMEOUT) -> dict:
        """Sends msg with an id (a fresh one unless given) and returns the
        message carrying that id; other messages go to the backlog."""
        msg = dict(msg)
        if "id" not in msg:
            msg["id"] = self.new_id()
        await self.send(msg)
        return await self.reply_to(msg["id"], timeout)

    async def reply_to(self, id_, timeout: float = RECV_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no reply with id {id_!r} within {timeout}s; "
                                         f"got instead: {skipped}")
                raw = await self.recv_raw(left)
                msg = json.loads(raw)
                if msg.get("id") == id_ and type(msg.get("id")) is type(id_):
                    self.last_raw = raw
                    return msg
                skipped.append((msg, raw))
        finally:
            self.backlog.extend(skipped)

    async def expect_closed(self, timeout: float = RECV_TIMEOUT) -> Closed:
        """Reads (and discards) messages until the server closes; returns the
        close. Fails when the connection is still open after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s")
            try:
                await self.recv_raw(left)
            except Closed as c:
                return c

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:
            pass


def assert_error(msg: dict, code: str, id_=None, *, has_id: bool | None = None) -> None:
    assert msg.get("type") == "error", f"expected error {code}, got {msg}"
    assert msg.get("code") == code, f"expected error code {code}, got {msg}"
    assert isinstance(msg.get("message"), str), f"error without a message string: {msg}"
    if id_ is not None:
        assert msg.get("id") == id_, f"error should carry id {id_!r}: {msg}"
    if has_id is False:
        assert "id" not in msg, f"error for a request without id must not carry one: {msg}"


# -- raw WebSocket over a TCP socket ------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class RawWS:
    """A hand-driven WebSocket client: upgrade by hand, then write arbitrary
    (possibly invalid) frames and read the server's frames."""

    def __init__(self, port: int, path: str = "/ws", headers: dict | None = None,
                 rcvbuf: int | None = None, timeout: float = RECV_TIMEOUT):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        hdrs.update(headers or {})
        req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        self.sock.sendall((req + "\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in lines:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        assert self.status == 101, f"upgrade refused: {head!r}"
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert self.headers.get("sec-websocket-accept") == expected, head

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"EOF while waiting for {marker!r}; have {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError(f"EOF after {len(self.buf)} of {n} bytes")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    @staticmethod
    def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True,
              rsv: int = 0) -> bytes:
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            _xor_mask(payload, key)
        return head + key + masked

    def send_frame(self, opcode: int, payload: bytes = b"", **kw) -> None:
        self.sock.sendall(self.frame(opcode, payload, **kw))

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_close(self, code: int = 1000) -> None:
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code))
        except OSError:
            pass

    def read_frame(self, timeout: float = RECV_TIMEOUT) -> tuple[bool, int, bytes]:
        """Returns (fin, opcode, payload) of the next server frame."""
        fin, rsv1, opcode, payload = self.read_frame_rsv1(timeout, allow_rsv1=False)
        return fin, opcode, payload

    def read_frame_rsv1(self, timeout: float = RECV_TIMEOUT,
                        allow_rsv1: bool = True) -> tuple[bool, bool, int, bytes]:
        """(fin, rsv1, opcode, payload) of the next server frame; RSV1 marks a
        permessage-deflate message, RSV2/RSV3 are never set."""
        self.sock.settimeout(timeout)
        b0, b1 = self._read_exact(2)
        assert b1 & 0x80 == 0, "server frames must not be masked"
        reserved = 0x30 if allow_rsv1 else 0x70
        assert b0 & reserved == 0, f"server frame with reserved bits set: {b0:#x}"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read_exact(8))
        return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, self._read_exact(n)

    def read_json(self, timeout: float = RECV_TIMEOUT) -> dict:
        fin, op, payload = self.read_frame(timeout)
        assert fin and op == OP_TEXT, f"expected a text frame, got opcode {op} fin {fin}: {payload!r}"
        return json.loads(payload)

    def read_close(self, timeout: float = RECV_TIMEOUT) -> int | None:
        """Skips data frames until the server's close frame; returns its code
        (None for an empty close frame). Fails on EOF without a close frame."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no close frame within {timeout}s (frames seen: {seen[:5]})")
            try:
                fin, op, payload = self.read_frame(left)
            except (EOFError, ConnectionResetError) as e:
                raise AssertionError(f"connection ended without a close frame ({e!r}); "
                                     f"frames seen: {seen[:5]}") from None
            except socket.timeout:
                continue
            if op == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            seen.append((op, payload[:80]))

    def expect_eof(self, timeout: float = RECV_TIMEOUT) -> None:
        """The server must close the TCP connection (EOF or reset) in time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"server kept the TCP connection open for {timeout}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return
            except socket.timeout:
                continue
            if not chunk:
                return

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _xor_mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


def raw_http(port: int, request: bytes, timeout: float = RECV_TIMEOUT) -> tuple[int, dict, bytes]:
    """Sends one raw HTTP request; returns (status, headers, body). Reads the
    body by Content-Length when given, else until EOF or the timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed without an HTTP response; got {data!r}")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split()
        assert parts[0].startswith("HTTP/1."), f"not an HTTP response: {status_line!r}"
        status = int(parts[1])
        headers = {}
        for line in lines:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        length = headers.get("content-length")
        if length is not None:
            while len(body) < int(length):
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        return status, headers, body
