#pragma once
// A Storage in front of another that misbehaves on request, for the fault tests of the push,
// get, backup-read and prune paths: fail the Nth call of any method (for any key, or keys
// containing a text) with any category, cut reads short, or slow calls down. It counts every
// call, so a test can prove a transient fault was retried and a permanent one was not.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/core/storage/storage.hpp"

namespace walvault::test {

class FaultyStorage final : public Storage {
 public:
  struct Fault {
    std::string method;       // "put", "get", "exists", "create", "append", "commit", "open_read", "read",
                              // "read_at", "remove", "info", "list_objects", "sync", "list_children", "remove_all"
    FailureCategory category = FailureCategory::transient;
    int skip = 0;             // matching calls let through first
    int times = 1;            // matching calls that fail after those
    std::string key_contains;  // empty: any key
  };
  struct Control {
    std::mutex mutex;
    std::vector<Fault> faults;
    std::map<std::string, int> calls;  // by method
    int injected = 0;
    std::optional<std::size_t> truncate_reads;  // readers see at most this many bytes
    std::chrono::milliseconds delay{0};          // before every call

    void add(Fault fault) {
      std::lock_guard lock(mutex);
      faults.push_back(std::move(fault));
    }
    int count(const std::string& method) {
      std::lock_guard lock(mutex);
      return calls[method];
    }
    void clear() {
      std::lock_guard lock(mutex);
      faults.clear();
      truncate_reads.reset();
    }
  };

  FaultyStorage(std::unique_ptr<Storage> inner, std::shared_ptr<Control> control)
      : m_inner(std::move(inner)), m_control(std::move(control)) {}

  std::string describe() const override { return m_inner->describe(); }
  Result<void> put(const std::string& key, std::span<const std::byte> data, PutMode mode) override {
    if (auto f = fault("put", key)) return std::unexpected(*f);
    return m_inner->put(key, data, mode);
  }
  Result<std::optional<std::vector<std::byte>>> get(const std::string& key, std::optional<std::size_t> max_bytes) override {
    if (auto f = fault("get", key)) return absent_or<std::vector<std::byte>>(*f);
    auto got = m_inner->get(key, max_bytes);
    if (got && *got && truncation() && (*got)->size() > *truncation()) (*got)->resize(*truncation());
    return got;
  }
  Result<bool> exists(const std::string& key) override {
    if (auto f = fault("exists", key)) {
      if (f->kind == ErrorKind::not_found) return false;
      return std::unexpected(*f);
    }
    return m_inner->exists(key);
  }
  Result<std::unique_ptr<ObjectWriter>> create(const std::string& key, PutMode mode) override {
    if (auto f = fault("create", key)) return std::unexpected(*f);
    auto writer = m_inner->create(key, mode);
    if (!writer) return writer;
    return std::unique_ptr<ObjectWriter>(std::make_unique<Writer>(*this, std::move(*writer), key));
  }
  Result<std::optional<std::unique_ptr<ObjectReader>>> open_read(const std::string& key) override {
    if (auto f = fault("open_read", key)) return absent_or<std::unique_ptr<ObjectReader>>(*f);
    auto reader = m_inner->open_read(key);
    if (!reader || !*reader) return reader;
    return std::optional<std::unique_ptr<ObjectReader>>(std::make_unique<Reader>(*this, std::move(**reader), key));
  }
  Result<void> remove(const std::string& key) override {
    if (auto f = fault("remove", key)) return std::unexpected(*f);
    return m_inner->remove(key);
  }
  Result<std::optional<ObjectInfo>> info(const std::string& key) override {
    if (auto f = fault("info", key)) return absent_or<ObjectInfo>(*f);
    return m_inner->info(key);
  }
  Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) override {
    if (auto f = fault("list_objects", prefix)) return std::unexpected(*f);
    return m_inner->list_objects(prefix);
  }
  Result<std::optional<Space>> space() override { return m_inner->space(); }
  Result<void> sync(const std::string& key) override {
    if (auto f = fault("sync", key)) return std::unexpected(*f);
    return m_inner->sync(key);
  }
  Result<std::vector<std::string>> list_children(const std::string& prefix) override {
    if (auto f = fault("list_children", prefix)) return std::unexpected(*f);
    return m_inner->list_children(prefix);
  }
  Result<Removed> remove_all(const std::string& prefix) override {
    if (auto f = fault("remove_all", prefix)) return std::unexpected(*f);
    return m_inner->remove_all(prefix);
  }
  Result<Removed> remove_abandoned_writes() override { return m_inner->remove_abandoned_writes(); }

