#pragma once
// An in-memory Storage for unit tests: objects in a map, with the two faults the readers must
// tell apart. erase() makes an object vanish behind walvault's back (a lost object: absent is
// a value); fail_reads() makes every read fail as an unreachable backend would (an error).
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/core/storage/storage.hpp"

namespace walvault::test {

class MemoryStorage final : public Storage {
 public:
  struct Shared {
    std::mutex mutex;
    std::map<std::string, std::vector<std::byte>> objects;
    std::map<std::string, std::int64_t> modified_us;
    bool fail_reads = false;
    std::function<void(const std::string&)> before_get;  // called unlocked, e.g. to make a key vanish mid-read
  };

  explicit MemoryStorage(std::shared_ptr<Shared> shared) : m_shared(std::move(shared)) {}

  std::string describe() const override { return "memory:test"; }

  Result<void> put(const std::string& key, std::span<const std::byte> data, PutMode mode) override {
    if (!is_valid_storage_key(key)) return fail(ErrorKind::invalid, "invalid storage key '" + key + "'");
    std::lock_guard lock(m_shared->mutex);
    if (creates_only(mode) && m_shared->objects.contains(key))
      return fail(ErrorKind::conflict, "object '" + key + "' already exists");
    m_shared->objects[key].assign(data.begin(), data.end());
    m_shared->modified_us[key] = now_us();
    return {};
  }

  Result<void> sync(const std::string&) override { return {}; }

  Result<std::optional<std::vector<std::byte>>> get(const std::string& key, std::optional<std::size_t> max_bytes) override {
    if (m_shared->before_get) m_shared->before_get(key);
    std::lock_guard lock(m_shared->mutex);
    if (m_shared->fail_reads) return fail(ErrorKind::io, "unable to read '" + key + "': backend unreachable (test)");
    auto it = m_shared->objects.find(key);
    if (it == m_shared->objects.end()) return std::optional<std::vector<std::byte>>();
    std::vector<std::byte> data = it->second;
    if (max_bytes && data.size() > *max_bytes) data.resize(*max_bytes);
    return std::optional<std::vector<std::byte>>(std::move(data));
  }

  Result<bool> exists(const std::string& key) override {
    std::lock_guard lock(m_shared->mutex);
    if (m_shared->fail_reads) return fail(ErrorKind::io, "unable to stat '" + key + "': backend unreachable (test)");
    return m_shared->objects.contains(key);
  }

  Result<std::unique_ptr<ObjectWriter>> create(const std::string& key, PutMode mode) override {
    return std::unique_ptr<ObjectWriter>(std::make_unique<Writer>(*this, key, mode));
  }

  Result<std::optional<std::unique_ptr<ObjectReader>>> open_read(const std::string& key) override {
    auto data = get(key, std::nullopt);
    if (!data) return std::unexpected(data.error());
    if (!*data) return std::optional<std::unique_ptr<ObjectReader>>();
    return std::optional<std::unique_ptr<ObjectReader>>(std::make_unique<Reader>(std::move(**data)));
  }

  Result<void> remove(const std::string& key) override {
    std::lock_guard lock(m_shared->mutex);
    m_shared->objects.erase(key);
    m_shared->modified_us.erase(key);
    return {};
  }

  Result<std::optional<ObjectInfo>> info(const std::string& key) override {
    std::lock_guard lock(m_shared->mutex);
    if (m_shared->fail_reads) return fail(ErrorKind::io, "unable to stat '" + key + "': backend unreachable (test)");
    auto it = m_shared->objects.find(key);
    if (it == m_shared->objects.end()) return std::optional<ObjectInfo>();
    return std::optional<ObjectInfo>(ObjectInfo{key, it->second.size(), m_shared->modified_us[key]});
  }

  Result<std::optional<Space>> space() override { return std::optional<Space>(); }

  Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) override {
    std::lock_guard lock(m_shared->mutex);
    if (m_shared->fail_reads) return fail(ErrorKind::io, "unable to list '" + prefix + "': backend unreachable (test)");
    std::vector<ObjectInfo> out;
    for (const auto& [key, data] : m_shared->objects)
      if (below(key, prefix)) out.push_back({key, data.size(), m_shared->modified_us[key]});
    return out;
  }

  Result<std::vector<std::string>> list_children(const std::string& prefix) override {
    std::lock_guard lock(m_shared->mutex);
    std::vector<std::string> out;
    for (const auto& [key, data] : m_shared->objects) {
      if (!below(key, prefix)) continue;
      const std::string rest = key.substr(prefix.size() + 1);
      const std::string child = rest.substr(0, rest.find('/'));
      if (std::find(out.begin(), out.end(), child) == out.end()) out.push_back(child);
    }
    return out;
  }

  Result<Removed> remove_all(const std::string& prefix) override {
    std::lock_guard lock(m_shared->mutex);
    Removed removed;
    for (auto it = m_shared->objects.begin(); it != m_shared->objects.end();) {
      if (below(it->first, prefix)) {
        ++removed.objects;
        removed.bytes += it->second.size();
        it = m_shared->objects.erase(it);
      } else {
        ++it;
      }
    }
    return removed;
  }

  Result<Removed> remove_abandoned_writes() override { return Removed{}; }

 private:
  class Writer final : public ObjectWriter {
   public:
    Writer(MemoryStorage& storage, std::string key, PutMode mode) : m_storage(storage), m_key(std::move(key)), m_mode(mode) {}
    Result<void> append(std::span<const std::byte> data) override {
      m_data.insert(m_data.end(), data.begin(), data.end());
      return {};
    }
    Result<void> commit() override { return m_storage.put(m_key, m_data, m_mode); }

   private:
    MemoryStorage& m_storage;
    std::string m_key;
    PutMode m_mode;
    std::vector<std::byte> m_data;
  };

  class Reader final : public ObjectReader {
   public:
    explicit Reader(std::vector<std::byte> data) : m_data(std::move(data)) {}
    Result<std::size_t> read(std::span<std::byte> out) override {
      const std::size_t n = std::min(out.size(), m_data.size() - m_offset);
      std::copy_n(m_data.begin() + static_cast<std::ptrdiff_t>(m_offset), n, out.begin());
      m_offset += n;
      return n;
    }
    Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) override {
      if (offset > m_data.size() || out.size() > m_data.size() - offset)
        return fail(ErrorKind::corrupt, "read past the end of a test object");
      std::copy_n(m_data.begin() + static_cast<std::ptrdiff_t>(offset), out.size(), out.begin());
      return {};
    }
    std::uint64_t size() const override { return m_data.size(); }

   private:
    std::vector<std::byte> m_data;
    std::size_t m_offset = 0;
  };

  static bool below(const std::string& key, const std::string& prefix) {
    return key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0 && key[prefix.size()] == '/';
  }
  static std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  std::shared_ptr<Shared> m_shared;
};

}  // namespace walvault::test
