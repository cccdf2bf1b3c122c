// Fuzz target: cron expressions (backup-schedule, drill-schedule, from the config file).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/core/cron.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)walvault::parse_cron(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
