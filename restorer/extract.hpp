#pragma once
// Secure extraction of a base backup's tar stream into a data directory (libarchive).
// Every entry is checked before anything is written: no absolute paths, no ".." components,
// no symlink whose target leaves the data directory, no writing through a symlink, only
// regular files, directories and symlinks (hard links only to a checked path inside). Modes
// and modification times are kept; with `owner` set (running as root) everything is created
// owned by that uid/gid. An unsafe entry is ErrorKind::refused naming the entry and why, and
// nothing is written outside `root`.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/error.hpp"

namespace walvault {

struct ExtractOptions {
  std::string root;  // the data directory; must exist
  std::optional<uid_t> owner_uid;
  std::optional<gid_t> owner_gid;
  // Called now and then with the plain bytes of file content written since the last call.
  std::function<void(std::uint64_t bytes)> progress;
  std::string what;  // names the stream in errors, e.g. "backup 20261124T093001Z chunk 3"
};

struct ExtractStats {
  std::uint64_t entries = 0;
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;  // content bytes of regular files
};

// Reads a tar stream from `fd` (a pipe) up to its end-of-archive marker and extracts it.
Result<ExtractStats> extract_tar(int fd, const ExtractOptions& options);

// The lexical check applied to each entry, public for tests: `path` must be relative, with no
// "..", and normalise to something inside the root; for a symlink, `link_target` resolved
// from the link's directory must stay inside the root too. Returns why not, or nothing.
std::optional<std::string> unsafe_entry_reason(std::string_view path, std::optional<std::string_view> link_target);

}  // namespace walvault
