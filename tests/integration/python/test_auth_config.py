# Start-up checks of the [auth], [api] and access settings (docs/config.md):
# a weak or ambiguous key configuration must stop `herald serve` with a
# message naming the setting, never start a server that verifies less than
# configured. Each case runs the real binary on a config file and expects it
# to exit non-zero at once.
import os
import subprocess
import tempfile

import pytest

from authkit import KeyDir, auth_key, new_secret, table
from harness import free_port, herald_bin, server_env


@pytest.fixture(scope="module")
def keys():
    k = KeyDir()
    k.add_rsa("rsa")
    yield k
    k.cleanup()


def cases(keys: KeyDir) -> dict:
    good = new_secret()
    return {
        # (config, text the error must contain)
        "hs256-secret-31-bytes": (auth_key("a", ["HS256"], secret="s" * 31), "auth.keys"),
        "hmac-and-rsa-in-one-key": (auth_key("a", ["HS256", "RS256"], secret=good),
                                    "auth.keys"),
        "secret-and-public-key": (auth_key("a", ["RS256"], secret=good,
                                           public_key_file=keys.files["rsa"]), "auth.keys"),
        "hmac-with-public-key-file": (auth_key("a", ["HS256"],
                                               public_key_file=keys.files["rsa"]), "auth.keys"),
        "no-key-source": (auth_key("a", ["HS256"]), "auth.keys"),
        "no-algorithms": (auth_key("a", [], secret=good), "auth.keys"),
        "alg-none": (auth_key("a", ["none"], secret=good), "auth.keys"),
        "eddsa": (auth_key("a", ["EdDSA"], public_key_file=keys.files["rsa"]), "auth.keys"),
        "bad-use": (auth_key("a", ["HS256"], secret=good, use="sometimes"), "use"),
        "missing-secret-env": (auth_key("a", ["HS256"],
                                        secret_env="HERALD_TEST_NO_SUCH_VARIABLE_XYZ"),
                               "HERALD_TEST_NO_SUCH_VARIABLE_XYZ"),
        "missing-public-key-file": (auth_key("a", ["RS256"],
                                             public_key_file="/nonexistent/herald/key.pem"),
                                    "/nonexistent/herald/key.pem"),
        "api-key-too-short": (table("[[api.keys]]", name="b", key="short-key",
                                    scopes=["publish"]), "api.keys"),
        "api-key-unknown-scope": (table("[[api.keys]]", name="b", key="k" * 32,
                                        scopes=["everything"]), "api.keys"),
        "api-key-bad-sha256": (table("[[api.keys]]", name="b", sha256="abc",
                                     scopes=["publish"]), "api.keys"),
        "unknown-access-level": (auth_key("a", ["HS256"], secret=good)
                                 + table("[namespaces.chat]", subscribe_access="private"),
                                 "subscribe_access"),
        "none-is-for-publish-only": (auth_key("a", ["HS256"], secret=good)
                                     + table("[namespaces.chat]", subscribe_access="none"),
                                     "subscribe_access"),
    }


CASE_IDS = ["hs256-secret-31-bytes", "hmac-and-rsa-in-one-key", "secret-and-public-key",
            "hmac-with-public-key-file", "no-key-source", "no-algorithms", "alg-none", "eddsa",
            "bad-use", "missing-secret-env", "missing-public-key-file", "api-key-too-short",
            "api-key-unknown-scope", "api-key-bad-sha256", "unknown-access-level",
            "none-is-for-publish-only"]


def run_serve(config: str) -> tuple[int | None, str]:
    with tempfile.TemporaryDirectory(prefix="herald-auth-config-") as d:
        path = os.path.join(d, "herald.toml")
        with open(path, "w") as f:
            f.write("[engine]\ntype = \"memory\"\n\n" + config)
        proc = subprocess.Popen([herald_bin(), "serve", "--listen", f"127.0.0.1:{free_port()}",
                                 "--workers", "1", "--config", path],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=d, env=server_env())
        try:
            out, _ = proc.communicate(timeout=5)  # a refused config exits at once
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            return None, out.decode("utf-8", "replace")
        return proc.returncode, out.decode("utf-8", "replace")


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_auth_settings_stop_the_server(keys, case):
    all_cases = cases(keys)
    assert sorted(all_cases) == sorted(CASE_IDS)
    config, must_name = all_cases[case]
    code, out = run_serve(config)
    assert code is not None, f"herald started with a bad config ({case}):\n{out}"
    assert code != 0, f"herald exited 0 ({case}):\n{out}"
    assert must_name in out, f"the error should name {must_name!r}:\n{out}"
