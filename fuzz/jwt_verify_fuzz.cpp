// libFuzzer target for JWT verification (src/auth/jwt.cpp), which reads the
// untrusted token of every connection before anything else is known about
// the client. The key set holds an HS256 secret, an RSA public key (RS256 and
// PS256) and a P-256 public key (ES256), so every signature format reaches
// OpenSSL: the HMAC, RSA (PKCS#1 v1.5 and PSS) and the JOSE r||s ECDSA
// signature turned into DER.
//
// The first input byte picks what the rest is and the VerifyOptions:
//  - mode 0: the rest is the token, as a client would send it. Besides "never
//    crash, never leak, no UB" (ASan/UBSan), a refusal must carry a short,
//    printable reason.
//  - mode 1: the rest is a payload that the harness signs with the HS256 key
//    through libjose, so the claim checks behind the signature are fuzzed
//    too. The signature is then good, so the only refusals allowed are the
//    ones about claims, time and size; an accepted token's exp and the
//    options must agree.
//  - mode 2: as mode 1, but the payload is a JSON object whose members are
//    picked by pairs of input bytes from claim names and typical values, so
//    the claim checks are reached without seeds.
//  - mode 3: the rest is a JWK Set document for KeySet::from_jwks, which must
//    either throw KeyError or give a key set that verify() can use (an HS256
//    and an ES256 token with bogus signatures must be refused).
// Build: bash scripts/build.sh fuzz
// Run:   build/fuzz/jwt_verify_fuzz -max_total_time=20
#include <jansson.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <variant>

#include "auth/jwt.hpp"

extern "C" {
#include <jose/b64.h>
#include <jose/cfg.h>
#include <jose/jws.h>
}

namespace {

using namespace herald::auth;

constexpr int64_t kNow = 1'750'000'000;

const char kSecret[] = "herald-fuzz-hs256-secret-0123456789-abcdef";

const char kRsaPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA13V0ewApEPo1kcYKdPIT\n"
    "YbmdikhjrpC0JOJHS500Lg00+nHFZVzNgCS0mVfnJ2+14qw2hLTyux3UU//0Cs3P\n"
    "OoCf6MI4JqX7Qn+v32WefIfPBghoDQj/qHDaCBa9QrfkmAJU0B0FhVMqX/NmHA1H\n"
    "1pM4xa1WzYdMvnC+jkwIhPQYEFfQkTLVSaZaG/TE5nhGRjCu96lJRoWZtLyBXCtG\n"
    "YN+lYrl6ipReNsZTi+84Na5yFkWefrjtVmZKvT/RWI1WEDCLTizIFmRU37KTZd8k\n"
    "/JYPpLKKfXsXK6BUNMxze/vesBivNBuBz7EGMGHyvVAtDA6SofD1hbZVuN+zypXD\n"
    "PQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

const char kEcPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKzTJ9qngJurjBEg8x6vZrFRYaD42\n"
    "VUqEx05vyJ4g9FvdIp5uejabUVKcrBMyg7BLTwz+ZyOTJtm8AtaVIH3cbg==\n"
    "-----END PUBLIC KEY-----\n";

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "jwt_verify_fuzz: %s\ninput (%zu bytes): %.*s\n", what, input.size(),
               static_cast<int>(std::min<size_t>(input.size(), 2000)), input.data());
  std::abort();
}

const KeySet& keys() {
  static const std::shared_ptr<const KeySet> set = KeySet::build({
      KeySpec{"hs", "", {Alg::HS256}, kSecret, ""},
      KeySpec{"rsa", "", {Alg::RS256, Alg::PS256}, "", kRsaPublicPem},
      KeySpec{"ec", "", {Alg::ES256}, "", kEcPublicPem},
  });
  return *set;
}

void quiet(void*, const char*, int, uint64_t, const char*, va_list) {}

// The compact HS256 token of `payload` (any bytes), signed by libjose.
std::string sign_hs256(std::string_view payload) {
  static jose_cfg_t* cfg = [] {
    jose_cfg_t* c = jose_cfg();
    jose_cfg_set_err_func(c, &quiet, nullptr);
    return c;
  }();
  static json_t* jwk = json_pack("{s:s,s:o,s:s}", "kty", "oct", "k",
                                 jose_b64_enc(kSecret, sizeof kSecret - 1), "alg", "HS256");
  json_t* jws = json_pack("{s:o}", "payload", jose_b64_enc(payload.data(), payload.size()));
  json_t* sig = json_pack("{s:{s:s}}", "protected", "alg", "HS256");
  std::string token;
  if (jws && sig && jose_jws_sig(cfg, jws, sig, jwk)) {
    const char* p = json_string_value(json_object_get(jws, "protected"));
    const char* s = json_string_value(json_object_get(jws, "signature"));
    const char* body = json_string_value(json_object_get(jws, "payload"));
    if (p && s && body) token = std::string(p) + "." + body + "." + s;
  }
  json_decref(jws);
  json_decref(sig);  // jose_jws_sig takes its own reference
  if (token.empty()) fail("libjose could not sign", payload);
  return token;
}

