#pragma once
// A thin RAII layer over the SQLite C API: one connection, prepared statements, errors as
// Result values naming the database file and the statement.
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"

namespace walvault::sqlite {

class Statement;

class Database {
 public:
  static Result<Database> open(const std::string& path);
  Database(Database&& other) noexcept : m_db(other.m_db), m_path(std::move(other.m_path)) { other.m_db = nullptr; }
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  Result<void> exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);
  const std::string& path() const { return m_path; }
  Failure failure(std::string_view what) const;

 private:
  Database(sqlite3* db, std::string path) : m_db(db), m_path(std::move(path)) {}
  sqlite3* m_db = nullptr;
  std::string m_path;
};

class Statement {
 public:
  Statement(Statement&& other) noexcept : m_stmt(other.m_stmt), m_db(other.m_db) { other.m_stmt = nullptr; }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Binding is 1-based, as in SQLite.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, std::span<const std::byte> value);
  Statement& bind(int index, std::optional<std::int64_t> value);
  Statement& bind_null(int index);

  // true while a row is available, false when done.
  Result<bool> step();
  Result<void> run();  // step to completion, then reset
  void reset();

  std::int64_t column_int(int index) const;
  std::optional<std::int64_t> column_optional_int(int index) const;
  std::string column_text(int index) const;
  std::vector<std::byte> column_blob(int index) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, const Database* db) : m_stmt(stmt), m_db(db) {}
  sqlite3_stmt* m_stmt = nullptr;
  const Database* m_db = nullptr;
};

}  // namespace walvault::sqlite
