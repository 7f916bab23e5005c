// WriteOnlyPlan: finding and removing write-only properties; see
// write_only.hpp.
#include "schema/write_only.hpp"

#include <algorithm>
#include <boost/json.hpp>

namespace herald::schema {

namespace {

// "#/definitions/a%20b" -> "/definitions/a b"; nullopt for references
// outside the document (which the validator refuses anyway).
std::optional<std::string> local_pointer(std::string_view ref) {
  if (!ref.starts_with('#')) return std::nullopt;
  const auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 1; i < ref.size(); ++i) {
    if (ref[i] == '%' && i + 2 < ref.size() && hex(ref[i + 1]) >= 0 && hex(ref[i + 2]) >= 0) {
      out += static_cast<char>(hex(ref[i + 1]) * 16 + hex(ref[i + 2]));
      i += 2;
    } else {
      out += ref[i];
    }
  }
  return out;
}

// "$ref"s followed in a row before giving up: a chain of references that
// only lead to each other describes no value.
constexpr int kMaxRefChain = 64;

}  // namespace

WriteOnlyPlan::WriteOnlyPlan(const boost::json::value& schema) {
  std::vector<std::pair<const boost::json::value*, const Node*>> seen;
  root_ = build(schema, schema, seen, 0);
}

const WriteOnlyPlan::Node* WriteOnlyPlan::build(
    const boost::json::value& schema, const boost::json::value& root,
    std::vector<std::pair<const boost::json::value*, const Node*>>& seen, int ref_chain) {
  const auto* obj = schema.if_object();
  if (!obj) return nullptr;  // true / false schemas
  if (const auto* ref = obj->if_contains("$ref"); ref && ref->is_string()) {
    const auto pointer = local_pointer(ref->get_string());
    if (!pointer || ref_chain >= kMaxRefChain) return nullptr;
    boost::system::error_code ec;
    const auto* target = root.find_pointer(*pointer, ec);
    return target ? build(*target, root, seen, ref_chain + 1) : nullptr;
  }
  for (const auto& [value, node] : seen)
    if (value == &schema) return node;
  nodes_.push_back(std::make_unique<Node>());
  Node& node = *nodes_.back();
  seen.emplace_back(&schema, &node);

  if (const auto* props = obj->if_contains("properties"); props && props->is_object()) {
    for (const auto& [name, sub] : props->get_object()) {
      const auto* sub_obj = sub.if_object();
      const auto* write_only = sub_obj ? sub_obj->if_contains("writeOnly") : nullptr;
      if (write_only && write_only->is_bool() && write_only->get_bool()) {
        node.remove.emplace_back(name);
        any_ = true;
      } else if (const Node* child = build(sub, root, seen, 0)) {
        node.properties.emplace_back(std::string(name), child);
      }
    }
  }
  for (const char* keyword : {"allOf", "anyOf", "oneOf"}) {
    if (const auto* list = obj->if_contains(keyword); list && list->is_array()) {
      for (const auto& branch : list->get_array())
        if (const Node* child = build(branch, root, seen, 0)) node.branches.push_back(child);
    }
  }
  if (const auto* items = obj->if_contains("items")) {
    if (items->is_array()) {
      for (const auto& item : items->get_array()) node.tuple.push_back(build(item, root, seen, 0));
    } else {
      node.items = build(*items, root, seen, 0);
    }
  }
  return &node;
}

void WriteOnlyPlan::strip(boost::json::value& payload) const {
  std::vector<const Node*> here;
  strip(payload, root_, here);
}

void WriteOnlyPlan::strip(boost::json::value& payload, const Node* node,
                          std::vector<const Node*>& here) {
  if (!node || std::find(here.begin(), here.end(), node) != here.end()) return;
  here.push_back(node);
  for (const Node* branch : node->branches) strip(payload, branch, here);
  if (auto* obj = payload.if_object()) {
    for (const auto& name : node->remove) obj->erase(name);
    for (const auto& [name, child] : node->properties) {
      std::vector<const Node*> below;
      if (auto* value = obj->if_contains(name)) strip(*value, child, below);
    }
  } else if (auto* arr = payload.if_array()) {
    for (size_t i = 0; i < arr->size(); ++i) {
      // Past a list of "items" come "additionalItems", which are not followed.
      std::vector<const Node*> below;
      strip((*arr)[i],
            node->tuple.empty()      ? node->items
            : i < node->tuple.size() ? node->tuple[i]
                                     : nullptr,
            below);
    }
  }
}

}  // namespace herald::schema
