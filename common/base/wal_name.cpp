#include "common/base/wal_name.hpp"

#include <cstdio>

namespace walvault {

namespace {

bool is_upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

std::optional<std::uint32_t> parse_hex8(std::string_view text) {
  if (text.size() != 8) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : text) {
    if (!is_upper_hex(c)) return std::nullopt;
    value = value << 4 | static_cast<std::uint32_t>(c <= '9' ? c - '0' : c - 'A' + 10);
  }
  return value;
}

std::string hex8(std::uint32_t value) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08X", value);
  return buf;
}

std::optional<WalName> parse_segment_part(std::string_view text, WalFileKind kind) {
  if (text.size() != 24) return std::nullopt;
  auto tli = parse_hex8(text.substr(0, 8));
  auto log = parse_hex8(text.substr(8, 8));
  auto seg = parse_hex8(text.substr(16, 8));
  if (!tli || !log || !seg || *tli == 0) return std::nullopt;
  WalName name;
  name.kind = kind;
  name.timeline = *tli;
  name.log = *log;
  name.seg = *seg;
  return name;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::optional<WalName> parse_wal_name(std::string_view name) {
  if (name.size() > k_max_wal_name) return std::nullopt;
  if (name.size() == 24) return parse_segment_part(name, WalFileKind::segment);
  if (name.size() == 8 + 8 && ends_with(name, ".history")) {
    auto tli = parse_hex8(name.substr(0, 8));
    if (!tli || *tli == 0) return std::nullopt;
    WalName result;
    result.kind = WalFileKind::history;
    result.timeline = *tli;
    return result;
  }
  if (name.size() == 24 + 8 && ends_with(name, ".partial"))
    return parse_segment_part(name.substr(0, 24), WalFileKind::partial);
  if (name.size() == 24 + 1 + 8 + 7 && ends_with(name, ".backup") && name[24] == '.') {
    auto offset = parse_hex8(name.substr(25, 8));
    if (!offset) return std::nullopt;
    auto result = parse_segment_part(name.substr(0, 24), WalFileKind::backup);
    if (result) result->backup_offset = *offset;
    return result;
  }
  return std::nullopt;
}

std::optional<std::string> segment_part(const WalName& name) {
  if (name.kind == WalFileKind::history) return std::nullopt;
  return hex8(name.timeline) + hex8(name.log) + hex8(name.seg);
}

std::string format_wal_name(const WalName& name) {
  switch (name.kind) {
    case WalFileKind::segment: return *segment_part(name);
    case WalFileKind::history: return hex8(name.timeline) + ".history";
    case WalFileKind::partial: return *segment_part(name) + ".partial";
    case WalFileKind::backup: return *segment_part(name) + "." + hex8(name.backup_offset) + ".backup";
  }
  return {};
}

std::string_view to_string(WalFileKind kind) {
  switch (kind) {
    case WalFileKind::segment: return "segment";
    case WalFileKind::history: return "history";
    case WalFileKind::partial: return "partial";
    case WalFileKind::backup: return "backup";
  }
  return "unknown";
}

bool is_valid_segment_size(std::uint64_t segment_size) {
  return segment_size >= k_min_segment_size && segment_size <= k_max_segment_size &&
         (segment_size & (segment_size - 1)) == 0;
}

std::uint64_t segments_per_log(std::uint64_t segment_size) { return 0x100000000ULL / segment_size; }

bool segment_fits_size(const WalName& name, std::uint64_t segment_size) {
  return is_valid_segment_size(segment_size) && name.seg < segments_per_log(segment_size);
}

std::uint64_t segment_number(const WalName& name, std::uint64_t segment_size) {
  return static_cast<std::uint64_t>(name.log) * segments_per_log(segment_size) + name.seg;
}

WalName segment_from_number(std::uint32_t timeline, std::uint64_t segno, std::uint64_t segment_size) {
  const std::uint64_t per_log = segments_per_log(segment_size);
  WalName name;
  name.kind = WalFileKind::segment;
  name.timeline = timeline;
  name.log = static_cast<std::uint32_t>(segno / per_log);
  name.seg = static_cast<std::uint32_t>(segno % per_log);
  return name;
}

std::uint64_t segment_start_lsn(const WalName& name, std::uint64_t segment_size) {
  return segment_number(name, segment_size) * segment_size;
}

std::optional<WalName> next_segment(const WalName& name, std::uint64_t segment_size) {
  const std::uint64_t segno = segment_number(name, segment_size);
  const std::uint64_t last = UINT64_MAX / segment_size;  // segment holding LSN 0xFFFFFFFFFFFFFFFF
  if (segno >= last) return std::nullopt;
  return segment_from_number(name.timeline, segno + 1, segment_size);
}

std::optional<WalName> previous_segment(const WalName& name, std::uint64_t segment_size) {
  const std::uint64_t segno = segment_number(name, segment_size);
  if (segno == 0) return std::nullopt;
  return segment_from_number(name.timeline, segno - 1, segment_size);
}

std::string format_lsn(std::uint64_t lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xFFFFFFFFu));
  return buf;
}

std::optional<std::uint64_t> parse_lsn(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash > 8 || text.size() - slash - 1 == 0 ||
      text.size() - slash - 1 > 8)
    return std::nullopt;
  auto parse_part = [](std::string_view part) -> std::optional<std::uint64_t> {
    std::uint64_t value = 0;
    for (char c : part) {
      int digit;
      if (c >= '0' && c <= '9') digit = c - '0';
      else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      else return std::nullopt;
      value = value << 4 | static_cast<std::uint64_t>(digit);
    }
    return value;
  };
  auto high = parse_part(text.substr(0, slash));
  auto low = parse_part(text.substr(slash + 1));
  if (!high || !low) return std::nullopt;
  return *high << 32 | *low;
}

}  // namespace walvault
