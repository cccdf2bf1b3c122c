#pragma once
// A WAL segment's first (long) page header, XLogLongPageHeaderData, and the checks walvault
// makes before it accepts a segment or hands one back.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/timeline_history.hpp"

namespace walvault {

inline constexpr std::size_t k_long_page_header_size = 40;
inline constexpr std::uint16_t k_xlp_long_header = 0x0002;

struct WalPageHeader {
  std::uint16_t magic = 0;
  std::uint16_t info = 0;
  std::uint32_t timeline = 0;
  std::uint64_t page_address = 0;
  std::uint32_t remaining_length = 0;
  std::uint64_t system_identifier = 0;
  std::uint32_t segment_size = 0;
  std::uint32_t block_size = 0;
};

// The PostgreSQL major version (12..17) whose WAL carries `magic`, or nullopt.
std::optional<int> postgres_version_for_wal_magic(std::uint16_t magic);

// Decodes the first 40 bytes (little-endian, as PostgreSQL writes them on x86/ARM).
Result<WalPageHeader> read_long_page_header(std::span<const std::byte> content, std::string_view file_name);

struct SegmentExpectations {
  std::optional<std::uint64_t> system_identifier;  // the repository's, once fixed
  // History of the name's timeline, when the header's timeline differs from the name's.
  const std::vector<TimelineHistoryEntry>* history = nullptr;
};

// The sanity of a long page header and the file it heads: known magic, long header flag,
// valid segment and block sizes, and `file_size` equal to the header's segment size.
// ErrorKind::refused with the bare cause; callers name the file.
Result<void> check_long_header(const WalPageHeader& header, std::uint64_t file_size);

// Everything DESIGN.md demands of a segment or .partial file: check_long_header, page address
// == the address its name says, timeline == the name's or an ancestor that switched inside
// this segment, system identifier == expected. `first_page` needs only the first 40 bytes,
// so content that is still streaming can be checked. Errors are ErrorKind::refused and name
// the file and the cause.
Result<WalPageHeader> check_segment(std::span<const std::byte> first_page, std::uint64_t file_size, const WalName& name,
                                    std::string_view file_name, const SegmentExpectations& expect);
inline Result<WalPageHeader> check_segment(std::span<const std::byte> content, const WalName& name,
                                           std::string_view file_name, const SegmentExpectations& expect) {
  return check_segment(content, content.size(), name, file_name, expect);
}

}  // namespace walvault
