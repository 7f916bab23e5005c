// permessage-deflate negotiation: a small parser of the extension list
// grammar of RFC 6455 section 9.1 (tokens, `;` parameters, token or
// quoted-string values) and the parameter rules of RFC 7692 section 7.1;
// see deflate_offer.hpp.
#include "ws/deflate_offer.hpp"

#include <optional>
#include <vector>

namespace herald::ws {
namespace {

struct Param {
  std::string name;
  std::optional<std::string> value;
};

struct Offer {
  std::string name;
  std::vector<Param> params;
};

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 7230 tchar.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  // Every offer of the list, or nullopt when the list is malformed.
  std::optional<std::vector<Offer>> offers() {
    std::vector<Offer> out;
    for (;;) {
      skip_ows();
      if (at_end()) return out;
      if (peek() == ',') {  // empty list elements are allowed (RFC 7230 7)
        ++pos_;
        continue;
      }
      Offer offer;
      if (!token(offer.name)) return std::nullopt;
      skip_ows();
      while (!at_end() && peek() == ';') {
        ++pos_;
        skip_ows();
        Param p;
        if (!token(p.name)) return std::nullopt;
        skip_ows();
        if (!at_end() && peek() == '=') {
          ++pos_;
          skip_ows();
          std::string v;
          const bool ok = (!at_end() && peek() == '"') ? quoted(v) : token(v);
          if (!ok) return std::nullopt;
          p.value = std::move(v);
          skip_ows();
        }
        offer.params.push_back(std::move(p));
      }
      out.push_back(std::move(offer));
      if (at_end()) return out;
      if (peek() != ',') return std::nullopt;
      ++pos_;
    }
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }
  void skip_ows() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  bool token(std::string& out) {
    const size_t start = pos_;
    while (!at_end() && is_tchar(peek())) out += lower(s_[pos_++]);
    return pos_ > start;
  }
  bool quoted(std::string& out) {
    ++pos_;  // the opening quote
    while (!at_end()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (at_end()) return false;
        out += s_[pos_++];
      } else {
        out += c;
      }
    }
    return false;  // unterminated
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// A window bits value: 1*DIGIT between 8 and 15 (RFC 7692 7.1.2), no
// leading zero.
std::optional<int> window_bits(const std::optional<std::string>& v) {
  if (!v || v->empty() || v->size() > 2 || (*v)[0] == '0') return std::nullopt;
  int n = 0;
  for (const char c : *v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 8 || n > 15) return std::nullopt;
  return n;
}

// The response for one permessage-deflate offer, or "" to decline it.
std::string answer(const Offer& offer) {
  bool seen_server_nct = false, seen_client_nct = false;
  bool seen_server_bits = false, seen_client_bits = false;
  for (const auto& p : offer.params) {
    if (p.name == "server_no_context_takeover" || p.name == "client_no_context_takeover") {
      bool& seen = p.name[0] == 's' ? seen_server_nct : seen_client_nct;
      if (seen || p.value) return {};  // duplicate, or a value where none is allowed
      seen = true;
    } else if (p.name == "server_max_window_bits") {
      // The compressor always uses a 32 KiB window: only 15 can be honoured.
      if (seen_server_bits || window_bits(p.value) != 15) return {};
      seen_server_bits = true;
    } else if (p.name == "client_max_window_bits") {
      // Valueless: the client may take a smaller window if told to; Herald
      // inflates with the largest one, so it never needs to.
      if (seen_client_bits || (p.value && !window_bits(p.value))) return {};
      seen_client_bits = true;
    } else {
      return {};  // unknown parameter (RFC 7692 7.1: decline the offer)
    }
  }
  std::string r = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  // RFC 7692 7.1.2.1: accepting an offer with server_max_window_bits means
  // answering it, with a value no larger than the offer's.
  if (seen_server_bits) r += "; server_max_window_bits=15";
  return r;
}

}  // namespace

std::string negotiate_deflate(std::span<const std::string_view> header_values) {
  // Several headers are one comma-separated list (RFC 7230 3.2.2).
  std::string joined;
  for (const auto v : header_values) {
    if (!joined.empty()) joined += ',';
    joined += v;
  }
  auto offers = Parser(joined).offers();
  if (!offers) return {};  // malformed: decline every offer, answer without extensions
  for (const auto& offer : *offers) {
    if (offer.name != "permessage-deflate") continue;
    if (auto r = answer(offer); !r.empty()) return r;
  }
  return {};
}

}  // namespace herald::ws
