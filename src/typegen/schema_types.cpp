// JSON Schema (draft 7) to TypeScript for `herald typegen` (see
// schema_types.hpp). How a schema maps to a type:
//  - true / {} -> unknown, false -> never; "$ref" -> a named type (its
//    siblings are ignored, as draft 7 says);
//  - "const" / "enum" -> literal types; else "type" (a string or a list:
//    a union), inferred as object from object keywords or as array from
//    array keywords when absent; integer is number;
//  - "anyOf" / "oneOf" -> a union, "allOf" -> an intersection, each combined
//    with the schema's own type by intersection;
//  - objects: "properties" (optional unless "required"), an index signature
//    for "additionalProperties" true or a schema and for
//    "patternProperties" (none when additionalProperties is false or absent:
//    TypeScript's excess-property check then catches unknown keys);
//  - arrays: "items" a schema -> T[], a list -> a tuple whose elements past
//    "minItems" are optional, followed by "additionalItems" (absent or true:
//    ...unknown[], a schema: ...T[], false: nothing).
// Each "$ref" is resolved as a JSON pointer into the document it appears in:
// the event's schema, which is what the server's validator compiles.
// Received types leave out write-only properties exactly where the server
// strips them: properties whose own schema says "writeOnly": true, reached
// from the event's schema through "properties", "items", "$ref" and the
// branches of "allOf", "anyOf" and "oneOf" (not through additionalProperties
// or patternProperties, which it does not follow).
#include "typegen/schema_types.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <map>
#include <optional>

#include "typegen/ts_syntax.hpp"

namespace herald::typegen {
namespace {

enum class Side { sent, received };

// A type expression and how tightly it binds, so that it is parenthesized
// only where the surrounding syntax needs it.
enum class Binding { union_, intersection, primary };
struct Ts {
  std::string text;
  Binding binding = Binding::primary;
};

Ts primary(std::string text) {
  return {std::move(text), Binding::primary};
}

std::string wrapped(const Ts& t, Binding needed) {
  return t.binding < needed ? "(" + t.text + ")" : t.text;
}

Ts make_union(const std::vector<Ts>& alternatives) {
  std::vector<const Ts*> kept;
  for (const Ts& t : alternatives) {
    if (t.text == "unknown") return primary("unknown");
    if (t.text == "never") continue;
    bool seen = false;
    for (const Ts* k : kept) seen = seen || k->text == t.text;
    if (!seen) kept.push_back(&t);
  }
  if (kept.empty()) return primary("never");
  if (kept.size() == 1) return *kept.front();
  std::string text;
  for (const Ts* k : kept) text += (text.empty() ? "" : " | ") + k->text;
  return {text, Binding::union_};
}

Ts make_intersection(const std::vector<Ts>& parts) {
  std::vector<const Ts*> kept;
  for (const Ts& t : parts) {
    if (t.text != "unknown") kept.push_back(&t);
  }
  if (kept.empty()) return primary("unknown");
  if (kept.size() == 1) return *kept.front();
  std::string text;
  for (const Ts* k : kept) {
    text += (text.empty() ? "" : " & ") + wrapped(*k, Binding::intersection);
  }
  return {text, Binding::intersection};
}

std::string escape_pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape_pointer_token(std::string_view token) {
  std::string out;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '~' && i + 1 < token.size()) {
      out += token[i + 1] == '1' ? '/' : '~';
      ++i;
    } else {
      out += token[i];
    }
  }
  return out;
}

using json = boost::json::value;

const json* field(const json& node, std::string_view key) {
  const auto* obj = node.if_object();
  return obj ? obj->if_contains(key) : nullptr;
}

std::string description_of(const json& node) {
  const json* d = field(node, "description");
  return d && d->is_string() ? std::string(d->get_string()) : "";
}

// The literal type of a JSON value ("const" and "enum" members).
std::string literal(const json& value) {
  if (const auto* s = value.if_string()) return ts_string(*s);
  if (const auto* arr = value.if_array()) {
    std::string out;
    for (const json& item : *arr) out += (out.empty() ? "" : ", ") + literal(item);
    return "[" + out + "]";
  }
  if (const auto* obj = value.if_object()) {
    std::string out;
    for (const auto& kv : *obj) {
      out += (out.empty() ? "{ " : "; ") + ts_property_key(kv.key()) + ": " + literal(kv.value());
    }
    return out.empty() ? "{ [key: string]: never }" : out + " }";
  }
  if (value.is_double()) {
    // The shortest text that reads back the same (serialize would say -1.5E0).
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, value.get_double()).ptr;
    return std::string(text, end);
  }
  return boost::json::serialize(value);  // integers, true, false, null: the same in TypeScript
}

