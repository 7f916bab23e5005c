// Unit tests for `herald typegen` (src/typegen/): the type each kind of JSON
// Schema becomes, named types for $ref (shared, recursive, per side),
// write-only properties missing from received types, errors naming the file
// and pointer, and the HeraldSchema module made from a config's namespaces. That the output
// compiles and catches misuse is checked with tsc in tests/typegen/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "typegen/module.hpp"
#include "typegen/schema_types.hpp"
#include "typegen/ts_syntax.hpp"

namespace herald::typegen {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The sent type of the only event of a file whose schema is `schema`.
std::string sent_type(const std::string& schema) {
  SchemaTypes types;
  const auto events = types.add_file(R"({"e": )" + schema + "}", "test.json", "T");
  EXPECT_EQ(events.size(), 1u);
  return events.at(0).sent;
}

std::string error_of(const std::string& json) {
  try {
    SchemaTypes().add_file(json, "schemas/bad.json", "T");
  } catch (const TypegenError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TypegenSyntax, QuotesWhatIsNotAnIdentifier) {
  EXPECT_EQ(ts_property_key("replyTo"), "replyTo");
  EXPECT_EQ(ts_property_key("$id_2"), "$id_2");
  EXPECT_EQ(ts_property_key("reply-to"), "'reply-to'");
  EXPECT_EQ(ts_property_key("2fa"), "'2fa'");
  EXPECT_EQ(ts_property_key(""), "''");
  EXPECT_EQ(ts_string("it's a \\ \"test\"\n\x01"), R"('it\'s a \\ "test"\n\x01')");
  EXPECT_EQ(ts_string("héllo"), "'héllo'");
}

TEST(TypegenSyntax, TypeNamesAndJsDoc) {
  EXPECT_EQ(ts_type_name("chat.message"), "ChatMessage");
  EXPECT_EQ(ts_type_name("user_id"), "UserId");
  EXPECT_EQ(ts_type_name("2d-point"), "T2dPoint");
  EXPECT_EQ(ts_type_name("..."), "T");
  EXPECT_EQ(ts_jsdoc(""), "");
  EXPECT_EQ(ts_jsdoc("One line"), "/** One line */\n");
  EXPECT_EQ(ts_jsdoc("Ends */ early"), "/** Ends *\\/ early */\n");
  EXPECT_EQ(ts_jsdoc("First\n\nThird"), "/**\n * First\n *\n * Third\n */\n");
}

TEST(TypegenSchema, ScalarsAndTrivialSchemas) {
  EXPECT_EQ(sent_type(R"({"type": "string"})"), "string");
  EXPECT_EQ(sent_type(R"({"type": "integer"})"), "number");
  EXPECT_EQ(sent_type(R"({"type": "number"})"), "number");
  EXPECT_EQ(sent_type(R"({"type": "boolean"})"), "boolean");
  EXPECT_EQ(sent_type(R"({"type": "null"})"), "null");
  EXPECT_EQ(sent_type("true"), "unknown");
  EXPECT_EQ(sent_type("{}"), "unknown");
  EXPECT_EQ(sent_type("false"), "never");
  // Keywords that only narrow values are left to the server's validation.
  EXPECT_EQ(sent_type(R"({"type": "string", "format": "email", "maxLength": 9})"), "string");
}

TEST(TypegenSchema, TypeListsAndNullable) {
  EXPECT_EQ(sent_type(R"({"type": ["string", "null"]})"), "string | null");
  EXPECT_EQ(sent_type(R"({"type": ["integer", "number"]})"), "number");
  EXPECT_EQ(sent_type(R"({"type": "array", "items": {"type": ["string", "null"]}})"),
            "(string | null)[]");
}

TEST(TypegenSchema, EnumAndConstAreLiteralTypes) {
  EXPECT_EQ(sent_type(R"({"enum": ["a", "it's", 3, -1.5, true, null]})"),
            R"('a' | 'it\'s' | 3 | -1.5 | true | null)");
  EXPECT_EQ(sent_type(R"({"const": "join"})"), "'join'");
  EXPECT_EQ(sent_type(R"({"const": {"a": [1, "x"], "b-c": {}}})"),
            "{ a: [1, 'x']; 'b-c': { [key: string]: never } }");
  // const decides the type; a "type" beside it adds nothing.
  EXPECT_EQ(sent_type(R"({"type": "string", "const": "x"})"), "'x'");
}

TEST(TypegenSchema, ObjectsMarkOptionalPropertiesAndKeepOrderAndDocs) {
  EXPECT_EQ(sent_type(R"({
    "type": "object",
    "required": ["text", "reply-to"],
    "properties": {
      "text": {"type": "string", "description": "The message body"},
      "reply-to": {"type": ["integer", "null"]},
      "edited": {"type": "boolean"}
    }
  })"),
            "{\n"
            "  /** The message body */\n"
            "  text: string;\n"
            "  'reply-to': number | null;\n"
            "  edited?: boolean;\n"
            "}");
  // Object keywords without "type" still describe an object.
  EXPECT_EQ(sent_type(R"({"properties": {"a": {"type": "string"}}})"), "{\n  a?: string;\n}");
  EXPECT_EQ(sent_type(R"({"type": "object"})"), "{ [key: string]: unknown }");
}

TEST(TypegenSchema, NestedObjectsAreIndented) {
  EXPECT_EQ(sent_type(R"({"properties": {"a": {"properties": {"b": {"type": "number"}}}}})"),
            "{\n"
            "  a?: {\n"
            "    b?: number;\n"
            "  };\n"
            "}");
}

TEST(TypegenSchema, AdditionalAndPatternPropertiesGiveIndexSignatures) {
  EXPECT_EQ(sent_type(R"({"type": "object", "additionalProperties": false,
                          "properties": {"a": {"type": "string"}}})"),
            "{\n  a?: string;\n}");
  EXPECT_EQ(sent_type(R"({"type": "object", "additionalProperties": false})"),
            "{ [key: string]: never }");
  EXPECT_EQ(sent_type(R"({"type": "object", "additionalProperties": {"type": "number"}})"),
            "{\n  [key: string]: number;\n}");
  EXPECT_EQ(sent_type(R"({"type": "object", "additionalProperties": true})"),
            "{\n  [key: string]: unknown;\n}");
  // The index signature must admit the declared properties too, or tsc
  // rejects the type.
  EXPECT_EQ(sent_type(R"({"type": "object", "required": ["n"],
                          "properties": {"n": {"type": "number"}, "s": {"type": "string"}},
                          "additionalProperties": {"type": "boolean"}})"),
            "{\n  n: number;\n  s?: string;\n  [key: string]: boolean | number | string | "
            "undefined;\n}");
  EXPECT_EQ(sent_type(R"({"type": "object", "additionalProperties": false,
                          "patternProperties": {"^x-": {"type": "string"}}})"),
            "{\n  [key: string]: string;\n}");
}

