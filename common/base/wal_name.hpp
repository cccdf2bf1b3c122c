#pragma once
// PostgreSQL's WAL file names, as pure functions (no I/O).
//   segment  TTTTTTTTXXXXXXXXYYYYYYYY        timeline, log id, segment within the log id
//   history  TTTTTTTT.history
//   partial  TTTTTTTTXXXXXXXXYYYYYYYY.partial
//   backup   TTTTTTTTXXXXXXXXYYYYYYYY.OOOOOOOO.backup   (OOOOOOOO: offset of the start LSN)
// Hex digits are upper case, as PostgreSQL writes them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace walvault {

enum class WalFileKind { segment, history, partial, backup };

inline constexpr std::size_t k_max_wal_name = 64;
inline constexpr std::uint64_t k_min_segment_size = 1ULL << 20;
inline constexpr std::uint64_t k_max_segment_size = 1ULL << 30;

struct WalName {
  WalFileKind kind{};
  std::uint32_t timeline = 0;
  std::uint32_t log = 0;            // high 32 bits of the segment's start LSN
  std::uint32_t seg = 0;            // segment within the log id
  std::uint32_t backup_offset = 0;  // backup only
  bool operator==(const WalName&) const = default;
};

// nullopt for anything that is not exactly one of the four forms (timeline 0 is refused).
std::optional<WalName> parse_wal_name(std::string_view name);
std::string format_wal_name(const WalName& name);
std::string_view to_string(WalFileKind kind);

// A segment size PostgreSQL accepts: a power of two from 1 MiB to 1 GiB.
bool is_valid_segment_size(std::uint64_t segment_size);
std::uint64_t segments_per_log(std::uint64_t segment_size);

// The 24-hex-digit part of segment-like names, or nullopt for history files.
std::optional<std::string> segment_part(const WalName& name);

// Segment number counted from LSN 0 (XLogSegNo), and back. Requires a valid size and, for
// the first, name.seg < segments_per_log(size).
bool segment_fits_size(const WalName& name, std::uint64_t segment_size);
std::uint64_t segment_number(const WalName& name, std::uint64_t segment_size);
WalName segment_from_number(std::uint32_t timeline, std::uint64_t segno, std::uint64_t segment_size);
std::uint64_t segment_start_lsn(const WalName& name, std::uint64_t segment_size);

// Neighbours on the same timeline; nullopt at the ends of the address space.
std::optional<WalName> next_segment(const WalName& name, std::uint64_t segment_size);
std::optional<WalName> previous_segment(const WalName& name, std::uint64_t segment_size);

// "X/X" as PostgreSQL prints an LSN, and its parser.
std::string format_lsn(std::uint64_t lsn);
std::optional<std::uint64_t> parse_lsn(std::string_view text);

}  // namespace walvault
