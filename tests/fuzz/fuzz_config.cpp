// Fuzz target: walvaultd's config file (`walvaultd --config FILE`, reloaded on SIGHUP): read,
// every option parsed and the whole configuration checked, as `walvaultd --check-config` does.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/core/config.hpp"

namespace {
char g_path[] = "/tmp/walvault-fuzz-config-XXXXXX";  // one file per fuzzing process, removed at exit

void make_file() {
  const int fd = ::mkstemp(g_path);
  if (fd < 0) std::abort();
  ::close(fd);
  std::atexit([] { ::unlink(g_path); });
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool made = (make_file(), true);
  (void)made;
  const int fd = ::open(g_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) std::abort();
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);

  walvault::DaemonCommandLine command_line;
  command_line.config_file = g_path;
  const walvault::GetEnv no_environment = [](const char*) -> const char* { return nullptr; };
  (void)walvault::resolve_config(command_line, no_environment);
  return 0;
}
