// Typed config values and their reading from TOML; see toml_values.hpp.
#include "config/toml_values.hpp"

#include <cctype>
#include <cstdio>

namespace herald::config::detail {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A TOML basic string literal for `s`.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string render(const Value& v) {
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return quote(*s);
  std::string out = "[";
  const auto& list = std::get<std::vector<std::string>>(v);
  for (size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + quote(list[i]);
  return out + "]";
}

std::string type_name(Type t) {
  switch (t) {
    case Type::integer:
      return "an integer";
    case Type::duration_ms:
      return "an integer number of milliseconds";
    case Type::string:
      return "a string";
    case Type::string_list:
      return "an array of strings";
    case Type::boolean:
      return "a boolean (true or false)";
  }
  return "?";
}

std::string toml_type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string location(const std::string& file, const toml::source_region& where) {
  if (where.begin.line == 0) return "(in " + file + ")";
  return "(in " + file + ", line " + std::to_string(where.begin.line) + ")";
}

Value from_toml(const std::string& key, Type type, const toml::node& node,
                const std::string& file) {
  const auto wrong_type = [&](const std::string& name, const toml::node& n,
                              const std::string& expected) {
    return ConfigError(name + ": expected " + expected + " (got " + toml_type_name(n.type()) +
                       ") " + location(file, n.source()));
  };
  switch (type) {
    case Type::integer:
    case Type::duration_ms:
      if (const auto* i = node.as_integer()) return i->get();
      break;
    case Type::boolean:
      if (const auto* b = node.as_boolean()) return b->get();
      break;
    case Type::string:
      if (const auto* s = node.as_string()) return s->get();
      break;
    case Type::string_list:
      if (const auto* arr = node.as_array()) {
        std::vector<std::string> list;
        for (size_t i = 0; i < arr->size(); ++i) {
          const auto* s = (*arr)[i].as_string();
          if (!s) throw wrong_type(key + "[" + std::to_string(i) + "]", (*arr)[i], "a string");
          list.push_back(s->get());
        }
        return list;
      }
      break;
  }
  throw wrong_type(key, node, type_name(type));
}

}  // namespace herald::config::detail
