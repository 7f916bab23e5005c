// Unit tests for JWT verification (src/auth/jwt.hpp) and channel
// capabilities (src/auth/capabilities.hpp).
//
// The tokens and keys come from an independent issuer, PyJWT over
// python3-cryptography (tests/unit/fixtures/jwt/make_fixtures.py, outputs
// committed next to it), so these tests check Herald against tokens it did
// not make: every accepted algorithm, and the classic attacks on JWT
// verifiers (alg none, HMAC with a public key, tampering, unknown kid), the
// clock and its leeway, issuer and audience, claim shapes, key loading and
// JWK Sets. Times are fixed (kNow) so the expiry edges are exact.
#include "auth/jwt.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "auth/capabilities.hpp"

namespace herald::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kNow = 1'750'000'000;  // between the fixtures' iat and 2100
constexpr int64_t kT0 = 1'700'000'000;   // exp/nbf of the time-bound fixtures

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(HERALD_JWT_FIXTURES) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string& token(const std::string& name) {
  static const boost::json::object tokens = boost::json::parse(fixture("tokens.json")).as_object();
  static std::map<std::string, std::string> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const auto* v = tokens.if_contains(name);
    EXPECT_NE(v, nullptr) << "no token " << name;
    it = cache.emplace(name, v ? std::string(v->as_string()) : std::string()).first;
  }
  return it->second;
}

KeySpec secret_key(std::string name, const std::string& file, std::vector<Alg> algs,
                   std::string kid = "") {
  return KeySpec{std::move(name), std::move(kid), std::move(algs), fixture(file), ""};
}

KeySpec pem_key(std::string name, const std::string& file, std::vector<Alg> algs,
                std::string kid = "") {
  return KeySpec{std::move(name), std::move(kid), std::move(algs), "", fixture(file)};
}

const std::vector<Alg> kRsaAlgs = {Alg::RS256, Alg::RS384, Alg::RS512,
                                   Alg::PS256, Alg::PS384, Alg::PS512};

// Every usable fixture key, none with a kid.
std::shared_ptr<const KeySet> all_keys() {
  return KeySet::build({
      secret_key("hs256", "hs256.secret", {Alg::HS256}),
      secret_key("hs384", "hs384.secret", {Alg::HS384}),
      secret_key("hs512", "hs512.secret", {Alg::HS256, Alg::HS384, Alg::HS512}),
      pem_key("rsa", "rsa.pem", kRsaAlgs),
      pem_key("ec256", "ec256.pem", {Alg::ES256}),
      pem_key("ec384", "ec384.pem", {Alg::ES384}),
      pem_key("ec521", "ec521.pem", {Alg::ES512}),
  });
}

std::shared_ptr<const KeySet> jwks_keys(std::vector<std::string>* skipped = nullptr) {
  return KeySet::from_jwks(fixture("jwks.json"), {Alg::RS256, Alg::ES256, Alg::ES384, Alg::HS256},
                           "idp", skipped);
}

// The claims, or a test failure naming the reason.
Claims accepted(const std::variant<Claims, VerifyError>& result) {
  if (const auto* e = std::get_if<VerifyError>(&result)) {
    ADD_FAILURE() << "refused: " << e->reason;
    return Claims{};
  }
  return std::get<Claims>(result);
}

VerifyError refused(const std::variant<Claims, VerifyError>& result) {
  if (const auto* e = std::get_if<VerifyError>(&result)) return *e;
  ADD_FAILURE() << "accepted";
  return VerifyError{};
}

VerifyFailure failure_of(const KeySet& keys, const std::string& tok,
                         const VerifyOptions& options = {}, int64_t now = kNow) {
  const VerifyError e = refused(verify(keys, tok, options, now));
  EXPECT_FALSE(e.reason.empty());
  return e.failure;
}

// --- algorithms ------------------------------------------------------------

TEST(JwtAlg, NamesRoundTrip) {
  for (const char* name : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
                           "PS512", "ES256", "ES384", "ES512"}) {
    const auto alg = parse_alg(name);
    ASSERT_TRUE(alg.has_value()) << name;
    EXPECT_EQ(to_string(*alg), name);
  }
  for (const char* name : {"none", "None", "EdDSA", "hs256", "HS256 ", "", "ES256K", "RSA-OAEP"}) {
    EXPECT_FALSE(parse_alg(name).has_value()) << name;
  }
}

// --- accepted tokens -------------------------------------------------------

TEST(JwtVerify, AcceptsEveryAlgorithmFromSecretsAndPem) {
  const auto keys = all_keys();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"hs256", "hs256"}, {"hs384", "hs384"}, {"hs512", "hs512"}, {"rs256", "rsa"},
      {"rs384", "rsa"},   {"rs512", "rsa"},   {"ps256", "rsa"},   {"ps384", "rsa"},
      {"ps512", "rsa"},   {"es256", "ec256"}, {"es384", "ec384"}, {"es512", "ec521"},
  };
  for (const auto& [tok, key] : cases) {
    SCOPED_TRACE(tok);
    const Claims c = accepted(verify(*keys, token(tok), {}, kNow));
    EXPECT_EQ(c.sub, "user-42");
    EXPECT_EQ(c.exp, std::optional<int64_t>(4102444800));
    EXPECT_EQ(c.key_name, key);
    EXPECT_EQ(c.kid, "");
    EXPECT_TRUE(c.caps.empty());
    EXPECT_EQ(c.info, "");
  }
}

