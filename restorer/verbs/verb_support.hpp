#pragma once
// Pieces several admin verbs share: number and time formatting of model fields, the JSON of
// a backup, request field parsing, and the WAL recovery needs but lacks (check and verify).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/protocol.hpp"
#include "common/core/index.hpp"
#include "restorer/verbs/verb.hpp"

namespace walvault::verbs {

using json = nlohmann::ordered_json;

double ratio(std::uint64_t plain, std::uint64_t stored);
// `value` with `digits` decimals ("%.*f").
std::string fixed(double value, int digits = 2);
// A timestamp for the model (null when unknown) and its text ("-" when null).
json optional_time(const std::optional<std::int64_t>& us);
std::string time_text(const json& model_time);
json backup_json(const IndexedBackup& backup);
json stored_backup_json(const StoredBackup& stored, bool with_chunks);
std::optional<std::uint32_t> field_u32(const protocol::Message& message, std::string_view key);
std::uint64_t segno_of(const std::string& name, std::uint64_t segment_size);

// Encryption as status and check show it: the keys walvaultd holds (`key_id`, `old_key_ids`)
// and the indexed WAL objects by the key that encrypts them (`objects_by_key_id`: "none" for
// plain, a key id, "unknown" for rows indexed before walvault recorded it).
Result<json> encryption_json(Repository& repository, Index& index);

// Segments recovery needs that are missing: from the window start (else the oldest backup's
// start, else the oldest segment) to the newest segment along the path to the newest
// timeline, and every backup's own start..stop. Also returns where continuity starts.
std::vector<std::string> required_gaps(const std::vector<IndexedObject>& segments, const std::vector<IndexedTimeline>& timelines,
                                       const std::vector<IndexedBackup>& backups, const RetentionView& view,
                                       std::uint64_t& from_lsn);

}  // namespace walvault::verbs
