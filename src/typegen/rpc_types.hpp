// `herald typegen` for RPC: the `rpc` member of HeraldSchema, made of the
// `[proxy] rpc_schema` file (`{"<method>": {"request": <JSON Schema>,
// "response": <JSON Schema>}}`, docs/config.md): per declared method the
// type of the data `client.rpc(method, data)` sends and of the result it
// resolves with. Reads that one file; writes nothing. The file is checked
// first exactly as the server checks it at start-up (proxy::load_rpc_schemas),
// so types are never made of a file the server would refuse.
#pragma once

#include <string>

#include "typegen/schema_types.hpp"

namespace herald::typegen {

// The TypeScript object type of the methods of rpc schema file `path`
// (relative to the working directory, as the server reads it): a member
// `{request: ...; response: ...}` per method (`unknown` for a side without a
// schema), plus an index signature for the methods the file does not name,
// which the server passes unchecked. Named types ($ref targets) go to
// `types` with the prefix "Rpc". Throws TypegenError naming the file.
std::string rpc_map(const std::string& path, SchemaTypes& types);

}  // namespace herald::typegen