 private:
  // The failure to inject for this call, if any (a not_found failure stands for "absent").
  std::optional<Failure> fault(const std::string& method, const std::string& key) {
    std::chrono::milliseconds delay{0};
    std::optional<Failure> out;
    {
      std::lock_guard lock(m_control->mutex);
      ++m_control->calls[method];
      delay = m_control->delay;
      for (auto& f : m_control->faults) {
        if (f.method != method || (!f.key_contains.empty() && key.find(f.key_contains) == std::string::npos)) continue;
        if (f.skip > 0) {
          --f.skip;
          continue;
        }
        if (f.times <= 0) continue;
        --f.times;
        ++m_control->injected;
        Failure failure{ErrorKind::io, "injected " + std::string(to_string(f.category)) + " fault: unable to " + method + " '" + key + "'"};
        switch (f.category) {
          case FailureCategory::transient: failure.transient = true; break;
          case FailureCategory::refused: failure.kind = ErrorKind::refused; break;
          case FailureCategory::absent: failure.kind = ErrorKind::not_found; break;
          case FailureCategory::permanent: break;
        }
        out = failure;
        break;
      }
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    return out;
  }
  template <class T>
  Result<std::optional<T>> absent_or(const Failure& f) {
    if (f.kind == ErrorKind::not_found) return std::optional<T>();
    return std::unexpected(f);
  }
  std::optional<std::size_t> truncation() {
    std::lock_guard lock(m_control->mutex);
    return m_control->truncate_reads;
  }

  class Writer final : public ObjectWriter {
   public:
    Writer(FaultyStorage& owner, std::unique_ptr<ObjectWriter> inner, std::string key)
        : m_owner(owner), m_inner(std::move(inner)), m_key(std::move(key)) {}
    Result<void> append(std::span<const std::byte> data) override {
      if (auto f = m_owner.fault("append", m_key)) return std::unexpected(*f);
      return m_inner->append(data);
    }
    Result<void> commit() override {
      if (auto f = m_owner.fault("commit", m_key)) return std::unexpected(*f);
      return m_inner->commit();
    }

   private:
    FaultyStorage& m_owner;
    std::unique_ptr<ObjectWriter> m_inner;
    std::string m_key;
  };

  class Reader final : public ObjectReader {
   public:
    Reader(FaultyStorage& owner, std::unique_ptr<ObjectReader> inner, std::string key)
        : m_owner(owner), m_inner(std::move(inner)), m_key(std::move(key)) {}
    Result<std::size_t> read(std::span<std::byte> out) override {
      if (auto f = m_owner.fault("read", m_key)) return std::unexpected(*f);
      if (auto limit = m_owner.truncation()) {
        if (m_position >= *limit) return 0;
        out = out.first(std::min<std::size_t>(out.size(), *limit - m_position));
      }
      auto n = m_inner->read(out);
      if (n) m_position += *n;
      return n;
    }
    Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) override {
      if (auto f = m_owner.fault("read_at", m_key)) return std::unexpected(*f);
      if (auto limit = m_owner.truncation(); limit && offset + out.size() > *limit)
        return fail(ErrorKind::corrupt, "stored object '" + m_key + "' is shorter than " + std::to_string(offset + out.size()) + " bytes");
      return m_inner->read_at(offset, out);
    }
    // A truncated object shows its cut size, as a short file on storage would.
    std::uint64_t size() const override {
      auto limit = m_owner.truncation();
      return limit ? std::min<std::uint64_t>(*limit, m_inner->size()) : m_inner->size();
    }

   private:
    FaultyStorage& m_owner;
    std::unique_ptr<ObjectReader> m_inner;
    std::string m_key;
    std::size_t m_position = 0;
  };

  std::unique_ptr<Storage> m_inner;
  std::shared_ptr<Control> m_control;
};

}  // namespace walvault::test
