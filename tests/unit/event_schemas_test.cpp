// Unit tests for schema::EventSchemas: compile errors naming the file and
// the JSON pointer, validation verdicts with every violation's pointer, and
// the removal of write-only properties (nested, in arrays, through $ref).
#include "schema/event_schemas.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

namespace herald::schema {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string compile_error(std::string_view text) {
  try {
    EventSchemas::parse("s.json", text);
  } catch (const SchemaError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no SchemaError for " << text;
  return {};
}

TEST(EventSchemasTest, CompileErrorsNameTheFileAndThePointer) {
  EXPECT_THAT(compile_error("{"), StartsWith("schema file s.json: not valid JSON"));
  EXPECT_THAT(compile_error("[]"),
              StartsWith("schema file s.json: (root): expected an object mapping event names"));
  EXPECT_THAT(compile_error(R"({"chat.message": 3})"),
              StartsWith("schema file s.json: /chat.message: expected a JSON Schema"));
  EXPECT_THAT(compile_error(R"({"a/b~c": {"type": 3}})"),
              StartsWith("schema file s.json: /a~1b~0c: invalid JSON Schema: "));
  EXPECT_THAT(compile_error(R"({"ok": {}, "bad": {"properties": {"x": {"type": "nonsense"}}}})"),
              StartsWith("schema file s.json: /bad: invalid JSON Schema: "));
  EXPECT_THAT(compile_error(R"({"bad": {"$ref": "#/definitions/missing"}})"),
              StartsWith("schema file s.json: /bad: invalid JSON Schema: "));
}

TEST(EventSchemasTest, LoadNamesAMissingFile) {
  try {
    EventSchemas::load("/nonexistent/herald/chat.json");
    FAIL() << "no SchemaError";
  } catch (const SchemaError& e) {
    EXPECT_THAT(e.what(), StartsWith("schema file /nonexistent/herald/chat.json: cannot open"));
  }
}

constexpr std::string_view kChat = R"({
  "chat.message": {
    "type": "object",
    "required": ["text", "author"],
    "properties": {
      "text": {"type": "string", "maxLength": 5},
      "author": {"type": "string"},
      "tags": {"type": "array", "items": {"type": "string"}}
    },
    "additionalProperties": false
  },
  "chat.anything": true
})";

TEST(EventSchemasTest, AMatchingPayloadPassesUntouched) {
  const auto s = EventSchemas::parse("chat.json", kChat);
  EXPECT_TRUE(s->declares("chat.message"));
  EXPECT_FALSE(s->declares("chat.other"));
  const Verdict v = s->check("chat.message", R"({"text": "hi",  "author":"a"})");
  EXPECT_TRUE(v.declared);
  EXPECT_TRUE(v.violations.empty());
  EXPECT_FALSE(v.stripped);  // no write-only fields: the payload stays as sent
  EXPECT_TRUE(s->check("chat.anything", "[1,2]").violations.empty());
}

TEST(EventSchemasTest, AnUndeclaredEventIsReportedNotChecked) {
  const auto s = EventSchemas::parse("chat.json", kChat);
  const Verdict v = s->check("chat.other", "42");
  EXPECT_FALSE(v.declared);
  EXPECT_TRUE(v.violations.empty());
}

TEST(EventSchemasTest, EveryViolationIsListedWithItsPointer) {
  const auto s = EventSchemas::parse("chat.json", kChat);
  const Verdict v = s->check("chat.message", R"({"text": "too long", "tags": ["a", 7], "x": 1})");
  EXPECT_TRUE(v.declared);
  EXPECT_THAT(v.violations, Contains(Field(&Violation::pointer, "/text")));
  EXPECT_THAT(v.violations, Contains(Field(&Violation::pointer, "/tags/1")));
  EXPECT_THAT(v.violations, Contains(AllOf(Field(&Violation::pointer, ""),
                                           Field(&Violation::reason, HasSubstr("author")))));
  EXPECT_THAT(v.violations, Contains(Field(&Violation::reason, HasSubstr("x"))));
  // One entry per problem: not also one for each enclosing object or array.
  EXPECT_EQ(v.violations.size(), 4u);
  for (const auto& violation : v.violations)
    EXPECT_THAT(violation.reason, ::testing::Not(StartsWith("Failed to validate")))
        << violation.pointer;
  EXPECT_FALSE(v.stripped);
  EXPECT_THAT(s->check("chat.message", "\"text\"").violations,
              Contains(Field(&Violation::pointer, "")));
}

TEST(EventSchemasTest, ViolationsAsJson) {
  EXPECT_EQ(violations_to_json({}), "[]");
  EXPECT_EQ(violations_to_json({{"/a~1b", "bad \"x\""}, {"", "r"}}),
            R"([{"pointer":"/a~1b","reason":"bad \"x\""},{"pointer":"","reason":"r"}])");
}