// One schema file being converted. Named types live in the caller's
// SchemaTypes; everything else lives as long as one add_file call.
class FileConverter {
 public:
  FileConverter(std::string_view file, std::string_view prefix, std::set<std::string>& used_names,
                std::string& declarations)
      : file_(file), prefix_(prefix), used_names_(used_names), declarations_(declarations) {}

  std::vector<EventTypes> convert(const json& root) {
    const auto* events = root.if_object();
    if (!events) fail("", "a schema file must be a JSON object mapping event names to schemas");
    std::vector<EventTypes> out;
    for (const auto& kv : *events) {
      const std::string pointer = "/" + escape_pointer_token(kv.key());
      const Document doc{&kv.value(), pointer, std::string(kv.key())};
      const At at{&kv.value(), pointer, &doc};
      EventTypes types{std::string(kv.key()), description_of(kv.value()), "", ""};
      types.sent = type_of(at, Side::sent).text;
      types.received = type_of(at, Side::received).text;
      out.push_back(std::move(types));
    }
    return out;
  }

 private:
  // The schema a "$ref" is resolved against: one event's schema, as the
  // server's validator compiles it.
  struct Document {
    const json* root;
    std::string pointer;  // of the root within the file
    std::string event;
  };
  // A schema and where it is: its JSON pointer within the file (named in
  // errors, and the identity of named types) and its document.
  struct At {
    const json* node;
    std::string pointer;
    const Document* doc;

    At child(std::string_view key, const json& value) const {
      return {&value, pointer + "/" + escape_pointer_token(key), doc};
    }
    At item(size_t index, const json& value) const {
      return {&value, pointer + "/" + std::to_string(index), doc};
    }
  };

  [[noreturn]] void fail(const std::string& pointer, const std::string& reason) const {
    throw TypegenError(file_ + ": " + (pointer.empty() ? "" : "at " + pointer + ": ") + reason);
  }

  const boost::json::object& object_of(const At& at, std::string_view what) const {
    if (!at.node->is_object()) fail(at.pointer, std::string(what) + " must be an object");
    return at.node->get_object();
  }

  const boost::json::array& array_of(const At& at, std::string_view what) const {
    if (!at.node->is_array()) fail(at.pointer, std::string(what) + " must be an array");
    return at.node->get_array();
  }

  // `field` of the schema at `at`, with its location; nullopt when absent.
  static std::optional<At> sub(const At& at, std::string_view key) {
    const json* value = field(*at.node, key);
    return value ? std::optional<At>(at.child(key, *value)) : std::nullopt;
  }

  Ts type_of(const At& at, Side side) {
    if (const auto* accepts_all = at.node->if_bool()) {
      return primary(*accepts_all ? "unknown" : "never");
    }
    object_of(at, "a schema");
    if (auto ref = sub(at, "$ref")) return named(resolve(*ref), side);

    std::vector<Ts> parts;
    if (const json* value = field(*at.node, "const")) {
      parts.push_back(primary(literal(*value)));
    } else if (auto values = sub(at, "enum")) {
      std::vector<Ts> literals;
      for (const json& v : array_of(*values, "enum")) literals.push_back(primary(literal(v)));
      parts.push_back(make_union(literals));
    } else {
      parts.push_back(declared_types(at, side));
    }
    for (std::string_view keyword : {"anyOf", "oneOf"}) {
      if (auto list = sub(at, keyword)) {
        parts.push_back(make_union(each_type(*list, keyword, side)));
      }
    }
    if (auto list = sub(at, "allOf")) {
      for (Ts& t : each_type(*list, "allOf", side)) parts.push_back(std::move(t));
    }
    return make_intersection(parts);
  }

  std::vector<Ts> each_type(const At& list, std::string_view keyword, Side side) {
    std::vector<Ts> out;
    const boost::json::array& schemas = array_of(list, keyword);
    for (size_t i = 0; i < schemas.size(); ++i)
      out.push_back(type_of(list.item(i, schemas[i]), side));
    if (out.empty()) fail(list.pointer, std::string(keyword) + " must not be empty");
    return out;
  }

