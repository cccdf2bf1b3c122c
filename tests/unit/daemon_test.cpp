// walvaultd's life cycle, driven as an object on a thread of the test (no signals): it serves,
// reloads one validated snapshot, answers BUSY beyond max-connections, closes a silent client
// at request-timeout, refuses a second daemon on its socket, and stops within shutdown-timeout
// even when a client never reads what it asked for.
#include "daemon/daemon.hpp"
#include "daemon/server.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "archiver/ingest.hpp"
#include "common/base/socket_client.hpp"
#include "common/core/indexer.hpp"
#include "tests/unit/archive_fixture.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* no_environment(const char*) { return nullptr; }

// Log lines of the daemon under test: the "walvaultd" logger keeps its sinks across
// logging::configure, so a ring buffer added to it sees what an operator would.
class CapturedLog {
 public:
  CapturedLog() : m_sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(512)) {
    auto logger = spdlog::get("walvaultd");
    if (!logger) {
      logger = std::make_shared<spdlog::logger>("walvaultd");
      spdlog::register_logger(logger);
      spdlog::set_default_logger(logger);
    }
    logger->sinks().push_back(m_sink);
    m_logger = logger;
  }
  ~CapturedLog() {
    auto& sinks = m_logger->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), m_sink), sinks.end());
  }
  bool contains(std::string_view text) const {
    for (const auto& line : m_sink->last_formatted())
      if (line.find(text) != std::string::npos) return true;
    return false;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> m_sink;
  std::shared_ptr<spdlog::logger> m_logger;
};

class DaemonTest : public ::testing::Test {
 protected:
  std::string socket_path() const { return m_dir / "wv.sock"; }

  // The configuration file the daemon is started with and reloads: the repository, the socket
  // and this process's uid, then `extra` lines.
  void write_config(const std::string& extra) {
    test::write_text_file(m_dir / "walvaultd.conf", "repo = " + (m_dir / "repo") + "\nspool = " + (m_dir / "spool") +
                                                        "\nsocket = " + socket_path() + "\nallow-uid = " +
                                                        std::to_string(::geteuid()) + "\n" + extra);
  }

  std::unique_ptr<Daemon> make_daemon() {
    DaemonCommandLine command_line;
    command_line.config_file = m_dir / "walvaultd.conf";
    auto config = resolve_config(command_line, no_environment);
    EXPECT_TRUE(config) << config.error().message;
    auto repository = Repository::open(config->repos, true, config->storage);
    EXPECT_TRUE(repository) << repository.error().message;
    EXPECT_TRUE(make_directories(config->spool));
    auto index = Index::open(config->spool + "/index.db");
    EXPECT_TRUE(index) << index.error().message;
    return std::make_unique<Daemon>(std::move(command_line), std::move(*config), std::move(*repository), std::move(*index),
                                    no_environment);
  }

  // Runs the daemon on a thread and waits until it answers PING.
  void start() {
    m_daemon = make_daemon();
    m_thread = std::thread([this] { m_rc = m_daemon->run(); });
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
      if (ping()) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "walvaultd did not answer PING within 20 s";
  }

  bool ping() {
    auto answer = exchange(ClientOptions{socket_path(), 0ms, 5000ms}, protocol::Message{"PING", {}});
    return answer && answer->head() == "OK";
  }

  // stop() and wait for run() to return; its exit code.
  int stop_and_wait() {
    m_daemon->stop();
    m_thread.join();
    return m_rc;
  }

  void TearDown() override {
    if (m_thread.joinable()) stop_and_wait();
  }

  test::TempDir m_dir{"walvault-daemon"};
  CapturedLog m_log;
  std::unique_ptr<Daemon> m_daemon;
  std::thread m_thread;
  int m_rc = -1;
};

TEST_F(DaemonTest, ServesUntilStoppedAndThenExitsCleanly) {
  write_config("");
  start();
  ASSERT_TRUE(ping());
  EXPECT_EQ(stop_and_wait(), 0);
  EXPECT_FALSE(m_daemon->stopped_by_deadline());
  m_daemon.reset();
  EXPECT_NE(::access(socket_path().c_str(), F_OK), 0) << "the socket is removed when the daemon goes";
}

