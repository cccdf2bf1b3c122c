#pragma once
// The repository's storage: a flat key space of durable objects. Backends (posix now, S3
// next) hide in their .cpp; callers see only this interface and open_storage().
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"

namespace walvault {

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  std::int64_t modified_us = 0;  // last modification, microseconds since the Unix epoch
};

enum class PutMode {
  replace,      // atomically replace any existing object
  create_only,  // fail with ErrorKind::conflict when the key exists (never overwrites)
  // create_only, from a caller that has just looked the key up and found nothing (the ingest,
  // under its name lock): a backend that would ask again first (S3, for servers that ignore a
  // conditional PUT) need not, which saves a round trip per pushed segment.
  create_after_lookup,
};

inline bool creates_only(PutMode mode) { return mode != PutMode::replace; }

// An object written in pieces (a base backup chunk), so memory stays bounded whatever its size.
// Nothing is visible under the key until commit() returns; destroyed uncommitted, it vanishes.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  // Bytes go out in order and are never rewritten (an object store's streamed upload cannot):
  // whatever is known only at the end goes at the end (the object format's trailer).
  virtual Result<void> append(std::span<const std::byte> data) = 0;
  // Makes the object durable under its key, as put() does.
  virtual Result<void> commit() = 0;
};

// Sequential reads of one stored object.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Up to out.size() bytes; 0 at the end of the object.
  virtual Result<std::size_t> read(std::span<std::byte> out) = 0;
  // Exactly out.size() bytes at `offset` of the same object (a ranged get: the object format's
  // trailer), whatever replaced the key since it was opened; leaves read()'s position alone.
  virtual Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) = 0;
  virtual std::uint64_t size() const = 0;
};

// The backend interface, shaped for an object store: whole-object create-only put, a streamed
// put written in order, ranged reads (ObjectReader::read_at), head (info/exists), delete, and
// listing by prefix (a backend pages internally). Every failure carries a category
// (FailureCategory: absent is a value, transient / refused / permanent); retries are decided in
// one place, RetryingStorage, which ObjectStore puts in front of every backend.
//
// The last group are housekeeping with generic defaults built on the core calls; the posix
// backend overrides them for what only a filesystem has (writes in progress as temp files,
// directories, fsync).
class Storage {
 public:
  virtual ~Storage() = default;

  // Where the objects live, safe to log (no credentials).
  virtual std::string describe() const = 0;
  // Durable before it returns: on success a crash cannot lose or tear the object.
  virtual Result<void> put(const std::string& key, std::span<const std::byte> data, PutMode mode) = 0;
  // The object, or its first `max_bytes` bytes; nullopt when the key does not exist. Absence
  // is a value, never an error: only the caller knows whether "absent" is "not archived" or
  // "archived once and lost" (restorer/fetch.cpp decides that for WAL, in one place).
  virtual Result<std::optional<std::vector<std::byte>>> get(const std::string& key,
                                                            std::optional<std::size_t> max_bytes = std::nullopt) = 0;
  virtual Result<bool> exists(const std::string& key) = 0;
  // Streaming forms of put() and get(), for objects too large to hold in memory.
  virtual Result<std::unique_ptr<ObjectWriter>> create(const std::string& key, PutMode mode) = 0;
  // nullopt when the key does not exist.
  virtual Result<std::optional<std::unique_ptr<ObjectReader>>> open_read(const std::string& key) = 0;
  // Removing a missing key succeeds.
  virtual Result<void> remove(const std::string& key) = 0;
  // Size and modification time of one object; nullopt when the key does not exist.
  virtual Result<std::optional<ObjectInfo>> info(const std::string& key) = 0;
  // Objects below `prefix` (recursive) with size and time, sorted by key.
  virtual Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) = 0;
  // Keys below `prefix` (recursive), sorted.
  Result<std::vector<std::string>> list(const std::string& prefix);

  // --- housekeeping (generic defaults; the posix backend overrides)
  // Total and available bytes where the backend has a notion of it (a filesystem); nullopt
  // for object stores (the default).
  struct Space {
    std::uint64_t total = 0;
    std::uint64_t available = 0;
    // The share in use, 0..1 (what disk-usage thresholds compare); 0 when total is unknown.
    double used() const { return total ? 1.0 - static_cast<double>(available) / static_cast<double>(total) : 0.0; }
  };
  virtual Result<std::optional<Space>> space() { return std::optional<Space>(); }
  // Makes an existing object durable (again): on a filesystem a crash between its write and
  // its directory sync may have left it visible but not yet safe. Called before acknowledging
  // a duplicate. Default: nothing to do (an object store's put is durable when it returns).
  virtual Result<void> sync(const std::string& key);
  // Names directly below `prefix` ("backup" -> the backup ids), sorted. Default: from
  // list_objects(). Posix also counts names that hold only writes in progress or left by a
  // crash, which list_objects() does not show.
  virtual Result<std::vector<std::string>> list_children(const std::string& prefix);
  // Everything below `prefix`. Default: list_objects() and remove() of each. Posix also
  // removes abandoned writes and the directories themselves.
  struct Removed {
    std::uint64_t objects = 0;
    std::uint64_t bytes = 0;
  };
  virtual Result<Removed> remove_all(const std::string& prefix);
  // Writes left behind by a crashed process (posix: *.tmp.<pid>.<n> files). Only the holder of
  // the repository's lock may call this: then no write can be in progress. Default: none.
  virtual Result<Removed> remove_abandoned_writes() { return Removed{}; }
};

// Keys are relative, '/'-separated; each component is [A-Za-z0-9._-]+ and not "." or "..".
bool is_valid_storage_key(std::string_view key);

// What a backend needs besides its location: for s3://, the endpoint, TLS and credentials
// (walvaultd's s3-* options, then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN).
struct StorageOptions {
  std::string s3_endpoint;         // empty: https://s3.<region>.amazonaws.com
  std::string s3_region = "us-east-1";
  bool s3_path_style = false;      // s3-uri-style = path
  std::string s3_storage_class;
  std::string s3_ca_file;
  bool s3_verify_tls = true;
  std::string s3_key;
  std::string s3_key_secret;       // never logged, never in an error text
  std::string s3_session_token;
  std::string s3_credentials_file; // instead of the three above; re-read when it changes
  std::chrono::seconds s3_timeout{20};  // a request that moves no data this long fails
};

// The scheme registry: a plain path or file:///path selects the posix backend, s3://bucket[/prefix]
// the S3 backend.
Result<std::unique_ptr<Storage>> open_storage(std::string_view location, const StorageOptions& options = {});

// Backend factories, for the registry and for tests.
Result<std::unique_ptr<Storage>> open_posix_storage(const std::string& root);

}  // namespace walvault
