#pragma once
// A byte-rate limit shared by every transfer of one kind (push-rate-limit, get-rate-limit,
// backup-rate-limit), so a restore or a base backup cannot take all of a busy primary's disk
// or link. A token bucket that may go into debt: a transfer of n bytes starts once the bucket
// is not in debt and then takes n, so pieces of any size (a 1 MiB read) average out to the
// rate. The rate is read on every call (a SIGHUP changes it at once, 0 turns it off), and a
// waiting transfer re-checks it and its cancel test at least every 100 ms.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "common/core/live_setting.hpp"

namespace walvault {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(LiveSetting<std::uint64_t> bytes_per_second) : m_rate(std::move(bytes_per_second)) {}

  // Waits until `bytes` may move, then counts them. Returns false (without counting) when
  // `cancelled` turned true while it waited.
  bool acquire(std::uint64_t bytes, const std::function<bool()>& cancelled = {});

  // From now on nothing waits (walvaultd is stopping: what is in flight finishes at full
  // speed within shutdown-timeout instead of at the limit); waiting transfers go on at once.
  void release_all();

  struct Stats {
    std::uint64_t bytes_per_second = 0;  // the limit now; 0: off
    std::uint64_t bytes = 0;             // bytes that went through it, limited or not
    double waited_seconds = 0;           // time transfers spent waiting for it, summed
    unsigned waiting = 0;                // transfers waiting now
  };
  Stats stats() const;

 private:
  LiveSetting<std::uint64_t> m_rate;
  mutable std::mutex m_mutex;
  double m_tokens = 0;  // bytes; negative: debt
  Clock::time_point m_refilled{};
  std::uint64_t m_bytes = 0;
  double m_waited_seconds = 0;
  unsigned m_waiting = 0;
  bool m_released = false;
};

}  // namespace walvault
