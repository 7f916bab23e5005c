// JSON Web Token verification (jwt.hpp): loading trusted keys into an
// immutable KeySet, and verify(), which turns a compact JWS into Claims.
//
// Keys are prepared once, when the KeySet is built: a PEM public key or
// certificate is read by OpenSSL into an EVP_PKEY; a key of a JWK Set is
// read by libjose (jose_openssl_jwk_to_EVP_PKEY) into an EVP_PKEY; an HMAC
// secret is kept as its bytes. Every EVP_PKEY is then re-read from its DER
// SubjectPublicKeyInfo, so the KeySet holds only public, provider-native
// keys (libjose builds legacy RSA/EC_KEY objects, which OpenSSL 3 would
// export to its provider, behind a lock, on first use).
//
// verify() decides everything that is policy before any cryptography: the
// token is size-checked, split and strictly base64url-checked, its header
// parsed once (duplicate members refused, so no two readers can see
// different `alg`s), its `alg` looked up, and the candidate keys chosen by
// `kid`, allow-list and key type. OpenSSL 3's EVP API then checks the
// signature over the signing input exactly as it is in the token
// (base64url(header) "." base64url(payload)), with the parameters of the
// header's `alg` (RFC 7518 3): RS* RSASSA-PKCS1-v1_5; PS* RSASSA-PSS with
// MGF1 of the same hash and a salt as long as the hash; ES* the JOSE r||s
// signature of fixed length, turned into DER for OpenSSL; HS* an HMAC
// compared in constant time. This file does no cryptography of its own.
// Keys named by the token itself (`jwk`, `jku`, `x5u`, ...) are never used.
// The payload is parsed only once the signature verified.
//
// Threads: verify() runs concurrently on one KeySet. The KeySet is never
// modified after it is built. Its EVP_PKEYs are only used read-only: OpenSSL
// 3 allows one EVP_PKEY to be used by several threads at once for
// verification as long as each operation has its own context, and each
// verify() call creates (and frees) its own EVP_MD_CTX, whose EVP_PKEY_CTX
// it owns; merge() shares a key between sets with EVP_PKEY_up_ref, which is
// atomic. HMAC secrets are plain bytes, read only. Everything else a call
// touches (the parsed header and payload, the decoded signature, OpenSSL
// contexts and its per-thread error queue) belongs to that call or thread.
#include "auth/jwt.hpp"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdarg>
#include <limits>

// libjose's headers declare C functions without extern "C".
extern "C" {
#include <jose/b64.h>
#include <jose/cfg.h>
#include <jose/openssl.h>
}

namespace herald::auth {

namespace {

struct JsonDecref {
  void operator()(json_t* j) const { json_decref(j); }
};
using Json = std::unique_ptr<json_t, JsonDecref>;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

constexpr size_t kAlgCount = 12;
constexpr std::array<std::string_view, kAlgCount> kAlgNames = {"HS256", "HS384", "HS512", "RS256",
                                                               "RS384", "RS512", "PS256", "PS384",
                                                               "PS512", "ES256", "ES384", "ES512"};

size_t index_of(Alg alg) {
  return static_cast<size_t>(alg);
}

// The RFC 7518 3.2 minimum HMAC key length (the hash size), checked when the
// key is loaded.
size_t hmac_min_bytes(Alg alg) {
  switch (alg) {
    case Alg::HS384:
      return 48;
    case Alg::HS512:
      return 64;
    default:
      return 32;
  }
}

// The longest HMAC secret accepted. OpenSSL has no such limit; it is the one
// libjose 11 had when it checked signatures (a fixed KEYMAX buffer), kept so
// that the configurations Herald accepts did not change.
constexpr size_t kMaxSecretBytes = 1024;
// RSA keys below 2048 bits are refused (RFC 7518 3.3).
constexpr int kMinRsaBits = 2048;

// libjose reports errors to its cfg; with a NULL cfg it prints them to
// stderr, which a fetched JWK Set must not be able to cause. A cfg's
// reference count is not atomic, so each thread gets its own, silent one.
void ignore_jose_error(void*, const char*, int, uint64_t, const char*, va_list) {}

jose_cfg_t* quiet_cfg() {
  struct Holder {
    jose_cfg_t* cfg = jose_cfg();
    Holder() {
      if (cfg) jose_cfg_set_err_func(cfg, &ignore_jose_error, nullptr);
    }
    ~Holder() {
      if (cfg) jose_cfg_decref(cfg);
    }
  };
  thread_local Holder holder;
  return holder.cfg;
}

// --- strict base64url (RFC 7515: no padding, no other characters) ----------

constexpr std::array<int8_t, 256> make_b64url_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  constexpr std::string_view chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < chars.size(); ++i) t[static_cast<uint8_t>(chars[i])] = int8_t(i);
  return t;
}
constexpr std::array<int8_t, 256> kB64url = make_b64url_table();

