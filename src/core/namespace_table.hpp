// The channel namespaces in force: each namespace's options with its
// compiled schemas, built from a Config at start-up and on every reload.
// A table is immutable once built; workers hold it by shared_ptr and a
// reload swaps in a new one (core::Node::set_namespaces), so the publish
// path reads it without locks.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "schema/event_schemas.hpp"

namespace herald::core {

struct Namespace {
  std::string name;  // "" for the defaults
  config::NamespaceOptions options;
  std::shared_ptr<const schema::EventSchemas> schemas;  // null without a schema
};

class NamespaceTable {
 public:
  // Compiles every schema file `config` names (each file once). Throws
  // schema::SchemaError naming the file and the JSON pointer.
  static std::shared_ptr<const NamespaceTable> build(const config::Config& config);

  // The namespace of `channel` (config::options_for), or nullptr when the
  // channel's namespace is not configured and unknown ones are not allowed.
  const Namespace* find(std::string_view channel) const;

 private:
  NamespaceTable() = default;
  std::map<std::string, Namespace, std::less<>> namespaces_;
  Namespace defaults_;
  bool allow_unknown_ = true;
};

}  // namespace herald::core
