#include "common/base/path_access.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "common/base/error.hpp"

namespace walvault {

namespace {

std::string user_name(uid_t uid) {
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) == 0 && found) return found->pw_name;
  return std::to_string(uid);
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The permission class the kernel picks for `who` on a file owned by st_uid:st_gid.
bool permitted(const UserIdentity& who, const struct stat& st, mode_t owner_bit, mode_t group_bit, mode_t other_bit) {
  if (who.uid == 0) return true;  // root passes (search on a directory needs no bit for root either)
  if (st.st_uid == who.uid) return (st.st_mode & owner_bit) != 0;
  if (std::find(who.groups.begin(), who.groups.end(), st.st_gid) != who.groups.end()) return (st.st_mode & group_bit) != 0;
  return (st.st_mode & other_bit) != 0;
}

}  // namespace

UserIdentity identity_of_uid(uid_t uid) {
  UserIdentity who;
  who.uid = uid;
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) != 0 || !found) return who;
  who.name = found->pw_name;
  who.home = found->pw_dir;
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  while (::getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count) < 0) groups.resize(static_cast<std::size_t>(count) + 16);
  groups.resize(static_cast<std::size_t>(count));
  who.groups.push_back(found->pw_gid);
  for (gid_t g : groups)
    if (g != found->pw_gid) who.groups.push_back(g);
  return who;
}

UserIdentity identity_of_process() {
  UserIdentity who;
  who.uid = ::geteuid();
  who.name = user_name(who.uid);
  if (who.name == std::to_string(who.uid)) who.name.clear();
  who.groups.push_back(::getegid());
  const int count = ::getgroups(0, nullptr);
  if (count > 0) {
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    const int got = ::getgroups(count, groups.data());
    for (int i = 0; i < got; ++i)
      if (groups[static_cast<std::size_t>(i)] != who.groups.front()) who.groups.push_back(groups[static_cast<std::size_t>(i)]);
  }
  return who;
}

std::string describe_user(const UserIdentity& who) {
  if (who.name.empty()) return "uid " + std::to_string(who.uid);
  return who.name + " (uid " + std::to_string(who.uid) + ")";
}

std::string group_name(gid_t gid) {
  std::vector<char> buffer(16384);
  group gr{};
  group* found = nullptr;
  if (::getgrgid_r(gid, &gr, buffer.data(), buffer.size(), &found) == 0 && found) return found->gr_name;
  return std::to_string(gid);
}

std::string describe_owner_and_mode(const struct stat& st) {
  return user_name(st.st_uid) + ":" + group_name(st.st_gid) + " " + octal_mode(st.st_mode);
}

std::optional<std::string> socket_access_problem(const UserIdentity& who, const std::string& socket_path) {
  if (socket_path.empty() || socket_path[0] != '/') return "the socket path '" + socket_path + "' is not absolute";
  // Every directory from "/" down to the socket's own.
  for (std::size_t slash = 0; slash != std::string::npos && slash < socket_path.size();
       slash = socket_path.find('/', slash + 1)) {
    const std::string dir = slash == 0 ? "/" : socket_path.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return os_error_text("inspect directory", dir, errno);
    if (!permitted(who, st, S_IXUSR, S_IXGRP, S_IXOTH))
      return "no search (x) permission on directory '" + dir + "' (" + describe_owner_and_mode(st) + ")";
  }
  struct stat st {};
  if (::stat(socket_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return os_error_text("inspect socket", socket_path, errno);
  }
  if (!permitted(who, st, S_IWUSR, S_IWGRP, S_IWOTH))
    return "no write permission on socket '" + socket_path + "' (" + describe_owner_and_mode(st) + ")";
  return std::nullopt;
}

}  // namespace walvault
