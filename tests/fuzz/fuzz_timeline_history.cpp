// Fuzz target: a timeline .history file as it comes from the repository or from PostgreSQL.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/core/timeline_history.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint32_t timeline = data[0];  // the timeline the file claims to describe
  const std::string_view content(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)walvault::parse_timeline_history(content, timeline, "fuzz.history");
  return 0;
}
