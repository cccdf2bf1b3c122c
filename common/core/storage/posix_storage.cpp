// Local-directory backend: every put is temp + fsync + rename/link + fsync of the directory.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <vector>
#include <cerrno>
#include <cstdlib>

#include "common/base/fd.hpp"
#include "common/core/storage/storage.hpp"

namespace walvault {

namespace {

class PosixObjectWriter final : public ObjectWriter {
 public:
  PosixObjectWriter(DurableFileWriter file, PutMode mode) : m_file(std::move(file)), m_mode(mode) {}
  Result<void> append(std::span<const std::byte> data) override { return m_file.append(data); }
  Result<void> commit() override { return m_file.commit(m_mode == PutMode::replace); }

 private:
  DurableFileWriter m_file;
  PutMode m_mode;
};

class PosixObjectReader final : public ObjectReader {
 public:
  PosixObjectReader(UniqueFd fd, std::string path, std::uint64_t size) : m_fd(std::move(fd)), m_path(std::move(path)), m_size(size) {}
  Result<std::size_t> read(std::span<std::byte> out) override {
    for (;;) {
      const ssize_t n = ::read(m_fd.get(), out.data(), out.size());
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return fail_os("read file", m_path, errno);
    }
  }
  Result<void> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset > m_size || out.size() > m_size - offset)
      return fail(ErrorKind::corrupt, "stored object '" + m_path + "' is shorter than " + std::to_string(offset + out.size()) + " bytes");
    return pread_exact(m_fd.get(), out, static_cast<off_t>(offset), m_path);
  }
  std::uint64_t size() const override { return m_size; }

 private:
  UniqueFd m_fd;
  std::string m_path;
  std::uint64_t m_size;
};

class PosixStorage final : public Storage {
 public:
  explicit PosixStorage(std::string root) : m_root(std::move(root)) {}

  std::string describe() const override { return m_root; }

  Result<void> put(const std::string& key, std::span<const std::byte> data, PutMode mode) override {
    auto path = path_for(key);
    if (!path) return std::unexpected(path.error());
    if (auto r = make_directories(parent_directory(*path)); !r) return r;
    return write_file_durable(*path, data, mode == PutMode::replace);
  }

  Result<void> sync(const std::string& key) override {
    auto path = path_for(key);
    if (!path) return std::unexpected(path.error());
    UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_os("open file", *path, errno);
    if (::fsync(fd.get()) != 0) return fail_os("sync file", *path, errno);
    // The directory chain too: make_directories syncs each parent once per process.
    if (auto r = make_directories(parent_directory(*path)); !r) return r;
    return fsync_directory(parent_directory(*path));
  }

  Result<std::optional<std::vector<std::byte>>> get(const std::string& key, std::optional<std::size_t> max_bytes) override {
    auto path = path_for(key);
    if (!path) return std::unexpected(path.error());
    auto file = open_regular(*path);
    if (!file) return std::unexpected(file.error());
    if (!*file) return std::optional<std::vector<std::byte>>();
    std::size_t size = static_cast<std::size_t>((*file)->size);
    if (max_bytes) size = std::min(size, *max_bytes);
    std::vector<std::byte> data(size);
    if (auto r = pread_exact((*file)->fd.get(), data, 0, *path); !r) return std::unexpected(r.error());
    return std::optional<std::vector<std::byte>>(std::move(data));
  }

  Result<bool> exists(const std::string& key) override {
    auto path = path_for(key);
    if (!path) return std::unexpected(path.error());
    struct stat st {};
    if (::stat(path->c_str(), &st) == 0) return true;
    if (is_absent(errno)) return false;
    return fail_os("stat file", *path, errno);
  }

  Result<std::unique_ptr<ObjectWriter>> create(const std::string& key, PutMode mode) override {
    auto path = path_for(key);
    if (!path) return std::unexpected(path.error());
    if (auto r = make_directories(parent_directory(*path)); !r) return std::unexpected(r.error());
    auto file = DurableFileWriter::create(*path);
    if (!file) return std::unexpected(file.error());
    return std::unique_ptr<ObjectWriter>(std::make_unique<PosixObjectWriter>(std::move(*file), mode));
  }

