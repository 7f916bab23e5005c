// Unit tests for the signature step of JWT verification (src/auth/jwt.cpp),
// beyond tests/unit/jwt_test.cpp: the exact JWS signature formats of RFC
// 7518 section 3, where a verifier that hands signatures to OpenSSL could
// be laxer than the standard.
//  - PS*: the salt is exactly as long as the hash, MGF1 uses the same hash
//    (3.5); tokens signed here by OpenSSL with a key made for the test, so
//    the salt length can be chosen (PyJWT always uses the hash's length).
//  - RS*/PS*: the signature is exactly as long as the modulus (RFC 8017
//    8.1.2/8.2.2 step 1), so no shorter encoding of the same number passes.
//  - ES*: the signature is r||s of fixed length (3.4); DER (what OpenSSL
//    itself produces) and other lengths are refused. PyJWT-made fixtures.
//  - HS*: the full-length MAC only (3.2: no truncation).
//  - keys of a JWK Set (converted by libjose) shared by merge() and threads.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "auth/jwt.hpp"

namespace herald::auth {
namespace {

constexpr int64_t kNow = 1'750'000'000;

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(HERALD_JWT_FIXTURES) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string token(const std::string& name) {
  static const boost::json::object tokens = boost::json::parse(fixture("tokens.json")).as_object();
  const auto* v = tokens.if_contains(name);
  EXPECT_NE(v, nullptr) << "no token " << name;
  return v ? std::string(v->as_string()) : std::string();
}

// --- base64url (test helpers, no padding) ---------------------------------------

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(std::string_view bytes) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kB64[(acc << (6 - bits)) & 0x3F]);
  return out;
}

std::string unb64url(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    acc = (acc << 6) | static_cast<uint32_t>(kB64.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string signing_input(const std::string& tok) {
  return tok.substr(0, tok.rfind('.'));
}

std::string signature_of(const std::string& tok) {
  return unb64url(tok.substr(tok.rfind('.') + 1));
}

std::string with_signature(const std::string& tok, std::string_view signature) {
  return signing_input(tok) + "." + b64url(signature);
}

bool accepted(const KeySet& keys, const std::string& tok) {
  return std::holds_alternative<Claims>(verify(keys, tok, {}, kNow));
}

VerifyFailure failure(const KeySet& keys, const std::string& tok) {
  const auto r = verify(keys, tok, {}, kNow);
  if (const auto* e = std::get_if<VerifyError>(&r)) return e->failure;
  ADD_FAILURE() << "accepted";
  return VerifyFailure::malformed;
}

// --- a key made here, signing with OpenSSL ------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// One RSA 2048 key pair for the whole test program.
EVP_PKEY* rsa_key() {
  static const Pkey key(EVP_RSA_gen(2048));
  EXPECT_NE(key, nullptr);
  return key.get();
}

std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

struct PssParams {
  int salt = RSA_PSS_SALTLEN_DIGEST;
  const char* mgf1 = nullptr;  // nullptr: the signature's hash
};

// A compact token with header {"alg": alg} over `payload`, signed with the
// RSA key: PKCS#1 v1.5 for RS*, PSS with `pss` for PS*, or as `pss_padding`
// says when it is given.
std::string rsa_token(std::string_view alg, const std::string& payload, const PssParams& pss = {},
                      std::optional<bool> pss_padding = std::nullopt) {
  const std::string input =
      b64url(R"({"alg":")" + std::string(alg) + R"(","typ":"JWT"})") + "." + b64url(payload);
  const std::string md = "SHA" + std::string(alg.substr(2));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  std::string sig;
  size_t len = 0;
  bool ok =
      EVP_DigestSignInit_ex(ctx, &pctx, md.c_str(), nullptr, nullptr, rsa_key(), nullptr) == 1;
  if (pss_padding.value_or(alg[0] == 'P')) {
    ok = ok && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, pss.mgf1 ? pss.mgf1 : md.c_str(), nullptr) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss.salt) > 0;
  }
  ok =
      ok && EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
  sig.resize(len);
  ok =
      ok && EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EXPECT_TRUE(ok) << "signing " << alg << " with salt " << pss.salt;
  sig.resize(len);
  return input + "." + b64url(sig);
}

const std::string kPayload = R"({"sub":"user-42","exp":4102444800})";

std::shared_ptr<const KeySet> rsa_keys() {
  return KeySet::build(
      {KeySpec{"rsa",
               "",
               {Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512},
               "",
               public_pem(rsa_key())}});
}

// --- RSA-PSS --------------------------------------------------------------------------

