// The JSON Schemas of one namespace: a JSON file mapping event names to
// JSON Schemas (draft 7), e.g. {"chat.message": {...}, "chat.destroy": {...}},
// compiled once with valijson and then shared, read-only, by every worker
// (checking a payload creates its own validator and touches no shared
// state). Each event's schema is its own document: a "$ref" such as
// "#/definitions/user" points into that event's schema.
//
// Properties marked "writeOnly": true (reachable from the event's schema
// through properties, items and $ref) are checked like any other, then
// removed from the payload before it is stored or delivered.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace herald::schema {

// A schema file that cannot be used; what() names the file and the JSON
// pointer of the problem, e.g.
// "schema file /etc/herald/chat.json: /chat.message/properties/text/type: ...".
class SchemaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One way a payload breaks its schema: where (a JSON pointer into the
// payload, "" for the payload itself) and why.
struct Violation {
  std::string pointer;
  std::string reason;
};

struct Verdict {
  bool declared = false;              // the schema file names this event
  std::vector<Violation> violations;  // empty: the payload matches (or is undeclared)
  // The payload without its write-only properties, when the event's schema
  // has any and the payload matched; otherwise the payload stays as sent.
  std::optional<std::string> stripped;
};

class EventSchemas {
 public:
  // Reads and compiles the file at `path`. Throws SchemaError.
  static std::shared_ptr<const EventSchemas> load(const std::string& path);
  // The same from the file's text (`path` only names it in errors).
  static std::shared_ptr<const EventSchemas> parse(const std::string& path, std::string_view text);

  ~EventSchemas();
  EventSchemas(const EventSchemas&) = delete;
  EventSchemas& operator=(const EventSchemas&) = delete;

  // Checks `data`, a JSON text, against the schema of `event`. Thread-safe.
  Verdict check(std::string_view event, std::string_view data) const;

  bool declares(std::string_view event) const;
  const std::string& path() const { return path_; }

 private:
  struct Event;
  EventSchemas() = default;

  std::string path_;
  std::map<std::string, std::unique_ptr<Event>, std::less<>> events_;
};

// `details` of a `validation_failed` error: [{"pointer":"/text","reason":"..."}].
std::string violations_to_json(const std::vector<Violation>& violations);

}  // namespace herald::schema
