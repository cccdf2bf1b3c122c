// notify-command: the event reaches the program's stdin whole, a failing or hanging program is
// reported (and killed at the timeout), nothing waits on it, and the queue is bounded; the
// archive-failing watch reports an episode once and its end.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "daemon/notifier.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

class NotifierTest : public ::testing::Test {
 protected:
  std::string script(const std::string& name, const std::string& body) {
    const std::string path = m_dir / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
    return path;
  }
  static std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  test::TempDir m_dir{"walvault-notify"};
};

TEST_F(NotifierTest, TheEventArrivesOnStdinWithItsTypeInTheEnvironment) {
  const std::string out = m_dir / "events";
  const std::string command = script("record", "{ printf '%s ' \"$WALVAULT_EVENT\"; cat; } >> '" + out + "'");
  Notifier notifier([&] { return NotifySettings{command, std::chrono::seconds(10)}; });
  notifier.notify({{"event", "backup_finished"}, {"id", "20261207T020000Z"}, {"stored_bytes", 1234}});
  notifier.notify({{"event", "prune_failed"}, {"error", "unable to remove 'wal/x': [13] Permission denied"}});
  notifier.wait_idle();
  EXPECT_EQ(notifier.sent(), 2u);
  EXPECT_EQ(notifier.failed(), 0u);
  std::istringstream lines(read_file(out));
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  ASSERT_TRUE(line.starts_with("backup_finished {")) << line;
  auto first = nlohmann::json::parse(line.substr(line.find('{')));
  EXPECT_EQ(first["event"], "backup_finished");
  EXPECT_EQ(first["id"], "20261207T020000Z");
  EXPECT_EQ(first["stored_bytes"], 1234);
  EXPECT_EQ(first["version"], WALVAULT_VERSION);
  EXPECT_TRUE(first["time"].get<std::string>().ends_with("Z")) << first["time"];
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_TRUE(line.starts_with("prune_failed {\"event\":\"prune_failed\"")) << line;
}

TEST_F(NotifierTest, AFailingOrHangingProgramIsReportedAndAHungOneKilled) {
  const NotifySettings failing{script("fails", "echo 'webhook said 403' >&2; exit 3"), std::chrono::seconds(10)};
  EXPECT_EQ(Notifier::run_once(failing, "{\"event\":\"x\"}"), "exited 3: webhook said 403 ");
  const NotifySettings hanging{script("hangs", "exec sleep 60"), std::chrono::seconds(1)};
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(Notifier::run_once(hanging, "{\"event\":\"x\"}"), "did not finish within notify-timeout (1 s) and was killed");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  const NotifySettings missing{m_dir / "no-such-program", std::chrono::seconds(1)};
  EXPECT_NE(Notifier::run_once(missing, "{}").find("no-such-program"), std::string::npos);
  // A program that never reads its stdin still counts as delivered when it exits 0.
  EXPECT_EQ(Notifier::run_once({script("ignores", "exit 0"), std::chrono::seconds(5)}, std::string(50000, ' ')), "");
  EXPECT_NE(Notifier::run_once({script("ignores-too", "exit 0"), std::chrono::seconds(5)}, std::string(70000, ' ')).find("too large"),
            std::string::npos);
}

TEST_F(NotifierTest, NotifyNeverWaitsAndTheQueueIsBounded) {
  const std::string gate = m_dir / "gate";
  const std::string command = script("slow", "while [ ! -e '" + gate + "' ]; do sleep 0.05; done; cat > /dev/null");
  Notifier notifier([&] { return NotifySettings{command, std::chrono::seconds(20)}; });
  const auto started = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < Notifier::k_queue_limit + 10; ++i) notifier.notify({{"event", "backup_failed"}, {"n", i}});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1)) << "notify() waited for the program";
  std::ofstream{gate};
  notifier.wait_idle();
  // One was taken by the running program at once; the queue held the limit; the rest dropped.
  EXPECT_GE(notifier.dropped(), 9u);
  EXPECT_LE(notifier.dropped(), 10u);
  EXPECT_EQ(notifier.sent() + notifier.dropped(), Notifier::k_queue_limit + 10);
  EXPECT_EQ(notifier.failed(), 0u);
}

TEST_F(NotifierTest, WithoutACommandNothingIsQueued) {
  Notifier notifier([] { return NotifySettings{}; });
  notifier.notify({{"event", "backup_finished"}});
  notifier.wait_idle();
  EXPECT_EQ(notifier.sent() + notifier.failed() + notifier.dropped(), 0u);
}

TEST(ArchiveFailureWatchTest, AnEpisodeIsReportedOnceAfterItsDurationAndEndsWithASuccess) {
  using Change = ArchiveFailureWatch::Change;
  ArchiveFailureWatch watch;
  const auto after = std::chrono::seconds(600);
  const std::int64_t s = 1000000;
  EXPECT_EQ(watch.update(0, 5, 0, after), Change::none);          // archiving works
  EXPECT_EQ(watch.update(1, 5, 10 * s, after), Change::none);     // first failure
  EXPECT_EQ(watch.failing_since_us(), 10 * s);
  EXPECT_EQ(watch.update(4, 5, 300 * s, after), Change::none);    // still failing, not long enough
  EXPECT_EQ(watch.update(4, 5, 609 * s, after), Change::none);
  EXPECT_EQ(watch.update(5, 5, 610 * s, after), Change::failing);  // 600 s with no success
  EXPECT_EQ(watch.update(9, 5, 900 * s, after), Change::none);    // reported once per episode
  EXPECT_EQ(watch.update(9, 6, 905 * s, after), Change::recovered);
  EXPECT_EQ(watch.update(9, 7, 910 * s, after), Change::none);
  // A short episode ended by a success is never reported.
  EXPECT_EQ(watch.update(10, 7, 920 * s, after), Change::none);
  EXPECT_EQ(watch.update(10, 8, 930 * s, after), Change::none);
  EXPECT_EQ(watch.update(10, 8, 2000 * s, after), Change::none);
}

}  // namespace
}  // namespace walvault