TEST(JwtSignature, PssSaltIsExactlyTheHashLength) {
  const auto keys = rsa_keys();
  for (const auto& [alg, hash_len] :
       std::vector<std::pair<std::string, int>>{{"PS256", 32}, {"PS384", 48}, {"PS512", 64}}) {
    SCOPED_TRACE(alg);
    // The salt RFC 7518 3.5 requires, by the constant and by its value.
    EXPECT_TRUE(accepted(*keys, rsa_token(alg, kPayload)));
    EXPECT_TRUE(accepted(*keys, rsa_token(alg, kPayload, {hash_len})));
    // Any other salt length is another signature scheme, even though a
    // verifier that recovers the salt length (RSA_PSS_SALTLEN_AUTO, OpenSSL's
    // default for verification) would accept it.
    for (int salt : {0, 20, hash_len - 1, hash_len + 1, RSA_PSS_SALTLEN_MAX}) {
      SCOPED_TRACE(salt);
      EXPECT_EQ(failure(*keys, rsa_token(alg, kPayload, {salt})), VerifyFailure::bad_signature);
    }
    // MGF1 with another hash than the signature's.
    EXPECT_EQ(failure(*keys, rsa_token(alg, kPayload, {hash_len, "SHA1"})),
              VerifyFailure::bad_signature);
  }
}

TEST(JwtSignature, RsaPaddingFollowsTheAlg) {
  const auto keys = rsa_keys();
  EXPECT_TRUE(accepted(*keys, rsa_token("RS256", kPayload)));
  EXPECT_TRUE(accepted(*keys, rsa_token("PS256", kPayload)));
  // The right key and hash over the right input, the other padding.
  EXPECT_EQ(failure(*keys, rsa_token("RS256", kPayload, {}, true)), VerifyFailure::bad_signature);
  EXPECT_EQ(failure(*keys, rsa_token("PS256", kPayload, {}, false)), VerifyFailure::bad_signature);
  // The PyJWT-made fixtures, signed with the fixture key: not this key's.
  EXPECT_EQ(failure(*keys, token("ps256")), VerifyFailure::bad_signature);
  EXPECT_EQ(failure(*keys, token("rs256")), VerifyFailure::bad_signature);
}

TEST(JwtSignature, RsaSignatureHasTheModulusLength) {
  const auto keys = rsa_keys();
  for (const char* alg : {"RS256", "PS256"}) {
    SCOPED_TRACE(alg);
    // A signature whose first byte is zero (about one in 200): the same
    // number without that byte, or with one more zero byte, is not the
    // k-octet signature RFC 8017 defines.
    std::string tok;
    for (int i = 0; i < 5000 && tok.empty(); ++i) {
      const std::string t =
          rsa_token(alg, R"({"sub":"user-42","exp":4102444800,"jti":)" + std::to_string(i) + "}");
      if (signature_of(t)[0] == '\0') tok = t;
    }
    ASSERT_FALSE(tok.empty()) << "no signature with a leading zero byte";
    const std::string sig = signature_of(tok);
    ASSERT_EQ(sig.size(), 256u);
    EXPECT_TRUE(accepted(*keys, tok));
    EXPECT_EQ(failure(*keys, with_signature(tok, sig.substr(1))), VerifyFailure::bad_signature);
    EXPECT_EQ(failure(*keys, with_signature(tok, std::string(1, '\0') + sig)),
              VerifyFailure::bad_signature);
  }
  const std::string tok = rsa_token("RS256", kPayload);
  EXPECT_EQ(failure(*keys, with_signature(tok, "")), VerifyFailure::bad_signature);
  EXPECT_EQ(failure(*keys, with_signature(tok, std::string(256, '\0'))),
            VerifyFailure::bad_signature);
  EXPECT_EQ(failure(*keys, with_signature(tok, std::string(256, '\xff'))),
            VerifyFailure::bad_signature);
}

// --- ECDSA ---------------------------------------------------------------------------------

struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

// The DER ECDSA-Sig-Value of a JOSE r||s signature.
std::string der_of(const std::string& rs) {
  const size_t half = rs.size() / 2;
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  ECDSA_SIG_set0(
      sig.get(), BN_bin2bn(reinterpret_cast<const unsigned char*>(rs.data()), int(half), nullptr),
      BN_bin2bn(reinterpret_cast<const unsigned char*>(rs.data()) + half, int(half), nullptr));
  unsigned char* der = nullptr;
  const int n = i2d_ECDSA_SIG(sig.get(), &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(n > 0 ? n : 0));
  OPENSSL_free(der);
  return out;
}