  Ts declared_types(const At& at, Side side) {
    std::vector<std::string> names;
    if (auto type = sub(at, "type")) {
      if (const auto* one = type->node->if_string()) {
        names.emplace_back(*one);
      } else {
        for (const json& name : array_of(*type, "type (when not a string)")) {
          if (!name.is_string()) fail(type->pointer, "type must list type names");
          names.emplace_back(name.get_string());
        }
      }
    } else {
      for (std::string_view k :
           {"properties", "required", "additionalProperties", "patternProperties"}) {
        if (field(*at.node, k)) names = {"object"};
      }
      for (std::string_view k : {"items", "additionalItems"}) {
        if (names.empty() && field(*at.node, k)) names = {"array"};
      }
    }
    if (names.empty()) return primary("unknown");
    std::vector<Ts> alternatives;
    for (const std::string& name : names) {
      if (name == "string" || name == "number" || name == "boolean" || name == "null") {
        alternatives.push_back(primary(name));
      } else if (name == "integer") {
        alternatives.push_back(primary("number"));
      } else if (name == "object") {
        alternatives.push_back(object_type(at, side));
      } else if (name == "array") {
        alternatives.push_back(array_type(at, side));
      } else {
        fail(at.pointer + "/type", "unknown type '" + name + "'");
      }
    }
    return make_union(alternatives);
  }

  Ts object_type(const At& at, Side side) {
    std::set<std::string, std::less<>> required;
    if (auto list = sub(at, "required")) {
      for (const json& name : array_of(*list, "required")) {
        if (!name.is_string()) fail(list->pointer, "required must list property names");
        required.emplace(name.get_string());
      }
    }
    std::vector<std::string> members;
    std::vector<Ts> member_types;  // an index signature must admit them all
    bool declares_properties = false;
    if (auto props = sub(at, "properties")) {
      for (const auto& kv : object_of(*props, "properties")) {
        declares_properties = true;
        const At prop = props->child(kv.key(), kv.value());
        if (side == Side::received && is_write_only(*prop.node)) continue;
        Ts t = type_of(prop, side);
        const bool optional = !required.contains(kv.key());
        members.push_back(ts_jsdoc(description_of(kv.value())) + ts_property_key(kv.key()) +
                          (optional ? "?: " : ": ") + t.text + ";");
        member_types.push_back(std::move(t));
        if (optional) member_types.push_back(primary("undefined"));
      }
    }
    std::vector<Ts> extra;
    bool closed = false;
    if (auto additional = sub(at, "additionalProperties")) {
      if (const auto* allowed = additional->node->if_bool()) {
        closed = !*allowed;
        if (*allowed) extra.push_back(primary("unknown"));
      } else {
        extra.push_back(type_of(*additional, Side::sent));
      }
    }
    if (auto patterns = sub(at, "patternProperties")) {
      for (const auto& kv : object_of(*patterns, "patternProperties")) {
        extra.push_back(type_of(patterns->child(kv.key(), kv.value()), Side::sent));
        closed = false;
      }
    }
    if (!extra.empty()) {
      for (Ts& t : member_types) extra.push_back(std::move(t));
      members.push_back("[key: string]: " + make_union(extra).text + ";");
    }
    if (members.empty()) {
      // No known key: any object, unless it may hold nothing at all.
      const bool empty_only = closed || declares_properties;
      return primary(empty_only ? "{ [key: string]: never }" : "{ [key: string]: unknown }");
    }
    std::string text = "{\n";
    for (const std::string& m : members) text += "  " + ts_indent(m, 2) + "\n";
    return primary(text + "}");
  }

  Ts array_type(const At& at, Side side) {
    auto items = sub(at, "items");
    if (!items || !items->node->is_array()) {
      const Ts element = items ? type_of(*items, side) : primary("unknown");
      return primary(wrapped(element, Binding::primary) + "[]");
    }
    uint64_t min_items = 0;
    if (auto min = sub(at, "minItems")) {
      boost::system::error_code ec;
      min_items = min->node->to_number<uint64_t>(ec);
      if (ec) fail(min->pointer, "minItems must be a non-negative integer");
    }
    std::string text;
    const boost::json::array& tuple = items->node->get_array();
    for (size_t i = 0; i < tuple.size(); ++i) {
      const Ts t = type_of(items->item(i, tuple[i]), side);
      text += (text.empty() ? "" : ", ") +
              (i < min_items ? t.text : wrapped(t, Binding::primary) + "?");
    }
    std::optional<Ts> rest = primary("unknown");
    if (auto additional = sub(at, "additionalItems")) {
      if (const auto* allowed = additional->node->if_bool()) {
        if (!*allowed) rest.reset();
      } else {
        rest = type_of(*additional, Side::sent);
      }
    }
    if (rest) text += (text.empty() ? "..." : ", ...") + wrapped(*rest, Binding::primary) + "[]";
    return primary("[" + text + "]");
  }

