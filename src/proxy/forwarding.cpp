// Allow-listing the upgrade request's headers and cookies for the connect
// hook; see forwarding.hpp.
#include "proxy/forwarding.hpp"

#include <algorithm>
#include <cctype>

namespace herald::proxy {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string filter_cookies(std::string_view header, const std::vector<std::string>& allowed) {
  std::string out;
  while (!header.empty()) {
    const auto semi = header.find(';');
    const std::string_view pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = trim(pair.substr(0, eq));
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) continue;
    if (!out.empty()) out += "; ";
    out += pair;
  }
  return out;
}

void forward_header(const ForwardRules& rules, std::string_view name, std::string_view value,
                    Headers& out) {
  std::string key = lower(name);
  if (key == "cookie" && !rules.cookies.empty()) {
    std::string kept = filter_cookies(value, rules.cookies);
    if (kept.empty()) return;
    // Browsers send one Cookie header; a second one adds to the first.
    for (auto& [k, v] : out) {
      if (k == "cookie") {
        v += "; " + kept;
        return;
      }
    }
    out.emplace_back(std::move(key), std::move(kept));
    return;
  }
  if (std::find(rules.headers.begin(), rules.headers.end(), key) == rules.headers.end()) return;
  out.emplace_back(std::move(key), std::string(value));
}

}  // namespace herald::proxy