TEST(JwtVerify, AcceptsWithTheRealClock) {
  EXPECT_EQ(accepted(verify(*all_keys(), token("rs256"), {}, std::time(nullptr))).sub, "user-42");
}

TEST(JwtVerify, AcceptsRsaFromCertificate) {
  const auto keys = KeySet::build({pem_key("cert", "rsa_cert.pem", {Alg::RS256})});
  EXPECT_EQ(accepted(verify(*keys, token("rs256"), {}, kNow)).key_name, "cert");
}

TEST(JwtVerify, AcceptsKidTokensFromJwks) {
  const auto keys = jwks_keys();
  for (const auto& [tok, kid] :
       std::vector<std::pair<std::string, std::string>>{{"jwks_rs256", "rsa-1"},
                                                        {"jwks_es256", "ec-1"},
                                                        {"jwks_es384", "ec-384"},
                                                        {"jwks_hs256", "oct-1"}}) {
    SCOPED_TRACE(tok);
    const Claims c = accepted(verify(*keys, token(tok), {}, kNow));
    EXPECT_EQ(c.kid, kid);
    EXPECT_EQ(c.key_name, "idp");
    EXPECT_EQ(c.sub, "user-42");
  }
}

TEST(JwtVerify, AcceptsKidTokensFromPem) {
  const auto keys = KeySet::build({pem_key("other", "rsa2.pem", {Alg::RS256}, "rsa-2"),
                                   pem_key("first", "rsa.pem", {Alg::RS256}, "rsa-1")});
  const Claims c = accepted(verify(*keys, token("jwks_rs256"), {}, kNow));
  EXPECT_EQ(c.key_name, "first");
  EXPECT_EQ(c.kid, "rsa-1");
}

// --- key selection by kid ----------------------------------------------------

TEST(JwtVerify, UnknownKidWhenNoKeyHasItAndNoneIsKidless) {
  const auto keys = jwks_keys();
  const VerifyError e = refused(verify(*keys, token("unknown_kid"), {}, kNow));
  EXPECT_EQ(e.failure, VerifyFailure::unknown_kid);
  EXPECT_THAT(e.reason, HasSubstr("rsa-404"));
}

TEST(JwtVerify, KidlessKeysAreTriedForAnUnknownKid) {
  const auto keys = KeySet::build({pem_key("rsa", "rsa.pem", {Alg::RS256})});
  const Claims c = accepted(verify(*keys, token("unknown_kid"), {}, kNow));
  EXPECT_EQ(c.kid, "rsa-404");
  EXPECT_EQ(c.key_name, "rsa");
}

TEST(JwtVerify, AMatchingKidExcludesTheKidlessKeys) {
  // hs256_kid is signed with hs256.secret and names kid hmac-1; the key with
  // that kid holds another secret, so the kidless right key is not tried.
  const auto keys = KeySet::build({secret_key("kid-key", "hs512.secret", {Alg::HS256}, "hmac-1"),
                                   secret_key("kidless", "hs256.secret", {Alg::HS256})});
  EXPECT_EQ(failure_of(*keys, token("hs256_kid")), VerifyFailure::bad_signature);
  // Without the kid, the kidless key verifies it.
  EXPECT_EQ(accepted(verify(*keys, token("hs256"), {}, kNow)).key_name, "kidless");
}

TEST(JwtVerify, KidlessTokenWhenEveryKeyHasAKid) {
  const auto keys = KeySet::build({secret_key("k", "hs256.secret", {Alg::HS256}, "hmac-1")});
  EXPECT_EQ(failure_of(*keys, token("hs256")), VerifyFailure::bad_signature);
  EXPECT_EQ(accepted(verify(*keys, token("hs256_kid"), {}, kNow)).key_name, "k");
}

TEST(JwtVerify, OnlyKeysOfTheRightTypeAreTried) {
  const auto keys = all_keys();
  EXPECT_EQ(accepted(verify(*keys, token("es256"), {}, kNow)).key_name, "ec256");
  // hs512's key also allows HS256 but holds another secret; hs256's verifies.
  EXPECT_EQ(accepted(verify(*keys, token("hs256"), {}, kNow)).key_name, "hs256");
}

// --- refused tokens ----------------------------------------------------------

TEST(JwtVerify, RefusesAlgNone) {
  const VerifyError e = refused(verify(*all_keys(), token("none"), {}, kNow));
  EXPECT_EQ(e.failure, VerifyFailure::bad_algorithm);
  EXPECT_THAT(e.reason, HasSubstr("none"));
}

