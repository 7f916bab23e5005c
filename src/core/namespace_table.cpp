// NamespaceTable: building the compiled namespaces from a Config; see
// namespace_table.hpp.
#include "core/namespace_table.hpp"

namespace herald::core {

std::shared_ptr<const NamespaceTable> NamespaceTable::build(const config::Config& config) {
  std::map<std::string, std::shared_ptr<const schema::EventSchemas>> files;
  const auto compile = [&](const std::string& name, const config::NamespaceOptions& options) {
    Namespace ns{name, options, nullptr};
    if (!options.schema.empty()) {
      auto& file = files[options.schema];
      if (!file) file = schema::EventSchemas::load(options.schema);
      ns.schemas = file;
    }
    return ns;
  };
  std::shared_ptr<NamespaceTable> table(new NamespaceTable());
  table->defaults_ = compile("", config.defaults.options);
  table->allow_unknown_ = config.defaults.allow_unknown;
  for (const auto& [name, options] : config.namespaces)
    table->namespaces_.emplace(name, compile(name, options));
  return table;
}

const Namespace* NamespaceTable::find(std::string_view channel) const {
  if (const auto it = namespaces_.find(config::namespace_of(channel)); it != namespaces_.end())
    return &it->second;
  return allow_unknown_ ? &defaults_ : nullptr;
}

}  // namespace herald::core
