// push-rate-limit, get-rate-limit, backup-rate-limit: the shared byte-rate limiter. Lower
// bounds on elapsed time prove it paces; the upper bounds are loose (a loaded machine).
#include "common/core/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "common/core/config.hpp"

namespace walvault {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t MiB = 1 << 20;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

TEST(RateLimiter, OffLetsEverythingThroughAndStillCounts) {
  RateLimiter limiter(0);
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.acquire(16 * MiB));
  EXPECT_LT(seconds_since(start), 0.5);
  const auto stats = limiter.stats();
  EXPECT_EQ(stats.bytes_per_second, 0u);
  EXPECT_EQ(stats.bytes, 1600 * MiB);
  EXPECT_EQ(stats.waited_seconds, 0);
}

TEST(RateLimiter, PacesPiecesToTheRateAcrossThreads) {
  RateLimiter limiter(10 * MiB);  // a burst of 0.1 s, then 10 MiB/s
  const auto start = Clock::now();
  // 12 MiB in 1 MiB pieces from two threads: at least (12 - 2) / 10 s.
  auto other = std::async(std::launch::async, [&] {
    for (int i = 0; i < 6; ++i) limiter.acquire(MiB);
  });
  for (int i = 0; i < 6; ++i) limiter.acquire(MiB);
  other.get();
  const double took = seconds_since(start);
  EXPECT_GE(took, 0.95);
  EXPECT_LT(took, 10.0);
  const auto stats = limiter.stats();
  EXPECT_EQ(stats.bytes, 12 * MiB);
  EXPECT_EQ(stats.bytes_per_second, 10 * MiB);
  EXPECT_GT(stats.waited_seconds, 0.5);
  EXPECT_EQ(stats.waiting, 0u);
}

TEST(RateLimiter, ARateChangeReachesATransferThatIsWaiting) {
  std::atomic<std::uint64_t> rate{MiB};
  RateLimiter limiter(LiveSetting<std::uint64_t>([&] { return rate.load(); }));
  limiter.acquire(64 * MiB);  // 64 s of debt at 1 MiB/s
  const auto start = Clock::now();
  auto waiting = std::async(std::launch::async, [&] { return limiter.acquire(MiB); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(limiter.stats().waiting, 1u);
  rate = 0;  // a SIGHUP that turns the limit off
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(waiting.get());
  EXPECT_LT(seconds_since(start), 5.0);
  EXPECT_EQ(limiter.stats().waiting, 0u);
}

TEST(RateLimiter, ACancelledWaitReturnsFalseWithoutCounting) {
  RateLimiter limiter(MiB);
  limiter.acquire(64 * MiB);
  std::atomic<bool> cancelled{false};
  auto waiting = std::async(std::launch::async, [&] { return limiter.acquire(MiB, [&] { return cancelled.load(); }); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  cancelled = true;
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_FALSE(waiting.get());
  EXPECT_EQ(limiter.stats().bytes, 64 * MiB);
}

TEST(RateLimiter, ReleasedForShutdownNothingWaitsAnyMore) {
  RateLimiter limiter(MiB);
  limiter.acquire(64 * MiB);  // 64 s of debt
  auto waiting = std::async(std::launch::async, [&] { return limiter.acquire(MiB); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = Clock::now();
  limiter.release_all();  // SIGTERM: what is in flight finishes at full speed
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(waiting.get());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.acquire(16 * MiB));
  EXPECT_LT(seconds_since(start), 2.0);
  EXPECT_EQ(limiter.stats().bytes, 64 * MiB + MiB + 160 * MiB);
}

TEST(RateLimiter, OptionsTakeBytesPerSecondFromOneMebibyte) {
  const GetEnv no_env = [](const char*) -> const char* { return nullptr; };
  auto with = [&](const std::string& name, const std::string& value) {
    DaemonCommandLine command_line;
    command_line.flags = {{"repo", "/var/lib/walvault/repo"}, {name, value}};
    return resolve_config(command_line, no_env);
  };
  auto defaults = with("log-level", "info");
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_EQ(defaults->push_rate_limit, 0u);
  EXPECT_EQ(defaults->get_rate_limit, 0u);
  EXPECT_EQ(defaults->backup_rate_limit, 0u);

  auto push = with("push-rate-limit", "100MiB/s");
  ASSERT_TRUE(push) << push.error().message;
  EXPECT_EQ(push->push_rate_limit, 100 * MiB);
  auto get = with("get-rate-limit", "1MiB");
  ASSERT_TRUE(get) << get.error().message;
  EXPECT_EQ(get->get_rate_limit, MiB);
  auto backup = with("backup-rate-limit", "2GiB");
  ASSERT_TRUE(backup) << backup.error().message;
  EXPECT_EQ(backup->backup_rate_limit, 2048 * MiB);

  for (const char* bad : {"512KiB", "fast", "-1", "10MiB/h", "2TiB"}) {
    auto refused = with("get-rate-limit", bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message.find("get-rate-limit"), std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().message.find("1MiB"), std::string::npos) << refused.error().message;
  }
}

}  // namespace
}  // namespace walvault
