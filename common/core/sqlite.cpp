#include "common/core/sqlite.hpp"

namespace walvault::sqlite {

Result<Database> Database::open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "unable to open index '" + path + "': " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return fail(ErrorKind::io, message);
  }
  sqlite3_busy_timeout(db, 5000);
  return Database(db, path);
}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    sqlite3_close(m_db);
    m_db = other.m_db;
    m_path = std::move(other.m_path);
    other.m_db = nullptr;
  }
  return *this;
}

Database::~Database() { sqlite3_close(m_db); }

Failure Database::failure(std::string_view what) const {
  const int code = sqlite3_errcode(m_db);
  const ErrorKind kind = code == SQLITE_FULL                                 ? ErrorKind::no_space
                         : code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? ErrorKind::corrupt
                                                                           : ErrorKind::io;
  return Failure{kind, "index '" + m_path + "': " + std::string(what) + ": " + sqlite3_errmsg(m_db)};
}

Result<void> Database::exec(std::string_view sql) {
  char* error = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(m_db, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const int code = sqlite3_errcode(m_db);
    std::string message = "index '" + m_path + "': " + (error ? error : "error") + " (in: " + text.substr(0, 60) + ")";
    sqlite3_free(error);
    return fail(code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? ErrorKind::corrupt : ErrorKind::io, message);
  }
  return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(m_db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK)
    return std::unexpected(failure("prepare '" + std::string(sql.substr(0, 60)) + "'"));
  return Statement(stmt, this);
}

Statement::~Statement() { sqlite3_finalize(m_stmt); }

Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(m_stmt, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  sqlite3_bind_text(m_stmt, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind(int index, std::span<const std::byte> value) {
  sqlite3_bind_blob(m_stmt, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind(int index, std::optional<std::int64_t> value) {
  if (value) return bind(index, *value);
  return bind_null(index);
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(m_stmt, index);
  return *this;
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  auto failure = m_db->failure("step");
  sqlite3_reset(m_stmt);
  return std::unexpected(failure);
}

Result<void> Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
  }
  reset();
  return {};
}

void Statement::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
}

std::int64_t Statement::column_int(int index) const { return sqlite3_column_int64(m_stmt, index); }

std::optional<std::int64_t> Statement::column_optional_int(int index) const {
  if (sqlite3_column_type(m_stmt, index) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(m_stmt, index);
}

std::string Statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(m_stmt, index);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, index)))
              : std::string();
}

std::vector<std::byte> Statement::column_blob(int index) const {
  const auto* data = static_cast<const std::byte*>(sqlite3_column_blob(m_stmt, index));
  const auto size = static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, index));
  return data ? std::vector<std::byte>(data, data + size) : std::vector<std::byte>();
}

}  // namespace walvault::sqlite
