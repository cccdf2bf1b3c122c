#include "common/core/backup_label.hpp"

#include <charconv>
#include <optional>

#include "common/base/wal_name.hpp"

namespace walvault {

Result<BackupLabel> parse_backup_label(std::string_view text) {
  BackupLabel label;
  bool have_start = false, have_timeline = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    auto value_of = [&](std::string_view key) -> std::optional<std::string_view> {
      if (!line.starts_with(key)) return std::nullopt;
      std::string_view value = line.substr(key.size());
      return value.substr(0, value.find(' '));
    };
    if (auto v = value_of("START WAL LOCATION: ")) {
      if (auto lsn = parse_lsn(*v)) label.start_lsn = *lsn, have_start = true;
    } else if (auto c = value_of("CHECKPOINT LOCATION: ")) {
      if (auto lsn = parse_lsn(*c)) label.checkpoint_lsn = *lsn;
    } else if (auto from = value_of("BACKUP FROM: ")) {
      label.from_standby = *from == "standby";
    } else if (auto t = value_of("START TIMELINE: ")) {
      std::uint32_t timeline = 0;
      auto [end_of_number, ec] = std::from_chars(t->data(), t->data() + t->size(), timeline);
      have_timeline = ec == std::errc() && end_of_number == t->data() + t->size() && timeline != 0;
      label.timeline = have_timeline ? timeline : 0;
    }
  }
  if (!have_start || !have_timeline)
    return fail(ErrorKind::refused, "pg_basebackup's backup_label has no START WAL LOCATION or START TIMELINE line");
  return label;
}

}  // namespace walvault