TEST(JwtSignature, EcdsaSignatureIsFixedLengthRS) {
  const auto keys = KeySet::build({
      KeySpec{"ec256", "", {Alg::ES256}, "", fixture("ec256.pem")},
      KeySpec{"ec384", "", {Alg::ES384}, "", fixture("ec384.pem")},
      KeySpec{"ec521", "", {Alg::ES512}, "", fixture("ec521.pem")},
  });
  for (const auto& [name, size] :
       std::vector<std::pair<std::string, size_t>>{{"es256", 64}, {"es384", 96}, {"es512", 132}}) {
    SCOPED_TRACE(name);
    const std::string tok = token(name);
    const std::string sig = signature_of(tok);
    ASSERT_EQ(sig.size(), size);
    EXPECT_TRUE(accepted(*keys, tok));
    // JWS forbids DER; it is what OpenSSL signs, so the likeliest mistake.
    const std::string der = der_of(sig);
    ASSERT_GT(der.size(), 8u);
    EXPECT_NE(der.size(), size);
    EXPECT_EQ(failure(*keys, with_signature(tok, der)), VerifyFailure::bad_signature);
    // One byte short, one byte long (a leading zero: the same r), empty.
    EXPECT_EQ(failure(*keys, with_signature(tok, sig.substr(1))), VerifyFailure::bad_signature);
    EXPECT_EQ(failure(*keys, with_signature(tok, sig.substr(0, size - 1))),
              VerifyFailure::bad_signature);
    EXPECT_EQ(failure(*keys, with_signature(tok, std::string(1, '\0') + sig)),
              VerifyFailure::bad_signature);
    EXPECT_EQ(failure(*keys, with_signature(tok, sig + std::string(1, '\0'))),
              VerifyFailure::bad_signature);
    EXPECT_EQ(failure(*keys, with_signature(tok, "")), VerifyFailure::bad_signature);
    // r and s zero, or all ones (above the group order), or swapped.
    EXPECT_EQ(failure(*keys, with_signature(tok, std::string(size, '\0'))),
              VerifyFailure::bad_signature);
    EXPECT_EQ(failure(*keys, with_signature(tok, std::string(size, '\xff'))),
              VerifyFailure::bad_signature);
    EXPECT_EQ(failure(*keys, with_signature(tok, sig.substr(size / 2) + sig.substr(0, size / 2))),
              VerifyFailure::bad_signature);
  }
}

// --- HMAC ------------------------------------------------------------------------------------

TEST(JwtSignature, HmacIsTheFullLengthMac) {
  const auto keys = KeySet::build({
      KeySpec{"hs256", "", {Alg::HS256}, fixture("hs256.secret"), ""},
      KeySpec{"hs512", "", {Alg::HS512}, fixture("hs512.secret"), ""},
  });
  for (const auto& [name, size] :
       std::vector<std::pair<std::string, size_t>>{{"hs256", 32}, {"hs512", 64}}) {
    SCOPED_TRACE(name);
    const std::string tok = token(name);
    const std::string mac = signature_of(tok);
    ASSERT_EQ(mac.size(), size);
    EXPECT_TRUE(accepted(*keys, tok));
    for (size_t n : {size_t{0}, size_t{1}, size_t{16}, size / 2, size - 1}) {
      SCOPED_TRACE(n);
      EXPECT_EQ(failure(*keys, with_signature(tok, mac.substr(0, n))),
                VerifyFailure::bad_signature);
    }
    EXPECT_EQ(failure(*keys, with_signature(tok, mac + std::string(1, '\0'))),
              VerifyFailure::bad_signature);
    std::string flipped = mac;
    flipped[size - 1] = static_cast<char>(flipped[size - 1] ^ 1);
    EXPECT_EQ(failure(*keys, with_signature(tok, flipped)), VerifyFailure::bad_signature);
  }
}

// --- keys of a JWK Set (converted by libjose), shared ------------------------------------------

TEST(JwtSignature, JwksKeysOutliveTheirSetAndServeThreads) {
  std::shared_ptr<const KeySet> merged;
  {
    const auto jwks = KeySet::from_jwks(fixture("jwks.json"),
                                        {Alg::RS256, Alg::ES256, Alg::ES384, Alg::HS256}, "idp");
    merged = KeySet::merge(jwks, nullptr);
  }
  const std::vector<std::string> good = {token("jwks_rs256"), token("jwks_es256"),
                                         token("jwks_es384"), token("jwks_hs256")};
  std::string bad = good[1];
  bad[bad.size() - 2] = bad[bad.size() - 2] == 'A' ? 'B' : 'A';
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        if (accepted(*merged, good[(i + t) % good.size()])) ok++;
        if (!accepted(*merged, bad)) refused++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 160);
  EXPECT_EQ(refused.load(), 160);
}

}  // namespace
}  // namespace herald::auth