  // The schema a "$ref" (at `ref`) points to, within its document.
  At resolve(const At& ref) const {
    if (!ref.node->is_string()) fail(ref.pointer, "$ref must be a string");
    const std::string_view target = ref.node->get_string();
    const std::string quoted = "$ref '" + std::string(target) + "'";
    if (!target.starts_with('#')) {
      fail(ref.pointer,
           quoted + ": only references within the same schema ('#/...') are supported");
    }
    std::string pointer;  // the fragment is URI-encoded (RFC 6901, section 6)
    for (size_t i = 1; i < target.size(); ++i) {
      if (target[i] == '%' && i + 2 < target.size() &&
          std::isxdigit(static_cast<unsigned char>(target[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(target[i + 2]))) {
        pointer += static_cast<char>(std::stoi(std::string(target.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        pointer += target[i];
      }
    }
    if (!pointer.empty() && pointer[0] != '/') {
      fail(ref.pointer, quoted + ": the fragment must be a JSON pointer");
    }
    boost::system::error_code ec;
    const json* node = ref.doc->root->find_pointer(pointer, ec);
    if (!node) {
      fail(ref.pointer,
           quoted + " does not resolve within the schema of event '" + ref.doc->event + "'");
    }
    return {node, ref.doc->pointer + pointer, ref.doc};
  }

  // Whether the server strips this property: "writeOnly": true on the
  // property's own schema (beside a "$ref" too, but not behind one).
  static bool is_write_only(const json& property) {
    const json* flag = field(property, "writeOnly");
    return flag && flag->is_bool() && flag->get_bool();
  }

  // Whether the server strips anything from payloads of this schema: a
  // write-only property reachable through "properties", "items", "$ref"
  // and combinator branches, the places it looks. Then its received type
  // differs.
  bool strips(const At& at, std::set<std::string>& seen) const {
    if (!at.node->is_object() || !seen.insert(at.pointer).second) return false;
    if (auto ref = sub(at, "$ref")) return strips(resolve(*ref), seen);
    if (auto props = sub(at, "properties"); props && props->node->is_object()) {
      for (const auto& kv : props->node->get_object()) {
        if (is_write_only(kv.value()) || strips(props->child(kv.key(), kv.value()), seen)) {
          return true;
        }
      }
    }
    for (std::string_view keyword : {"allOf", "anyOf", "oneOf"}) {
      if (auto list = sub(at, keyword); list && list->node->is_array()) {
        const auto& branches = list->node->get_array();
        for (size_t i = 0; i < branches.size(); ++i) {
          if (strips(list->item(i, branches[i]), seen)) return true;
        }
      }
    }
    if (auto items = sub(at, "items")) {
      if (const auto* tuple = items->node->if_array()) {
        for (size_t i = 0; i < tuple->size(); ++i) {
          if (strips(items->item(i, (*tuple)[i]), seen)) return true;
        }
      } else if (strips(*items, seen)) {
        return true;
      }
    }
    return false;
  }

  // The named type of a "$ref" target: declared on first use (before its
  // body is converted, so a recursive reference finds the name).
  Ts named(const At& target, Side side) {
    std::set<std::string> seen;
    if (side == Side::received && !strips(target, seen)) side = Side::sent;
    const std::string key = target.pointer + (side == Side::received ? " received" : " sent");
    if (auto it = names_.find(key); it != names_.end()) return primary(it->second);

    const bool is_document = target.pointer == target.doc->pointer;
    std::string base =
        prefix_ + ts_type_name(is_document ? target.doc->event
                                           : unescape_pointer_token(target.pointer.substr(
                                                 target.pointer.rfind('/') + 1)));
    if (side == Side::received) base += "Received";
    std::string name = base;
    for (int n = 2; !used_names_.insert(name).second; ++n) name = base + std::to_string(n);
    names_.emplace(key, name);

    const Ts body = type_of(target, side);
    declarations_ += ts_jsdoc(description_of(*target.node)) + "export type " + name + " = " +
                     body.text + ";\n\n";
    return primary(name);
  }

  std::string file_;
  std::string prefix_;
  std::set<std::string>& used_names_;
  std::string& declarations_;
  std::map<std::string, std::string> names_;  // target pointer + side -> type name
};

}  // namespace

std::vector<EventTypes> SchemaTypes::add_file(std::string_view json_text, std::string_view file,
                                              std::string_view type_prefix) {
  boost::system::error_code ec;
  const json root = boost::json::parse(json_text, ec);
  if (ec) throw TypegenError(std::string(file) + ": not valid JSON: " + ec.message());
  FileConverter converter(file, type_prefix, used_names_, declarations_);
  return converter.convert(root);
}

}  // namespace herald::typegen
