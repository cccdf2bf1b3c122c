// SYNC: with several repositories, copy into each what another holds and it lacks (a
// repository that was down, emptied, or added later), proving every copy; a repository
// without an identity is opened for writes once it is complete. Exit 1 when anything could
// not be copied or a repository differs.
#include "common/core/client_output.hpp"
#include "common/core/repository_sync.hpp"
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

std::string sync_text(const json& m) {
  std::string text;
  if (m["repositories"].size() < 2) return "only one repository is configured: nothing to sync\n";
  for (const auto& r : m["repositories"]) {
    const std::string where = r["repository"].get<std::string>();
    if (!r["error"].is_null()) {
      text += "FAILED  " + where + ": " + r["error"].get<std::string>() + "\n";
      continue;
    }
    text += (r["failed"].empty() && r["differing"].empty() ? "ok      " : "FAILED  ") + where + ": copied " +
            r["copied"].dump() + " object(s), " + human_bytes(r["copied_bytes"].get<std::uint64_t>());
    if (r["identity_written"].get<bool>()) text += "; identity written, open for writes again";
    text += "\n";
    for (const auto& f : r["failed"]) text += "  not copied: " + f.get<std::string>() + "\n";
    for (const auto& d : r["differing"])
      text += "  differs from the first repository's copy (left alone; see 'walvault verify'): " + d.get<std::string>() + "\n";
  }
  return text;
}

}  // namespace

AdminOutput sync_verb(const VerbSources& sources, int progress_fd) {
  const auto results = sync_members(sources.repository, &sources.index, [&](const std::string& line) { write_progress(progress_fd, "\r" + line); });
  write_progress(progress_fd, "\n");
  json model{{"ok", true}, {"repositories", json::array()}};
  std::string reason;
  for (const auto& r : results) {
    const bool ok = !r.error && r.failed.empty() && r.differing.empty();
    if (!ok) {
      model["ok"] = false;
      reason += (reason.empty() ? "" : "; ") + r.repository + " not in sync";
    }
    model["repositories"].push_back(json{{"repository", r.repository},
                                         {"ok", ok},
                                         {"copied", r.copied},
                                         {"copied_bytes", r.copied_bytes},
                                         {"failed", r.failed},
                                         {"differing", r.differing},
                                         {"identity_written", r.identity_written},
                                         {"error", r.error ? json(*r.error) : json(nullptr)}});
  }
  const bool ok = model["ok"].get<bool>();
  return from_model(std::move(model), sync_text, ok ? 0 : 1, std::move(reason));
}

}  // namespace walvault
