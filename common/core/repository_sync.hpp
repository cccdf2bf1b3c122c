#pragma once
// Several repositories kept alike: what each lacks of what the others hold (check's per-
// repository lines), and the copy that fills it (`walvault sync`). Objects are copied as they
// are stored (no re-encoding) and proven in the repository they were copied into before they
// count; nothing is ever overwritten: the same key with another size in two repositories is
// reported, never "fixed".
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/repository.hpp"

namespace walvault {
class Index;
}

namespace walvault {

struct MemberState {
  std::string repository;                  // where, safe to print
  std::optional<std::string> error;        // it could not be listed: nothing else is known
  std::optional<std::string> write_block;  // closed for writes, and why
  std::uint64_t objects = 0;               // it holds (wal/ and backup/)
  std::vector<std::string> missing;        // keys another repository holds and it lacks
  std::vector<std::string> differing;      // keys it holds with another size than the first holder
};

struct MemberComparison {
  std::vector<MemberState> members;  // in configuration order
  std::set<std::string> present;     // every key some repository that could be listed holds
};

// Lists every repository (an admin call, never the hot path).
MemberComparison compare_members(Repository& repository);

struct MemberSync {
  std::string repository;
  std::uint64_t copied = 0;
  std::uint64_t copied_bytes = 0;
  std::vector<std::string> failed;     // "key: why"
  std::vector<std::string> differing;  // left alone
  bool identity_written = false;       // it had none (new or rebuilt) and was opened for writes
  std::optional<std::string> error;    // it could not be listed, or stays closed for writes: why
};

// Copies into each repository what another holds and it lacks (not WAL the index records as
// pruned: a removal that failed in one repository is not undone in the others), then, only
// when the repository is proven complete, gives one closed for writes the others' identity and
// opens it. `progress` gets one short line now and then. `index` may be null (tests).
std::vector<MemberSync> sync_members(Repository& repository, Index* index, const std::function<void(const std::string&)>& progress);

}  // namespace walvault