TEST(TypegenSchema, ArraysAndTuples) {
  EXPECT_EQ(sent_type(R"({"type": "array"})"), "unknown[]");
  EXPECT_EQ(sent_type(R"({"type": "array", "items": {"type": "string"}})"), "string[]");
  EXPECT_EQ(sent_type(R"({"items": {"type": "array", "items": {"type": "number"}}})"),
            "number[][]");
  EXPECT_EQ(sent_type(R"({"type": "array", "items": [{"type": "number"}, {"type": "string"}],
                          "minItems": 2, "additionalItems": false})"),
            "[number, string]");
  // Elements past minItems may be missing; more may follow unless closed.
  EXPECT_EQ(sent_type(R"({"type": "array", "items": [{"type": "number"}, {"enum": ["a", "b"]}],
                          "minItems": 1})"),
            "[number, ('a' | 'b')?, ...unknown[]]");
  EXPECT_EQ(sent_type(R"({"type": "array", "items": [{"type": "number"}], "minItems": 1,
                          "additionalItems": {"type": "string"}})"),
            "[number, ...string[]]");
}

TEST(TypegenSchema, CombinatorsGiveUnionsAndIntersections) {
  EXPECT_EQ(sent_type(R"({"anyOf": [{"type": "string"}, {"type": "number"}]})"), "string | number");
  EXPECT_EQ(sent_type(R"({"oneOf": [{"const": "a"}, {"const": "b"}, {"const": "a"}]})"),
            "'a' | 'b'");
  EXPECT_EQ(sent_type(R"({"allOf": [{"properties": {"a": {"type": "string"}}},
                                   {"properties": {"b": {"type": "number"}}}]})"),
            "{\n  a?: string;\n} & {\n  b?: number;\n}");
  // A schema's own type and its combinators all apply: an intersection, with
  // unions parenthesized inside it.
  EXPECT_EQ(sent_type(R"({"type": "object", "properties": {"kind": {"type": "string"}},
                          "oneOf": [{"required": ["a"], "properties": {"a": {"type": "string"}}},
                                    {"required": ["b"], "properties": {"b": {"type": "number"}}}]})"),
            "{\n  kind?: string;\n} & ({\n  a: string;\n} | {\n  b: number;\n})");
  // Alternatives that make the same type collapse into one.
  EXPECT_EQ(sent_type(R"({"type": "object", "properties": {"kind": {"type": "string"}},
                          "oneOf": [{"required": ["a"]}, {"required": ["b"]}]})"),
            "{\n  kind?: string;\n} & { [key: string]: unknown }");
  EXPECT_EQ(sent_type(R"({"type": "array",
                          "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}})"),
            "(string | null)[]");
}

