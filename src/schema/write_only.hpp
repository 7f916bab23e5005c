// Write-only properties of one event's schema: where in a payload they can
// be (found once, when the schema is compiled) and their removal from a
// payload that passed validation. Used by EventSchemas only.
#pragma once

#include <boost/json/value.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace herald::schema {

class WriteOnlyPlan {
 public:
  // Walks `schema`, an event's whole schema document, through "properties",
  // "items" (a schema or a list of them), the branches of "allOf", "anyOf"
  // and "oneOf", and "$ref"s into the same document. A property marked
  // write-only in any branch is removed whichever branch the payload
  // matched: a secret must not leak because another branch also fits.
  explicit WriteOnlyPlan(const boost::json::value& schema);

  // Whether the schema marks any property "writeOnly": true.
  bool any() const { return any_; }

  // Removes the write-only properties from `payload`.
  void strip(boost::json::value& payload) const;

 private:
  // What to do at one place of a payload. Nodes may form cycles (recursive
  // schemas), so they live in `nodes_` and point at each other; stripping
  // follows the payload, which is finite.
  struct Node {
    std::vector<std::string> remove;                              // write-only properties
    std::vector<std::pair<std::string, const Node*>> properties;  // where to look deeper
    const Node* items = nullptr;                                  // every element
    std::vector<const Node*> tuple;                               // element i
    std::vector<const Node*> branches;  // allOf/anyOf/oneOf: same place, also applied
  };

  const Node* build(const boost::json::value& schema, const boost::json::value& root,
                    std::vector<std::pair<const boost::json::value*, const Node*>>& seen,
                    int ref_chain);
  // `here`: the nodes already applied at this place of the payload, so that
  // branches leading back to themselves (recursive "$ref"s) end.
  static void strip(boost::json::value& payload, const Node* node, std::vector<const Node*>& here);

  std::vector<std::unique_ptr<Node>> nodes_;
  const Node* root_ = nullptr;
  bool any_ = false;
};

}  // namespace herald::schema
