#include "common/base/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <string>

extern char** environ;

namespace walvault {

namespace {

// The inherited environment with `overrides` (NAME=VALUE) replacing entries of the same name.
// For a child that runs as another user only the locale, time zone and PATH are inherited: it
// must not see (in /proc/PID/environ) or use (PGPASSFILE, ...) what the daemon's user has.
std::vector<std::string> merged_environment(const std::vector<std::string>& overrides, bool other_user) {
  std::vector<std::string> out = overrides;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (other_user && name != "PATH" && name != "LANG" && name != "TZ" && !name.starts_with("LC_")) continue;
    const bool replaced = std::any_of(overrides.begin(), overrides.end(),
                                      [&](const std::string& o) { return o.compare(0, name.size() + 1, name + "=") == 0; });
    if (!replaced) out.push_back(entry);
  }
  return out;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// fork + exec for a child that changes its user: only async-signal-safe calls between the two
// (walvaultd has threads). An exec failure comes back through a close-on-exec pipe.
Result<pid_t> fork_as(const RunAs& who, char** argv, char** envp, int stdin_fd, int stdout_fd, int stderr_fd) {
  const long open_max = ::sysconf(_SC_OPEN_MAX);  // for the close() fallback (not callable after fork)
  const int fd_limit = open_max > 0 && open_max < (1 << 20) ? static_cast<int>(open_max) : (1 << 16);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return fail_os("create", "pipe", errno);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(report[0]);
    ::close(report[1]);
    return fail_os("fork for", argv[0], err);
  }
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    const int input = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY);
    int err = 0;
    if (input < 0 || ::dup2(input, STDIN_FILENO) < 0 || ::dup2(stdout_fd, STDOUT_FILENO) < 0 ||
        ::dup2(stderr_fd, STDERR_FILENO) < 0 || ::setgroups(who.groups.size(), who.groups.data()) != 0 ||
        ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
      err = errno;
    } else {
      // Everything else goes, except the report pipe (close-on-exec: it closes on success).
      const unsigned keep = static_cast<unsigned>(report[1]);
      if ((keep > 3 && ::close_range(3, keep - 1, 0) != 0) || ::close_range(keep + 1, ~0U, 0) != 0) {
        for (int fd = 3; fd < fd_limit; ++fd)  // kernels before 5.9
          if (fd != report[1]) ::close(fd);
      }
      ::execve(argv[0], argv, envp);
      err = errno;
    }
    (void)!::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(report[1]);
  int err = 0;
  ssize_t n;
  while ((n = ::read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return fail_os("run (as uid " + std::to_string(who.uid) + ")", argv[0], err);
  }
  return pid;
}

}  // namespace

Result<pid_t> spawn_process(const std::vector<std::string>& args, int stdout_fd, int stderr_fd, const SpawnOptions& options) {
  if (args.empty()) return fail(ErrorKind::internal, "spawn_process without a program");
  std::vector<std::string> copy = args;
  std::vector<char*> argv = pointers_to(copy);
  std::vector<std::string> environment = merged_environment(options.environment, options.run_as.has_value());
  std::vector<char*> envp = pointers_to(environment);
  if (options.run_as) return fork_as(*options.run_as, argv.data(), envp.data(), options.stdin_fd, stdout_fd, stderr_fd);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (options.stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, options.stdin_fd, STDIN_FILENO);
  else posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  short flags = POSIX_SPAWN_SETSIGDEF;
  if (options.new_process_group) {
    posix_spawnattr_setpgroup(&attr, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(&attr, flags);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, copy.front().c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return fail_os("run", copy.front(), rc);
  return pid;
}

int wait_process(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string read_to_end(int fd, std::size_t limit) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < limit) out.append(buf, std::min(static_cast<std::size_t>(n), limit - out.size()));
  }
  return out;
}

bool ProgramRun::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

Result<ProgramRun> run_program(const std::vector<std::string>& argv, const SpawnOptions& options, std::size_t limit) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_os("create", "pipe", errno);
  auto pid = spawn_process(argv, fds[1], fds[1], options);
  ::close(fds[1]);
  if (!pid) {
    ::close(fds[0]);
    return std::unexpected(pid.error());
  }
  ProgramRun run;
  run.output = read_to_end(fds[0], limit);
  ::close(fds[0]);
  run.status = wait_process(*pid);
  return run;
}

std::string executable_directory() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return "";
  path[n] = '\0';
  const std::string_view text(path, static_cast<std::size_t>(n));
  const auto slash = text.rfind('/');
  return slash == std::string_view::npos ? "." : slash == 0 ? "/" : std::string(text.substr(0, slash));
}

}  // namespace walvault
