#pragma once
// The outcome of `walvault drill` (DRILL-RESULT): the last drill and the last successful one,
// kept in drill.json next to the index (written durably), shown by status and the metrics.
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/base/error.hpp"
#include "common/base/protocol.hpp"

namespace walvault {

struct DrillSummary {
  std::optional<std::int64_t> last_success_us;  // finished_at of the last successful drill
  std::optional<double> last_success_rto_seconds;
  std::optional<double> last_success_rpo_seconds;
  std::optional<bool> last_ok;                  // the last drill, successful or not
  std::optional<std::int64_t> last_finished_us;
};

class DrillRecord {
 public:
  // Reads `path` when it exists; a damaged file is logged and starts empty (it is a record of
  // drills, not of data: the next drill writes it anew).
  explicit DrillRecord(std::string path);

  // A DRILL-RESULT request: fields as docs/protocol.md lists them. Refuses a malformed one.
  Result<void> record(const protocol::Message& request);
  // {"last": {...} | null, "last_success": {...} | null}
  nlohmann::ordered_json document() const;
  DrillSummary summary() const;

 private:
  std::string m_path;
  mutable std::mutex m_mutex;  // m_document
  std::mutex m_write_mutex;    // record(): one durable write at a time
  nlohmann::ordered_json m_document;
};

}  // namespace walvault