TEST(JwtVerify, RefusesHmacSignedWithThePublicKey) {
  // The classic algorithm confusion: HS256 keyed with the RSA public key's
  // PEM bytes, against a key set that only knows that RSA key.
  const auto keys = KeySet::build({pem_key("idp", "rsa.pem", {Alg::RS256})});
  const VerifyError e = refused(verify(*keys, token("confusion"), {}, kNow));
  EXPECT_EQ(e.failure, VerifyFailure::bad_algorithm);
  EXPECT_EQ(e.reason, "algorithm HS256 is not allowed for key 'idp'");

  const auto all_rsa = KeySet::build({pem_key("idp", "rsa.pem", kRsaAlgs)});
  EXPECT_EQ(failure_of(*all_rsa, token("confusion")), VerifyFailure::bad_algorithm);
}

TEST(JwtVerify, ConfusionByMisconfiguredAllowListFailsAtBuild) {
  try {
    KeySet::build({pem_key("idp", "rsa.pem", {Alg::RS256, Alg::HS256})});
    FAIL() << "built";
  } catch (const KeyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'idp'"));
    EXPECT_THAT(e.what(), HasSubstr("HS256"));
    EXPECT_THAT(e.what(), Not(HasSubstr("BEGIN")));
  }
}

TEST(JwtVerify, RefusesAlgorithmNotOnTheAllowList) {
  const auto keys = KeySet::build({pem_key("rsa", "rsa.pem", {Alg::PS256})});
  const VerifyError e = refused(verify(*keys, token("rs256"), {}, kNow));
  EXPECT_EQ(e.failure, VerifyFailure::bad_algorithm);
  EXPECT_EQ(e.reason, "algorithm RS256 is not allowed for key 'rsa'");
  const auto two = KeySet::build(
      {pem_key("a", "rsa.pem", {Alg::PS256}), pem_key("b", "rsa2.pem", {Alg::PS256})});
  EXPECT_EQ(failure_of(*two, token("rs256")), VerifyFailure::bad_algorithm);
}

TEST(JwtVerify, AllowListHoldsWhereLibjoseWouldNot) {
  // libjose 11 verifies an HS384 token with a JWK that says HS256 (its alg
  // check is strcmp(header, key) < 0); Herald's allow-list must refuse it.
  const auto keys = KeySet::build({secret_key("hs", "hs384.secret", {Alg::HS256})});
  const VerifyError e = refused(verify(*keys, token("hs384"), {}, kNow));
  EXPECT_EQ(e.failure, VerifyFailure::bad_algorithm);
  EXPECT_EQ(e.reason, "algorithm HS384 is not allowed for key 'hs'");
}

TEST(JwtVerify, RefusesWrongKeys) {
  const auto keys = all_keys();
  EXPECT_EQ(failure_of(*keys, token("rs256_wrong_key")), VerifyFailure::bad_signature);
  EXPECT_EQ(failure_of(*keys, token("hs256_wrong_secret")), VerifyFailure::bad_signature);
  // ES256 against only a P-384 key: no key may even be tried.
  const auto ec384 = KeySet::build({pem_key("p384", "ec384.pem", {Alg::ES384})});
  EXPECT_EQ(failure_of(*ec384, token("es256")), VerifyFailure::bad_algorithm);
  // The right algorithm and key type, another key.
  const auto rsa2 = KeySet::build({pem_key("rsa2", "rsa2.pem", {Alg::RS256})});
  const VerifyError e = refused(verify(*rsa2, token("rs256"), {}, kNow));
  EXPECT_EQ(e.failure, VerifyFailure::bad_signature);
  EXPECT_EQ(e.reason, "signature does not verify");
}

TEST(JwtVerify, RefusesTamperedTokens) {
  const auto keys = all_keys();
  for (const char* alg : {"hs256", "rs256", "es256"}) {
    SCOPED_TRACE(alg);
    EXPECT_EQ(failure_of(*keys, token(std::string(alg) + "_tampered_payload")),
              VerifyFailure::bad_signature);
    EXPECT_EQ(failure_of(*keys, token(std::string(alg) + "_tampered_signature")),
              VerifyFailure::bad_signature);
  }
  // The untampered originals pass, so the failures above are the tampering.
  EXPECT_EQ(accepted(verify(*keys, token("es256"), {}, kNow)).sub, "user-42");
}

TEST(JwtVerify, RefusesEdDsa) {
  const auto keys = all_keys();
  const VerifyError e = refused(verify(*keys, token("eddsa"), {}, kNow));
  EXPECT_EQ(e.failure, VerifyFailure::bad_algorithm);
  EXPECT_THAT(e.reason, HasSubstr("EdDSA"));
  EXPECT_THROW(KeySet::build({pem_key("ed", "ed25519.pem", {Alg::ES256})}), KeyError);
}

