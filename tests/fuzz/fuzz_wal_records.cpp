// Fuzz target: the WAL record walker (scan_segment), which indexes every archived segment by
// the commit times it holds. Input: [u16 little-endian carry length][carry][segment start].
// The segment start is laid into a 1 MiB segment of zeros (PostgreSQL's smallest segment size,
// written into the long page header so the sizes agree; the page header fuzzer covers other
// sizes), so records, page crossings, continuation records and carries are all reachable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "common/core/wal_records.hpp"

namespace {
constexpr std::size_t k_segment_size = 1u << 20;
constexpr std::size_t k_seg_size_offset = 32;  // XLogLongPageHeaderData.xlp_seg_size
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t carry_size = std::min<std::size_t>(static_cast<std::size_t>(data[0] | (data[1] << 8)), size - 2);
  const auto* carry = reinterpret_cast<const std::byte*>(data + 2);
  const std::uint8_t* start = data + 2 + carry_size;
  const std::size_t start_size = std::min(size - 2 - carry_size, k_segment_size);

  static std::vector<std::byte> segment(k_segment_size);
  std::memset(segment.data(), 0, segment.size());
  std::memcpy(segment.data(), start, start_size);
  if (start_size >= k_seg_size_offset + 4) {
    const std::uint32_t seg_size = k_segment_size;
    std::memcpy(segment.data() + k_seg_size_offset, &seg_size, sizeof seg_size);
  }
  std::uint64_t page_address = 0;
  if (start_size >= 16) std::memcpy(&page_address, start + 8, sizeof page_address);

  std::size_t events = 0;
  auto scan = walvault::scan_segment(segment, std::span<const std::byte>(carry, carry_size), page_address - carry_size,
                                     "000000010000000000000001", [&](const walvault::XactEvent&) { ++events; });
  if (scan) {
    // What the walker reports must describe the input it was given.
    if (scan->xact_records != events || scan->xact_records > scan->records) std::abort();
    if (scan->carry.size() > walvault::k_max_carried_record) std::abort();
  }
  return 0;
}
