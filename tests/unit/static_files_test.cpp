// Unit tests for http::is_hashed_asset_name (src/http/static_files.*): the
// rule that decides which static files are cached for a year (immutable)
// and which are revalidated (no-cache); see docs/operations.md.
#include "http/static_files.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using herald::http::is_hashed_asset_name;

TEST(StaticFilesHashedName, BundlerHashesAreImmutable) {
  EXPECT_TRUE(is_hashed_asset_name("index-3f9a2c1b.js"));          // esbuild / rollup
  EXPECT_TRUE(is_hashed_asset_name("app.3f9a2c1b.css"));           // webpack [contenthash]
  EXPECT_TRUE(is_hashed_asset_name("js/main.3f9a2c1b.min.js"));    // .min between hash and ext
  EXPECT_TRUE(is_hashed_asset_name("static/chunk-9ABCdef0.mjs"));  // digit anywhere
  EXPECT_TRUE(is_hashed_asset_name("assets/index-BRdXkqZa.js"));   // Vite: no digit needed
  EXPECT_TRUE(is_hashed_asset_name("app/assets/logo-aBcDeFgH.svg"));
  EXPECT_TRUE(is_hashed_asset_name("font-a1b2c3d4e5f60718293a4b5c6d7e8f90.woff2"));  // md5
}

TEST(StaticFilesHashedName, EverythingElseIsRevalidated) {
  EXPECT_FALSE(is_hashed_asset_name("index.html"));
  EXPECT_FALSE(is_hashed_asset_name("app-settings.js"));  // a word, not a hash
  EXPECT_FALSE(is_hashed_asset_name("favicon.ico"));
  EXPECT_FALSE(is_hashed_asset_name("app-3f9a2c1.js"));           // 7 characters: too short
  EXPECT_FALSE(is_hashed_asset_name("js/settings-abcdefgh.js"));  // letters only, not assets/
  EXPECT_FALSE(is_hashed_asset_name("3f9a2c1b3f9a2c1b.js"));      // no separator before it
  EXPECT_FALSE(is_hashed_asset_name("app-3f9a2c1b"));             // no extension
  EXPECT_FALSE(is_hashed_asset_name("app-3f9a-2c1b.js"));
  EXPECT_FALSE(is_hashed_asset_name("myassets/index-BRdXkqZa.js"));
  EXPECT_FALSE(is_hashed_asset_name(std::string("app-") + std::string(65, '1') + ".js"));
  EXPECT_FALSE(is_hashed_asset_name(".3f9a2c1b"));
}

}  // namespace
