#include "daemon/notifier.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>

#include "common/base/fd.hpp"
#include "common/base/process.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

namespace {

constexpr std::size_t k_output_kept = 2048;

// What a finished run said, for the log: its exit and the start of its output.
std::string ending_of(int status, const std::string& output) {
  std::string how = WIFEXITED(status) ? "exited " + std::to_string(WEXITSTATUS(status))
                    : WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                          : "ended";
  std::string said = output.substr(0, 300);
  for (char& c : said)
    if (c == '\n' || c == '\r') c = ' ';
  return said.empty() ? how : how + ": " + said;
}

}  // namespace

std::string Notifier::run_once(const NotifySettings& settings, const std::string& document) {
  int input[2], output[2];
  if (::pipe2(input, O_CLOEXEC) != 0) return os_error_text("create", "pipe", errno);
  UniqueFd input_read(input[0]), input_write(input[1]);
  if (::pipe2(output, O_CLOEXEC) != 0) return os_error_text("create", "pipe", errno);
  UniqueFd output_read(output[0]), output_write(output[1]);
  ::fcntl(output_read.get(), F_SETFL, O_NONBLOCK);  // ours only: the child writes as usual
  SpawnOptions options;
  options.stdin_fd = input_read.get();
  options.new_process_group = true;  // a timeout kills what the program started too (curl from a script)
  std::string event_type = "unknown";
  if (auto parsed = nlohmann::json::parse(document, nullptr, false); parsed.is_object() && parsed.contains("event"))
    event_type = parsed["event"].get<std::string>();
  options.environment.push_back("WALVAULT_EVENT=" + event_type);
  // The event goes into the pipe before the child exists: one event is far below a pipe's
  // 64 KiB, so this never waits, and a child that exits without reading cannot cause SIGPIPE.
  const std::string text = document + "\n";
  if (text.size() > 60000) return "event of " + std::to_string(text.size()) + " bytes is too large for notify-command";
  if (::write(input_write.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return os_error_text("write the event for", settings.command, errno);
  input_write.reset();
  auto pid = spawn_process({settings.command}, output_write.get(), output_write.get(), options);
  if (!pid) return pid.error().message;
  input_read.reset();
  output_write.reset();

  const auto deadline = std::chrono::steady_clock::now() + settings.timeout;
  std::string said;
  int status = 0;
  for (;;) {
    char buffer[1024];
    for (ssize_t n; (n = ::read(output_read.get(), buffer, sizeof buffer)) > 0;)
      if (said.size() < k_output_kept) said.append(buffer, static_cast<std::size_t>(n));
    const pid_t done = ::waitpid(*pid, &status, WNOHANG);
    if (done == *pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-*pid, SIGKILL);
      wait_process(*pid);
      return "did not finish within notify-timeout (" + std::to_string(settings.timeout.count()) + " s) and was killed";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  char buffer[1024];
  for (ssize_t n; (n = ::read(output_read.get(), buffer, sizeof buffer)) > 0;)
    if (said.size() < k_output_kept) said.append(buffer, static_cast<std::size_t>(n));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return ending_of(status, said);
}

Notifier::Notifier(std::function<NotifySettings()> settings) : m_settings(std::move(settings)), m_thread([this] { loop(); }) {}

Notifier::~Notifier() {
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
    m_queue.clear();
  }
  m_wake.notify_all();
  m_thread.join();
}

void Notifier::notify(nlohmann::ordered_json event) {
  if (m_settings().command.empty()) return;
  nlohmann::ordered_json document{{"event", event.value("event", "unknown")}, {"time", format_timestamp(now_unix_us())}, {"version", WALVAULT_VERSION}};
  for (auto& [key, value] : event.items())
    if (key != "event") document[key] = value;
  // A backup label or an error may hold bytes that are not UTF-8: replaced, never a throw.
  std::string text = document.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  {
    std::lock_guard lock(m_mutex);
    if (m_queue.size() >= k_queue_limit) {
      ++m_dropped;
      spdlog::warn("notify-command: {} events are waiting; event '{}' dropped", m_queue.size(), document["event"].get<std::string>());
      return;
    }
    m_queue.push_back(std::move(text));
  }
  m_wake.notify_one();
}

void Notifier::loop() {
  std::unique_lock lock(m_mutex);
  for (;;) {
    m_wake.wait(lock, [this] { return m_stop || !m_queue.empty(); });
    if (m_stop) return;
    std::string document = std::move(m_queue.front());
    m_queue.pop_front();
    m_running = true;
    lock.unlock();
    const NotifySettings settings = m_settings();
    const std::string problem = settings.command.empty() ? "" : run_once(settings, document);
    if (!problem.empty())
      spdlog::error("notify-command '{}' failed for event {}: {}", settings.command, document.substr(0, 120), problem);
    lock.lock();
    m_running = false;
    ++(problem.empty() ? m_sent : m_failed);
    if (m_queue.empty()) m_idle.notify_all();
  }
}

std::uint64_t Notifier::sent() const {
  std::lock_guard lock(m_mutex);
  return m_sent;
}
std::uint64_t Notifier::failed() const {
  std::lock_guard lock(m_mutex);
  return m_failed;
}
std::uint64_t Notifier::dropped() const {
  std::lock_guard lock(m_mutex);
  return m_dropped;
}

void Notifier::wait_idle() {
  std::unique_lock lock(m_mutex);
  m_idle.wait(lock, [this] { return m_queue.empty() && !m_running; });
}

ArchiveFailureWatch::Change ArchiveFailureWatch::update(std::uint64_t failed, std::uint64_t succeeded, std::int64_t now_us,
                                                        std::chrono::seconds after) {
  const bool new_failures = failed > m_failed, new_successes = succeeded > m_succeeded;
  m_failed = failed;
  m_succeeded = succeeded;
  if (new_successes) {
    // Any success ends the episode (PostgreSQL moved on to the next segment).
    const bool was_reported = m_reported;
    m_first_failure_us = 0;
    m_reported = false;
    if (!new_failures) return was_reported ? Change::recovered : Change::none;
    m_first_failure_us = now_us;  // failures after the success start a new one
    return was_reported ? Change::recovered : Change::none;
  }
  if (new_failures && !m_first_failure_us) m_first_failure_us = now_us;
  if (m_first_failure_us && !m_reported && now_us - m_first_failure_us >= std::chrono::microseconds(after).count()) {
    m_reported = true;
    return Change::failing;
  }
  return Change::none;
}

}  // namespace walvault
