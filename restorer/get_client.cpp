#include "restorer/get_client.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <string>

#include "common/base/client_common.hpp"
#include "common/base/fd.hpp"
#include "common/base/wal_name.hpp"

namespace walvault {

namespace {

constexpr int k_exit_restored = 0;
constexpr int k_exit_not_found = 1;
// Above 125 PostgreSQL treats restore_command's failure as fatal (wait_result_is_any_signal).
constexpr int k_exit_fatal = 126;

const char* const k_usage =
    "Usage: archive-get [OPTIONS] NAME PATH\n\n"
    "Fetches one archived WAL file from walvaultd, verified, into PATH. Meant for PostgreSQL's\n"
    "restore_command:\n\n"
    "  restore_command = 'archive-get --socket /run/walvault/walvault.sock %f %p'\n\n"
    "PATH appears complete or not at all. Exit status:\n"
    "  0    PATH written, complete and verified\n"
    "  1    NAME is not in the archive (the normal end of WAL); also any failure in standby\n"
    "       mode (standby.signal in the current directory), so a standby retries or streams\n"
    "  126  any other failure (walvaultd unreachable, corrupt object, I/O error) during archive\n"
    "       recovery or PITR, so PostgreSQL stops instead of promoting on missing WAL\n\n";

struct Target {
  std::string path;
  int exit_on_failure;
};

int failed(const Target& target, const std::string& name, const std::string& cause) {
  std::fprintf(stderr, "archive-get: unable to restore '%s' to '%s': %s\n", name.c_str(), target.path.c_str(), cause.c_str());
  return target.exit_on_failure;
}

// Where the content is written before it gets its name: an unnamed file (O_TMPFILE) that
// vanishes if we die, else a named temp file next to PATH.
struct TempFile {
  UniqueFd fd;
  std::string named;  // set for the fallback; empty for O_TMPFILE

  ~TempFile() {
    if (!named.empty()) ::unlink(named.c_str());
  }
};

Result<void> open_temp(const std::string& path, TempFile& temp) {
  const std::string dir = parent_directory(path);
  temp.fd.reset(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (temp.fd) return {};
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return fail_os("create temporary file in", dir, errno);
  temp.named = path + ".walvault-" + std::to_string(::getpid()) + ".tmp";
  temp.fd.reset(::open(temp.named.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!temp.fd) {
    int err = errno;
    temp.named.clear();
    return fail_os("create file", path + ".walvault-*.tmp", err);
  }
  return {};
}

// Gives the finished temp file its name with one rename, so PATH is never partial.
Result<void> publish(const std::string& path, TempFile& temp) {
  if (temp.named.empty()) {
    // Not open_temp's fallback name: that may be the file still waiting to be published.
    const std::string linked = path + ".walvault-" + std::to_string(::getpid()) + ".link.tmp";
    const std::string proc = "/proc/self/fd/" + std::to_string(temp.fd.get());
    ::unlink(linked.c_str());
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, linked.c_str(), AT_SYMLINK_FOLLOW) != 0)
      return fail_os("link temporary file to", linked, errno);
    temp.named = linked;
  }
  if (::rename(temp.named.c_str(), path.c_str()) != 0) return fail_os("rename to", path, errno);
  temp.named.clear();
  return {};
}

// The file walvaultd passed with `handoff=1` is what it says: a regular file of the size sent.
Result<void> check_passed(const UniqueFd& passed, std::uint64_t expected) {
  if (!passed) return fail(ErrorKind::io, "walvaultd handed over a prefetched file but no descriptor arrived");
  struct stat st {};
  if (::fstat(passed.get(), &st) != 0) return fail_os("stat", "the file walvaultd passed", errno);
  if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != expected)
    return fail(ErrorKind::io, "the file walvaultd passed has " + std::to_string(st.st_size) + " bytes, not " + std::to_string(expected));
  return {};
}

}  // namespace

