// ApiKeys: validating the configured keys, digesting them, and matching a
// presented key in constant time; see api_keys.hpp.
#include "auth/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdexcept>

namespace herald::auth {
namespace {

constexpr std::string_view kScopeNames[] = {"publish", "history", "admin", "presence", "destroy"};

// SHA-256 through OpenSSL's one-shot EVP interface. It can only fail on an
// allocation failure or a broken OpenSSL; neither is a bad key, so it throws
// something other than invalid_argument.
std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size())
    throw std::runtime_error("SHA-256 failed in OpenSSL");
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool parse_digest(std::string_view hex, std::array<unsigned char, 32>& out) {
  if (hex.size() != 2 * out.size()) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

[[noreturn]] void bad_key(const std::string& name, std::string_view problem) {
  throw std::invalid_argument("api key '" + name + "': " + std::string(problem));
}

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::optional<Scope> parse_scope(std::string_view name) {
  for (size_t i = 0; i < std::size(kScopeNames); ++i)
    if (name == kScopeNames[i]) return static_cast<Scope>(1u << i);
  return std::nullopt;
}

std::string_view to_string(Scope scope) {
  for (size_t i = 0; i < std::size(kScopeNames); ++i)
    if (static_cast<unsigned>(scope) == (1u << i)) return kScopeNames[i];
  return "unknown";
}

ApiKeys::ApiKeys(const std::vector<ApiKeySpec>& specs) {
  entries_.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const ApiKeySpec& spec = specs[i];
    if (spec.name.empty())
      throw std::invalid_argument("api key #" + std::to_string(i + 1) + " has no name");
    if (spec.key.empty() == spec.sha256_hex.empty())
      bad_key(spec.name, "give exactly one of the key and its sha256");
    if (spec.scopes & ~kAllScopes) bad_key(spec.name, "unknown scope bits");
    if ((spec.scopes & kAllScopes) == 0) bad_key(spec.name, "no scopes");

    Entry entry{{spec.name, spec.scopes}, {}};
    if (!spec.key.empty()) {
      // The length is the only property of a raw key we can check; a short
      // key can be guessed.
      if (spec.key.size() < kMinKeyBytes)
        bad_key(spec.name, "the key is shorter than " + std::to_string(kMinKeyBytes) + " bytes");
      entry.digest = sha256(spec.key);
    } else if (!parse_digest(spec.sha256_hex, entry.digest)) {
      bad_key(spec.name, "sha256 must be 64 hex digits");
    }

    for (const Entry& other : entries_) {
      if (other.key.name == spec.name) bad_key(spec.name, "the name is used twice");
      // Two names for one key: authenticate() could only ever return the
      // last, so one of them is a mistake.
      if (CRYPTO_memcmp(other.digest.data(), entry.digest.data(), entry.digest.size()) == 0)
        bad_key(spec.name, "same key as api key '" + other.key.name + "'");
    }
    entries_.push_back(std::move(entry));
  }
}

const ApiKey* ApiKeys::authenticate(std::string_view presented) const {
  // Returning early here reveals nothing about the configured keys.
  if (presented.empty()) return nullptr;
  const Digest digest = sha256(presented);
  // Every digest is compared, and the match is selected with a mask rather
  // than a branch, so the work done is the same whichever key (if any)
  // matches. Digests are distinct (checked at construction): at most one
  // comparison can succeed.
  size_t found = entries_.size();
  for (size_t i = 0; i < entries_.size(); ++i) {
    const int diff = CRYPTO_memcmp(entries_[i].digest.data(), digest.data(), digest.size());
    const size_t mask = size_t{0} - static_cast<size_t>(diff == 0);  // all ones on a match
    found = (i & mask) | (found & ~mask);
  }
  return found < entries_.size() ? &entries_[found].key : nullptr;
}

std::string_view ApiKeys::credential_from_headers(std::string_view authorization,
                                                  std::string_view x_api_key) {
  // RFC 7235 credentials: auth-scheme 1*SP token; the scheme is
  // case-insensitive. Any other scheme (Basic, ...) is not ours: fall back to
  // X-API-Key.
  constexpr std::string_view kBearer = "bearer";
  authorization = trim(authorization);
  if (authorization.size() > kBearer.size() &&
      iequals(authorization.substr(0, kBearer.size()), kBearer) &&
      authorization[kBearer.size()] == ' ') {
    std::string_view token = authorization.substr(kBearer.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    if (!token.empty()) return token;
  }
  return trim(x_api_key);
}

}  // namespace herald::auth