// Also requires the unused low bits of the last character to be zero, so
// every byte string has exactly one encoding (no malleable signatures).
bool b64url_valid(std::string_view s) {
  if (s.size() % 4 == 1) return false;
  for (char c : s) {
    if (kB64url[static_cast<uint8_t>(c)] < 0) return false;
  }
  if (s.empty()) return true;
  const int last = kB64url[static_cast<uint8_t>(s.back())];
  if (s.size() % 4 == 2) return (last & 0x0F) == 0;
  if (s.size() % 4 == 3) return (last & 0x03) == 0;
  return true;
}

// `s` must have passed b64url_valid. Four characters make three bytes; the
// last group's two or three characters make one or two.
std::string b64url_decode(std::string_view s) {
  std::string out(s.size() / 4 * 3 + (s.size() % 4 == 0 ? 0 : s.size() % 4 - 1), '\0');
  auto value = [&](size_t i) { return uint32_t(kB64url[static_cast<uint8_t>(s[i])]); };
  size_t i = 0, o = 0;
  for (; i + 4 <= s.size(); i += 4, o += 3) {
    const uint32_t v = value(i) << 18 | value(i + 1) << 12 | value(i + 2) << 6 | value(i + 3);
    out[o] = static_cast<char>(v >> 16);
    out[o + 1] = static_cast<char>(v >> 8);
    out[o + 2] = static_cast<char>(v);
  }
  if (s.size() - i >= 2) {
    uint32_t v = value(i) << 18 | value(i + 1) << 12;
    if (s.size() - i == 3) v |= value(i + 2) << 6;
    out[o++] = static_cast<char>(v >> 16);
    if (s.size() - i == 3) out[o] = static_cast<char>(v >> 8);
  }
  return out;
}

Json parse_json(std::string_view text) {
  json_error_t error;
  // Duplicate members are refused: an issuer and Herald must never read
  // different values out of one token.
  return Json(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, &error));
}

std::string dump_compact(const json_t* value) {
  const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
  const size_t n = json_dumpb(value, nullptr, 0, flags);
  std::string out(n, '\0');
  if (n != 0 && json_dumpb(value, out.data(), n, flags) != n) return "";
  return out;
}

// Text from a token, quoted for a reason when it is short and plain; reasons
// are shown to clients and logs and must not carry arbitrary bytes.
std::string quoted(std::string_view text) {
  if (text.empty() || text.size() > 64) return "";
  for (char c : text) {
    if (c < 0x21 || c > 0x7E || c == '\'' || c == '\\') return "";
  }
  return " '" + std::string(text) + "'";
}

// --- keys ----------------------------------------------------------------

enum class KeyType { oct, rsa, p256, p384, p521 };

std::string_view type_name(KeyType type) {
  switch (type) {
    case KeyType::oct:
      return "an HMAC secret";
    case KeyType::rsa:
      return "an RSA key";
    case KeyType::p256:
      return "a P-256 key";
    case KeyType::p384:
      return "a P-384 key";
    case KeyType::p521:
      return "a P-521 key";
  }
  return "an unknown key";
}

bool fits(Alg alg, KeyType type) {
  switch (alg) {
    case Alg::HS256:
    case Alg::HS384:
    case Alg::HS512:
      return type == KeyType::oct;
    case Alg::RS256:
    case Alg::RS384:
    case Alg::RS512:
    case Alg::PS256:
    case Alg::PS384:
    case Alg::PS512:
      return type == KeyType::rsa;
    case Alg::ES256:
      return type == KeyType::p256;
    case Alg::ES384:
      return type == KeyType::p384;
    case Alg::ES512:
      return type == KeyType::p521;
  }
  return false;
}

}  // namespace

struct KeySet::Key {
  std::string name;
  std::string kid;
  KeyType type = KeyType::oct;
  std::array<bool, kAlgCount> allowed{};  // the allow-list, by index_of(Alg)
  // RSA and EC keys: the public key, provider-native, prepared once and only
  // read by verify() (see the top). Null for an HMAC secret.
  Pkey pkey;
  // RSA: the modulus in bytes; every RS*/PS* signature has exactly this
  // length (RFC 8017 8.1.2 and 8.2.2, step 1).
  size_t rsa_bytes = 0;
  // HMAC: the secret's bytes.
  std::string secret;

  Key() = default;
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key() { OPENSSL_cleanse(secret.data(), secret.size()); }

  bool allows(Alg alg) const { return allowed[index_of(alg)]; }
};

