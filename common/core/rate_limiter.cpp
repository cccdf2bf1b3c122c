#include "common/core/rate_limiter.hpp"

#include <algorithm>
#include <thread>

namespace walvault {

namespace {
// An idle limiter saves up at most this much of its rate: a short burst, never a second's worth.
constexpr double k_burst_seconds = 0.1;
constexpr auto k_longest_nap = std::chrono::milliseconds(100);
}  // namespace

bool RateLimiter::acquire(std::uint64_t bytes, const std::function<bool()>& cancelled) {
  const Clock::time_point started = Clock::now();
  bool counted_waiting = false;
  std::unique_lock lock(m_mutex);
  for (;;) {
    const std::uint64_t rate = m_released ? 0 : m_rate();
    const Clock::time_point now = Clock::now();
    if (rate == 0) {
      m_tokens = 0;
      m_refilled = now;
      break;
    }
    const double elapsed = std::chrono::duration<double>(now - m_refilled).count();
    m_refilled = now;
    m_tokens = std::min(m_tokens + elapsed * static_cast<double>(rate), static_cast<double>(rate) * k_burst_seconds);
    if (m_tokens >= 0) {
      m_tokens -= static_cast<double>(bytes);
      break;
    }
    if (!counted_waiting) {
      ++m_waiting;
      counted_waiting = true;
    }
    const auto debt = std::chrono::duration<double>(-m_tokens / static_cast<double>(rate));
    const auto nap = std::min<Clock::duration>(std::chrono::duration_cast<Clock::duration>(debt) + std::chrono::milliseconds(1),
                                               k_longest_nap);
    lock.unlock();
    std::this_thread::sleep_for(nap);
    const bool stop = cancelled && cancelled();
    lock.lock();
    if (stop) {
      --m_waiting;
      m_waited_seconds += std::chrono::duration<double>(Clock::now() - started).count();
      return false;
    }
  }
  if (counted_waiting) {
    --m_waiting;
    m_waited_seconds += std::chrono::duration<double>(Clock::now() - started).count();
  }
  m_bytes += bytes;
  return true;
}

void RateLimiter::release_all() {
  std::lock_guard lock(m_mutex);
  m_released = true;
}

RateLimiter::Stats RateLimiter::stats() const {
  std::lock_guard lock(m_mutex);
  return Stats{m_rate(), m_bytes, m_waited_seconds, m_waiting};
}

}  // namespace walvault
