// Turns the event schemas of one schema file (a JSON object mapping event
// names to draft-7 JSON Schemas: the `schema` of a namespace) into
// TypeScript types: per event, the payload a publisher sends and the payload
// subscribers receive (properties marked "writeOnly" removed, as the server
// strips them). `$ref` targets become named `export type` declarations,
// collected across files so that one module can hold every namespace.
// Works on the JSON text it is given and touches nothing else. Keywords that
// do not shape a type (formats, bounds, patterns...) are ignored here: the
// server validates them.
#pragma once

#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace herald::typegen {

// A schema file that cannot be turned into types; the message names the file
// and, when it concerns one, the JSON pointer of the schema.
class TypegenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EventTypes {
  std::string event;        // event name, e.g. "chat.message"
  std::string description;  // the event schema's "description", "" if none
  std::string sent;         // TypeScript type of the payload a publisher sends
  std::string received;     // ... of the payload subscribers receive
};

class SchemaTypes {
 public:
  // Parses `json`, the content of the schema file `file` (named in errors),
  // and returns the types of its events in file order. Named types get
  // `type_prefix` (e.g. "Chat" for the chat namespace) before their name.
  // Throws TypegenError.
  std::vector<EventTypes> add_file(std::string_view json, std::string_view file,
                                   std::string_view type_prefix);

  // An `export type` declaration per named type met so far, in the order
  // they were completed (each blank-line terminated); "" if none.
  const std::string& declarations() const { return declarations_; }

 private:
  std::set<std::string> used_names_;
  std::string declarations_;
};

}  // namespace herald::typegen
