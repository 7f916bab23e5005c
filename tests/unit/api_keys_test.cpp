// Unit tests for auth::ApiKeys (src/auth/api_keys.*): matching a presented
// key given raw or as a SHA-256 digest, refusing wrong and empty keys, the
// scopes of the match, the constructor's errors (which name the key and
// never contain it), scope names, and reading the credential from the
// Authorization / X-API-Key headers.
#include "auth/api_keys.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <stdexcept>
#include <string>

namespace herald::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kRawKey = "hk_live_0123456789abcdef";
// printf '%s' backend-secret-key-2 | sha256sum
constexpr const char* kSecondKey = "backend-secret-key-2";
constexpr const char* kSecondSha =
    "24dd0eed124b9cfadd20bbc653962b891057f62e0274d5a0c6737d25bf04eefc";
// printf '%s' hk_live_0123456789abcdef | sha256sum
constexpr const char* kRawKeySha =
    "47701ebfca19c5ae0609670a7789cbb64f1b8f355b606628453540a1c716a63d";

ApiKeySpec raw(std::string name, std::string key, ScopeSet scopes) {
  return {std::move(name), std::move(key), "", scopes};
}
ApiKeySpec hashed(std::string name, std::string sha, ScopeSet scopes) {
  return {std::move(name), "", std::move(sha), scopes};
}
constexpr ScopeSet operator|(Scope a, Scope b) {
  return static_cast<ScopeSet>(static_cast<ScopeSet>(a) | static_cast<ScopeSet>(b));
}
constexpr ScopeSet bits(Scope s) {
  return static_cast<ScopeSet>(s);
}

TEST(ApiKeys, MatchesRawAndHashedKeys) {
  const ApiKeys keys({raw("backend", kRawKey, Scope::publish | Scope::history),
                      hashed("admin-tool", kSecondSha, bits(Scope::admin))});
  ASSERT_EQ(keys.size(), 2u);

  const ApiKey* a = keys.authenticate(kRawKey);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "backend");
  EXPECT_TRUE(a->allows(Scope::publish));
  EXPECT_TRUE(a->allows(Scope::history));
  EXPECT_FALSE(a->allows(Scope::admin));
  EXPECT_FALSE(a->allows(Scope::presence));

  const ApiKey* b = keys.authenticate(kSecondKey);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->name, "admin-tool");
  EXPECT_EQ(b->scopes, bits(Scope::admin));
}

TEST(ApiKeys, DigestInUpperCaseHexMatches) {
  std::string upper = kRawKeySha;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const ApiKeys keys({hashed("k", upper, bits(Scope::publish))});
  ASSERT_NE(keys.authenticate(kRawKey), nullptr);
  EXPECT_EQ(keys.authenticate(kRawKey)->name, "k");
}

TEST(ApiKeys, RefusesWrongAndEmptyKeys) {
  const ApiKeys keys({raw("backend", kRawKey, bits(Scope::publish)),
                      hashed("other", kSecondSha, bits(Scope::publish))});
  EXPECT_EQ(keys.authenticate(""), nullptr);
  EXPECT_EQ(keys.authenticate("hk_live_0123456789abcdeF"), nullptr);  // one bit off
  EXPECT_EQ(keys.authenticate("hk_live_0123456789abcde"), nullptr);   // a prefix
  EXPECT_EQ(keys.authenticate(std::string(kRawKey) + "x"), nullptr);  // longer
  // The digest itself is not a key.
  EXPECT_EQ(keys.authenticate(kSecondSha), nullptr);
  EXPECT_EQ(keys.authenticate(kRawKeySha), nullptr);
}

TEST(ApiKeys, NoKeysMatchesNothing) {
  const ApiKeys keys({});
  EXPECT_TRUE(keys.empty());
  EXPECT_EQ(keys.authenticate(kRawKey), nullptr);
}

TEST(ApiKeys, EmptyKeyIsRefusedEvenWhenItsDigestIsConfigured) {
  // SHA-256 of the empty string: a configured digest must not let an absent
  // credential through.
  const ApiKeys keys(
      {hashed("empty", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              bits(Scope::publish))});
  EXPECT_EQ(keys.authenticate(""), nullptr);
}

// The constructor's message names the key by name and never contains the
// key or its digest.
void expect_refused(const std::vector<ApiKeySpec>& specs, const std::string& name,
                    const std::string& reason) {
  try {
    ApiKeys keys(specs);
    ADD_FAILURE() << "accepted; expected: " << reason;
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_THAT(what, HasSubstr("'" + name + "'"));
    EXPECT_THAT(what, HasSubstr(reason));
    for (const ApiKeySpec& s : specs) {
      if (s.key.size() >= 4) {
        EXPECT_THAT(what, Not(HasSubstr(s.key)));
      }
      if (s.sha256_hex.size() >= 4) {
        EXPECT_THAT(what, Not(HasSubstr(s.sha256_hex)));
      }
    }
  }
}

