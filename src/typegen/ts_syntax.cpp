// TypeScript spelling helpers for `herald typegen` (see ts_syntax.hpp).
#include "typegen/ts_syntax.hpp"

#include <cctype>
#include <cstdio>

namespace herald::typegen {

std::string ts_string(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    switch (c) {
      case '\'':
        out += "\\'";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;  // UTF-8 bytes pass through: the module is UTF-8
        }
    }
  }
  out += '\'';
  return out;
}

namespace {

bool is_identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

bool is_identifier(std::string_view s) {
  if (s.empty() || !is_identifier_start(s[0])) return false;
  for (char c : s) {
    if (!is_identifier_start(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

}  // namespace

std::string ts_property_key(std::string_view key) {
  // Reserved words are valid member names, so only the lexical shape matters.
  return is_identifier(key) ? std::string(key) : ts_string(key);
}

std::string ts_type_name(std::string_view s) {
  std::string out;
  bool word_start = true;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += word_start ? static_cast<char>(std::toupper(u)) : c;
      word_start = false;
    } else {
      word_start = true;
    }
  }
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "T" + out;
  return out;
}

std::string ts_jsdoc(std::string_view text) {
  if (text.empty()) return "";
  std::string body;
  for (size_t i = 0; i < text.size(); ++i) {
    // "*/" would close the comment early; "*\/" reads the same and cannot.
    if (text[i] == '*' && i + 1 < text.size() && text[i + 1] == '/') {
      body += "*\\/";
      ++i;
    } else {
      body += text[i];
    }
  }
  if (body.find('\n') == std::string::npos) return "/** " + body + " */\n";
  std::string out = "/**\n";
  size_t start = 0;
  while (start <= body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    std::string_view line(body.data() + start, end - start);
    out += line.empty() ? " *\n" : " * " + std::string(line) + "\n";
    start = end + 1;
  }
  return out + " */\n";
}

std::string ts_indent(std::string_view text, size_t spaces) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    out += c;
    if (c == '\n') out.append(spaces, ' ');
  }
  return out;
}

}  // namespace herald::typegen
