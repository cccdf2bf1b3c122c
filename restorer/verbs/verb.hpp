#pragma once
// The admin verbs as modules, one file each. A verb computes its model, the JSON document
// whose keys docs/cli.md lists (the contract tools read), and renders the text for people from
// that model alone, so the two renderings cannot tell different stories. Admin
// (restorer/admin.cpp) gives each what it needs and serves it through the one document
// responder (common/core/document).
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/base/protocol.hpp"
#include "common/core/document.hpp"
#include "common/core/index.hpp"
#include "common/core/indexer.hpp"
#include "common/core/repository.hpp"

namespace walvault {

// check's limits; the daemon's configuration gives the defaults, a request may name others.
struct CheckThresholds {
  std::int64_t max_wal_age_us = 3600LL * 1000000;
  std::int64_t max_backup_age_us = 48LL * 3600 * 1000000;
  double max_disk_usage = 0.80;
};

// What retention says: a problem makes check's retention line fail; the window start is where
// check and verify begin to require continuous WAL (older WAL is pruned on purpose, apart
// from each kept backup's own start..stop).
struct RetentionView {
  std::optional<std::string> problem;
  std::optional<std::uint64_t> window_start_lsn;
};

// What every verb reads.
struct VerbSources {
  Repository& repository;
  Index& index;
};

// A text renderer: the model in, the document for people out.
using TextRenderer = std::string (*)(const nlohmann::ordered_json& model);

// A verb's output from its model: the text is rendered from it; exit 1 carries `reason`.
AdminOutput from_model(nlohmann::ordered_json model, TextRenderer render_text, int exit_code = 0, std::string reason = "");

AdminOutput status_verb(const VerbSources& sources, const CheckThresholds& thresholds, nlohmann::ordered_json daemon_state);
AdminOutput list_verb(const VerbSources& sources, const protocol::Message& request);
AdminOutput timelines_verb(const VerbSources& sources);
// `retention`: nullopt when no retention probe is installed (no retention line).
AdminOutput check_verb(const VerbSources& sources, const protocol::Message& request, CheckThresholds thresholds,
                       const std::optional<RetentionView>& retention);
AdminOutput verify_verb(const VerbSources& sources, int progress_fd, const RetentionView& retention);
AdminOutput plan_verb(const VerbSources& sources, const protocol::Message& request);
AdminOutput reindex_verb(Indexer& indexer);
AdminOutput sync_verb(const VerbSources& sources, int progress_fd);
AdminOutput rekey_verb(const VerbSources& sources, int progress_fd);

}  // namespace walvault