TEST(JwtVerify, RefusesOversizedTokensBeforeParsing) {
  const auto keys = all_keys();
  const VerifyError e = refused(verify(*keys, token("big"), {}, kNow));
  EXPECT_EQ(e.failure, VerifyFailure::too_large);
  EXPECT_EQ(e.reason, "token longer than 8192 bytes");
  VerifyOptions roomy;
  roomy.max_token_bytes = 16384;
  EXPECT_EQ(accepted(verify(*keys, token("big"), roomy, kNow)).sub, "user-42");
  // Garbage over the limit is refused for its size, not its content.
  EXPECT_EQ(failure_of(*keys, std::string(9000, '\xff')), VerifyFailure::too_large);
  VerifyOptions tight;
  tight.max_token_bytes = token("hs256").size() - 1;
  EXPECT_EQ(failure_of(*keys, token("hs256"), tight), VerifyFailure::too_large);
  tight.max_token_bytes = token("hs256").size();
  EXPECT_EQ(accepted(verify(*keys, token("hs256"), tight, kNow)).sub, "user-42");
}

TEST(JwtVerify, RefusesGarbage) {
  const auto keys = all_keys();
  const std::string hs = token("hs256");
  const std::string header = hs.substr(0, hs.find('.'));
  const std::vector<std::string> garbage = {
      "",
      ".",
      "..",
      "...",
      "a.b.c",
      "abcd.efgh",
      "abcd.efgh.ijkl.mnop",
      std::string("\0\0\0.\0\0.\0", 8),
      "\xff\xfe\xfd.\x80\x81.\x01",
      hs + ".",
      hs + "=",
      header + "=.e30.AAAA",                              // padding
      "eyJhbGciOiJIUzI1NiJ9.e30+.AAAA",                   // '+' is base64, not base64url
      "eyJhbGciOiJIUzI1NiJ9.e3/.AAAA",                    // '/'
      "eyJhbGciOiJIUzI1NiJ9.e30.AA AA",                   // space
      "eyJhbGciOiJIUzI1NiJ9..AAAA",                       // empty payload
      ".e30.AAAA",                                        // empty header
      "aGVsbG8.e30.AAAA",                                 // header "hello"
      "WzFd.e30.AAAA",                                    // header [1]
      "eyJhbGciOiJIUzI1NiJ9.e30.AB",                      // signature: nonzero unused bits
      "eyJhbGciOiJIUzI1NiJ9.e31.AAAA",                    // payload: nonzero unused bits
      "eyJhbGciOjF9.e30.AAAA",                            // alg 1
      "eyJhbGciOiJIUzI1NiIsImtpZCI6NX0.e30.AAAA",         // kid 5
      "eyJhbGciOiJIUzI1NiIsImFsZyI6Im5vbmUifQ.e30.AAAA",  // duplicate alg
  };
  for (const std::string& g : garbage) {
    SCOPED_TRACE(g);
    EXPECT_EQ(failure_of(*keys, g), VerifyFailure::malformed);
  }
  // Correctly signed, structurally wrong.
  EXPECT_EQ(failure_of(*keys, token("payload_array")), VerifyFailure::malformed);
  EXPECT_EQ(failure_of(*keys, token("duplicate_sub")), VerifyFailure::malformed);
  EXPECT_EQ(failure_of(*keys, token("duplicate_alg")), VerifyFailure::malformed);
  EXPECT_EQ(failure_of(*keys, token("crit")), VerifyFailure::malformed);
  EXPECT_EQ(failure_of(*keys, token("no_alg")), VerifyFailure::bad_algorithm);
  EXPECT_EQ(failure_of(*keys, "eyJhbGciOiJYWVoifQ.e30.AAAA"), VerifyFailure::bad_algorithm);
}

TEST(JwtVerify, ReasonsCarryNoTokenOrKeyMaterial) {
  const auto keys = KeySet::build(
      {secret_key("hs", "hs256.secret", {Alg::HS256}), pem_key("rsa", "rsa.pem", {Alg::RS256})});
  const std::string secret = fixture("hs256.secret");
  for (const char* name : {"hs256_wrong_secret", "rs256_tampered_payload", "confusion", "none",
                           "expired", "claims_sub_number", "eddsa", "payload_array"}) {
    SCOPED_TRACE(name);
    const std::string& tok = token(name);
    const VerifyError e = refused(verify(*keys, tok, {}, kNow));
    for (size_t start = 0; start + 12 <= tok.size(); start += 6) {
      ASSERT_THAT(e.reason, Not(HasSubstr(tok.substr(start, 12))));
    }
    EXPECT_THAT(e.reason, Not(HasSubstr(secret.substr(0, 8))));
    EXPECT_THAT(e.reason, Not(HasSubstr("MII")));
  }
}

// --- time ------------------------------------------------------------------

TEST(JwtClaims, ExpiryWithLeewayEdges) {
  const auto keys = all_keys();
  const std::string& tok = token("expired");  // exp = kT0
  VerifyOptions o;                            // leeway 5 s
  EXPECT_EQ(accepted(verify(*keys, tok, o, kT0 + 4)).exp, std::optional<int64_t>(kT0));
  const VerifyError e = refused(verify(*keys, tok, o, kT0 + 5));
  EXPECT_EQ(e.failure, VerifyFailure::expired);
  EXPECT_EQ(e.reason, "token expired");
  EXPECT_EQ(failure_of(*keys, tok, o, kNow), VerifyFailure::expired);
  o.leeway = std::chrono::seconds(0);
  accepted(verify(*keys, tok, o, kT0 - 1));
  EXPECT_EQ(failure_of(*keys, tok, o, kT0), VerifyFailure::expired);
}

