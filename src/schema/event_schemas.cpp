// EventSchemas: loading, compiling and checking against a namespace's
// schema file; see event_schemas.hpp. valijson does the validating, over
// Boost.JSON values (the server already links Boost.JSON).
#include "schema/event_schemas.hpp"

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "protocol/messages.hpp"
#include "schema/write_only.hpp"

namespace herald::schema {

namespace {

// One reference token of a JSON pointer (RFC 6901: '~' -> "~0", '/' -> "~1").
std::string pointer_token(std::string_view name) {
  std::string out = "/";
  for (char c : name) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

// valijson's context, e.g. {"<root>", "[items]", "[0]", "[text]"}, as a JSON
// pointer into the payload: "/items/0/text".
std::string context_to_pointer(const std::vector<std::string>& context) {
  std::string out;
  for (const auto& part : context) {
    if (part.size() < 2 || part.front() != '[' || part.back() != ']') continue;  // "<root>"
    out += pointer_token(std::string_view(part).substr(1, part.size() - 2));
  }
  return out;
}

// valijson follows a nested failure with one more error at each enclosing
// level ("Failed to validate against schema associated with property name
// 'text'."): the nested one says what is wrong and where, these only repeat
// it, so they are left out of `details`.
bool repeats_a_nested_error(std::string_view description) {
  for (const std::string_view wrapper :
       {"Failed to validate against schema associated with property name",
        "Failed to validate against schema associated with pattern",
        "Failed to validate against additional properties schema",
        "Failed to validate against child schema #", "Failed to validate item #"})
    if (description.starts_with(wrapper)) return true;
  return false;
}

}  // namespace

struct EventSchemas::Event {
  boost::json::value document;  // the compiled schema and the plan refer into it
  valijson::Schema compiled;
  std::unique_ptr<WriteOnlyPlan> write_only;
};

EventSchemas::~EventSchemas() = default;

std::shared_ptr<const EventSchemas> EventSchemas::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw SchemaError("schema file " + path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw SchemaError("schema file " + path + ": cannot read");
  return parse(path, text.str());
}

std::shared_ptr<const EventSchemas> EventSchemas::parse(const std::string& path,
                                                        std::string_view text) {
  const std::string prefix = "schema file " + path + ": ";
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(text, ec);
  if (ec) throw SchemaError(prefix + "not valid JSON (" + ec.message() + ")");
  auto* events = doc.if_object();
  if (!events)
    throw SchemaError(prefix + "(root): expected an object mapping event names to JSON Schemas");

  std::shared_ptr<EventSchemas> out(new EventSchemas());
  out->path_ = path;
  for (auto& [name, schema] : *events) {
    const std::string where = prefix + pointer_token(name) + ": ";
    if (!schema.is_object() && !schema.is_bool())
      throw SchemaError(where + "expected a JSON Schema (an object or a boolean)");
    auto event = std::make_unique<Event>();
    event->document = std::move(schema);
    try {
      valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
      valijson::adapters::BoostJsonAdapter adapter(event->document);
      parser.populateSchema(adapter, event->compiled);
    } catch (const std::exception& e) {
      throw SchemaError(where + "invalid JSON Schema: " + e.what());
    }
    event->write_only = std::make_unique<WriteOnlyPlan>(event->document);
    out->events_.emplace(std::string(name), std::move(event));
  }
  return out;
}

bool EventSchemas::declares(std::string_view event) const {
  return events_.find(event) != events_.end();
}

Verdict EventSchemas::check(std::string_view event_name, std::string_view data) const {
  Verdict verdict;
  const auto it = events_.find(event_name);
  if (it == events_.end()) return verdict;
  verdict.declared = true;
  const Event& event = *it->second;

  boost::system::error_code ec;
  boost::json::value payload = boost::json::parse(data, ec);
  if (ec) {  // the protocol parser passes only valid JSON; this is a safety net
    verdict.violations.push_back({"", "not valid JSON"});
    return verdict;
  }
  valijson::adapters::BoostJsonAdapter target(payload);
  // Stopping at the first failure is cheaper; only a failing payload pays
  // for a second pass that collects every violation.
  if (!valijson::Validator().validate(event.compiled, target, nullptr)) {
    valijson::ValidationResults results;
    valijson::Validator().validate(event.compiled, target, &results);
    for (const auto& error : results)
      if (!repeats_a_nested_error(error.description))
        verdict.violations.push_back({context_to_pointer(error.context), error.description});
    if (verdict.violations.empty())  // only wrappers: keep them rather than say nothing
      for (const auto& error : results)
        verdict.violations.push_back({context_to_pointer(error.context), error.description});
    return verdict;
  }
  if (event.write_only->any()) {
    event.write_only->strip(payload);
    verdict.stripped = boost::json::serialize(payload);
  }
  return verdict;
}

std::string violations_to_json(const std::vector<Violation>& violations) {
  std::string out = "[";
  for (const auto& v : violations) {
    if (out.size() > 1) out += ',';
    out += "{\"pointer\":";
    protocol::append_json_string(out, v.pointer);
    out += ",\"reason\":";
    protocol::append_json_string(out, v.reason);
    out += '}';
  }
  return out + "]";
}

}  // namespace herald::schema