namespace {

using Key = KeySet::Key;

// `pkey` (RSA or EC) as a new public-only, provider-native key: written as
// a DER SubjectPublicKeyInfo and read back by OpenSSL's decoders. Null when
// OpenSSL cannot do either.
Pkey prepared_public_key(const EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(pkey, &der);
  Pkey out;
  if (n > 0) {
    const unsigned char* p = der;
    out.reset(d2i_PUBKEY_ex(nullptr, &p, n, nullptr, nullptr));
  }
  OPENSSL_free(der);
  ERR_clear_error();
  // The key must come back as what was checked (its type; its size follows
  // from the same public numbers).
  if (out && EVP_PKEY_get_base_id(out.get()) != EVP_PKEY_get_base_id(pkey)) out.reset();
  return out;
}

// A key of `type` allowed `algs` (all of which fit `type`): `pkey` for RSA
// and EC keys, `secret` for HMAC.
std::unique_ptr<Key> make_key(std::string name, std::string kid, KeyType type,
                              const std::vector<Alg>& algs, const EVP_PKEY* pkey,
                              std::string_view secret) {
  auto key = std::make_unique<Key>();
  key->name = std::move(name);
  key->kid = std::move(kid);
  key->type = type;
  for (Alg alg : algs) key->allowed[index_of(alg)] = true;
  if (type == KeyType::oct) {
    key->secret.assign(secret.data(), secret.size());
    return key;
  }
  key->pkey = prepared_public_key(pkey);
  if (!key->pkey) return nullptr;
  if (type == KeyType::rsa) {
    const int bytes = EVP_PKEY_get_size(key->pkey.get());
    if (bytes <= 0) return nullptr;
    key->rsa_bytes = static_cast<size_t>(bytes);
  }
  return key;
}

Pkey read_public_pem(const std::string& pem) {
  auto no_password = [](char*, int, int, void*) -> int { return 0; };
  Pkey key;
  if (BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))) {
    key.reset(PEM_read_bio_PUBKEY(bio, nullptr, no_password, nullptr));
    BIO_free(bio);
  }
  if (!key) {
    if (BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))) {
      if (X509* cert = PEM_read_bio_X509(bio, nullptr, no_password, nullptr)) {
        key.reset(X509_get_pubkey(cert));
        X509_free(cert);
      }
      BIO_free(bio);
    }
  }
  // Leave nothing on this thread's OpenSSL error queue for the next user.
  ERR_clear_error();
  return key;
}

std::unique_ptr<Key> key_from_spec(const KeySpec& spec) {
  const std::string what = "key '" + spec.name + "': ";
  if (spec.algorithms.empty()) throw KeyError(what + "no algorithm is allowed");
  if (!spec.secret.empty() && !spec.public_key_pem.empty()) {
    throw KeyError(what + "has both a secret and a public key");
  }

  KeyType type;
  Pkey pkey;
  if (!spec.secret.empty()) {
    type = KeyType::oct;
    if (spec.secret.size() < 32) throw KeyError(what + "HMAC secret shorter than 32 bytes");
    if (spec.secret.size() > kMaxSecretBytes) {
      throw KeyError(what + "HMAC secret longer than " + std::to_string(kMaxSecretBytes) +
                     " bytes");
    }
    for (Alg alg : spec.algorithms) {
      if (fits(alg, type) && spec.secret.size() < hmac_min_bytes(alg)) {
        throw KeyError(what + std::string(to_string(alg)) + " needs a secret of at least " +
                       std::to_string(hmac_min_bytes(alg)) + " bytes");
      }
    }
  } else if (!spec.public_key_pem.empty()) {
    pkey = read_public_pem(spec.public_key_pem);
    if (!pkey) throw KeyError(what + "PEM does not parse as a public key or certificate");
    switch (EVP_PKEY_get_base_id(pkey.get())) {
      case EVP_PKEY_RSA:
        type = KeyType::rsa;
        if (EVP_PKEY_get_bits(pkey.get()) < kMinRsaBits) {
          throw KeyError(what + "RSA key shorter than 2048 bits");
        }
        break;
      case EVP_PKEY_EC: {
        char group[64] = {};
        size_t len = 0;
        int nid = NID_undef;
        if (EVP_PKEY_get_group_name(pkey.get(), group, sizeof group, &len) == 1) {
          nid = OBJ_sn2nid(group);
        }
        if (nid == NID_X9_62_prime256v1) {
          type = KeyType::p256;
        } else if (nid == NID_secp384r1) {
          type = KeyType::p384;
        } else if (nid == NID_secp521r1) {
          type = KeyType::p521;
        } else {
          throw KeyError(what + "EC curve is not P-256, P-384 or P-521");
        }
        break;
      }
      case EVP_PKEY_ED25519:
      case EVP_PKEY_ED448:
        throw KeyError(what + "EdDSA keys are not supported");
      default:
        throw KeyError(what + "unsupported key type");
    }
  } else {
    throw KeyError(what + "has neither a secret nor a public key");
  }

  for (Alg alg : spec.algorithms) {
    if (!fits(alg, type)) {
      throw KeyError(what + "algorithm " + std::string(to_string(alg)) + " does not fit " +
                     std::string(type_name(type)));
    }
  }
  auto key = make_key(spec.name, spec.kid, type, spec.algorithms, pkey.get(), spec.secret);
  if (!key) throw KeyError(what + "cannot be prepared for verification");
  return key;
}