TEST(JwtClaims, FractionalExpiry) {
  const auto keys = all_keys();
  const std::string& tok = token("exp_real");  // exp = kT0 + 0.5
  EXPECT_EQ(accepted(verify(*keys, tok, {}, kT0 + 5)).exp, std::optional<int64_t>(kT0));
  EXPECT_EQ(failure_of(*keys, tok, {}, kT0 + 6), VerifyFailure::expired);
}

TEST(JwtClaims, NotBeforeWithLeewayEdges) {
  const auto keys = all_keys();
  const std::string& tok = token("nbf");  // nbf = kT0
  VerifyOptions o;
  accepted(verify(*keys, tok, o, kT0 - 5));
  const VerifyError e = refused(verify(*keys, tok, o, kT0 - 6));
  EXPECT_EQ(e.failure, VerifyFailure::not_yet_valid);
  o.leeway = std::chrono::seconds(0);
  accepted(verify(*keys, tok, o, kT0));
  EXPECT_EQ(failure_of(*keys, tok, o, kT0 - 1), VerifyFailure::not_yet_valid);
}

TEST(JwtClaims, RequireExp) {
  const auto keys = all_keys();
  EXPECT_EQ(accepted(verify(*keys, token("no_exp"), {}, kNow)).exp, std::nullopt);
  VerifyOptions o;
  o.require_exp = true;
  EXPECT_EQ(failure_of(*keys, token("no_exp"), o), VerifyFailure::bad_claims);
  accepted(verify(*keys, token("hs256"), o, kNow));
}

// --- issuer and audience -----------------------------------------------------

TEST(JwtClaims, IssuerAndAudience) {
  const auto keys = all_keys();
  VerifyOptions o;
  o.issuer = "https://idp.example";
  o.audience = "herald";
  accepted(verify(*keys, token("iss_aud_list"), o, kNow));
  accepted(verify(*keys, token("iss_aud_string"), o, kNow));
  o.audience = "other";  // the second entry of the list
  accepted(verify(*keys, token("iss_aud_list"), o, kNow));
  EXPECT_EQ(failure_of(*keys, token("iss_aud_string"), o), VerifyFailure::bad_audience);
  o.audience = "nobody";
  EXPECT_EQ(failure_of(*keys, token("iss_aud_list"), o), VerifyFailure::bad_audience);
  o.audience = "";
  o.issuer = "https://evil.example";
  EXPECT_EQ(failure_of(*keys, token("iss_aud_list"), o), VerifyFailure::bad_issuer);
  // A token without iss or aud fails each check that is configured.
  VerifyOptions need_iss;
  need_iss.issuer = "https://idp.example";
  EXPECT_EQ(failure_of(*keys, token("no_iss_aud"), need_iss), VerifyFailure::bad_issuer);
  VerifyOptions need_aud;
  need_aud.audience = "herald";
  EXPECT_EQ(failure_of(*keys, token("no_iss_aud"), need_aud), VerifyFailure::bad_audience);
  // Unconfigured checks ignore iss and aud.
  accepted(verify(*keys, token("iss_aud_list"), {}, kNow));
}

// --- claim shapes ------------------------------------------------------------

TEST(JwtClaims, ConnectionTokenCapsObject) {
  const Claims c = accepted(verify(*all_keys(), token("connection"), {}, kNow));
  EXPECT_EQ(c.sub, "user-42");
  EXPECT_EQ(c.info, R"({"name":"Ana","roles":["admin"],"n":1})");
  EXPECT_EQ(c.channels, (std::vector<std::string>{"chat:lobby", "dm:42"}));
  EXPECT_EQ(c.channel, "");
  const OpSet sub_pub = OpSet(Op::subscribe) | OpSet(Op::publish);
  EXPECT_EQ(c.caps.ops_for("chat:lobby"), sub_pub);
  EXPECT_EQ(c.caps.ops_for("chat:team-red"), sub_pub | OpSet(Op::presence));
  EXPECT_EQ(c.caps.ops_for("dm:42"), OpSet(Op::subscribe) | OpSet(Op::history));
  EXPECT_EQ(c.caps.ops_for("dm:43"), 0);
  EXPECT_EQ(c.caps.ops_for("dm:4"), 0);
  EXPECT_EQ(c.caps.ops_for("chatter:x"), 0);
  EXPECT_EQ(c.caps.ops_for("admin:x"), 0);
}

TEST(JwtClaims, SubscriptionTokenCapsList) {
  const Claims c = accepted(verify(*all_keys(), token("subscription"), {}, kNow));
  EXPECT_EQ(c.channel, "chat:lobby");
  EXPECT_EQ(c.caps.ops_for("chat:lobby"), OpSet(Op::subscribe) | OpSet(Op::history));
  EXPECT_FALSE(has(c.caps.ops_for("chat:lobby"), Op::publish));
  EXPECT_EQ(c.caps.ops_for("chat:lobby2"), 0);
  EXPECT_EQ(c.caps.ops_for("chat:lobb"), 0);
}