TEST_F(DaemonTest, ReloadSwapsOneSnapshotAndKeepsRestartOnlyOptions) {
  write_config("compress = zstd:3\nrequest-timeout = 10\nmax-connections = 64\n");
  start();
  const auto before = m_daemon->config();

  write_config("compress = zstd:7\nrequest-timeout = 20\nmax-connections = 5\n");
  auto outcome = m_daemon->reload().get();
  ASSERT_TRUE(outcome) << outcome.error().message;
  const auto after = m_daemon->config();
  EXPECT_NE(after, before) << "a reload swaps in a new snapshot";
  EXPECT_EQ(after->compress.level, 7);
  EXPECT_EQ(after->request_timeout, 20s);
  EXPECT_EQ(after->max_connections, 64u) << "max-connections is restart-only: the running value stays";
  EXPECT_TRUE(m_log.contains("max-connections changed, which takes effect only after a restart"));
  EXPECT_EQ(before->compress.level, 3) << "the old snapshot is immutable";
  EXPECT_TRUE(ping());
}

TEST_F(DaemonTest, AReloadThatFailsValidationChangesNothing) {
  write_config("compress = zstd:3\nrequest-timeout = 10\n");
  start();
  const auto before = m_daemon->config();

  write_config("compress = zstd:5\nrequest-timeout = forever\n");
  auto outcome = m_daemon->reload().get();
  ASSERT_FALSE(outcome) << "an invalid request-timeout is refused";
  EXPECT_NE(outcome.error().message.find("request-timeout"), std::string::npos) << outcome.error().message;
  EXPECT_EQ(m_daemon->config(), before) << "not even the valid compress change is applied";
  EXPECT_TRUE(m_log.contains("configuration not reloaded"));
  EXPECT_TRUE(ping());
}

TEST_F(DaemonTest, AnswersBusyBeyondMaxConnections) {
  write_config("max-connections = 1\nrequest-timeout = 30\n");
  start();
  {
    auto held = SocketClient::connect(socket_path(), 0ms, 5000ms);
    ASSERT_TRUE(held) << held.error().message;
    auto refused = SocketClient::connect(socket_path(), 0ms, 5000ms);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("is busy: walvaultd is serving 1 connections (max-connections)"),
              std::string::npos)
        << refused.error().message;
  }  // the holder goes, which frees the slot
  const auto deadline = Clock::now() + 10s;
  while (!ping() && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(ping()) << "the slot is served again once the holder is gone";
}

TEST_F(DaemonTest, RequestTimeoutClosesAClientThatSendsNothing) {
  write_config("request-timeout = 1\n");
  start();
  auto silent = SocketClient::connect(socket_path(), 0ms, 5000ms);
  ASSERT_TRUE(silent) << silent.error().message;
  const auto t0 = Clock::now();
  auto answer = silent->receive(15000ms);
  const auto waited = Clock::now() - t0;
  EXPECT_FALSE(answer) << "the daemon closes the connection instead of answering";
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 10s) << "closed at request-timeout (1 s), not at the client's own 15 s";
}

TEST_F(DaemonTest, AReloadedSettingAppliesToTheNextConnection) {
  write_config("request-timeout = 30\n");
  start();
  write_config("request-timeout = 1\n");
  ASSERT_TRUE(m_daemon->reload().get());
  auto silent = SocketClient::connect(socket_path(), 0ms, 5000ms);
  ASSERT_TRUE(silent) << silent.error().message;
  const auto t0 = Clock::now();
  EXPECT_FALSE(silent->receive(15000ms));
  EXPECT_LT(Clock::now() - t0, 10s) << "the server reads request-timeout from the new snapshot (1 s, not 30 s)";
}

TEST_F(DaemonTest, ASecondDaemonOnTheSameSocketRefusesToStart) {
  write_config("");
  start();
  auto second = make_daemon();
  EXPECT_EQ(second->run(), 1);
  EXPECT_TRUE(m_log.contains("another walvaultd is already serving socket '" + socket_path() + "'"));
  second.reset();
  EXPECT_TRUE(ping()) << "the first daemon still serves, and its socket is still there";
}

TEST_F(DaemonTest, AConnectionThatHasNotSentARequestDoesNotHoldTheStop) {
  write_config("request-timeout = 60\nshutdown-timeout = 60\n");
  start();
  auto idle = SocketClient::connect(socket_path(), 0ms, 5000ms);
  ASSERT_TRUE(idle) << idle.error().message;
  const auto t0 = Clock::now();
  EXPECT_EQ(stop_and_wait(), 0);
  EXPECT_LT(Clock::now() - t0, 10s) << "not held for request-timeout (60 s)";
  EXPECT_FALSE(m_daemon->stopped_by_deadline());
  EXPECT_FALSE(idle->receive(1000ms)) << "the idle connection was closed";
}