const char* string_member(const json_t* obj, const char* name) {
  return json_string_value(json_object_get(obj, name));
}

// One key of a JWK Set, or the reason it is skipped.
std::variant<std::unique_ptr<Key>, std::string> key_from_jwk(const json_t* jwk,
                                                             const std::vector<Alg>& allowed,
                                                             const std::string& name) {
  if (!json_is_object(jwk)) return std::string("not a JSON object");
  const json_t* kid_member = json_object_get(jwk, "kid");
  if (kid_member && !json_is_string(kid_member)) return std::string("kid is not a string");
  const std::string kid = kid_member ? json_string_value(kid_member) : "";

  const char* kty = string_member(jwk, "kty");
  if (!kty) return std::string("no kty");
  // A private key in a published set is a leak; it is never used.
  for (const char* secret : {"d", "p", "q", "dp", "dq", "qi", "oth"}) {
    if (json_object_get(jwk, secret)) return std::string("private key (has private members)");
  }
  if (const json_t* use = json_object_get(jwk, "use")) {
    const char* u = json_string_value(use);
    if (u && std::string_view(u) == "enc") return std::string("for encryption (use: enc)");
    if (!u || std::string_view(u) != "sig") return std::string("use is not sig");
  }
  if (const json_t* ops = json_object_get(jwk, "key_ops")) {
    bool verify = false;
    size_t i;
    const json_t* op;
    json_array_foreach(ops, i, op) {
      const char* s = json_string_value(op);
      verify = verify || (s && std::string_view(s) == "verify");
    }
    if (!verify) return std::string("key_ops does not include verify");
  }

  // Only the members that make up the public key are kept: `use`,
  // `key_ops`, `x5c`... have been judged above and must not reach libjose.
  std::vector<const char*> members;
  KeyType type;
  const std::string_view kty_s = kty;
  if (kty_s == "RSA") {
    type = KeyType::rsa;
    members = {"kty", "n", "e"};
  } else if (kty_s == "EC") {
    const char* crv = string_member(jwk, "crv");
    const std::string_view c = crv ? crv : "";
    if (c == "P-256") {
      type = KeyType::p256;
    } else if (c == "P-384") {
      type = KeyType::p384;
    } else if (c == "P-521") {
      type = KeyType::p521;
    } else {
      return std::string("EC curve is not P-256, P-384 or P-521");
    }
    members = {"kty", "crv", "x", "y"};
  } else if (kty_s == "oct") {
    type = KeyType::oct;
    members = {"kty", "k"};
  } else if (kty_s == "OKP") {
    return std::string("OKP (EdDSA) keys are not supported");
  } else {
    return std::string("unknown key type");
  }
  Json base(json_object());
  if (!base) throw std::bad_alloc();
  for (const char* m : members) {
    json_t* v = json_object_get(jwk, m);
    if (!json_is_string(v)) return std::string("no ") + m;
    if (json_object_set(base.get(), m, v) != 0) throw std::bad_alloc();
  }

  // The key material is converted now, once: a bad key is reported here and
  // not by every verify, and verify() never touches the JWK.
  std::string secret;
  Pkey pkey;
  if (type == KeyType::oct) {
    const json_t* k = json_object_get(base.get(), "k");
    const size_t secret_bytes = jose_b64_dec(k, nullptr, 0);
    if (secret_bytes == SIZE_MAX) return std::string("k is not base64url");
    if (secret_bytes < 32) return std::string("HMAC secret shorter than 32 bytes");
    if (secret_bytes > kMaxSecretBytes) return std::string("HMAC secret too long");
    secret.resize(secret_bytes);
    if (jose_b64_dec(k, secret.data(), secret.size()) != secret_bytes) {
      OPENSSL_cleanse(secret.data(), secret.size());
      return std::string("k is not base64url");
    }
  } else {
    pkey.reset(jose_openssl_jwk_to_EVP_PKEY(quiet_cfg(), base.get()));
    ERR_clear_error();
    if (!pkey) return std::string("key material is invalid");
    if (type == KeyType::rsa && EVP_PKEY_get_bits(pkey.get()) < kMinRsaBits) {
      return std::string("RSA key shorter than 2048 bits");
    }
  }
  // Whatever happens below, the secret's copy here is wiped.
  struct Wipe {
    std::string& s;
    ~Wipe() { OPENSSL_cleanse(s.data(), s.size()); }
  } wipe{secret};

  auto usable = [&](Alg alg) {
    return fits(alg, type) && (type != KeyType::oct || secret.size() >= hmac_min_bytes(alg));
  };
  std::vector<Alg> algs;
  if (const json_t* alg_member = json_object_get(jwk, "alg")) {
    // The key names its one algorithm: that, or nothing (never another).
    const char* a = json_string_value(alg_member);
    const std::optional<Alg> alg = a ? parse_alg(a) : std::nullopt;
    if (!alg) return "algorithm" + quoted(a ? a : "") + " is not supported";
    if (!usable(*alg)) return "algorithm" + quoted(a) + " does not fit the key";
    if (std::find(allowed.begin(), allowed.end(), *alg) == allowed.end()) {
      return "algorithm" + quoted(a) + " is not allowed";
    }
    algs.push_back(*alg);
  } else {
    for (Alg alg : allowed) {
      if (usable(alg)) algs.push_back(alg);
    }
    if (algs.empty()) return std::string("no allowed algorithm fits the key");
  }
  auto key = make_key(name, kid, type, algs, pkey.get(), secret);
  if (!key) return std::string("key cannot be prepared for verification");
  return key;
}