int run_archive_get(int argc, const char* const* argv) {
  // In standby mode a failure must look like "not there" so the standby retries or streams.
  const bool standby = ::access("standby.signal", F_OK) == 0;
  Target target{"", standby ? k_exit_not_found : k_exit_fatal};

  auto command_line = parse_client_command_line(argc, argv);
  if (!command_line) {
    std::fprintf(stderr, "archive-get: %s (see --help)\n", command_line.error().message.c_str());
    return target.exit_on_failure;
  }
  if (command_line->help) {
    std::fputs(k_usage, stdout);
    std::fputs(k_client_options_help, stdout);
    return k_exit_restored;
  }
  if (command_line->version) {
    std::printf("archive-get %s\n", WALVAULT_VERSION);
    return k_exit_restored;
  }
  if (command_line->positional.size() != 2) {
    std::fprintf(stderr, "archive-get: expected NAME and PATH (got %zu arguments); usage: archive-get [OPTIONS] NAME PATH\n",
                 command_line->positional.size());
    return target.exit_on_failure;
  }
  const std::string& name = command_line->positional[0];
  target.path = command_line->positional[1];
  if (!parse_wal_name(name))
    return failed(target, name.substr(0, 80), "not a WAL file name (segment, .history, .partial or .backup)");

  // pg_rewind asks for real names instead of RECOVERYXLOG: answer exactly what is stored.
  const bool recovery_path = target.path == "pg_wal/RECOVERYXLOG" || target.path == "pg_wal/RECOVERYHISTORY";
  TempFile temp;
  if (auto r = open_temp(target.path, temp); !r) return failed(target, name, r.error().message);
  // A segment walvaultd prefetched onto this filesystem may be passed back instead of copied
  // (handoff). If what arrives is unusable, the second request asks for a copy: walvaultd has
  // taken that file out of its spool, so the copy comes from the repository.
  for (int attempt = 0;; ++attempt) {
    protocol::Message request{"GET " + name, {}};
    request.set("mode", recovery_path ? "recovery" : "exact");
    if (recovery_path && attempt == 0) request.set("handoff", "1");
    UniqueFd passed;
    auto response = exchange(command_line->options, request, temp.fd.get(), &passed);
    if (!response) return failed(target, name, response.error().message);
    if (response->head() == "NOTFOUND") return k_exit_not_found;
    if (response->head() != "OK") {
      auto text = response->field("message");
      return failed(target, name, text ? std::string(*text) : response->line);
    }
    auto size_field = response->field("size");
    std::uint64_t expected = 0;
    if (!size_field || std::from_chars(size_field->data(), size_field->data() + size_field->size(), expected).ec != std::errc())
      return failed(target, name, "walvaultd's answer has no size");
    if (response->field("handoff") == std::optional<std::string_view>("1")) {
      if (auto r = check_passed(passed, expected); !r) {
        if (attempt > 0) return failed(target, name, r.error().message);
        std::fprintf(stderr, "archive-get: %s for '%s'; asking walvaultd for a copy instead\n", r.error().message.c_str(), name.c_str());
        continue;
      }
      // walvaultd checked its prefetched copy and passed it: give that very file the name PATH.
      TempFile handed{std::move(passed), {}};
      if (publish(target.path, handed)) return k_exit_restored;
      // Not linkable from here (another mount of the spool, another owner, walvaultd's own name
      // for it already gone): copy it instead.
      if (auto r = copy_whole_file(handed.fd.get(), temp.fd.get(), target.path); !r) return failed(target, name, r.error().message);
    }
    // walvaultd verified the content; check that all of it landed in our file.
    struct stat st {};
    if (::fstat(temp.fd.get(), &st) != 0) return failed(target, name, os_error_text("stat temporary file for", target.path, errno));
    if (static_cast<std::uint64_t>(st.st_size) != expected)
      return failed(target, name, "wrote " + std::to_string(st.st_size) + " bytes, walvaultd sent " + std::to_string(expected));
    if (auto r = publish(target.path, temp); !r) return failed(target, name, r.error().message);
    return k_exit_restored;
  }
}

}  // namespace walvault