TEST(JwtClaims, InfoKeepsAnyJson) {
  EXPECT_EQ(accepted(verify(*all_keys(), token("info_string"), {}, kNow)).info, R"("just text")");
}

TEST(JwtClaims, ClaimTypeErrors) {
  const auto keys = all_keys();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sub_number", "sub"},
      {"exp_string", "exp"},
      {"nbf_string", "nbf"},
      {"iss_number", "iss"},
      {"aud_number", "aud"},
      {"aud_list_number", "aud"},
      {"channels_string", "channels"},
      {"channels_numbers", "channels"},
      {"channel_number", "channel"},
      {"channel_pattern", "channel"},
      {"caps_string", "caps"},
      {"caps_unknown_op", "'fly'"},
      {"caps_ops_not_list", "caps"},
      {"caps_star", "namespace"},
      {"caps_no_namespace", "namespace"},
      {"caps_inner_star", "'*' may only end"},
      {"caps_list_no_channel", "channel"},
      {"caps_list_unknown_op", "'admin'"},
  };
  for (const auto& [name, words] : cases) {
    SCOPED_TRACE(name);
    const VerifyError e = refused(verify(*keys, token("claims_" + name), {}, kNow));
    EXPECT_EQ(e.failure, VerifyFailure::bad_claims);
    EXPECT_THAT(e.reason, HasSubstr(words));
  }
}

// --- threads -----------------------------------------------------------------

TEST(JwtVerify, ConcurrentVerifyOnOneKeySet) {
  const auto keys = all_keys();
  const std::vector<std::string> good = {token("hs256"), token("rs256"), token("ps256"),
                                         token("es256"), token("es384")};
  const std::string bad = token("rs256_tampered_payload");
  std::atomic<int> ok{0}, refused_ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const auto r = verify(*keys, good[(i + t) % good.size()], {}, kNow);
        if (std::holds_alternative<Claims>(r)) ok++;
        const auto b = verify(*keys, bad, {}, kNow);
        if (std::holds_alternative<VerifyError>(b)) refused_ok++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(refused_ok.load(), 200);
}

// --- KeySet::build -----------------------------------------------------------

void expect_key_error(const KeySpec& spec, const std::string& words) {
  SCOPED_TRACE(spec.name);
  try {
    KeySet::build({spec});
    ADD_FAILURE() << "built";
  } catch (const KeyError& e) {
    const std::string what = e.what();
    EXPECT_THAT(what, HasSubstr("'" + spec.name + "'"));
    EXPECT_THAT(what, HasSubstr(words));
    EXPECT_THAT(what, Not(HasSubstr("BEGIN")));
    EXPECT_THAT(what, Not(HasSubstr("MII")));
    if (spec.secret.size() >= 8) {
      EXPECT_THAT(what, Not(HasSubstr(spec.secret.substr(0, 8))));
    }
  }
}

TEST(JwtKeySet, BuildErrors) {
  expect_key_error(KeySpec{"garbage-pem", "", {Alg::RS256}, "", "not a PEM at all"}, "PEM");
  std::string broken = fixture("rsa.pem");
  broken[broken.size() / 2] = '!';
  expect_key_error(KeySpec{"broken-pem", "", {Alg::RS256}, "", broken}, "PEM");
  expect_key_error(pem_key("no-algs", "rsa.pem", {}), "no algorithm");
  expect_key_error(secret_key("no-algs-secret", "hs256.secret", {}), "no algorithm");
  expect_key_error(pem_key("hs-on-rsa", "rsa.pem", {Alg::HS256}), "HS256");
  expect_key_error(pem_key("es-on-rsa", "rsa.pem", {Alg::ES256}), "ES256");
  expect_key_error(secret_key("rs-on-secret", "hs256.secret", {Alg::RS256}), "RS256");
  expect_key_error(pem_key("es384-on-p256", "ec256.pem", {Alg::ES384}), "ES384");
  expect_key_error(pem_key("es256-on-p384", "ec384.pem", {Alg::ES256}), "ES256");
  expect_key_error(pem_key("rs-on-ec", "ec256.pem", {Alg::RS256}), "RS256");
  expect_key_error(secret_key("short", "short.secret", {Alg::HS256}), "shorter than 32 bytes");
  expect_key_error(KeySpec{"31", "", {Alg::HS256}, std::string(31, 'k'), ""}, "32 bytes");
  expect_key_error(secret_key("hs512-on-32", "hs256.secret", {Alg::HS512}), "64 bytes");
  expect_key_error(secret_key("hs384-on-32", "hs256.secret", {Alg::HS384}), "48 bytes");
  expect_key_error(KeySpec{"huge", "", {Alg::HS256}, std::string(1025, 'k'), ""}, "1024 bytes");
  expect_key_error(pem_key("small-rsa", "rsa1024.pem", {Alg::RS256}), "2048");
  expect_key_error(pem_key("ed", "ed25519.pem", {Alg::ES256}), "EdDSA");
  expect_key_error(KeySpec{"both", "", {Alg::HS256}, fixture("hs256.secret"), fixture("rsa.pem")},
                   "both");
  expect_key_error(KeySpec{"neither", "", {Alg::HS256}, "", ""}, "neither");
  // Exactly 32 bytes is enough; an error in one key fails the whole set.
  EXPECT_EQ(KeySet::build({KeySpec{"32", "", {Alg::HS256}, std::string(32, 'k'), ""},
                           KeySpec{"1024", "", {Alg::HS512}, std::string(1024, 'k'), ""}})
                ->size(),
            2u);
  EXPECT_THROW(KeySet::build({secret_key("ok", "hs256.secret", {Alg::HS256}),
                              secret_key("short", "short.secret", {Alg::HS256})}),
               KeyError);
}

