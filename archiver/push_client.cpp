#include "archiver/push_client.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "common/base/client_common.hpp"
#include "common/base/fd.hpp"
#include "common/base/wal_name.hpp"

namespace walvault {

namespace {

constexpr int k_exit_stored = 0;
constexpr int k_exit_failed = 1;

const char* const k_usage =
    "Usage: archive-push [OPTIONS] PATH\n\n"
    "Hands one WAL file to walvaultd, which checks it, compresses it and stores it durably.\n"
    "Meant for PostgreSQL's archive_command:\n\n"
    "  archive_command = 'archive-push --socket /run/walvault/walvault.sock %p'\n\n"
    "PATH is the file as PostgreSQL names it (%p, relative to the data directory). The file is\n"
    "opened here and its descriptor passed to walvaultd, so the daemon needs neither the path\n"
    "nor the permission to read it.\n\n"
    "Exit status: 0 when the file is stored durably (or was already stored with the same\n"
    "content); 1 otherwise, with one line on stderr naming the file and the cause, and\n"
    "PostgreSQL keeps the file and retries.\n\n";

int failed(const std::string& path, const std::string& cause) {
  std::fprintf(stderr, "archive-push: unable to archive '%s': %s\n", path.c_str(), cause.c_str());
  return k_exit_failed;
}

}  // namespace

int run_archive_push(int argc, const char* const* argv) {
  auto command_line = parse_client_command_line(argc, argv);
  if (!command_line) {
    std::fprintf(stderr, "archive-push: %s (see --help)\n", command_line.error().message.c_str());
    return k_exit_failed;
  }
  if (command_line->help) {
    std::fputs(k_usage, stdout);
    std::fputs(k_client_options_help, stdout);
    return k_exit_stored;
  }
  if (command_line->version) {
    std::printf("archive-push %s\n", WALVAULT_VERSION);
    return k_exit_stored;
  }
  if (command_line->positional.size() != 1) {
    std::fprintf(stderr, "archive-push: expected exactly one PATH (got %zu); usage: archive-push [OPTIONS] PATH\n",
                 command_line->positional.size());
    return k_exit_failed;
  }
  const std::string& path = command_line->positional[0];
  const std::string name(base_name(path));
  if (!parse_wal_name(name))
    return failed(path, "'" + name + "' is not a WAL file name (segment, .history, .partial or .backup)");

  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever (no
  // --timeout covers open()); for a regular file it changes nothing, and anything else is
  // refused right below.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return failed(path, os_error_text("open file", path, errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failed(path, os_error_text("stat file", path, errno));
  if (!S_ISREG(st.st_mode)) return failed(path, "not a regular file");

  protocol::Message request{"PUSH " + name, {}};
  auto response = exchange(command_line->options, request, fd.get());
  if (!response) return failed(path, response.error().message);
  if (response->head() == "OK") return k_exit_stored;
  auto text = response->field("message");
  return failed(path, text ? std::string(*text) : response->line);
}

}  // namespace walvault
