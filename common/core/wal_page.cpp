#include "common/core/wal_page.hpp"

#include <cstring>

#include "common/base/byte_order.hpp"

namespace walvault {

namespace {

struct MagicVersion {
  std::uint16_t magic;
  int version;
};
// XLOG_PAGE_MAGIC per major version (src/include/access/xlog_internal.h).
constexpr MagicVersion k_wal_magics[] = {
    {0xD101, 12}, {0xD106, 13}, {0xD10D, 14}, {0xD110, 15}, {0xD113, 16}, {0xD116, 17},
};

std::string hex(std::uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llX", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace

std::optional<int> postgres_version_for_wal_magic(std::uint16_t magic) {
  for (const auto& entry : k_wal_magics)
    if (entry.magic == magic) return entry.version;
  return std::nullopt;
}

Result<WalPageHeader> read_long_page_header(std::span<const std::byte> content, std::string_view file_name) {
  if (content.size() < k_long_page_header_size)
    return fail(ErrorKind::refused, "WAL file '" + std::string(file_name) + "' is too short (" +
                                        std::to_string(content.size()) + " bytes) to hold a page header");
  WalPageHeader header;
  header.magic = load_le<std::uint16_t>(content, 0);
  header.info = load_le<std::uint16_t>(content, 2);
  header.timeline = load_le<std::uint32_t>(content, 4);
  header.page_address = load_le<std::uint64_t>(content, 8);
  header.remaining_length = load_le<std::uint32_t>(content, 16);
  header.system_identifier = load_le<std::uint64_t>(content, 24);
  header.segment_size = load_le<std::uint32_t>(content, 32);
  header.block_size = load_le<std::uint32_t>(content, 36);
  return header;
}

Result<void> check_long_header(const WalPageHeader& header, std::uint64_t file_size) {
  auto why = [](std::string text) { return fail(ErrorKind::refused, std::move(text)); };
  if (!postgres_version_for_wal_magic(header.magic))
    return why("unknown WAL magic 0x" + hex(header.magic) + " (not a WAL file of PostgreSQL 12 to 17)");
  if (!(header.info & k_xlp_long_header)) return why("first page has no long header");
  if (!is_valid_segment_size(header.segment_size))
    return why("invalid segment size " + std::to_string(header.segment_size) + " in the page header");
  if (header.block_size < 1024 || header.block_size > 65536 || (header.block_size & (header.block_size - 1)) != 0)
    return why("invalid WAL block size " + std::to_string(header.block_size) + " in the page header");
  if (file_size != header.segment_size)
    return why("size is " + std::to_string(file_size) + " bytes but its header says segments are " +
               std::to_string(header.segment_size) + " bytes (torn or truncated copy?)");
  return {};
}

Result<WalPageHeader> check_segment(std::span<const std::byte> first_page, std::uint64_t file_size, const WalName& name,
                                    std::string_view file_name, const SegmentExpectations& expect) {
  auto refused = [&](const std::string& why) {
    return fail(ErrorKind::refused, "WAL file '" + std::string(file_name) + "' refused: " + why);
  };
  auto parsed = read_long_page_header(first_page, file_name);
  if (!parsed) return parsed;
  const WalPageHeader& header = *parsed;
  if (auto r = check_long_header(header, file_size); !r) return refused(r.error().message);
  if (!segment_fits_size(name, header.segment_size))
    return refused("name does not exist for " + std::to_string(header.segment_size >> 20) + " MiB segments");
  const std::uint64_t start = segment_start_lsn(name, header.segment_size);
  if (header.page_address != start)
    return refused("page address " + format_lsn(header.page_address) + " does not match the name's " +
                   format_lsn(start) + " (renamed or copied segment?)");

  if (header.timeline != name.timeline) {
    // After a promotion mid-segment the new timeline's first segment starts with a copy of
    // the old one, so its first page carries an ancestor's timeline that ended in this segment.
    if (header.timeline > name.timeline)
      return refused("page header timeline " + std::to_string(header.timeline) + " is newer than the name's " +
                     std::to_string(name.timeline));
    if (!expect.history)
      return refused("page header timeline " + std::to_string(header.timeline) + " differs from the name's " +
                     std::to_string(name.timeline) + " and that timeline's history file is not archived");
    bool ancestor_switched_here = false;
    for (const auto& entry : *expect.history)
      // Strictly inside: at a boundary PostgreSQL starts the new timeline's segment fresh,
      // with its own timeline in the header (XLogInitNewTimeline copies only a partial one).
      if (entry.parent == header.timeline && entry.switch_lsn > start && entry.switch_lsn < start + header.segment_size)
        ancestor_switched_here = true;
    if (!ancestor_switched_here)
      return refused("page header timeline " + std::to_string(header.timeline) + " is not an ancestor of timeline " +
                     std::to_string(name.timeline) + " that ended in this segment");
  }

  if (expect.system_identifier && header.system_identifier != *expect.system_identifier)
    return refused("system identifier " + std::to_string(header.system_identifier) +
                   " is not the repository's " + std::to_string(*expect.system_identifier) + " (WAL of another cluster)");
  return header;
}

}  // namespace walvault
