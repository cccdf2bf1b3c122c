#pragma once
// Can a given user reach a Unix socket? Answered from the permission bits of the socket and of
// every directory above it, the way the kernel checks them (owner, then group, then other; root
// passes). Used by walvaultd at start-up for each allowed uid, and by the clients to explain a
// "Permission denied" instead of just reporting it. POSIX ACLs are not read: a path an ACL
// opens up is reported as blocked (walvaultd then says which bits to change).
#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace walvault {

struct UserIdentity {
  uid_t uid = 0;
  std::string name;          // empty when the uid has no passwd entry
  std::string home;          // its home directory, from the same entry
  std::vector<gid_t> groups;  // primary group first, then supplementary groups
};

// From the user database (getpwuid + getgrouplist).
UserIdentity identity_of_uid(uid_t uid);
// This process: its effective uid and its actual groups (getegid + getgroups).
UserIdentity identity_of_process();

// "postgres (uid 114)" or "uid 5000".
std::string describe_user(const UserIdentity& who);
// "root:postgres 0660" (names where known, numbers otherwise).
std::string describe_owner_and_mode(const struct stat& st);
// A group name, or its number.
std::string group_name(gid_t gid);

// nullopt when `who` may connect to the socket at `socket_path` (search permission on every
// directory above it, write permission on the socket); otherwise what is missing, e.g.
// "no search (x) permission on directory '/run/walvault' (root:root 0700)". A socket that does
// not exist yet is judged by its directories alone.
std::optional<std::string> socket_access_problem(const UserIdentity& who, const std::string& socket_path);

}  // namespace walvault