void check_reason(const VerifyError& e, std::string_view input) {
  if (e.reason.empty() || e.reason.size() > 200) fail("reason empty or too long", input);
  for (char c : e.reason) {
    if (c < 0x20 || c > 0x7E) fail("reason not printable", input);
  }
}

// A JSON object of claims: each byte pair picks a name and a value.
std::string structured_payload(std::string_view bytes) {
  static constexpr std::string_view kNames[] = {"sub",  "exp",      "nbf",     "iss", "aud", "info",
                                                "caps", "channels", "channel", "iat", "jti"};
  static constexpr std::string_view kValues[] = {R"("u")",
                                                 "1",
                                                 "1750000000",
                                                 "1749999995",
                                                 "4102444800",
                                                 "4102444800.5",
                                                 "-1",
                                                 "1e300",
                                                 R"("x")",
                                                 "null",
                                                 "true",
                                                 "[]",
                                                 "{}",
                                                 R"(["aud","x"])",
                                                 R"("aud")",
                                                 R"("iss")",
                                                 R"(["subscribe","history"])",
                                                 R"({"chat:*":["subscribe"],"dm:1":["publish"]})",
                                                 R"({"*":["publish"]})",
                                                 R"({"chat:*":"publish"})",
                                                 R"(["fly"])",
                                                 R"("chat:a")",
                                                 R"("chat:*")",
                                                 R"(["chat:a",1])",
                                                 "9223372036854775807",
                                                 R"({"a":[1,{"b":null}]})",
                                                 R"({"chat:x*":["presence"],"chat:x":[]})",
                                                 "-9223372036854775808",
                                                 "0.5"};
  std::string out = "{";
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    if (out.size() > 1) out += ',';
    out += '"';
    out += kNames[static_cast<uint8_t>(bytes[i]) % std::size(kNames)];
    out += "\":";
    out += kValues[static_cast<uint8_t>(bytes[i + 1]) % std::size(kValues)];
  }
  return out + "}";
}

void check_signed(const std::string& token, const VerifyOptions& options, std::string_view input) {
  const auto result = verify(keys(), token, options, kNow);
  if (const auto* e = std::get_if<VerifyError>(&result)) {
    check_reason(*e, input);
    switch (e->failure) {
      case VerifyFailure::bad_algorithm:
      case VerifyFailure::unknown_kid:
      case VerifyFailure::bad_signature:
        fail("a good signature was refused", input);
      case VerifyFailure::too_large:
        if (token.size() <= options.max_token_bytes) fail("too_large under the limit", input);
        break;
      default:
        break;
    }
    return;
  }
  const Claims& c = std::get<Claims>(result);
  if (c.key_name != "hs") fail("verified by the wrong key", input);
  if (options.require_exp && !c.exp) fail("no exp though required", input);
  if (c.exp && *c.exp < kNow - options.leeway.count()) fail("expired but accepted", input);
  if (c.channel.find('*') != std::string::npos) fail("a pattern as channel", input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  VerifyOptions options;
  options.require_exp = (control & 0x04) != 0;
  if (control & 0x08) options.issuer = "iss";
  if (control & 0x10) options.audience = "aud";
  options.leeway = std::chrono::seconds(control >> 5);  // 0..7

  switch (control % 4) {
    case 0: {
      const auto result = verify(keys(), rest, options, kNow);
      if (const auto* e = std::get_if<VerifyError>(&result)) check_reason(*e, rest);
      break;
    }
    case 1:
      check_signed(sign_hs256(rest), options, rest);
      break;
    case 2:
      check_signed(sign_hs256(structured_payload(rest)), options, rest);
      break;
    default: {
      try {
        const auto set = KeySet::from_jwks(rest, {Alg::RS256, Alg::ES256, Alg::HS256}, "fuzz");
        for (const char* bogus : {"eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
                                  // ES256, r = s = 0
                                  "eyJhbGciOiJFUzI1NiJ9.e30."
                                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                  "AAAAAAAAAAAAAAAAAAAAAAAAA"}) {
          const auto result = verify(*set, bogus, options, kNow);
          if (std::holds_alternative<Claims>(result)) fail("a bogus token verified", rest);
        }
      } catch (const KeyError&) {
      }
      break;
    }
  }
  return 0;
}