constexpr std::string_view kSecret = R"({
  "msg": {
    "type": "object",
    "properties": {
      "text": {"type": "string"},
      "token": {"type": "string", "writeOnly": true},
      "author": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "password": {"type": "string", "writeOnly": true}}
      },
      "attachments": {"type": "array", "items": {"$ref": "#/definitions/attachment"}},
      "pair": {"type": "array", "items": [{"$ref": "#/definitions/attachment"}, {"type": "object"}]},
      "tree": {"$ref": "#/definitions/node"}
    },
    "definitions": {
      "attachment": {
        "type": "object",
        "properties": {"url": {"type": "string"}, "signature": {"writeOnly": true}}
      },
      "node": {
        "type": "object",
        "properties": {
          "secret": {"writeOnly": true},
          "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}
        }
      }
    }
  }
})";

boost::json::value stripped(const Verdict& v) {
  EXPECT_TRUE(v.violations.empty());
  if (!v.stripped) {
    ADD_FAILURE() << "not stripped";
    return {};
  }
  return boost::json::parse(*v.stripped);
}

TEST(EventSchemasTest, WriteOnlyPropertiesAreRemovedAtAnyDepth) {
  const auto s = EventSchemas::parse("secret.json", kSecret);
  const Verdict v = s->check("msg", R"({
    "text": "hi", "token": "t0k",
    "author": {"name": "ann", "password": "pw"},
    "attachments": [{"url": "u1", "signature": "s1"}, {"url": "u2"}, {"signature": 3}],
    "pair": [{"url": "p", "signature": "s"}, {"signature": "kept"}, {"signature": "kept too"}],
    "tree": {"secret": 1, "children": [{"secret": 2, "children": [{"secret": 3, "x": 4}]}]}
  })");
  EXPECT_EQ(stripped(v), boost::json::parse(R"({
    "text": "hi",
    "author": {"name": "ann"},
    "attachments": [{"url": "u1"}, {"url": "u2"}, {}],
    "pair": [{"url": "p"}, {"signature": "kept"}, {"signature": "kept too"}],
    "tree": {"children": [{"children": [{"x": 4}]}]}
  })"));
}

// A secret marked in one branch of a combinator is removed whichever branch
// the payload matched, also in recursive schemas.
TEST(EventSchemasTest, WriteOnlyPropertiesInsideCombinatorsAreRemoved) {
  const auto s = EventSchemas::parse("combinators.json", R"({
    "msg": {
      "allOf": [
        {"type": "object", "properties": {"text": {"type": "string"}}},
        {"properties": {"token": {"type": "string", "writeOnly": true}}}
      ],
      "properties": {
        "auth": {
          "oneOf": [
            {"type": "object", "required": ["password"],
             "properties": {"password": {"writeOnly": true}}},
            {"type": "object", "required": ["key"], "properties": {"key": {"writeOnly": true}}}
          ]
        },
        "node": {"$ref": "#/definitions/node"}
      },
      "definitions": {
        "node": {
          "anyOf": [{"type": "object",
                     "properties": {"pin": {"writeOnly": true}, "next": {"$ref": "#/definitions/node"}}},
                    {"type": "null"}]
        }
      }
    }
  })");
  const Verdict v = s->check(
      "msg",
      R"({"text": "hi", "token": "t", "auth": {"key": "k", "user": "u"}, "node": {"pin": 1, "x": 2, "next": {"pin": 2, "next": null}}})");
  EXPECT_EQ(
      stripped(v),
      boost::json::parse(
          R"({"text": "hi", "auth": {"user": "u"}, "node": {"x": 2, "next": {"next": null}}})"));
}

TEST(EventSchemasTest, WriteOnlyPropertiesAreValidatedFirst) {
  const auto s = EventSchemas::parse("secret.json", kSecret);
  const Verdict v = s->check("msg", R"({"text": "hi", "token": 5})");
  EXPECT_THAT(v.violations, Contains(Field(&Violation::pointer, "/token")));
  EXPECT_FALSE(v.stripped);
}

TEST(EventSchemasTest, APayloadWithoutWriteOnlyValuesIsStillReserialized) {
  const auto s = EventSchemas::parse("secret.json", kSecret);
  EXPECT_EQ(stripped(s->check("msg", R"({ "text" : "hi" })")),
            boost::json::parse(R"({"text":"hi"})"));
}

}  // namespace
}  // namespace herald::schema
