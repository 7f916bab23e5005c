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
#include "typegen/schema_types.hpp"

#include <simdjson.h>

#include <cctype>
#include <map>
#include <optional>

#include "typegen/ts_syntax.hpp"

namespace herald::typegen {
namespace {

namespace dom = simdjson::dom;

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

std::optional<dom::element> field(dom::object obj, std::string_view key) {
  dom::element value;
  if (obj.at_key(key).get(value) != simdjson::SUCCESS) return std::nullopt;
  return value;
}

std::string description_of(dom::element node) {
  dom::object obj;
  if (node.get_object().get(obj) != simdjson::SUCCESS) return "";
  auto d = field(obj, "description");
  std::string_view text;
  if (!d || d->get_string().get(text) != simdjson::SUCCESS) return "";
  return std::string(text);
}

// The literal type of a JSON value ("const" and "enum" members).
std::string literal(dom::element value) {
  switch (value.type()) {
    case dom::element_type::STRING:
      return ts_string(value.get_string().value_unsafe());
    case dom::element_type::ARRAY: {
      std::string out = "[";
      const dom::array items = value.get_array().value_unsafe();
      for (dom::element item : items) {
        out += (out.size() > 1 ? ", " : "") + literal(item);
      }
      return out + "]";
    }
    case dom::element_type::OBJECT: {
      std::string out;
      const dom::object members = value.get_object().value_unsafe();
      for (dom::key_value_pair kv : members) {
        out += (out.empty() ? "{ " : "; ") + ts_property_key(kv.key) + ": " + literal(kv.value);
      }
      return out.empty() ? "{ [key: string]: never }" : out + " }";
    }
    default:  // numbers, true, false, null: their JSON text is their TypeScript
      return simdjson::minify(value);
  }
}

// One schema file being converted. Named types live in the caller's
// SchemaTypes; everything else lives as long as one add_file call.
class FileConverter {
 public:
  FileConverter(std::string_view file, std::string_view prefix, std::set<std::string>& used_names,
                std::string& declarations)
      : file_(file), prefix_(prefix), used_names_(used_names), declarations_(declarations) {}

  std::vector<EventTypes> convert(dom::element root) {
    dom::object events;
    if (root.get_object().get(events) != simdjson::SUCCESS) {
      fail("", "a schema file must be a JSON object mapping event names to schemas");
    }
    std::vector<EventTypes> out;
    for (dom::key_value_pair kv : events) {
      const std::string pointer = "/" + escape_pointer_token(kv.key);
      const Document doc{kv.value, pointer, std::string(kv.key)};
      const At at{kv.value, pointer, &doc};
      EventTypes types{std::string(kv.key), description_of(kv.value), "", ""};
      types.sent = type_of(at, Side::sent).text;
      types.received = type_of(at, Side::received).text;
      out.push_back(std::move(types));
    }
    return out;
  }

 private:
  // The schema a "$ref" is resolved against: one event's schema.
  struct Document {
    dom::element root;
    std::string pointer;  // of the root within the file
    std::string event;
  };
  // A schema and where it is: its JSON pointer within the file (named in
  // errors, and the identity of named types) and its document.
  struct At {
    dom::element node;
    std::string pointer;
    const Document* doc;

    At child(std::string_view key, dom::element value) const {
      return {value, pointer + "/" + escape_pointer_token(key), doc};
    }
    At item(size_t index, dom::element value) const {
      return {value, pointer + "/" + std::to_string(index), doc};
    }
  };

  [[noreturn]] void fail(const std::string& pointer, const std::string& reason) const {
    throw TypegenError(file_ + ": " + (pointer.empty() ? "" : "at " + pointer + ": ") + reason);
  }

  dom::object object_of(const At& at, std::string_view what) const {
    dom::object obj;
    if (at.node.get_object().get(obj) != simdjson::SUCCESS) {
      fail(at.pointer, std::string(what) + " must be an object");
    }
    return obj;
  }

  dom::array array_of(const At& at, std::string_view what) const {
    dom::array arr;
    if (at.node.get_array().get(arr) != simdjson::SUCCESS) {
      fail(at.pointer, std::string(what) + " must be an array");
    }
    return arr;
  }

  Ts type_of(const At& at, Side side) {
    bool accepts_all;
    if (at.node.get_bool().get(accepts_all) == simdjson::SUCCESS) {
      return primary(accepts_all ? "unknown" : "never");
    }
    const dom::object obj = object_of(at, "a schema");
    if (auto ref = field(obj, "$ref")) return named(resolve(at.child("$ref", *ref)), side);

    std::vector<Ts> parts;
    if (auto value = field(obj, "const")) {
      parts.push_back(primary(literal(*value)));
    } else if (auto values = field(obj, "enum")) {
      std::vector<Ts> literals;
      for (dom::element v : array_of(at.child("enum", *values), "enum")) {
        literals.push_back(primary(literal(v)));
      }
      parts.push_back(make_union(literals));
    } else {
      parts.push_back(declared_types(at, obj, side));
    }
    for (std::string_view keyword : {"anyOf", "oneOf"}) {
      if (auto list = field(obj, keyword)) {
        parts.push_back(make_union(each_type(at.child(keyword, *list), keyword, side)));
      }
    }
    if (auto list = field(obj, "allOf")) {
      for (Ts& t : each_type(at.child("allOf", *list), "allOf", side)) {
        parts.push_back(std::move(t));
      }
    }
    return make_intersection(parts);
  }

