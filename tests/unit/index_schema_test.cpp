// Index schema versions: a new index gets the latest schema, an index of an earlier schema is
// migrated in order keeping every row, and an index from a newer walvault is refused by name.
#include <gtest/gtest.h>

#include <string>

#include "common/core/index.hpp"
#include "common/core/sqlite.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

// Schema 1 exactly as walvault 0.1.0 created it (index.cpp's first migration).
constexpr std::string_view k_schema_1_as_released = R"sql(
CREATE TABLE objects (name TEXT PRIMARY KEY, kind TEXT NOT NULL, timeline INTEGER NOT NULL, segno INTEGER NOT NULL,
  segment_size INTEGER NOT NULL, plain_size INTEGER NOT NULL, stored_size INTEGER NOT NULL, sha256 TEXT NOT NULL,
  stored_at INTEGER NOT NULL, first_xact INTEGER, last_xact INTEGER, xact_count INTEGER NOT NULL, carry BLOB,
  carry_lsn INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX objects_by_position ON objects (kind, timeline, segno);
CREATE TABLE timelines (timeline INTEGER PRIMARY KEY, parent INTEGER NOT NULL, switch_lsn INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE backups (name TEXT PRIMARY KEY, timeline INTEGER NOT NULL, start_lsn INTEGER NOT NULL, stop_lsn INTEGER NOT NULL,
  checkpoint_lsn INTEGER NOT NULL, label TEXT NOT NULL, start_time INTEGER, stop_time INTEGER) WITHOUT ROWID;
CREATE TABLE stored_backups (id TEXT PRIMARY KEY, backup_file TEXT NOT NULL, document TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE pruned (name TEXT PRIMARY KEY, pruned_at INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO objects VALUES ('000000010000000000000007', 'segment', 1, 7, 16777216, 16777216, 1000, 'ab', 1700000000000000,
  NULL, NULL, 0, NULL, 0);
INSERT INTO objects VALUES ('000000010000000000000009', 'segment', 1, 9, 16777216, 16777216, 1000, 'cd', 1700000009000000,
  NULL, NULL, 0, NULL, 0);
PRAGMA user_version = 1;
)sql";

bool has_index(const std::string& path, std::string_view name) {
  auto db = sqlite::Database::open(path);
  EXPECT_TRUE(db);
  auto stmt = db->prepare("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1");
  EXPECT_TRUE(stmt);
  stmt->bind(1, name);
  auto row = stmt->step();
  return row && *row && stmt->column_int(0) == 1;
}

TEST(IndexSchemaTest, ANewIndexHasTheLatestSchema) {
  test::TempDir dir;
  auto index = Index::open(dir / "index.db");
  ASSERT_TRUE(index) << index.error().message;
  EXPECT_EQ((*index)->schema_version().value(), Index::latest_schema_version());
  EXPECT_GE(Index::latest_schema_version(), 2);
  EXPECT_TRUE(has_index(dir / "index.db", "objects_by_stored_at"));
}

TEST(IndexSchemaTest, AnIndexOfSchema1IsMigratedKeepingItsRows) {
  test::TempDir dir;
  {
    auto db = sqlite::Database::open(dir / "index.db");
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec(k_schema_1_as_released));
  }
  auto index = Index::open(dir / "index.db");
  ASSERT_TRUE(index) << index.error().message;
  EXPECT_EQ((*index)->schema_version().value(), Index::latest_schema_version());
  EXPECT_TRUE(has_index(dir / "index.db", "objects_by_stored_at"));
  EXPECT_TRUE((*index)->contains("000000010000000000000007").value());
  auto newest = (*index)->newest_segment();
  ASSERT_TRUE(newest && *newest);
  EXPECT_EQ((*newest)->name, "000000010000000000000009");
  // Opening again changes nothing.
  index->reset();
  auto again = Index::open(dir / "index.db");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ((*again)->segments()->size(), 2u);
}

TEST(IndexSchemaTest, AnIndexFromANewerWalvaultIsRefusedByName) {
  test::TempDir dir;
  {
    auto db = sqlite::Database::open(dir / "index.db");
    ASSERT_TRUE(db && db->exec("CREATE TABLE objects (name TEXT); PRAGMA user_version = 99;"));
  }
  auto index = Index::open(dir / "index.db");
  ASSERT_FALSE(index);
  EXPECT_NE(index.error().message.find("schema version 99"), std::string::npos) << index.error().message;
  EXPECT_NE(index.error().message.find("newer walvault"), std::string::npos) << index.error().message;
  EXPECT_NE(index.error().message.find(dir / "index.db"), std::string::npos) << index.error().message;
}

}  // namespace
}  // namespace walvault
