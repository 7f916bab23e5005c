// Unit tests for core::NamespaceTable: which namespace a channel gets, the
// defaults and allow_unknown, schema files compiled once and shared, and
// start-up errors naming the schema file.
#include "core/namespace_table.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace herald::core {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class NamespaceTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "herald-ns-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  fs::path dir_;
};

TEST_F(NamespaceTableTest, ChannelsFindTheirNamespace) {
  config::Config cfg;
  cfg.namespaces["chat"].recover = false;
  cfg.namespaces["feed"].publish_access = "none";
  cfg.defaults.options.max_message_bytes = 10;
  const auto table = NamespaceTable::build(cfg);
  ASSERT_NE(table->find("chat:lobby"), nullptr);
  EXPECT_EQ(table->find("chat:lobby")->name, "chat");
  EXPECT_FALSE(table->find("chat:a:b")->options.recover);
  EXPECT_EQ(table->find("feed:x")->name, "feed");
  // Unconfigured namespaces and names without ':' get the defaults.
  for (const char* ch : {"news:1", "lobby", "chatter:1", "chat"}) {
    ASSERT_NE(table->find(ch), nullptr) << ch;
    EXPECT_EQ(table->find(ch)->name, "") << ch;
    EXPECT_EQ(table->find(ch)->options.max_message_bytes, 10u) << ch;
  }
  cfg.defaults.allow_unknown = false;
  const auto strict = NamespaceTable::build(cfg);
  EXPECT_NE(strict->find("chat:lobby"), nullptr);
  EXPECT_EQ(strict->find("news:1"), nullptr);
  EXPECT_EQ(strict->find("lobby"), nullptr);
  EXPECT_EQ(strict->find("chat"), nullptr);
}

TEST_F(NamespaceTableTest, SchemaFilesAreCompiledOnceAndShared) {
  const std::string path = write("chat.json", R"({"chat.message": {"type": "object"}})");
  config::Config cfg;
  cfg.namespaces["a"].schema = path;
  cfg.namespaces["b"].schema = path;
  cfg.namespaces["c"];
  const auto table = NamespaceTable::build(cfg);
  const auto& a = table->find("a:1")->schemas;
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, table->find("b:1")->schemas);
  EXPECT_TRUE(a->declares("chat.message"));
  EXPECT_EQ(table->find("c:1")->schemas, nullptr);
  EXPECT_EQ(table->find("x:1")->schemas, nullptr);
}

TEST_F(NamespaceTableTest, ABadSchemaFileStopsTheBuild) {
  config::Config cfg;
  cfg.namespaces["chat"].schema = write("bad.json", R"({"m": {"type": "object"}, "x": 1})");
  try {
    NamespaceTable::build(cfg);
    FAIL() << "no SchemaError";
  } catch (const schema::SchemaError& e) {
    EXPECT_THAT(e.what(), StartsWith("schema file " + (dir_ / "bad.json").string() + ": /x: "));
  }
  cfg.namespaces.clear();
  cfg.defaults.options.schema = (dir_ / "missing.json").string();
  try {
    NamespaceTable::build(cfg);
    FAIL() << "no SchemaError";
  } catch (const schema::SchemaError& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing.json: cannot open"));
  }
}

}  // namespace
}  // namespace herald::core