// A client asks for LIST and never reads its 4 KiB pipe: the document write waits (for 30 s,
// the client-output idle limit), so without shutdown-timeout stop() would wait as long.
TEST_F(DaemonTest, ShutdownTimeoutBoundsADrainThatAClientHoldsUp) {
  {
    auto repository = Repository::open(m_dir / "repo");
    ASSERT_TRUE(repository);
    ASSERT_TRUE(make_directories(m_dir / "spool"));
    auto index = Index::open(m_dir / "spool/index.db");
    ASSERT_TRUE(index);
    Indexer indexer(**repository, **index);
    Ingest ingest(**repository, CompressSpec{}, &indexer);
    for (std::uint64_t segno = 1; segno <= 60; ++segno) {
      const std::string path = m_dir / "segment";
      test::write_bytes_file(path, test::segment_fixture(1, segno));
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      auto pushed = ingest.push(test::segment_file(1, segno), fd.get());
      ASSERT_TRUE(pushed) << pushed.error().message;
    }
  }
  write_config("shutdown-timeout = 1\n");
  start();
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  ASSERT_EQ(::fcntl(write_end.get(), F_SETPIPE_SZ, 4096), 4096);
  auto client = SocketClient::connect(socket_path(), 0ms, 5000ms);
  ASSERT_TRUE(client) << client.error().message;
  ASSERT_TRUE(client->send(protocol::Message{"LIST", {{"format", "json"}}}, write_end.get()));
  write_end.reset();
  // Wait until the daemon has filled the pipe: its worker is now blocked on this client.
  int queued = 0;
  for (auto deadline = Clock::now() + 10s; queued < 4096 && Clock::now() < deadline; std::this_thread::sleep_for(20ms))
    ASSERT_EQ(::ioctl(read_end.get(), FIONREAD, &queued), 0);
  ASSERT_EQ(queued, 4096) << "the LIST document fills the pipe";

  const auto t0 = Clock::now();
  EXPECT_EQ(stop_and_wait(), 1) << "a drain cut short is a failure exit";
  EXPECT_LT(Clock::now() - t0, 10s) << "bounded by shutdown-timeout (1 s), not the 30 s client-output limit";
  EXPECT_TRUE(m_daemon->stopped_by_deadline());
  EXPECT_TRUE(m_log.contains("shutdown-timeout: 1 connection(s) still open after 1 s"));
  read_end.reset();  // the worker's write fails now, so the daemon can be destroyed
  m_daemon.reset();
}

// A handler's reply_fd goes back with the answer (GET's handoff of a prefetched segment): the
// client gets the same open file, its offset untouched by what the client then reads.
TEST(ServerTest, ADescriptorSetByTheHandlerIsPassedBackWithTheAnswer) {
  test::TempDir dir{"walvault-server"};
  test::write_text_file(dir / "passed", "the prefetched segment");
  HandlerRegistry handlers;
  handlers.register_handler("GET", [&](Request& request) {
    request.reply_fd = UniqueFd(::open((dir / "passed").c_str(), O_RDONLY | O_CLOEXEC));
    return protocol::ok().set("handoff", "1");
  });
  boost::asio::io_context io;
  Server server(io, handlers, ServerSettings{dir / "wv.sock", 0600, std::nullopt, 1, 8},
                LiveSetting<ServerPolicy>([] { return ServerPolicy{{::geteuid()}, std::chrono::seconds(5)}; }));
  ASSERT_TRUE(server.listen());
  server.start();
  std::thread io_thread([&] { io.run(); });

  UniqueFd passed;
  auto answer = exchange(ClientOptions{dir / "wv.sock", 1000ms, 5000ms}, protocol::Message{"GET x", {}}, -1, &passed);
  UniqueFd none;
  auto plain = exchange(ClientOptions{dir / "wv.sock", 1000ms, 5000ms}, protocol::Message{"PING", {}}, -1, &none);
  boost::asio::post(io, [&] { server.drain([&] { io.stop(); }); });
  io_thread.join();

  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_EQ(answer->field("handoff"), std::optional<std::string_view>("1"));
  ASSERT_TRUE(passed);
  char text[64] = {};
  EXPECT_EQ(::pread(passed.get(), text, sizeof text - 1, 0), 22);
  EXPECT_STREQ(text, "the prefetched segment");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->line.substr(0, 3), "ERR") << "no PING handler registered here";
  EXPECT_FALSE(none) << "an answer without a descriptor passes none";
}

}  // namespace
}  // namespace walvault