TEST(ApiKeys, ConstructorErrorsNameTheKeyNotItsContent) {
  const ScopeSet p = bits(Scope::publish);
  expect_refused({{"neither", "", "", p}}, "neither", "exactly one");
  expect_refused({{"both", kRawKey, kRawKeySha, p}}, "both", "exactly one");
  expect_refused({hashed("short-sha", std::string(kRawKeySha).substr(0, 63), p)}, "short-sha",
                 "64 hex digits");
  expect_refused({hashed("long-sha", std::string(kRawKeySha) + "0", p)}, "long-sha",
                 "64 hex digits");
  std::string not_hex = kRawKeySha;
  not_hex[10] = 'g';
  expect_refused({hashed("not-hex", not_hex, p)}, "not-hex", "64 hex digits");
  expect_refused({raw("short", "fifteen-bytes!!", p)}, "short", "shorter than 16 bytes");
  expect_refused({raw("dup", kRawKey, p), raw("dup", kSecondKey, p)}, "dup", "used twice");
  expect_refused({raw("none", kRawKey, 0)}, "none", "no scopes");
  expect_refused({raw("bad-bits", kRawKey, 0x30)}, "bad-bits", "unknown scope");
  // The same key under two names, once raw and once as its digest.
  expect_refused({raw("first", kRawKey, p), hashed("second", kRawKeySha, p)}, "second", "'first'");
}

TEST(ApiKeys, SixteenByteKeyIsEnough) {
  const ApiKeys keys({raw("k", "sixteen-bytes!!!", bits(Scope::publish))});
  EXPECT_NE(keys.authenticate("sixteen-bytes!!!"), nullptr);
}

TEST(ApiKeys, UnnamedKeyIsRefusedByPosition) {
  try {
    ApiKeys keys({raw("a", kRawKey, bits(Scope::publish)), raw("", kSecondKey, 1)});
    ADD_FAILURE() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("#2"));
    EXPECT_THAT(e.what(), Not(HasSubstr(kSecondKey)));
  }
}

TEST(ApiKeys, ScopeNames) {
  for (Scope s : {Scope::publish, Scope::history, Scope::admin, Scope::presence}) {
    ASSERT_TRUE(parse_scope(to_string(s)).has_value()) << to_string(s);
    EXPECT_EQ(*parse_scope(to_string(s)), s);
  }
  EXPECT_EQ(to_string(Scope::publish), "publish");
  EXPECT_EQ(to_string(Scope::presence), "presence");
  EXPECT_FALSE(parse_scope("Publish").has_value());
  EXPECT_FALSE(parse_scope("").has_value());
  EXPECT_FALSE(parse_scope("subscribe").has_value());
  EXPECT_EQ(to_string(Scope::destroy), "destroy");
  EXPECT_EQ(kAllScopes, Scope::publish | Scope::history | bits(Scope::admin) |
                            bits(Scope::presence) | bits(Scope::destroy));
}

TEST(ApiKeys, CredentialFromHeaders) {
  const auto cred = ApiKeys::credential_from_headers;
  EXPECT_EQ(cred("Bearer abc123", ""), "abc123");
  EXPECT_EQ(cred("bearer abc123", ""), "abc123");
  EXPECT_EQ(cred("BEARER abc123", ""), "abc123");
  EXPECT_EQ(cred("Bearer    abc123", ""), "abc123");
  EXPECT_EQ(cred("Bearer abc123  ", ""), "abc123");
  // Bearer wins over X-API-Key when both are present.
  EXPECT_EQ(cred("Bearer abc123", "xyz"), "abc123");
  EXPECT_EQ(cred("", "xyz"), "xyz");
  EXPECT_EQ(cred("", "  xyz "), "xyz");
  // Another scheme, or a Bearer without a token, falls back to X-API-Key.
  EXPECT_EQ(cred("Basic dXNlcjpwYXNz", "xyz"), "xyz");
  EXPECT_EQ(cred("Basic dXNlcjpwYXNz", ""), "");
  EXPECT_EQ(cred("Bearer", "xyz"), "xyz");
  EXPECT_EQ(cred("Bearer   ", ""), "");
  EXPECT_EQ(cred("Bearerabc123", ""), "");
  EXPECT_EQ(cred("Bearer\tabc123", ""), "");  // the separator is SP
  EXPECT_EQ(cred("", ""), "");
}

TEST(ApiKeys, AuthenticatesTheCredentialOfARequest) {
  const ApiKeys keys({raw("backend", kRawKey, bits(Scope::publish))});
  EXPECT_NE(
      keys.authenticate(ApiKeys::credential_from_headers(std::string("bearer ") + kRawKey, "")),
      nullptr);
  EXPECT_NE(keys.authenticate(ApiKeys::credential_from_headers("", kRawKey)), nullptr);
  EXPECT_EQ(keys.authenticate(ApiKeys::credential_from_headers("Basic x", "")), nullptr);
}

}  // namespace
}  // namespace herald::auth
