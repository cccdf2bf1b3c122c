// Fuzz target: the long page header at the start of a WAL segment handed to archive-push.
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/core/wal_page.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto header = walvault::read_long_page_header(bytes, "000000010000000000000001");
  if (header) (void)walvault::check_long_header(*header, size);
  return 0;
}
