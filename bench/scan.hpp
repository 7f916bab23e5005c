// herald-bench: cheap scanning of the server's JSON messages without a JSON
// parser (the type of a reply, unsigned integers after a key) and number
// formatting for the messages the bench writes. The server and the peers
// write compact JSON; the slow paths also accept whitespace around ':'.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace herald::bench {

inline const char* skip_ws(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  return p;
}

// Parses the digits at p (at most 20); false when there are none.
inline bool parse_digits(const char*& p, const char* end, uint64_t& out) {
  const char* start = p;
  uint64_t v = 0;
  while (p < end && static_cast<unsigned>(*p - '0') < 10 && p - start < 20)
    v = v * 10 + uint64_t(*p++ - '0');
  out = v;
  return p != start;
}

// Whether [p, end) starts with `lit`.
inline bool at(const char* p, const char* end, std::string_view lit) {
  return static_cast<size_t>(end - p) >= lit.size() && std::memcmp(p, lit.data(), lit.size()) == 0;
}

// Finds the key `name` (quoted, e.g. "\"seq\"") in [p, end) followed by
// optional whitespace and ':'; returns the position after the ':' and any
// whitespace, or null.
inline const char* find_key(const char* p, const char* end, std::string_view name) {
  while (p < end) {
    const void* f = memmem(p, static_cast<size_t>(end - p), name.data(), name.size());
    if (!f) return nullptr;
    const char* q = skip_ws(static_cast<const char*>(f) + name.size(), end);
    if (q < end && *q == ':') return skip_ws(q + 1, end);
    p = static_cast<const char*>(f) + 1;
  }
  return nullptr;
}

// Finds `name` (quoted key) in [p, end) and parses the unsigned integer
// after it; advances p past the number. False when missing or not a number.
inline bool find_uint(const char*& p, const char* end, std::string_view name, uint64_t& out) {
  const char* q = find_key(p, end, name);
  if (!q || !parse_digits(q, end, out)) return false;
  p = q;
  return true;
}

// The `type` of a server message: {"type":"X" first (Herald always writes
// it first), else anywhere. Empty when absent.
inline std::string_view message_type(std::string_view m) {
  constexpr std::string_view k = "{\"type\":\"";
  const char* begin = m.data();
  const char* end = begin + m.size();
  const char* start;
  if (m.substr(0, k.size()) == k) {
    start = begin + k.size();
  } else {
    const char* q = find_key(begin, end, "\"type\"");
    if (!q || q >= end || *q != '"') return {};
    start = q + 1;
  }
  const void* e = std::memchr(start, '"', static_cast<size_t>(end - start));
  if (!e) return {};
  return {start, static_cast<size_t>(static_cast<const char*>(e) - start)};
}

inline void append_uint(std::string& s, uint64_t v) {
  char buf[24];
  char* e = buf + sizeof buf;
  char* b = e;
  do {
    *--b = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  s.append(b, static_cast<size_t>(e - b));
}

inline size_t digits(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

}  // namespace herald::bench