TEST(TypegenSchema, RefsBecomeNamedTypesDeclaredOnce) {
  SchemaTypes types;
  const auto events = types.add_file(R"({
    "chat.message": {
      "type": "object",
      "properties": {
        "author": {"$ref": "#/definitions/user"},
        "editor": {"$ref": "#/definitions/user"},
        "room": {"$ref": "#/$defs/room~1id"},
        "copy": {"$ref": "#/properties/author"},
        "spaced": {"$ref": "#/$defs/with%20space"}
      },
      "definitions": {"user": {"type": "string", "description": "A user name"}},
      "$defs": {"room/id": {"type": "number"}, "with space": {"type": "boolean"}}
    }
  })",
                                     "chat.json", "Chat");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "chat.message");
  EXPECT_EQ(events[0].sent,
            "{\n  author?: ChatUser;\n  editor?: ChatUser;\n  room?: ChatRoomId;\n"
            "  copy?: ChatAuthor;\n  spaced?: ChatWithSpace;\n}");
  EXPECT_EQ(types.declarations(),
            "/** A user name */\nexport type ChatUser = string;\n\n"
            "export type ChatRoomId = number;\n\n"
            "export type ChatAuthor = ChatUser;\n\n"
            "export type ChatWithSpace = boolean;\n\n");
}

TEST(TypegenSchema, RecursiveRefsAndRootRefs) {
  SchemaTypes types;
  const auto events = types.add_file(R"({
    "tree": {
      "type": "object",
      "properties": {
        "label": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#"}}
      }
    }
  })",
                                     "tree.json", "Doc");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].sent, "{\n  label?: string;\n  children?: DocTree[];\n}");
  EXPECT_EQ(types.declarations(),
            "export type DocTree = {\n  label?: string;\n  children?: DocTree[];\n};\n\n");
}

TEST(TypegenSchema, NamesStayUniqueAcrossFiles) {
  SchemaTypes types;
  const std::string schema = R"({"e": {"properties": {"u": {"$ref": "#/definitions/user"}},
                                       "definitions": {"user": {"type": "string"}}}})";
  EXPECT_EQ(types.add_file(schema, "a.json", "Chat")[0].sent, "{\n  u?: ChatUser;\n}");
  EXPECT_EQ(types.add_file(schema, "b.json", "Chat")[0].sent, "{\n  u?: ChatUser2;\n}");
  EXPECT_THAT(types.declarations(), HasSubstr("export type ChatUser2 = string;"));
}

TEST(TypegenSchema, WriteOnlyPropertiesAreMissingFromReceivedTypes) {
  SchemaTypes types;
  const auto events = types.add_file(R"({
    "chat.message": {
      "type": "object",
      "required": ["text", "token"],
      "properties": {
        "text": {"type": "string"},
        "token": {"type": "string", "writeOnly": true},
        "author": {"$ref": "#/definitions/author"},
        "room": {"$ref": "#/definitions/room"},
        "signature": {"$ref": "#/definitions/signature", "writeOnly": true},
        "attachments": {"type": "array", "items": {"$ref": "#/definitions/author"}},
        "pair": {"type": "array", "items": [{"$ref": "#/definitions/author"}]}
      },
      "definitions": {
        "author": {"type": "object", "properties": {
          "name": {"type": "string"}, "password": {"type": "string", "writeOnly": true}}},
        "room": {"type": "string"},
        "signature": {"type": "string"}
      }
    },
    "chat.typing": {"type": "object", "properties": {"on": {"type": "boolean"}}}
  })",
                                     "chat.json", "Chat");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].sent,
            "{\n  text: string;\n  token: string;\n  author?: ChatAuthor;\n  room?: ChatRoom;\n"
            "  signature?: ChatSignature;\n  attachments?: ChatAuthor[];\n"
            "  pair?: [ChatAuthor?, ...unknown[]];\n}");
  EXPECT_EQ(
      events[0].received,
      "{\n  text: string;\n  author?: ChatAuthorReceived;\n  room?: ChatRoom;\n"
      "  attachments?: ChatAuthorReceived[];\n  pair?: [ChatAuthorReceived?, ...unknown[]];\n}");
  EXPECT_EQ(events[1].sent, events[1].received);
  EXPECT_THAT(types.declarations(),
              HasSubstr("export type ChatAuthorReceived = {\n  name?: string;\n};"));
  EXPECT_THAT(types.declarations(), HasSubstr("password?: string;"));
  // A type with no write-only property is shared by both sides.
  EXPECT_THAT(types.declarations(), ::testing::Not(HasSubstr("ChatRoomReceived")));
}