// A copy of `k` for another KeySet; the EVP_PKEY is shared (its reference
// count is atomic, and no set modifies it).
std::unique_ptr<Key> clone(const Key& k) {
  auto key = std::make_unique<Key>();
  key->name = k.name;
  key->kid = k.kid;
  key->type = k.type;
  key->allowed = k.allowed;
  key->rsa_bytes = k.rsa_bytes;
  key->secret = k.secret;
  if (k.pkey) {
    if (EVP_PKEY_up_ref(k.pkey.get()) != 1) throw std::bad_alloc();
    key->pkey.reset(k.pkey.get());
  }
  return key;
}

// --- signatures (OpenSSL 3) ------------------------------------------------

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using EcdsaSig = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;

// The hash of `alg` as OpenSSL names it.
const char* digest_name(Alg alg) {
  switch (alg) {
    case Alg::HS384:
    case Alg::RS384:
    case Alg::PS384:
    case Alg::ES384:
      return "SHA384";
    case Alg::HS512:
    case Alg::RS512:
    case Alg::PS512:
    case Alg::ES512:
      return "SHA512";
    default:
      return "SHA256";
  }
}

// HS*: HMAC over the signing input; the MAC must be the hash's full length
// (RFC 7518 3.2) and is compared in constant time.
bool hmac_ok(const Key& key, Alg alg, std::string_view input, std::string_view signature) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, digest_name(alg), nullptr, key.secret.data(),
                 key.secret.size(), reinterpret_cast<const unsigned char*>(input.data()),
                 input.size(), mac, sizeof mac, &mac_len)) {
    return false;
  }
  const bool ok = mac_len == signature.size() && mac_len != 0 &&
                  CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
  OPENSSL_cleanse(mac, sizeof mac);
  return ok;
}