  Result<std::optional<std::unique_ptr<ObjectReader>>> open_read(const std::string& key) override {
    auto path = path_for(key);
    if (!path) return std::unexpected(path.error());
    auto file = open_regular(*path);
    if (!file) return std::unexpected(file.error());
    if (!*file) return std::optional<std::unique_ptr<ObjectReader>>();
    ::posix_fadvise((*file)->fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::optional<std::unique_ptr<ObjectReader>>(
        std::make_unique<PosixObjectReader>(std::move((*file)->fd), *path, (*file)->size));
  }

  Result<void> remove(const std::string& key) override {
    auto path = path_for(key);
    if (!path) return std::unexpected(path.error());
    if (::unlink(path->c_str()) != 0) {
      if (errno == ENOENT) return {};
      return fail_os("remove file", *path, errno);
    }
    return fsync_directory(parent_directory(*path));
  }

  Result<std::optional<Space>> space() override {
    struct statvfs vfs {};
    if (::statvfs(m_root.c_str(), &vfs) != 0) return fail_os("stat filesystem of", m_root, errno);
    return std::optional<Space>(Space{static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize,
                                      static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize});
  }

  Result<std::optional<ObjectInfo>> info(const std::string& key) override {
    auto path = path_for(key);
    if (!path) return std::unexpected(path.error());
    struct stat st {};
    if (::stat(path->c_str(), &st) != 0) {
      if (is_absent(errno)) return std::optional<ObjectInfo>();
      return fail_os("stat file", *path, errno);
    }
    return std::optional<ObjectInfo>(info_of(key, st));
  }

  Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) override {
    std::vector<ObjectInfo> objects;
    if (!prefix.empty() && !is_valid_storage_key(prefix))
      return fail(ErrorKind::invalid, "invalid storage prefix '" + prefix + "'");
    std::string dir = prefix.empty() ? m_root : m_root + "/" + prefix;
    if (auto r = walk(dir, prefix, objects); !r) return std::unexpected(r.error());
    std::sort(objects.begin(), objects.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return objects;
  }

  Result<std::vector<std::string>> list_children(const std::string& prefix) override {
    auto dir = path_for(prefix);
    if (!dir) return std::unexpected(dir.error());
    std::vector<std::string> names;
    DIR* handle = ::opendir(dir->c_str());
    if (!handle) {
      if (errno == ENOENT) return names;
      return fail_os("list directory", *dir, errno);
    }
    errno = 0;
    while (dirent* entry = ::readdir(handle)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    const int err = errno;
    ::closedir(handle);
    if (err != 0) return fail_os("list directory", *dir, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  Result<Removed> remove_all(const std::string& prefix) override {
    auto path = path_for(prefix);
    if (!path) return std::unexpected(path.error());
    Removed removed;
    if (auto r = remove_tree(*path, [](const std::string&) { return true; }, removed, true); !r) return std::unexpected(r.error());
    if (auto r = fsync_directory(parent_directory(*path)); !r) {
      struct stat st {};
      if (::stat(parent_directory(*path).c_str(), &st) == 0) return std::unexpected(r.error());  // not merely gone
    }
    return removed;
  }

  Result<Removed> remove_abandoned_writes() override {
    Removed removed;
    // <name>.tmp.<pid>.<n>: a live process other than us may still be writing it (a second
    // daemon misconfigured onto this repository): leave those.
    auto is_temp = [](const std::string& name) {
      const auto at = name.find(".tmp.");
      if (at == std::string::npos) return false;
      const long pid = std::strtol(name.c_str() + at + 5, nullptr, 10);
      return pid <= 0 || pid == ::getpid() || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
    };
    if (auto r = remove_tree(m_root, is_temp, removed, false); !r) return std::unexpected(r.error());
    return removed;
  }

 private:
  struct OpenFile {
    UniqueFd fd;
    std::uint64_t size = 0;
  };
  // ENOENT, or ENOTDIR for a key below a plain file: the key does not exist.
  static bool is_absent(int err) { return err == ENOENT || err == ENOTDIR; }

  // A stored object opened for reading (nullopt when absent); anything but a regular file
  // there is damage.
  static Result<std::optional<OpenFile>> open_regular(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (is_absent(errno)) return std::optional<OpenFile>();
      return fail_os("open file", path, errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail_os("stat file", path, errno);
    if (!S_ISREG(st.st_mode)) return fail(ErrorKind::corrupt, "stored object '" + path + "' is not a regular file");
    return std::optional<OpenFile>(OpenFile{std::move(fd), static_cast<std::uint64_t>(st.st_size)});
  }

  // Removes the files below `path` that `wanted` picks (by name), and, with `remove_dirs`, the
  // directories once empty, `path` included. Never follows symlinks.
  Result<void> remove_tree(const std::string& path, const std::function<bool(const std::string&)>& wanted, Removed& removed,
                           bool remove_dirs) {
    DIR* handle = ::opendir(path.c_str());
    if (!handle) {
      if (errno == ENOENT) return {};
      return fail_os("list directory", path, errno);
    }
    std::vector<std::pair<std::string, unsigned char>> entries;
    while (dirent* entry = ::readdir(handle)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") entries.emplace_back(name, entry->d_type);
    }
    ::closedir(handle);
    bool changed = false;
    for (const auto& [name, type] : entries) {
      const std::string child = path + "/" + name;
      // d_type spares a stat of every segment when only temp files are wanted (start-up).
      if (type != DT_DIR && type != DT_UNKNOWN && !wanted(name)) continue;
      struct stat st {};
      if (::lstat(child.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        if (auto r = remove_tree(child, wanted, removed, remove_dirs); !r) return r;
        continue;
      }
      if (!wanted(name)) continue;
      if (::unlink(child.c_str()) != 0 && errno != ENOENT) return fail_os("remove file", child, errno);
      ++removed.objects;
      removed.bytes += static_cast<std::uint64_t>(st.st_size);
      changed = true;
    }
    if (changed)
      if (auto r = fsync_directory(path); !r) return r;
    if (remove_dirs && path != m_root) {
      forget_directory(path);
      if (::rmdir(path.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY) return fail_os("remove directory", path, errno);
    }
    return {};
  }

  Result<std::string> path_for(const std::string& key) const {
    if (!is_valid_storage_key(key)) return fail(ErrorKind::invalid, "invalid storage key '" + key + "'");
    return m_root + "/" + key;
  }

  static ObjectInfo info_of(const std::string& key, const struct stat& st) {
    return ObjectInfo{key, static_cast<std::uint64_t>(st.st_size),
                      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000};
  }

  Result<void> walk(const std::string& dir, const std::string& key_prefix, std::vector<ObjectInfo>& objects) {
    DIR* handle = ::opendir(dir.c_str());
    if (!handle) {
      if (errno == ENOENT) return {};
      return fail_os("list directory", dir, errno);
    }
    Result<void> result;
    for (;;) {
      errno = 0;
      dirent* entry = ::readdir(handle);
      if (!entry) {
        // A listing cut short must not read as "these objects are gone" (repair would drop them).
        if (errno != 0) result = fail_os("list directory", dir, errno);
        break;
      }
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      if (name.find(".tmp.") != std::string::npos) continue;  // in-flight or crashed writes
      const std::string key = key_prefix.empty() ? name : key_prefix + "/" + name;
      const std::string path = dir + "/" + name;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // removed while we listed
        result = fail_os("stat file", path, errno);
        break;
      }
      if (S_ISDIR(st.st_mode)) {
        result = walk(path, key, objects);
        if (!result) break;
      } else if (S_ISREG(st.st_mode)) {
        objects.push_back(info_of(key, st));
      }
    }
    ::closedir(handle);
    return result;
  }

  std::string m_root;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_posix_storage(const std::string& root) {
  // A repository directory deleted since this process last opened it is made again (and then
  // found without its identity), not trusted from memory.
  forget_directory(root);
  if (auto r = make_directories(root); !r) return std::unexpected(r.error());
  // Prove up front that objects can be created here, so a read-only or foreign directory is
  // reported at start-up, not on the first push.
  const std::string probe = root + "/.walvault-write-test";
  UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fail_os("create file in repository", root, errno);
  fd.reset();
  ::unlink(probe.c_str());
  return std::unique_ptr<Storage>(std::make_unique<PosixStorage>(root));
}

}  // namespace walvault
