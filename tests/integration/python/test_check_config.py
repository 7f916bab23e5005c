# `herald check-config [--config F]` (issue 17 item 3) against the real
# binary: a good config prints "config ok: <path>" and exits 0 without
# binding or creating anything; a bad one exits with the code and the error
# line that `serve` gives for the same file.
import os
import socket
import subprocess
import tempfile

from harness import herald_bin, server_env


def run(*args, cwd=None, env_extra=None):
    return subprocess.run([herald_bin(), *args], capture_output=True, text=True, timeout=30,
                          cwd=cwd, env={**server_env(), **(env_extra or {})},
                          stdin=subprocess.DEVNULL)


def write_config(text):
    d = tempfile.mkdtemp(prefix="herald-check-")
    path = os.path.join(d, "herald.toml")
    with open(path, "w") as f:
        f.write(text)
    return d, path


def test_good_config_ok_and_nothing_started():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d, path = write_config(f'[server]\nlisten = "127.0.0.1:{port}"\n'
                           f'[engine]\ntype = "sqlite"\ndata_dir = "data"\n')
    r = run("check-config", "--config", path, cwd=d)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"config ok: {path}\n"
    assert not os.path.exists(os.path.join(d, "data"))  # no engine opened
    # The port stayed free: nothing bound it (and the process is gone).
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_no_file_means_defaults():
    d = tempfile.mkdtemp(prefix="herald-check-")
    r = run("check-config", cwd=d)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("config ok: (no herald.toml")


def serve_error(path, cwd):
    """What `serve` prints and returns for the same file (it fails before binding)."""
    r = subprocess.run([herald_bin(), "serve", "--config", path, "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30, cwd=cwd,
                       env=server_env(), stdin=subprocess.DEVNULL)
    return r.returncode, r.stderr


def test_bad_key_same_error_as_serve():
    d, path = write_config('[server]\nlog_format = "xml"\n')
    r = run("check-config", "--config", path, cwd=d)
    assert r.returncode == 2
    assert "server.log_format" in r.stderr
    code, err = serve_error(path, d)
    assert (code, err) == (r.returncode, r.stderr)


def test_missing_secret_file_same_error_as_serve():
    d, path = write_config('[[api.keys]]\nname = "ops"\nkey_file = "/nonexistent/ops.key"\n'
                           'scopes = ["admin"]\n')
    r = run("check-config", "--config", path, cwd=d)
    assert r.returncode != 0
    assert "ops" in r.stderr and r.stdout == ""
    code, err = serve_error(path, d)
    assert code == r.returncode
    assert err.strip().splitlines()[-1] == r.stderr.strip().splitlines()[-1]


def test_missing_schema_file_same_error_as_serve():
    d, path = write_config('[namespaces.chat]\nschema = "schemas/missing.json"\n')
    r = run("check-config", "--config", path, cwd=d)
    assert r.returncode != 0
    assert "missing.json" in r.stderr
    code, err = serve_error(path, d)
    assert code == r.returncode
    assert err.strip().splitlines()[-1] == r.stderr.strip().splitlines()[-1]


def test_missing_config_file_is_an_error():
    r = run("check-config", "--config", "/nonexistent/herald.toml")
    assert r.returncode == 2 and "herald.toml" in r.stderr