// The JOSE ECDSA signature (RFC 7518 3.4: r and s, each as a big-endian
// integer of the curve's size, concatenated) as the DER ECDSA-Sig-Value
// OpenSSL verifies; false when its length is not exactly 2 * `half`.
bool ecdsa_der(std::string_view signature, size_t half, std::array<unsigned char, 160>& der,
               size_t& der_len) {
  if (signature.size() != 2 * half) return false;
  const auto* bytes = reinterpret_cast<const unsigned char*>(signature.data());
  EcdsaSig sig(ECDSA_SIG_new());
  if (!sig) return false;
  BIGNUM* r = BN_bin2bn(bytes, static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(bytes + half, static_cast<int>(half), nullptr);
  if (!r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  const int n = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (n <= 0 || static_cast<size_t>(n) > der.size()) return false;
  unsigned char* out = der.data();
  if (i2d_ECDSA_SIG(sig.get(), &out) != n) return false;
  der_len = static_cast<size_t>(n);
  return true;
}

// RS*, PS* and ES*: EVP_DigestVerify with `key`'s EVP_PKEY in a context of
// this call's own (see the top).
bool pkey_ok(const Key& key, Alg alg, std::string_view input, std::string_view signature) {
  const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
  size_t sig_len = signature.size();
  std::array<unsigned char, 160> der;
  int padding = 0;
  switch (alg) {
    case Alg::RS256:
    case Alg::RS384:
    case Alg::RS512:
      padding = RSA_PKCS1_PADDING;
      break;
    case Alg::PS256:
    case Alg::PS384:
    case Alg::PS512:
      padding = RSA_PKCS1_PSS_PADDING;
      break;
    case Alg::ES256:
    case Alg::ES384:
    case Alg::ES512: {
      const size_t half = alg == Alg::ES256 ? 32 : alg == Alg::ES384 ? 48 : 66;
      if (!ecdsa_der(signature, half, der, sig_len)) return false;
      sig = der.data();
      break;
    }
    default:
      return false;
  }
  if (padding != 0 && signature.size() != key.rsa_bytes) return false;

  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  const char* md = digest_name(alg);
  if (EVP_DigestVerifyInit_ex(ctx.get(), &pctx, md, nullptr, nullptr, key.pkey.get(), nullptr) !=
      1) {
    return false;
  }
  if (padding != 0 && EVP_PKEY_CTX_set_rsa_padding(pctx, padding) <= 0) return false;
  if (padding == RSA_PKCS1_PSS_PADDING &&
      (EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md, nullptr) <= 0 ||
       // Exactly the hash's length: RSA_PSS_SALTLEN_DIGEST, not AUTO.
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0)) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), sig, sig_len,
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

// Whether `signature` (decoded) is `key`'s signature with `alg` of `input`,
// the signing input. `alg` is on the key's allow-list and fits its type.
bool signature_ok(const Key& key, Alg alg, std::string_view input, std::string_view signature) {
  const bool ok = key.type == KeyType::oct ? hmac_ok(key, alg, input, signature)
                                           : pkey_ok(key, alg, input, signature);
  // A failed check leaves errors on this thread's queue; the next user of
  // OpenSSL on the thread must not see them.
  ERR_clear_error();
  return ok;
}

// --- claims ----------------------------------------------------------------

VerifyError fail(VerifyFailure failure, std::string reason) {
  return VerifyError{failure, std::move(reason)};
}

// A NumericDate: seconds since the epoch, an integer or not.
bool read_time(const json_t* v, double& out) {
  if (json_is_integer(v)) {
    out = static_cast<double>(json_integer_value(v));
    return true;
  }
  if (json_is_real(v)) {
    out = json_real_value(v);
    return std::isfinite(out);
  }
  return false;
}

int64_t to_seconds(double t) {
  constexpr double lo = static_cast<double>(std::numeric_limits<int64_t>::min());
  constexpr double hi = static_cast<double>(std::numeric_limits<int64_t>::max());
  if (t <= lo) return std::numeric_limits<int64_t>::min();
  if (t >= hi) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(std::floor(t));
}

// Reads `caps` (an array of operation names) into `ops`; "" or why not.
std::string read_ops(const json_t* array, OpSet& ops) {
  if (!json_is_array(array)) return "must be a list of operations";
  ops = 0;
  size_t i;
  const json_t* item;
  json_array_foreach(array, i, item) {
    const char* name = json_string_value(item);
    Op op;
    if (!name || !parse_op(name, op)) {
      return "unknown operation" + quoted(name ? name : "");
    }
    ops |= static_cast<OpSet>(op);
  }
  return "";
}

std::variant<Claims, VerifyError> read_claims(const json_t* payload, const VerifyOptions& options,
                                              int64_t now, Claims claims) {
  auto bad = [](std::string why) { return fail(VerifyFailure::bad_claims, std::move(why)); };

  if (const json_t* sub = json_object_get(payload, "sub")) {
    if (!json_is_string(sub)) return bad("sub must be a string");
    claims.sub.assign(json_string_value(sub), json_string_length(sub));
  }
  double exp = 0, nbf = 0;
  const json_t* exp_member = json_object_get(payload, "exp");
  const json_t* nbf_member = json_object_get(payload, "nbf");
  if (exp_member && !read_time(exp_member, exp)) return bad("exp must be a number");
  if (nbf_member && !read_time(nbf_member, nbf)) return bad("nbf must be a number");
  if (!exp_member && options.require_exp) return bad("token has no exp");
  if (exp_member) claims.exp = to_seconds(exp);

  const json_t* iss = json_object_get(payload, "iss");
  if (iss && !json_is_string(iss)) return bad("iss must be a string");
  const json_t* aud = json_object_get(payload, "aud");
  if (aud && !json_is_string(aud)) {
    if (!json_is_array(aud)) return bad("aud must be a string or a list of strings");
    size_t i;
    const json_t* item;
    json_array_foreach(aud, i, item) {
      if (!json_is_string(item)) return bad("aud must be a string or a list of strings");
    }
  }

  if (const json_t* info = json_object_get(payload, "info")) claims.info = dump_compact(info);

  if (const json_t* channel = json_object_get(payload, "channel")) {
    if (!json_is_string(channel)) return bad("channel must be a string");
    claims.channel.assign(json_string_value(channel), json_string_length(channel));
    // A subscription token grants one channel; a '*' would make its grant a
    // prefix reaching every channel that starts with it.
    if (claims.channel.find('*') != std::string::npos) {
      return bad("channel must name one channel, not a pattern");
    }
  }
  if (const json_t* channels = json_object_get(payload, "channels")) {
    if (!json_is_array(channels)) return bad("channels must be a list of strings");
    size_t i;
    const json_t* item;
    json_array_foreach(channels, i, item) {
      if (!json_is_string(item)) return bad("channels must be a list of strings");
      claims.channels.emplace_back(json_string_value(item), json_string_length(item));
    }
  }
  if (const json_t* caps = json_object_get(payload, "caps")) {
    if (json_is_object(caps)) {
      const char* pattern;
      const json_t* ops_member;
      json_object_foreach(const_cast<json_t*>(caps), pattern, ops_member) {
        OpSet ops = 0;
        std::string why = read_ops(ops_member, ops);
        if (!why.empty()) return bad("caps: " + why);
        why = claims.caps.add(pattern, ops);
        if (!why.empty()) return bad("caps: " + why);
      }
    } else if (json_is_array(caps)) {
      if (!json_object_get(payload, "channel")) return bad("caps as a list needs a channel");
      OpSet ops = 0;
      std::string why = read_ops(caps, ops);
      if (!why.empty()) return bad("caps: " + why);
      why = claims.caps.add(claims.channel, ops);
      if (!why.empty()) return bad("caps: " + why);
    } else {
      return bad("caps must be an object or a list of operations");
    }
  }

  // Doubles hold every plausible time exactly and cannot overflow here.
  const double t = static_cast<double>(now);
  const double leeway = static_cast<double>(options.leeway.count());
  if (exp_member && exp + leeway <= t) return fail(VerifyFailure::expired, "token expired");
  if (nbf_member && nbf - leeway > t) {
    return fail(VerifyFailure::not_yet_valid, "token is not valid yet");
  }
  if (!options.issuer.empty() && (!iss || options.issuer != json_string_value(iss))) {
    return fail(VerifyFailure::bad_issuer, "token is from another issuer");
  }
  if (!options.audience.empty()) {
    bool found = false;
    if (json_is_string(aud)) {
      found = options.audience == json_string_value(aud);
    } else if (aud) {
      size_t i;
      const json_t* item;
      json_array_foreach(aud, i, item) {
        found = found || options.audience == json_string_value(item);
      }
    }
    if (!found) return fail(VerifyFailure::bad_audience, "token is for another audience");
  }
  return claims;
}

std::variant<Claims, VerifyError> verify_token(const KeySet& keys, std::string_view token,
                                               const VerifyOptions& options, int64_t now) {
  if (token.size() > options.max_token_bytes) {
    return fail(VerifyFailure::too_large,
                "token longer than " + std::to_string(options.max_token_bytes) + " bytes");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return fail(VerifyFailure::malformed, "token is not three base64url parts");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty() || !b64url_valid(header_b64) ||
      !b64url_valid(payload_b64) || !b64url_valid(signature_b64)) {
    return fail(VerifyFailure::malformed, "token is not three base64url parts");
  }

  const Json header = parse_json(b64url_decode(header_b64));
  if (!json_is_object(header.get())) {
    return fail(VerifyFailure::malformed, "token header is not a JSON object");
  }
  const json_t* alg_member = json_object_get(header.get(), "alg");
  if (!alg_member) return fail(VerifyFailure::bad_algorithm, "token has no alg");
  if (!json_is_string(alg_member)) return fail(VerifyFailure::malformed, "alg is not a string");
  const json_t* kid_member = json_object_get(header.get(), "kid");
  if (kid_member && !json_is_string(kid_member)) {
    return fail(VerifyFailure::malformed, "kid is not a string");
  }
  // RFC 7515 4.1.11: extensions this code does not understand must not be
  // ignored, and none are understood (e.g. b64: false changes what is signed).
  if (json_object_get(header.get(), "crit")) {
    return fail(VerifyFailure::malformed, "token has critical header extensions");
  }
  const std::string_view alg_name(json_string_value(alg_member), json_string_length(alg_member));
  const std::optional<Alg> alg = parse_alg(alg_name);
  if (!alg) {
    if (alg_name == "none") {
      return fail(VerifyFailure::bad_algorithm, "unsigned tokens (alg none) are refused");
    }
    return fail(VerifyFailure::bad_algorithm, "algorithm" + quoted(alg_name) + " is not supported");
  }

  Claims claims;
  if (kid_member) claims.kid.assign(json_string_value(kid_member), json_string_length(kid_member));

  // Keys with the token's kid when there are any, else the keys without one.
  // Of those, the ones whose allow-list has the alg and whose type fits it
  // are usable (both tests, whatever the allow-list was built from).
  const bool kid_matches = !claims.kid.empty() && keys.has_kid(claims.kid);
  auto is_candidate = [&](const Key& key) {
    return kid_matches ? key.kid == claims.kid : key.kid.empty();
  };
  auto is_usable = [&](const Key& key) { return key.allows(*alg) && fits(*alg, key.type); };
  const Key* first_candidate = nullptr;
  size_t candidates = 0, usable = 0;
  for (const auto& key : keys.keys()) {
    if (!is_candidate(*key)) continue;
    if (candidates++ == 0) first_candidate = key.get();
    if (is_usable(*key)) ++usable;
  }
  if (candidates == 0) {
    if (!claims.kid.empty()) {
      return fail(VerifyFailure::unknown_kid, "no key has kid" + quoted(claims.kid));
    }
    return fail(VerifyFailure::bad_signature, "token has no kid and every key needs one");
  }
  if (usable == 0) {
    std::string reason = "algorithm " + std::string(to_string(*alg)) + " is not allowed for ";
    reason += candidates == 1 ? "key '" + first_candidate->name + "'" : "any matching key";
    VerifyError error = fail(VerifyFailure::bad_algorithm, std::move(reason));
    error.kid_unknown = !claims.kid.empty() && !kid_matches;
    return error;
  }

  // The signing input is the token's first two parts as sent (RFC 7515 5.2).
  const std::string_view signing_input = token.substr(0, dot2);
  const std::string signature = b64url_decode(signature_b64);
  const Key* verified = nullptr;
  for (const auto& key : keys.keys()) {
    if (is_candidate(*key) && is_usable(*key) &&
        signature_ok(*key, *alg, signing_input, signature)) {
      verified = key.get();
      break;
    }
  }
  if (!verified) {
    VerifyError error = fail(VerifyFailure::bad_signature, "signature does not verify");
    error.kid_unknown = !claims.kid.empty() && !kid_matches;
    return error;
  }
  claims.key_name = verified->name;

  const Json payload = parse_json(b64url_decode(payload_b64));
  if (!json_is_object(payload.get())) {
    return fail(VerifyFailure::malformed, "token payload is not a JSON object");
  }
  return read_claims(payload.get(), options, now, std::move(claims));
}

}  // namespace

