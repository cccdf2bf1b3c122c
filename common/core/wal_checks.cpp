#include "common/core/wal_checks.hpp"

#include "common/base/fd.hpp"
#include "common/core/backup_file.hpp"
#include "common/core/object_store.hpp"

namespace walvault {

Result<std::optional<std::vector<TimelineHistoryEntry>>> load_timeline_history(Repository& repository, std::uint32_t timeline) {
  WalName history{WalFileKind::history, timeline, 0, 0, 0};
  const std::string key = object_key(history);
  auto opened = repository.objects().read(key);
  if (!opened) return std::unexpected(opened.error());
  if (!*opened) return std::optional<std::vector<TimelineHistoryEntry>>();
  auto parsed = parse_timeline_history(as_text((*opened)->plain), timeline, format_wal_name(history));
  if (!parsed) return std::unexpected(parsed.error());
  return std::optional<std::vector<TimelineHistoryEntry>>(std::move(*parsed));
}

Result<WalPageHeader> check_segment_header(Repository& repository, std::span<const std::byte> first_page,
                                           std::uint64_t file_size, const WalName& name, std::string_view file_name) {
  SegmentExpectations expect;
  expect.system_identifier = repository.system_identifier();
  std::vector<TimelineHistoryEntry> history;
  auto header = read_long_page_header(first_page, file_name);
  if (!header) return header;
  if (header->timeline < name.timeline) {
    auto loaded = load_timeline_history(repository, name.timeline);
    if (!loaded) return std::unexpected(loaded.error());
    if (*loaded) {  // without the history, check_segment() judges the timeline switch alone
      history = std::move(**loaded);
      expect.history = &history;
    }
  }
  return check_segment(first_page, file_size, name, file_name, expect);
}

Result<WalPageHeader> check_segment_against(Repository& repository, std::span<const std::byte> content,
                                            const WalName& name, std::string_view file_name) {
  return check_segment_header(repository, content, content.size(), name, file_name);
}

Result<void> check_wal_content(Repository& repository, std::span<const std::byte> content, const WalName& name,
                               std::string_view file_name) {
  switch (name.kind) {
    case WalFileKind::segment:
    case WalFileKind::partial: {
      auto header = check_segment_against(repository, content, name, file_name);
      if (!header) return std::unexpected(header.error());
      return {};
    }
    case WalFileKind::history: {
      auto entries = parse_timeline_history(as_text(content), name.timeline, file_name);
      if (!entries) return std::unexpected(entries.error());
      if (entries->empty())
        return fail(ErrorKind::refused, "timeline history file '" + std::string(file_name) + "' refused: it names no parent timeline");
      return {};
    }
    case WalFileKind::backup: {
      auto backup = parse_backup_history(as_text(content), file_name);
      if (!backup) return std::unexpected(backup.error());
      return {};
    }
  }
  return fail(ErrorKind::internal, "unknown WAL file kind");
}

}  // namespace walvault
