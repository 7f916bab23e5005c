// Turns the rpc schema file into the `rpc` map of HeraldSchema (see
// rpc_types.hpp): each side of each method becomes one "event" of a schema
// file, "<method>#request" and "<method>#response", the very document the
// server compiles and validates against (proxy::load_rpc_schemas), then
// SchemaTypes converts it like a namespace's schema.
#include "typegen/rpc_types.hpp"

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "proxy/hooks.hpp"
#include "schema/event_schemas.hpp"
#include "typegen/ts_syntax.hpp"

namespace herald::typegen {

std::string rpc_map(const std::string& path, SchemaTypes& types) {
  try {
    proxy::load_rpc_schemas(path);  // the server's own checks and messages
  } catch (const schema::SchemaError& e) {
    throw TypegenError(e.what());
  }
  // Read again (load_rpc_schemas keeps only the compiled schemas); the file
  // may have changed in between, so every step is checked again.
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw TypegenError(path + ": cannot open the rpc schema file (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw TypegenError(path + ": cannot read the rpc schema file (" + std::strerror(errno) + ")");
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(text.str(), ec);
  if (ec || !doc.is_object())
    throw TypegenError(path + ": the rpc schema file changed while it was read");
  boost::json::object sides;
  for (const auto& [method, schemas] : doc.get_object()) {
    if (!schemas.is_object())
      throw TypegenError(path + ": the rpc schema file changed while it was read");
    for (const auto& [side, schema] : schemas.get_object())
      sides[std::string(method) + "#" + std::string(side)] = schema;
  }

  std::map<std::string, const EventTypes*> by_event;  // "<method>#<side>" -> its types
  const std::vector<EventTypes> converted =
      types.add_file(boost::json::serialize(sides), path, "Rpc");
  for (const EventTypes& e : converted) by_event[e.event] = &e;
  // One member of a method's type: `side: T` with the schema's description.
  // rpc results are sent as the backend wrote them (no writeOnly stripping),
  // so both sides use the type a writer sends.
  const auto member = [&](const std::string& method, const std::string& side) {
    auto it = by_event.find(method + "#" + side);
    const std::string text =
        it == by_event.end() ? side + ": unknown"
                             : ts_jsdoc(it->second->description) + side + ": " + it->second->sent;
    return "    " + ts_indent(text, 4) + ";\n";
  };

  std::string members;
  for (const auto& kv : doc.get_object()) {
    const std::string method(kv.key());
    members += "  " + ts_property_key(method) + ": {\n" + member(method, "request") +
               member(method, "response") + "  };\n";
  }
  // The server passes methods the file does not name unchecked.
  members += "  [method: string]: { request: unknown; response: unknown };\n";
  return "{\n" + members + "}";
}

}  // namespace herald::typegen
