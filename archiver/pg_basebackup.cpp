#include "archiver/pg_basebackup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

#include "common/base/process.hpp"

namespace walvault {

// Reads pg_basebackup's stderr: its -P lines ("  1234/56789 kB (2%), 0/1 tablespace") give
// the size estimate; the other lines are kept (the last few) to explain a failure.
class PgBasebackup::StderrReader {
 public:
  StderrReader(UniqueFd fd, std::function<void(std::uint64_t)> on_estimate)
      : m_fd(std::move(fd)), m_on_estimate(std::move(on_estimate)), m_thread([this] { loop(); }) {}
  ~StderrReader() {
    if (m_thread.joinable()) m_thread.join();
  }
  // After the child exited (its end of the pipe is closed): everything it said.
  std::string messages() {
    if (m_thread.joinable()) m_thread.join();
    std::string text;
    for (const auto& line : m_lines) text += (text.empty() ? "" : "; ") + line;
    return text;
  }

 private:
  void loop() {
    std::string pending;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(m_fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\r' || buf[i] == '\n') {
          take(pending);
          pending.clear();
        } else if (pending.size() < 4096) {
          pending += buf[i];
        }
      }
    }
    take(pending);
  }
  void take(const std::string& line) {
    if (line.find_first_not_of(' ') == std::string::npos) return;
    const auto slash = line.find('/');
    const auto kb = line.find(" kB");
    if (slash != std::string::npos && kb != std::string::npos && slash < kb) {
      const std::string total = line.substr(slash + 1, kb - slash - 1);
      if (!total.empty() && total.size() < 19 && total.find_first_not_of("0123456789") == std::string::npos) {
        m_on_estimate(std::stoull(total) * 1024);
        return;
      }
    }
    m_lines.push_back(line);
    if (m_lines.size() > 8) m_lines.pop_front();
  }

  UniqueFd m_fd;
  std::function<void(std::uint64_t)> m_on_estimate;
  std::deque<std::string> m_lines;
  std::thread m_thread;
};

Result<std::unique_ptr<PgBasebackup>> PgBasebackup::start(const PgBasebackupOptions& options,
                                                          std::function<void(std::uint64_t)> on_estimate) {
  const std::string program = options.bindir + "/pg_basebackup";
  if (::access(program.c_str(), X_OK) != 0)
    return fail(ErrorKind::invalid, os_error_text("run", program, errno) + " (set pg-bindir to PostgreSQL's bin directory)");
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail_os("create", "pipe", errno);
  UniqueFd out_read(out[0]), out_write(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return fail_os("create", "pipe", errno);
  UniqueFd err_read(err[0]), err_write(err[1]);

  std::vector<std::string> argv = {program};
  if (!options.connection.dbname.empty()) argv.push_back("--dbname=" + options.connection.dbname);  // never a password
  for (const char* arg : {"--pgdata=-", "--format=tar", "--wal-method=none", "--progress", "--no-password"}) argv.push_back(arg);
  argv.push_back("--checkpoint=" + options.checkpoint);
  argv.push_back("--label=" + options.label);
  auto pid = spawn_process(argv, out_write.get(), err_write.get(),
                           SpawnOptions{options.connection.environment, options.connection.run_as});
  if (!pid) return std::unexpected(pid.error());
  auto messages = std::make_unique<StderrReader>(std::move(err_read), std::move(on_estimate));
  return std::unique_ptr<PgBasebackup>(new PgBasebackup(*pid, std::move(out_read), std::move(messages)));
}

PgBasebackup::PgBasebackup(pid_t pid, UniqueFd out, std::unique_ptr<StderrReader> messages)
    : m_pid(pid), m_out(std::move(out)), m_messages(std::move(messages)) {}

PgBasebackup::~PgBasebackup() {
  terminate();
  m_out.reset();  // a child blocked writing the tar stream gets EPIPE
  collect(true);
}

void PgBasebackup::terminate() {
  std::lock_guard lock(m_mutex);
  if (!m_reaped) ::kill(m_pid, SIGTERM);
}

// The child is waited for without reaping it first (WNOWAIT) and marked reaped under the lock
// terminate() signals under: its pid can never be reused before terminate() stops using it.
bool PgBasebackup::collect(bool block) {
  {
    std::lock_guard lock(m_mutex);
    if (m_reaped) return true;
  }
  siginfo_t info{};
  int rc;
  while ((rc = ::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG))) < 0 &&
         errno == EINTR) {
  }
  if (rc < 0 || info.si_pid == 0) return false;
  {
    std::lock_guard lock(m_mutex);
    m_reaped = true;
  }
  m_status = wait_process(m_pid);
  return true;
}

Result<void> PgBasebackup::finish() {
  (void)read_to_end(m_out.get(), 0);  // the end-of-archive padding, so pg_basebackup never sees EPIPE
  collect(true);
  const std::string said = m_messages->messages();
  if (WIFEXITED(m_status) && WEXITSTATUS(m_status) == 0) return {};
  return fail(ErrorKind::io, "pg_basebackup " +
                                 (WIFEXITED(m_status) ? "exited with status " + std::to_string(WEXITSTATUS(m_status))
                                                      : "was killed by signal " + std::to_string(WTERMSIG(m_status))) +
                                 (said.empty() ? "" : ": " + said));
}

Failure PgBasebackup::explain(Failure ours) {
  bool exited_on_its_own = false;
  for (int i = 0; i < 20 && !exited_on_its_own; ++i) {
    if (collect(false)) exited_on_its_own = true;
    else std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!exited_on_its_own) {
    terminate();
    collect(true);
  }
  const std::string said = m_messages->messages();
  if (exited_on_its_own && WIFEXITED(m_status) && WEXITSTATUS(m_status) != 0)
    ours.message = "pg_basebackup exited with status " + std::to_string(WEXITSTATUS(m_status)) + (said.empty() ? "" : ": " + said) +
                   " (then: " + ours.message + ")";
  else if (exited_on_its_own && WIFSIGNALED(m_status))
    ours.message = "pg_basebackup was killed by signal " + std::to_string(WTERMSIG(m_status)) + " (then: " + ours.message + ")";
  else if (!said.empty())
    ours.message += " (pg_basebackup: " + said + ")";
  return ours;
}

}  // namespace walvault
