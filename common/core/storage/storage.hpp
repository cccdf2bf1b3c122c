#pragma once
// The repository's storage: a flat key space of durable objects. Backends (posix now, S3
// next) hide in their .cpp; callers see only this interface and open_storage().
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
};

// An object written in pieces (a base backup chunk), so memory stays bounded whatever its size.
// Nothing is visible under the key until commit() returns; destroyed uncommitted, it vanishes.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Result<void> append(std::span<const std::byte> data) = 0;
  // Replaces the first head.size() bytes (a header reserved with placeholder bytes and known
  // only at the end), then makes the object durable under its key, as put() does.
  virtual Result<void> commit(std::span<const std::byte> head) = 0;
};

// Sequential reads of one stored object.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Up to out.size() bytes; 0 at the end of the object.
  virtual Result<std::size_t> read(std::span<std::byte> out) = 0;
  virtual std::uint64_t size() const = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Where the objects live, safe to log (no credentials).
  virtual std::string describe() const = 0;
  // Durable before it returns: on success a crash cannot lose or tear the object.
  virtual Result<void> put(const std::string& key, std::span<const std::byte> data, PutMode mode) = 0;
  // Makes an existing object durable (again): a crash between its write and its directory
  // sync may have left it visible but not yet safe. Called before acknowledging a duplicate.
  virtual Result<void> sync(const std::string& key) = 0;
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
  // Total and available bytes where the backend has a notion of it (a filesystem); nullopt
  // for object stores.
  struct Space {
    std::uint64_t total = 0;
    std::uint64_t available = 0;
  };
  virtual Result<std::optional<Space>> space() = 0;
  // Objects below `prefix` (recursive) with size and time, sorted by key.
  virtual Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) = 0;
  // Keys below `prefix` (recursive), sorted.
  Result<std::vector<std::string>> list(const std::string& prefix);
  // Names directly below `prefix` ("backup" -> the backup ids), counting ones that hold only
  // writes in progress or left by a crash, which list_objects() does not show. Sorted.
  virtual Result<std::vector<std::string>> list_children(const std::string& prefix) = 0;
  // Everything below `prefix`, abandoned writes included, and the prefix itself.
  struct Removed {
    std::uint64_t objects = 0;
    std::uint64_t bytes = 0;
  };
  virtual Result<Removed> remove_all(const std::string& prefix) = 0;
  // Writes left behind by a crashed process (posix: *.tmp.<pid>.<n> files). Only the holder of
  // the repository's lock may call this: then no write can be in progress.
  virtual Result<Removed> remove_abandoned_writes() = 0;
};

// Keys are relative, '/'-separated; each component is [A-Za-z0-9._-]+ and not "." or "..".
bool is_valid_storage_key(std::string_view key);

// The scheme registry: a plain path or file:///path selects the posix backend.
Result<std::unique_ptr<Storage>> open_storage(std::string_view location);

// Backend factories, for the registry and for tests.
Result<std::unique_ptr<Storage>> open_posix_storage(const std::string& root);

}  // namespace walvault
