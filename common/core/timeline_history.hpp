#pragma once
// PostgreSQL's TTTTTTTT.history files: one line per ancestor timeline,
//   <parent tli> <tab> <switch LSN X/X> <tab> <reason>
// with '#' comments and blank lines allowed (as readTimeLineHistory() accepts them).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"

namespace walvault {

struct TimelineHistoryEntry {
  std::uint32_t parent = 0;      // the timeline that ended
  std::uint64_t switch_lsn = 0;  // where it ended
  std::string reason;
};

// Parses the history of `timeline`. Errors name the file and the line: parents must increase,
// each below `timeline`, switch points must not decrease.
Result<std::vector<TimelineHistoryEntry>> parse_timeline_history(std::string_view content, std::uint32_t timeline,
                                                                 std::string_view file_name);

}  // namespace walvault