// The received type says what the server delivers. The server strips
// properties whose own schema is write-only, found through properties,
// items, $ref and combinator branches; not a writeOnly behind a $ref, nor
// under additionalProperties.
TEST(TypegenSchema, ReceivedTypesFollowWhereTheServerStrips) {
  SchemaTypes types;
  const auto events = types.add_file(R"({
    "e": {
      "type": "object",
      "properties": {
        "behindRef": {"$ref": "#/definitions/secret"},
        "either": {"anyOf": [{"type": "object", "properties": {
          "key": {"type": "string", "writeOnly": true}}}]},
        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {
          "key": {"type": "string", "writeOnly": true}}}}
      },
      "allOf": [{"properties": {"pin": {"type": "string", "writeOnly": true}}}],
      "definitions": {"secret": {"type": "string", "writeOnly": true}}
    }
  })",
                                     "e.json", "E");
  ASSERT_EQ(events.size(), 1u);
  const auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_THAT(events[0].sent, HasSubstr("pin?: string;"));
  EXPECT_THAT(events[0].received, ::testing::Not(HasSubstr("pin?:")));
  EXPECT_EQ(count(events[0].sent, "key?: string;"), 2u) << events[0].sent;
  EXPECT_EQ(count(events[0].received, "key?: string;"), 1u) << events[0].received;
  EXPECT_THAT(events[0].received, HasSubstr("behindRef?: ESecret;"));
}

TEST(TypegenSchema, EventsKeepFileOrderAndDescriptions) {
  SchemaTypes types;
  const auto events = types.add_file(
      R"({"b": {"type": "string", "description": "Second"}, "a": true})", "x.json", "X");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event, "b");
  EXPECT_EQ(events[0].description, "Second");
  EXPECT_EQ(events[1].event, "a");
  EXPECT_EQ(events[1].description, "");
}