TEST(JwtKeySet, SizeKidsAndMerge) {
  const auto pem = KeySet::build({pem_key("rsa", "rsa.pem", {Alg::RS256}, "rsa-9")});
  const auto jwks = jwks_keys();
  EXPECT_EQ(pem->size(), 1u);
  EXPECT_TRUE(pem->has_kid("rsa-9"));
  EXPECT_FALSE(pem->has_kid("rsa-1"));
  const auto both = KeySet::merge(jwks, pem);
  EXPECT_EQ(both->size(), jwks->size() + 1);
  EXPECT_TRUE(both->has_kid("rsa-9"));
  EXPECT_TRUE(both->has_kid("ec-1"));
  EXPECT_EQ(accepted(verify(*both, token("jwks_es256"), {}, kNow)).key_name, "idp");
  EXPECT_EQ(KeySet::merge(nullptr, pem)->size(), 1u);
  EXPECT_EQ(KeySet::merge(jwks, nullptr)->size(), jwks->size());
  EXPECT_EQ(KeySet::merge(nullptr, nullptr)->size(), 0u);
  // The merged set outlives its parts.
  std::shared_ptr<const KeySet> merged;
  {
    auto a = KeySet::build({secret_key("hs", "hs256.secret", {Alg::HS256})});
    merged = KeySet::merge(a, nullptr);
  }
  EXPECT_EQ(accepted(verify(*merged, token("hs256"), {}, kNow)).key_name, "hs");
}

// --- KeySet::from_jwks -------------------------------------------------------

TEST(JwtJwks, LoadsUsableKeysAndReportsSkipped) {
  std::vector<std::string> skipped;
  const auto keys = jwks_keys(&skipped);
  EXPECT_EQ(keys->size(), 4u);
  for (const char* kid : {"rsa-1", "ec-1", "ec-384", "oct-1"}) EXPECT_TRUE(keys->has_kid(kid));
  ASSERT_EQ(skipped.size(), 7u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"enc-1", "encryption"},
      {"priv-1", "private"},
      {"weird-1", "unknown key type"},
      {"ed-1", "OKP"},
      {"ps-only", "PS512"},
      {"rsa-small", "2048"},
      {"ec521-1", "no allowed algorithm"},
  };
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_THAT(skipped[i], HasSubstr("'" + expected[i].first + "'"));
    EXPECT_THAT(skipped[i], HasSubstr(expected[i].second));
  }
  // Skipped keys verify nothing: their tokens' kids are unknown.
  EXPECT_EQ(failure_of(*keys, token("jwks_enc")), VerifyFailure::unknown_kid);
  EXPECT_EQ(failure_of(*keys, token("jwks_ps512")), VerifyFailure::unknown_kid);
}

TEST(JwtJwks, KeyAlgMustBeAllowedAndFit) {
  // rsa-1 says RS256: with only PS256 allowed it is skipped, not used for PS256.
  std::vector<std::string> skipped;
  const auto keys = KeySet::from_jwks(fixture("jwks.json"), {Alg::PS256}, "idp", &skipped);
  EXPECT_FALSE(keys->has_kid("rsa-1"));
  EXPECT_EQ(keys->size(), 0u);
  // ec-1 has no alg: it gets the allowed algorithms that fit P-256.
  const auto ec = KeySet::from_jwks(fixture("jwks.json"), {Alg::ES256, Alg::ES384}, "idp");
  EXPECT_TRUE(ec->has_kid("ec-1"));
  EXPECT_EQ(accepted(verify(*ec, token("jwks_es256"), {}, kNow)).kid, "ec-1");
  // An EC key claiming an algorithm of another curve.
  auto doc = boost::json::parse(fixture("jwks.json")).as_object();
  auto& first_ec = doc["keys"].as_array()[1].as_object();
  first_ec["alg"] = "ES384";
  skipped.clear();
  const auto mismatched =
      KeySet::from_jwks(boost::json::serialize(doc), {Alg::ES256, Alg::ES384}, "idp", &skipped);
  EXPECT_FALSE(mismatched->has_kid("ec-1"));
  const auto ec1 = std::find_if(skipped.begin(), skipped.end(),
                                [](const std::string& s) { return s.starts_with("kid 'ec-1'"); });
  ASSERT_NE(ec1, skipped.end());
  EXPECT_THAT(*ec1, HasSubstr("does not fit"));
}

