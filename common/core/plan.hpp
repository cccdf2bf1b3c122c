#pragma once
// Restore planning from the index alone: which base backup, which segments on which timelines,
// how many bytes, and whether the target can be reached with no gap. Pure functions over index
// rows, so every rule is unit-tested without a daemon.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/index.hpp"

namespace walvault {

struct PlanTarget {
  enum class Kind { end_of_wal, time, lsn, xid, name, immediate };
  Kind kind = Kind::end_of_wal;
  std::int64_t time_us = 0;
  std::uint64_t lsn = 0;
  std::string text;  // xid or restore point name
};

struct PlanRequest {
  PlanTarget target;
  std::optional<std::uint32_t> timeline;  // unset: latest
};

struct TimelineSpan {
  std::uint32_t timeline = 0;
  std::uint64_t first_segno = 0;
  std::uint64_t last_segno = 0;  // inclusive; first > last means the span needs no segment
};

struct Plan {
  bool reachable = false;
  std::string reason;  // why not, or a caveat when reachable
  std::uint32_t timeline = 0;
  std::uint64_t segment_size = 0;
  std::optional<IndexedBackup> backup;
  std::vector<TimelineSpan> spans;
  std::vector<std::string> segments;  // in replay order
  std::vector<std::string> missing;   // needed but not archived
  std::uint64_t bytes = 0;            // stored bytes of the segments
};

// Timelines from the root to `timeline`, oldest first, with the LSN each one begins at.
struct PathStep {
  std::uint32_t timeline = 0;
  std::uint64_t begin_lsn = 0;
};
Result<std::vector<PathStep>> timeline_path(std::uint32_t timeline, const std::vector<IndexedTimeline>& timelines);
// Which timeline's file PostgreSQL reads for `segno` when following `path`: the newest
// timeline on it that began at or before that segment (XLogFileReadAnyTLI).
std::uint32_t timeline_for_segment(const std::vector<PathStep>& path, std::uint64_t segno, std::uint64_t segment_size);
std::uint32_t latest_timeline(const std::vector<IndexedObject>& segments, const std::vector<IndexedTimeline>& timelines);

Plan make_plan(const PlanRequest& request, const std::vector<IndexedObject>& segments,
               const std::vector<IndexedTimeline>& timelines, const std::vector<IndexedBackup>& backups);

// Continuity along the path to `timeline` from `from_lsn` to the newest archived segment:
// the names of missing segments (empty when continuous).
std::vector<std::string> find_gaps(std::uint32_t timeline, std::uint64_t from_lsn, const std::vector<IndexedObject>& segments,
                                   const std::vector<IndexedTimeline>& timelines);

}  // namespace walvault
