#!/usr/bin/python3
# bench/make_tokens.py: the benchmark's token issuer, independent of Herald
# (PyJWT over python3-cryptography, Debian's packages: run it with
# /usr/bin/python3). Writes into DIR:
#
#   hs256.secret                  an HMAC secret (64 base64url characters)
#   rs256.pem, rs256.pub.pem      an RSA 2048 key pair (PKCS#8 / SubjectPublicKeyInfo)
#   es256.pem, es256.pub.pem      a P-256 key pair
#   ALG-distinct.tokens           N tokens, one a line: line i has sub = user-i
#                                 (each connection verified once: cache misses)
#   ALG-shared.tokens             one token, sub = user-shared (every connection
#                                 presents it: cache hits after the first)
#   manifest.json                 what was written, with exp and sizes
#
# for ALG in hs256, rs256, es256. Every token has iat = now and exp = now +
# --ttl (1 h). herald-bench reads the token files with --token-file (connection
# i uses line i % lines), so the load generator does no crypto of its own.
#
#   /usr/bin/python3 bench/make_tokens.py DIR [--count 10000] [--ttl 3600] [--algs hs256,rs256,es256]
import argparse
import base64
import json
import os
import secrets
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ALGS = ("hs256", "rs256", "es256")


def write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def private_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def main():
    ap = argparse.ArgumentParser(description="Writes keys and JWT files for the auth benchmark.")
    ap.add_argument("dir")
    ap.add_argument("--count", type=int, default=10000, help="distinct tokens per algorithm")
    ap.add_argument("--ttl", type=int, default=3600, help="seconds until exp")
    ap.add_argument("--algs", default=",".join(ALGS))
    o = ap.parse_args()
    algs = [a for a in o.algs.split(",") if a]
    for a in algs:
        if a not in ALGS:
            ap.error(f"unknown algorithm {a}")
    if o.count < 1:
        ap.error("--count must be at least 1")
    os.makedirs(o.dir, exist_ok=True)

    keys = {}
    if "hs256" in algs:
        # 48 random bytes as base64url text: 64 bytes of secret, well above
        # HS256's 32; a file with one line (Herald ignores one trailing newline).
        secret = base64.urlsafe_b64encode(secrets.token_bytes(48)).rstrip(b"=")
        write(os.path.join(o.dir, "hs256.secret"), secret + b"\n")
        keys["hs256"] = ("HS256", secret)
    if "rs256" in algs:
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write(os.path.join(o.dir, "rs256.pem"), private_pem(k))
        write(os.path.join(o.dir, "rs256.pub.pem"), public_pem(k), 0o644)
        keys["rs256"] = ("RS256", k)
    if "es256" in algs:
        k = ec.generate_private_key(ec.SECP256R1())
        write(os.path.join(o.dir, "es256.pem"), private_pem(k))
        write(os.path.join(o.dir, "es256.pub.pem"), public_pem(k), 0o644)
        keys["es256"] = ("ES256", k)

    now = int(time.time())
    exp = now + o.ttl
    manifest = {"issuer": "bench/make_tokens.py (PyJWT %s)" % jwt.__version__, "iat": now,
                "exp": exp, "files": {}}
    t0 = time.monotonic()
    for name, (alg, key) in keys.items():
        def token(sub):
            return jwt.encode({"sub": sub, "iat": now, "exp": exp}, key, algorithm=alg)

        distinct = [token(f"user-{i}") for i in range(o.count)]
        shared = [token("user-shared")]
        for kind, toks in (("distinct", distinct), ("shared", shared)):
            path = os.path.join(o.dir, f"{name}-{kind}.tokens")
            write(path, ("\n".join(toks) + "\n").encode(), 0o644)
            manifest["files"][f"{name}-{kind}"] = {
                "path": path, "alg": alg, "tokens": len(toks),
                "bytes_per_token": round(sum(map(len, toks)) / len(toks), 1)}
    manifest["sign_seconds"] = round(time.monotonic() - t0, 2)
    write(os.path.join(o.dir, "manifest.json"), (json.dumps(manifest, indent=2) + "\n").encode(),
          0o644)
    print(json.dumps(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