  std::vector<Ts> each_type(const At& list, std::string_view keyword, Side side) {
    std::vector<Ts> out;
    size_t i = 0;
    for (dom::element sub : array_of(list, keyword)) {
      out.push_back(type_of(list.item(i++, sub), side));
    }
    if (out.empty()) fail(list.pointer, std::string(keyword) + " must not be empty");
    return out;
  }

  Ts declared_types(const At& at, dom::object obj, Side side) {
    std::vector<std::string> names;
    if (auto type = field(obj, "type")) {
      const At type_at = at.child("type", *type);
      std::string_view one;
      if (type->get_string().get(one) == simdjson::SUCCESS) {
        names.emplace_back(one);
      } else {
        for (dom::element name : array_of(type_at, "type (when not a string)")) {
          if (name.get_string().get(one) != simdjson::SUCCESS) {
            fail(type_at.pointer, "type must list type names");
          }
          names.emplace_back(one);
        }
      }
    } else {
      for (std::string_view k :
           {"properties", "required", "additionalProperties", "patternProperties"}) {
        if (field(obj, k)) names = {"object"};
      }
      for (std::string_view k : {"items", "additionalItems"}) {
        if (names.empty() && field(obj, k)) names = {"array"};
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
        alternatives.push_back(object_type(at, obj, side));
      } else if (name == "array") {
        alternatives.push_back(array_type(at, obj, side));
      } else {
        fail(at.pointer + "/type", "unknown type '" + name + "'");
      }
    }
    return make_union(alternatives);
  }

