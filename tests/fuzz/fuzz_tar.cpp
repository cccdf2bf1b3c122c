// Fuzz target: extraction of a base backup's tar stream into a data directory (walvault
// restore). Input: the tar stream as the repository hands it over. Besides the sanitizers'
// findings, the target aborts if anything appears outside the data directory: an escape
// through "..", an absolute path, a symlink or a hard link is the finding that matters here.
#include <ftw.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "restorer/extract.hpp"

namespace {

char g_base[] = "/tmp/walvault-fuzz-tar-XXXXXX";  // holds only 1/2/3/root/ and the sentinel, always

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }
// Entries keep their tar modes: a directory of mode 0500 or 000 would keep its content (without
// root) and the next input would be blamed for it.
int open_up(const char* path, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_D) ::chmod(path, (st->st_mode & 07777) | S_IRWXU);
  return 0;
}

void remove_tree(const std::string& path) {
  ::nftw(path.c_str(), open_up, 16, FTW_PHYS);
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

// The data directory sits four levels down, so an escape of up to four ".." lands where it is
// seen: everything in the base directory outside root/ other than the path to it and the
// sentinel escaped.
std::string root_path() { return std::string(g_base) + "/1/2/3/root"; }

std::string g_escaped;
int note_escape(const char* path, const struct stat*, int, struct FTW*) {
  const std::string name = path, base = g_base, root = root_path();
  if (name == root || name.starts_with(root + "/")) return 0;
  for (const char* allowed : {"", "/1", "/1/2", "/1/2/3", "/sentinel"})
    if (name == base + allowed) return 0;
  g_escaped += name + " ";
  return 0;
}

std::string escaped_names() {
  g_escaped.clear();
  ::nftw(g_base, note_escape, 16, FTW_PHYS);
  return g_escaped;
}

void make_base() {
  if (!::mkdtemp(g_base)) std::abort();
  std::atexit([] { remove_tree(g_base); });
  for (const char* level : {"/1", "/1/2", "/1/2/3"})
    if (::mkdir((std::string(g_base) + level).c_str(), 0700) != 0) std::abort();
  const std::string sentinel = std::string(g_base) + "/sentinel";
  if (FILE* file = std::fopen(sentinel.c_str(), "w")) {
    std::fputs("must stay\n", file);
    std::fclose(file);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool made = (make_base(), true);
  (void)made;
  const std::string root = root_path();
  if (::mkdir(root.c_str(), 0700) != 0) std::abort();

  const int fd = ::memfd_create("fuzz-tar", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (size > 0 && ::write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  if (::lseek(fd, 0, SEEK_SET) != 0) std::abort();

  walvault::ExtractOptions options;
  options.root = root;
  options.what = "fuzz stream";
  (void)walvault::extract_tar(fd, options);
  ::close(fd);

  struct stat sentinel {};
  const std::string sentinel_path = std::string(g_base) + "/sentinel";
  const std::string escaped = escaped_names();
  if (!escaped.empty() || ::lstat(sentinel_path.c_str(), &sentinel) != 0 || !S_ISREG(sentinel.st_mode) ||
      sentinel.st_size != 10) {
    std::fprintf(stderr, "fuzz_tar: the extraction wrote outside %s: %s\n", root.c_str(), escaped.c_str());
    std::abort();
  }
  remove_tree(root);
  return 0;
}