std::optional<Alg> parse_alg(std::string_view name) {
  for (size_t i = 0; i < kAlgCount; ++i) {
    if (kAlgNames[i] == name) return static_cast<Alg>(i);
  }
  return std::nullopt;
}

std::string_view to_string(Alg alg) {
  const size_t i = index_of(alg);
  return i < kAlgCount ? kAlgNames[i] : "unknown";
}

KeySet::~KeySet() = default;

std::shared_ptr<const KeySet> KeySet::build(const std::vector<KeySpec>& keys) {
  std::shared_ptr<KeySet> set(new KeySet());
  for (const KeySpec& spec : keys) set->keys_.push_back(key_from_spec(spec));
  return set;
}

std::shared_ptr<const KeySet> KeySet::from_jwks(std::string_view json,
                                                const std::vector<Alg>& allowed,
                                                const std::string& name,
                                                std::vector<std::string>* skipped) {
  const Json doc = parse_json(json);
  const json_t* list = json_object_get(doc.get(), "keys");
  if (!json_is_object(doc.get()) || !json_is_array(list)) {
    throw KeyError("JWKS '" + name + "': not a JWK Set ({\"keys\": [...]})");
  }
  std::shared_ptr<KeySet> set(new KeySet());
  size_t i;
  const json_t* jwk;
  json_array_foreach(list, i, jwk) {
    auto key = key_from_jwk(jwk, allowed, name);
    if (auto* k = std::get_if<std::unique_ptr<Key>>(&key)) {
      set->keys_.push_back(std::move(*k));
    } else if (skipped) {
      const char* kid = json_is_object(jwk) ? string_member(jwk, "kid") : nullptr;
      const std::string label =
          kid && *kid ? "kid '" + std::string(kid) + "'" : "key #" + std::to_string(i);
      skipped->push_back(label + ": " + std::get<std::string>(key));
    }
  }
  return set;
}

std::shared_ptr<const KeySet> KeySet::merge(const std::shared_ptr<const KeySet>& a,
                                            const std::shared_ptr<const KeySet>& b) {
  std::shared_ptr<KeySet> set(new KeySet());
  for (const auto* part : {a.get(), b.get()}) {
    if (!part) continue;
    for (const auto& key : part->keys_) set->keys_.push_back(clone(*key));
  }
  return set;
}

size_t KeySet::size() const {
  return keys_.size();
}

bool KeySet::has_kid(std::string_view kid) const {
  return std::any_of(keys_.begin(), keys_.end(), [&](const auto& k) { return k->kid == kid; });
}

std::variant<Claims, VerifyError> verify(const KeySet& keys, std::string_view token,
                                         const VerifyOptions& options, int64_t now) {
  try {
    return verify_token(keys, token, options, now);
  } catch (...) {
    // Only allocation can throw on this path.
    return VerifyError{VerifyFailure::malformed, "token cannot be checked (out of memory)"};
  }
}

}  // namespace herald::auth