TEST(TypegenSchema, ErrorsNameTheFileAndPointer) {
  EXPECT_THAT(error_of("{\"e\": "), HasSubstr("schemas/bad.json: not valid JSON"));
  EXPECT_EQ(error_of("[1]"),
            "schemas/bad.json: a schema file must be a JSON object mapping event names to schemas");
  EXPECT_EQ(error_of(R"({"e": 3})"), "schemas/bad.json: at /e: a schema must be an object");
  EXPECT_EQ(error_of(R"({"e": {"properties": {"a/b": {"$ref": "#/definitions/nope"}}}})"),
            "schemas/bad.json: at /e/properties/a~1b/$ref: $ref '#/definitions/nope' does not "
            "resolve within the schema of event 'e'");
  EXPECT_THAT(error_of(R"({"e": {"$ref": "other.json#/definitions/a"}})"),
              HasSubstr("at /e/$ref: $ref 'other.json#/definitions/a': only references within "
                        "the same schema"));
  EXPECT_THAT(error_of(R"({"e": {"$ref": "#anchor"}})"),
              HasSubstr("the fragment must be a JSON pointer"));
  EXPECT_EQ(error_of(R"({"e": {"type": "text"}})"),
            "schemas/bad.json: at /e/type: unknown type 'text'");
  EXPECT_EQ(error_of(R"({"e": {"type": "object", "required": "a"}})"),
            "schemas/bad.json: at /e/required: required must be an array");
  EXPECT_EQ(error_of(R"({"e": {"anyOf": []}})"),
            "schemas/bad.json: at /e/anyOf: anyOf must not be empty");
  EXPECT_EQ(error_of(R"({"e": {"type": "array", "items": [true], "minItems": -1}})"),
            "schemas/bad.json: at /e/minItems: minItems must be a non-negative integer");
}

// The whole module (module.hpp): the HeraldSchema contract of the SDKs.
class TypegenModule : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("herald-typegen-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << content;
    return path.string();
  }

  fs::path dir_;
};

TEST_F(TypegenModule, DeclaresSentAndReceivedMapsPerNamespace) {
  config::Config cfg;
  cfg.namespaces["chat"].schema = write("chat.json", R"({
    "chat.message": {"type": "object", "required": ["text", "token"], "properties": {
      "text": {"type": "string"}, "token": {"type": "string", "writeOnly": true}}},
    "chat.destroy": {"description": "The room is gone", "type": "object"}
  })");
  cfg.namespaces["chat"].strict_events = true;
  cfg.namespaces["live-feed"];  // no schema: any event
  EXPECT_EQ(generate_module(cfg, "app/herald.toml"),
            "// Generated by herald typegen from app/herald.toml; do not edit.\n"
            "\n"
            "export interface HeraldSchema {\n"
            "  /** What publishers send, per namespace ([namespaces.<name>]). */\n"
            "  namespaces: {\n"
            "    chat: {\n"
            "      'chat.message': {\n"
            "        text: string;\n"
            "        token: string;\n"
            "      };\n"
            "      /** The room is gone */\n"
            "      'chat.destroy': { [key: string]: unknown };\n"
            "    };\n"
            "    'live-feed': { [event: string]: unknown };\n"
            "  };\n"
            "  /** Channels with no ':' or of an unconfigured namespace ([defaults]). */\n"
            "  default: { [event: string]: unknown };\n"
            "  /** What subscribers receive: the same without write-only properties. */\n"
            "  receivedNamespaces: {\n"
            "    chat: {\n"
            "      'chat.message': {\n"
            "        text: string;\n"
            "      };\n"
            "      /** The room is gone */\n"
            "      'chat.destroy': { [key: string]: unknown };\n"
            "    };\n"
            "    'live-feed': { [event: string]: unknown };\n"
            "  };\n"
            "  receivedDefault: { [event: string]: unknown };\n"
            "}\n");
}

TEST_F(TypegenModule, DefaultsFollowTheirSchemaOrAreNeverWhenForbidden) {
  config::Config cfg;
  cfg.defaults.options.schema = write("any.json", R"({"ping": {"type": "number"}})");
  std::string module = generate_module(cfg, "herald.toml");
  // Without strict_events undeclared events stay allowed.
  EXPECT_THAT(module, HasSubstr("  namespaces: {};\n"));
  EXPECT_THAT(module, HasSubstr("  default: {\n    'ping': number;\n    [event: string]: "
                                "unknown;\n  };\n"));
  EXPECT_THAT(module, HasSubstr("  receivedDefault: {\n    'ping': number;\n"));

  cfg.defaults.allow_unknown = false;
  module = generate_module(cfg, "herald.toml");
  EXPECT_THAT(module, HasSubstr("  default: never;\n"));
  EXPECT_THAT(module, HasSubstr("  receivedDefault: never;\n"));
}

TEST_F(TypegenModule, HelperTypesArePrefixedByNamespace) {
  const std::string schema = R"({"e": {"properties": {"u": {"$ref": "#/definitions/user"}},
                                       "definitions": {"user": {"type": "string"}}}})";
  config::Config cfg;
  cfg.namespaces["chat"].schema = write("chat.json", schema);
  cfg.namespaces["dm"].schema = write("dm.json", schema);
  const std::string module = generate_module(cfg, "herald.toml");
  EXPECT_THAT(module, HasSubstr("export type ChatUser = string;\n"));
  EXPECT_THAT(module, HasSubstr("export type DmUser = string;\n"));
  EXPECT_THAT(module, HasSubstr("u?: DmUser;"));
}

TEST_F(TypegenModule, ASchemaTheServerRefusesIsRefusedWithItsMessage) {
  config::Config cfg;
  const std::string path = write("chat.json", R"({"e": {"type": 5}})");
  cfg.namespaces["chat"].schema = path;
  try {
    generate_module(cfg, "herald.toml");
    FAIL() << "no error";
  } catch (const TypegenError& e) {
    EXPECT_THAT(e.what(), HasSubstr("schema file " + path + ": /e: invalid JSON Schema"));
  }
}

TEST_F(TypegenModule, AnUnreadableSchemaNamesTheFile) {
  config::Config cfg;
  cfg.namespaces["chat"].schema = (dir_ / "missing.json").string();
  try {
    generate_module(cfg, "herald.toml");
    FAIL() << "no error";
  } catch (const TypegenError& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir_ / "missing.json").string() +
                                    ": cannot open the schema file (No such file"));
  }
}

}  // namespace
}  // namespace herald::typegen
