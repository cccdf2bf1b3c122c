#pragma once
// Content checks shared by the push and the fetch side, against what the repository knows.
#include <optional>
#include <span>
#include <string_view>

#include "common/base/error.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/repository.hpp"
#include "common/core/wal_page.hpp"

namespace walvault {

// Reads and parses the archived history of `timeline`; nullopt when it is not stored.
Result<std::optional<std::vector<TimelineHistoryEntry>>> load_timeline_history(Repository& repository, std::uint32_t timeline);

// check_segment() with the repository's system identifier, loading the name's timeline
// history when the first page carries another timeline.
Result<WalPageHeader> check_segment_against(Repository& repository, std::span<const std::byte> content,
                                            const WalName& name, std::string_view file_name);

// The same from the first bytes of a segment and its total size (content still streaming).
Result<WalPageHeader> check_segment_header(Repository& repository, std::span<const std::byte> first_page,
                                           std::uint64_t file_size, const WalName& name, std::string_view file_name);

// Any of the four forms: segments and .partial via check_segment_against, .history parsed,
// .backup must be PostgreSQL's backup history text. ErrorKind::refused with the cause.
Result<void> check_wal_content(Repository& repository, std::span<const std::byte> content, const WalName& name,
                               std::string_view file_name);

}  // namespace walvault
