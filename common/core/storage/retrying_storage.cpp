#include "common/core/storage/retrying_storage.hpp"

#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

namespace walvault {

namespace {

class Retrier {
 public:
  explicit Retrier(RetryPolicy policy) : m_policy(std::move(policy)) {
    if (m_policy.attempts < 1) m_policy.attempts = 1;
    if (!m_policy.sleep) m_policy.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }

  // Calls `call` until it succeeds or fails with anything but a transient failure, at most
  // `attempts` times. `what` names the call in the log.
  template <class Call>
  auto run(std::string_view what, Call&& call) -> decltype(call()) {
    auto result = call();
    for (int attempt = 1; attempt < m_policy.attempts && !result && result.error().transient; ++attempt) {
      const auto delay = jittered(attempt);
      spdlog::warn("storage: {} failed ({}), retry {} of {} in {} ms", what, result.error().message, attempt, m_policy.attempts - 1,
                   delay.count());
      m_policy.sleep(delay);
      result = call();
    }
    if (!result && result.error().transient && m_policy.attempts > 1)
      result.error().message += " (tried " + std::to_string(m_policy.attempts) + " times)";
    return result;
  }

 private:
  // Jitter: a uniform wait between half and all of the exponential bound, so many workers
  // failing together do not retry together.
  std::chrono::milliseconds jittered(int attempt) {
    const auto bound = std::min<std::int64_t>(m_policy.max_delay.count(), m_policy.first_delay.count() << std::min(attempt - 1, 20));
    thread_local std::minstd_rand rng{std::random_device{}()};
    std::uniform_int_distribution<std::int64_t> pick(bound / 2, std::max<std::int64_t>(bound, 1));
    return std::chrono::milliseconds(pick(rng));
  }

  RetryPolicy m_policy;
};

class RetryingReader final : public ObjectReader {
 public:
  RetryingReader(std::unique_ptr<ObjectReader> inner, std::shared_ptr<Retrier> retrier, std::string key)
      : m_inner(std::move(inner)), m_retrier(std::move(retrier)), m_key(std::move(key)) {}
  Result<std::size_t> read(std::span<std::byte> out) override {
    return m_retrier->run("read of '" + m_key + "'", [&] { return m_inner->read(out); });
  }
  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    return m_retrier->run("ranged read of '" + m_key + "'", [&] { return m_inner->read_at(offset, out); });
  }
  std::uint64_t size() const override { return m_inner->size(); }

 private:
  std::unique_ptr<ObjectReader> m_inner;
  std::shared_ptr<Retrier> m_retrier;
  std::string m_key;
};

class RetryingStorage final : public Storage {
 public:
  RetryingStorage(std::unique_ptr<Storage> inner, RetryPolicy policy)
      : m_inner(std::move(inner)), m_retrier(std::make_shared<Retrier>(std::move(policy))) {}

  std::string describe() const override { return m_inner->describe(); }
  // A create-only put that reached the backend before its answer was lost meets its own
  // object on the retry (conflict); the callers' idempotency check compares the content.
  Result<void> put(const std::string& key, std::span<const std::byte> data, PutMode mode) override {
    return m_retrier->run("put of '" + key + "'", [&] { return m_inner->put(key, data, mode); });
  }
  Result<std::optional<std::vector<std::byte>>> get(const std::string& key, std::optional<std::size_t> max_bytes) override {
    return m_retrier->run("get of '" + key + "'", [&] { return m_inner->get(key, max_bytes); });
  }
  Result<bool> exists(const std::string& key) override {
    return m_retrier->run("head of '" + key + "'", [&] { return m_inner->exists(key); });
  }
  Result<std::unique_ptr<ObjectWriter>> create(const std::string& key, PutMode mode) override {
    return m_retrier->run("start of a write of '" + key + "'", [&] { return m_inner->create(key, mode); });
  }
  Result<std::optional<std::unique_ptr<ObjectReader>>> open_read(const std::string& key) override {
    auto opened = m_retrier->run("open of '" + key + "'", [&] { return m_inner->open_read(key); });
    if (!opened || !*opened) return opened;
    return std::optional<std::unique_ptr<ObjectReader>>(std::make_unique<RetryingReader>(std::move(**opened), m_retrier, key));
  }
  Result<void> remove(const std::string& key) override {
    return m_retrier->run("delete of '" + key + "'", [&] { return m_inner->remove(key); });
  }
  Result<std::optional<ObjectInfo>> info(const std::string& key) override {
    return m_retrier->run("head of '" + key + "'", [&] { return m_inner->info(key); });
  }
  Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) override {
    return m_retrier->run("listing of '" + prefix + "'", [&] { return m_inner->list_objects(prefix); });
  }
  Result<std::optional<Space>> space() override {
    return m_retrier->run("space query", [&] { return m_inner->space(); });
  }
  Result<void> sync(const std::string& key) override {
    return m_retrier->run("sync of '" + key + "'", [&] { return m_inner->sync(key); });
  }
  Result<std::vector<std::string>> list_children(const std::string& prefix) override {
    return m_retrier->run("listing of '" + prefix + "'", [&] { return m_inner->list_children(prefix); });
  }
  // Whole-prefix removal is idempotent: running it again removes what the failed run left.
  Result<Removed> remove_all(const std::string& prefix) override {
    return m_retrier->run("removal of '" + prefix + "'", [&] { return m_inner->remove_all(prefix); });
  }
  Result<Removed> remove_abandoned_writes() override {
    return m_retrier->run("sweep of abandoned writes", [&] { return m_inner->remove_abandoned_writes(); });
  }

 private:
  std::unique_ptr<Storage> m_inner;
  std::shared_ptr<Retrier> m_retrier;
};

}  // namespace

std::unique_ptr<Storage> make_retrying_storage(std::unique_ptr<Storage> inner, RetryPolicy policy) {
  return std::make_unique<RetryingStorage>(std::move(inner), std::move(policy));
}

}  // namespace walvault