  Ts object_type(const At& at, dom::object obj, Side side) {
    std::set<std::string, std::less<>> required;
    if (auto list = field(obj, "required")) {
      const At list_at = at.child("required", *list);
      for (dom::element name : array_of(list_at, "required")) {
        std::string_view s;
        if (name.get_string().get(s) != simdjson::SUCCESS) {
          fail(list_at.pointer, "required must list property names");
        }
        required.emplace(s);
      }
    }
    std::vector<std::string> members;
    std::vector<Ts> member_types;  // an index signature must admit them all
    bool declares_properties = false;
    if (auto props = field(obj, "properties")) {
      const At props_at = at.child("properties", *props);
      for (dom::key_value_pair kv : object_of(props_at, "properties")) {
        declares_properties = true;
        const At prop = props_at.child(kv.key, kv.value);
        if (side == Side::received && is_write_only(prop)) continue;
        Ts t = type_of(prop, side);
        const bool optional = required.find(kv.key) == required.end();
        members.push_back(ts_jsdoc(description_of(kv.value)) + ts_property_key(kv.key) +
                          (optional ? "?: " : ": ") + t.text + ";");
        member_types.push_back(std::move(t));
        if (optional) member_types.push_back(primary("undefined"));
      }
    }
    std::vector<Ts> extra;
    bool closed = false;
    if (auto additional = field(obj, "additionalProperties")) {
      bool allowed;
      if (additional->get_bool().get(allowed) == simdjson::SUCCESS) {
        closed = !allowed;
        if (allowed) extra.push_back(primary("unknown"));
      } else {
        extra.push_back(type_of(at.child("additionalProperties", *additional), side));
      }
    }
    if (auto patterns = field(obj, "patternProperties")) {
      const At patterns_at = at.child("patternProperties", *patterns);
      for (dom::key_value_pair kv : object_of(patterns_at, "patternProperties")) {
        extra.push_back(type_of(patterns_at.child(kv.key, kv.value), side));
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

  Ts array_type(const At& at, dom::object obj, Side side) {
    auto items = field(obj, "items");
    dom::array tuple;
    if (!items || items->get_array().get(tuple) != simdjson::SUCCESS) {
      const Ts element = items ? type_of(at.child("items", *items), side) : primary("unknown");
      return primary(wrapped(element, Binding::primary) + "[]");
    }
    uint64_t min_items = 0;
    if (auto min = field(obj, "minItems")) {
      if (min->get_uint64().get(min_items) != simdjson::SUCCESS) {
        fail(at.pointer + "/minItems", "minItems must be a non-negative integer");
      }
    }
    const At items_at = at.child("items", *items);
    std::string text;
    size_t i = 0;
    for (dom::element sub : tuple) {
      const Ts t = type_of(items_at.item(i, sub), side);
      text += (text.empty() ? "" : ", ") +
              (i < min_items ? t.text : wrapped(t, Binding::primary) + "?");
      ++i;
    }
    std::optional<Ts> rest = primary("unknown");
    if (auto additional = field(obj, "additionalItems")) {
      bool allowed;
      if (additional->get_bool().get(allowed) == simdjson::SUCCESS) {
        if (!allowed) rest.reset();
      } else {
        rest = type_of(at.child("additionalItems", *additional), side);
      }
    }
    if (rest) text += (text.empty() ? "..." : ", ...") + wrapped(*rest, Binding::primary) + "[]";
    return primary("[" + text + "]");
  }

  // The schema a "$ref" (at `ref`) points to, within its document.
  At resolve(const At& ref) const {
    std::string_view target;
    if (ref.node.get_string().get(target) != simdjson::SUCCESS) {
      fail(ref.pointer, "$ref must be a string");
    }
    const std::string quoted = "$ref '" + std::string(target) + "'";
    if (target.empty() || target[0] != '#') {
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
    dom::element node;
    if (ref.doc->root.at_pointer(pointer).get(node) != simdjson::SUCCESS) {
      fail(ref.pointer,
           quoted + " does not resolve within the schema of event '" + ref.doc->event + "'");
    }
    return {node, ref.doc->pointer + pointer, ref.doc};
  }

  // Whether the server strips this property: "writeOnly": true on its
  // schema, or on the schema its "$ref"s lead to.
  bool is_write_only(const At& at) const {
    At current = at;
    std::set<std::string> seen;
    while (seen.insert(current.pointer).second) {
      dom::object obj;
      if (current.node.get_object().get(obj) != simdjson::SUCCESS) return false;
      bool flag = false;
      if (auto w = field(obj, "writeOnly"); w && w->get_bool().get(flag) == simdjson::SUCCESS) {
        return flag;
      }
      auto ref = field(obj, "$ref");
      if (!ref) return false;
      current = resolve(current.child("$ref", *ref));
    }
    return false;
  }

  // Whether any property reachable from this schema is write-only, i.e.
  // whether its received type differs from its sent type.
  bool reaches_write_only(const At& at, std::set<std::string>& seen) const {
    dom::object obj;
    if (at.node.get_object().get(obj) != simdjson::SUCCESS) return false;
    if (!seen.insert(at.pointer).second) return false;
    if (auto ref = field(obj, "$ref"))
      return reaches_write_only(resolve(at.child("$ref", *ref)), seen);
    for (std::string_view keyword : {"properties", "patternProperties"}) {
      dom::object members;
      auto m = field(obj, keyword);
      if (!m || m->get_object().get(members) != simdjson::SUCCESS) continue;
      const At members_at = at.child(keyword, *m);
      for (dom::key_value_pair kv : members) {
        const At sub = members_at.child(kv.key, kv.value);
        if ((keyword == "properties" && is_write_only(sub)) || reaches_write_only(sub, seen)) {
          return true;
        }
      }
    }
    for (std::string_view keyword : {"additionalProperties", "items", "additionalItems"}) {
      if (auto sub = field(obj, keyword);
          sub && reaches_write_only(at.child(keyword, *sub), seen)) {
        return true;
      }
    }
    for (std::string_view keyword : {"items", "anyOf", "oneOf", "allOf"}) {
      dom::array list;
      auto l = field(obj, keyword);
      if (!l || l->get_array().get(list) != simdjson::SUCCESS) continue;
      const At list_at = at.child(keyword, *l);
      size_t i = 0;
      for (dom::element sub : list) {
        if (reaches_write_only(list_at.item(i++, sub), seen)) return true;
      }
    }
    return false;
  }

  // The named type of a "$ref" target: declared on first use (before its
  // body is converted, so a recursive reference finds the name).
  Ts named(const At& target, Side side) {
    std::set<std::string> seen;
    if (side == Side::received && !reaches_write_only(target, seen)) side = Side::sent;
    const std::string key = target.pointer + (side == Side::received ? " received" : " sent");
    if (auto it = names_.find(key); it != names_.end()) return primary(it->second);

    const size_t cut = target.pointer.rfind('/');
    const bool is_document = target.pointer == target.doc->pointer;
    std::string base =
        prefix_ + ts_type_name(is_document
                                   ? target.doc->event
                                   : unescape_pointer_token(target.pointer.substr(cut + 1)));
    if (side == Side::received) base += "Received";
    std::string name = base;
    for (int n = 2; !used_names_.insert(name).second; ++n) name = base + std::to_string(n);
    names_.emplace(key, name);

    const Ts body = type_of(target, side);
    declarations_ +=
        ts_jsdoc(description_of(target.node)) + "export type " + name + " = " + body.text + ";\n\n";
    return primary(name);
  }

  std::string file_;
  std::string prefix_;
  std::set<std::string>& used_names_;
  std::string& declarations_;
  std::map<std::string, std::string> names_;  // target pointer + side -> type name
};

}  // namespace

std::vector<EventTypes> SchemaTypes::add_file(std::string_view json, std::string_view file,
                                              std::string_view type_prefix) {
  dom::parser parser;
  dom::element root;
  const simdjson::padded_string padded(json);
  if (auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    throw TypegenError(std::string(file) + ": not valid JSON: " + simdjson::error_message(error));
  }
  FileConverter converter(file, type_prefix, used_names_, declarations_);
  return converter.convert(root);
}

}  // namespace herald::typegen
