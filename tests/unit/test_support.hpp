#pragma once
// Helpers shared by the unit tests: temporary directories, crafted WAL segments, small file
// and process utilities. Header-only so the glob over tests/unit/*.cpp stays one-per-module.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/fd.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/repository.hpp"

namespace walvault {

// Tests craft damage (garbage objects, objects of the old format) below the object layer,
// which no module of walvault may do.
struct RepositoryTestPeer {
  static Storage& storage(Repository& repository) { return repository.m_objects.backend(); }
};

}  // namespace walvault

namespace walvault::test {

inline Storage& raw_storage(Repository& repository) { return RepositoryTestPeer::storage(repository); }

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view tag = "walvault-test") {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + std::string(tag) + ".XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!::mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    m_path = buffer.data();
  }
  ~TempDir() { remove_tree(m_path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return m_path; }
  std::string operator/(std::string_view child) const { return m_path + "/" + std::string(child); }

  static void remove_tree(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
      if (DIR* dir = ::opendir(path.c_str())) {
        while (dirent* entry = ::readdir(dir)) {
          const std::string name = entry->d_name;
          if (name == "." || name == "..") continue;
          remove_tree(path + "/" + name);
        }
        ::closedir(dir);
      }
      ::rmdir(path.c_str());
    } else {
      ::unlink(path.c_str());
    }
  }

 private:
  std::string m_path;
};

// Every path below `root` (files and directories), relative to it, recursively.
inline std::vector<std::string> walk_tree(const std::string& root, const std::string& prefix = "") {
  std::vector<std::string> out;
  const std::string dir_path = prefix.empty() ? root : root + "/" + prefix;
  DIR* dir = ::opendir(dir_path.c_str());
  if (!dir) return out;
  while (dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    const std::string rel = prefix.empty() ? name : prefix + "/" + name;
    out.push_back(rel);
    struct stat st {};
    if (::lstat((root + "/" + rel).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      auto below = walk_tree(root, rel);
      out.insert(out.end(), below.begin(), below.end());
    }
  }
  ::closedir(dir);
  return out;
}

// Paths below `root` that look like leftovers of an unfinished durable write.
inline std::vector<std::string> temp_files_below(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& path : walk_tree(root))
    if (path.find(".tmp.") != std::string::npos) out.push_back(path);
  return out;
}

inline void write_text_file(const std::string& path, std::string_view text) {
  auto r = write_file_durable(path, as_bytes(text), true, 0644);
  if (!r) throw std::runtime_error(r.error().message);
}

inline void write_bytes_file(const std::string& path, std::span<const std::byte> data) {
  auto r = write_file_durable(path, data, true, 0644);
  if (!r) throw std::runtime_error(r.error().message);
}

inline std::vector<std::byte> read_bytes_file(const std::string& path) {
  auto r = read_file(path);
  if (!r) throw std::runtime_error(r.error().message);
  return *r;
}

inline std::vector<std::byte> bytes_of(std::string_view text) {
  auto span = as_bytes(text);
  return {span.begin(), span.end()};
}

// Runs a shell command, returning its standard output, or nullopt when it exits non-zero.
inline std::optional<std::string> run_command(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::string output;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  if (status != 0) return std::nullopt;
  return output;
}

template <typename T>
void store_le(std::vector<std::byte>& out, std::size_t offset, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out[offset + i] = static_cast<std::byte>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFFu);
}

inline constexpr std::uint64_t k_test_system_identifier = 7312345678901234567ULL;
inline constexpr std::uint64_t k_mib = 1ULL << 20;

struct SegmentSpec {
  std::uint16_t magic = 0xD110;  // PostgreSQL 15
  std::uint16_t info = 0x0002;   // XLP_LONG_HEADER
  std::optional<std::uint32_t> header_timeline;  // the name's by default
  std::optional<std::uint64_t> page_address;     // the name's start LSN by default
  std::uint64_t system_identifier = k_test_system_identifier;
  std::uint32_t block_size = 8192;
  std::uint8_t fill = 0;  // seeds the body bytes, so two fixtures can differ in content

  SegmentSpec& with_magic(std::uint16_t value) { magic = value; return *this; }
  SegmentSpec& with_info(std::uint16_t value) { info = value; return *this; }
  SegmentSpec& with_header_timeline(std::uint32_t value) { header_timeline = value; return *this; }
  SegmentSpec& with_page_address(std::uint64_t value) { page_address = value; return *this; }
  SegmentSpec& with_system_identifier(std::uint64_t value) { system_identifier = value; return *this; }
  SegmentSpec& with_block_size(std::uint32_t value) { block_size = value; return *this; }
  SegmentSpec& with_fill(std::uint8_t value) { fill = value; return *this; }
};

// A segment of `segment_size` bytes whose first page is a correct XLogLongPageHeaderData
// for `name` (little-endian, as PostgreSQL writes it on x86).
inline std::vector<std::byte> make_segment(const WalName& name, std::uint64_t segment_size,
                                           const SegmentSpec& spec = {}) {
  std::vector<std::byte> out(static_cast<std::size_t>(segment_size));
  store_le<std::uint16_t>(out, 0, spec.magic);
  store_le<std::uint16_t>(out, 2, spec.info);
  store_le<std::uint32_t>(out, 4, spec.header_timeline.value_or(name.timeline));
  const std::uint64_t address =
      spec.page_address.value_or(is_valid_segment_size(segment_size) ? segment_start_lsn(name, segment_size) : 0);
  store_le<std::uint64_t>(out, 8, address);
  store_le<std::uint32_t>(out, 16, 0);  // xlp_rem_len
  store_le<std::uint64_t>(out, 24, spec.system_identifier);
  store_le<std::uint32_t>(out, 32, static_cast<std::uint32_t>(segment_size));
  store_le<std::uint32_t>(out, 36, spec.block_size);
  // A little record-like content after the header, cheap to compress, distinct per fill.
  for (std::size_t i = 40; i < out.size() && i < 40 + 4096; ++i)
    out[i] = static_cast<std::byte>((i * 31 + spec.fill) & 0xFF);
  return out;
}

inline WalName segment_name(std::uint32_t timeline, std::uint32_t log, std::uint32_t seg) {
  return WalName{WalFileKind::segment, timeline, log, seg, 0};
}

}  // namespace walvault::test