TEST(JwtJwks, RefusesDocumentsThatAreNotJwkSets) {
  for (const char* doc : {"", "not json", "[]", "{}", R"({"keys":{}})", R"({"keys":"x"})",
                          R"({"keys":[],"keys":[]})"}) {
    SCOPED_TRACE(doc);
    try {
      KeySet::from_jwks(doc, {Alg::RS256}, "corp-idp");
      ADD_FAILURE() << "loaded";
    } catch (const KeyError& e) {
      EXPECT_THAT(e.what(), HasSubstr("'corp-idp'"));
    }
  }
  EXPECT_EQ(KeySet::from_jwks(R"({"keys":[]})", {Alg::RS256}, "idp")->size(), 0u);
}

TEST(JwtJwks, SkipsMalformedKeys) {
  std::vector<std::string> skipped;
  const auto keys = KeySet::from_jwks(
      R"({"keys":[7, {"kid":"a"}, {"kty":"RSA","kid":"b","n":"AQAB"},
                  {"kty":"EC","kid":"c","crv":"P-256","x":"AAAA","y":"AAAA"},
                  {"kty":"oct","kid":"d","k":"c2hvcnQ"}, {"kty":"RSA","kid":5},
                  {"kty":"RSA","kid":"e","use":"sig","key_ops":["encrypt"]}]})",
      {Alg::RS256, Alg::ES256, Alg::HS256}, "idp", &skipped);
  EXPECT_EQ(keys->size(), 0u);
  ASSERT_EQ(skipped.size(), 7u);
  EXPECT_THAT(skipped[0], HasSubstr("key #0"));
  EXPECT_THAT(skipped[1], HasSubstr("'a'"));
  EXPECT_THAT(skipped[2], HasSubstr("'b'"));
  EXPECT_THAT(skipped[3], HasSubstr("invalid"));
  EXPECT_THAT(skipped[4], HasSubstr("shorter than 32 bytes"));
  EXPECT_THAT(skipped[5], HasSubstr("kid is not a string"));
  EXPECT_THAT(skipped[6], HasSubstr("key_ops"));
}

// --- Capabilities --------------------------------------------------------------

TEST(Capabilities, PatternValidity) {
  Capabilities caps;
  for (const char* ok : {"chat:lobby", "chat:*", "chat:team-*", "a:b:*", ":*", "dm:42"}) {
    EXPECT_EQ(caps.add(ok, kAllOps), "") << ok;
  }
  for (const char* bad : {"*", "chat*", "ch*at:x", "chat:**", "*:x", "chat:*x", ""}) {
    EXPECT_NE(caps.add(bad, kAllOps), "") << bad;
  }
  EXPECT_NE(caps.add("chat:x", 32), "");
}

TEST(Capabilities, OpsForOrsEveryMatch) {
  Capabilities caps;
  EXPECT_TRUE(caps.empty());
  EXPECT_EQ(caps.ops_for("chat:lobby"), 0);
  ASSERT_EQ(caps.add("chat:*", OpSet(Op::subscribe)), "");
  ASSERT_EQ(caps.add("chat:team-*", OpSet(Op::publish)), "");
  ASSERT_EQ(caps.add("chat:team-red", OpSet(Op::history)), "");
  ASSERT_EQ(caps.add("chat:team-red", OpSet(Op::presence)), "");
  ASSERT_EQ(caps.add("chat:team-red", OpSet(Op::destroy)), "");
  EXPECT_FALSE(caps.empty());
  EXPECT_EQ(caps.ops_for("chat:lobby"), OpSet(Op::subscribe));
  EXPECT_EQ(caps.ops_for("chat:team-blue"), OpSet(Op::subscribe) | OpSet(Op::publish));
  EXPECT_EQ(caps.ops_for("chat:team-red"), kAllOps);
  EXPECT_EQ(caps.ops_for("chat:"), OpSet(Op::subscribe));
  EXPECT_EQ(caps.ops_for("chat"), 0);
  EXPECT_EQ(caps.ops_for("chatroom:x"), 0);
  EXPECT_EQ(caps.ops_for("dm:chat:x"), 0);
  EXPECT_EQ(caps.ops_for(""), 0);
}

TEST(Capabilities, OpNames) {
  for (Op op : {Op::subscribe, Op::publish, Op::history, Op::presence}) {
    Op parsed;
    ASSERT_TRUE(parse_op(to_string(op), parsed));
    EXPECT_EQ(parsed, op);
  }
  Op out = Op::publish;
  EXPECT_FALSE(parse_op("Subscribe", out));
  EXPECT_FALSE(parse_op("", out));
  EXPECT_FALSE(parse_op("admin", out));
  EXPECT_EQ(out, Op::publish);
  EXPECT_EQ(to_string(Op::history), "history");
}

}  // namespace
}  // namespace herald::auth
