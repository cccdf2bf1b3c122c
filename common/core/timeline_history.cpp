#include "common/core/timeline_history.hpp"

#include <cctype>
#include <cstdlib>

#include "common/base/wal_name.hpp"

namespace walvault {

Result<std::vector<TimelineHistoryEntry>> parse_timeline_history(std::string_view content, std::uint32_t timeline,
                                                                 std::string_view file_name) {
  std::vector<TimelineHistoryEntry> entries;
  std::size_t line_number = 0;
  auto bad_line = [&](const std::string& why) {
    return fail(ErrorKind::refused, "invalid timeline history file '" + std::string(file_name) + "' line " +
                                        std::to_string(line_number) + ": " + why);
  };
  while (!content.empty()) {
    ++line_number;
    auto newline = content.find('\n');
    std::string_view line = content.substr(0, newline);
    content.remove_prefix(newline == std::string_view::npos ? content.size() : newline + 1);

    std::size_t pos = 0;
    while (pos < line.size() && std::isspace(static_cast<unsigned char>(line[pos]))) ++pos;
    if (pos == line.size() || line[pos] == '#') continue;

    std::size_t tli_end = pos;
    while (tli_end < line.size() && std::isdigit(static_cast<unsigned char>(line[tli_end]))) ++tli_end;
    if (tli_end == pos || tli_end - pos > 10) return bad_line("expected a timeline number");
    const unsigned long long parent = std::strtoull(std::string(line.substr(pos, tli_end - pos)).c_str(), nullptr, 10);
    if (tli_end >= line.size() || !std::isspace(static_cast<unsigned char>(line[tli_end])))
      return bad_line("expected a switch LSN after the timeline number");
    pos = tli_end;
    while (pos < line.size() && std::isspace(static_cast<unsigned char>(line[pos]))) ++pos;
    std::size_t lsn_end = pos;
    while (lsn_end < line.size() && !std::isspace(static_cast<unsigned char>(line[lsn_end]))) ++lsn_end;
    auto lsn = parse_lsn(line.substr(pos, lsn_end - pos));
    if (!lsn) return bad_line("invalid switch LSN '" + std::string(line.substr(pos, lsn_end - pos)) + "'");
    pos = lsn_end;
    while (pos < line.size() && std::isspace(static_cast<unsigned char>(line[pos]))) ++pos;

    if (parent == 0 || parent >= timeline)
      return bad_line("parent timeline " + std::to_string(parent) + " is not below timeline " + std::to_string(timeline));
    if (!entries.empty() && parent <= entries.back().parent)
      return bad_line("timeline IDs must be in increasing sequence");
    if (!entries.empty() && *lsn < entries.back().switch_lsn)
      return bad_line("switch LSN goes backwards");
    entries.push_back({static_cast<std::uint32_t>(parent), *lsn, std::string(line.substr(pos))});
  }
  return entries;
}

}  // namespace walvault
