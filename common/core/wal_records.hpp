#pragma once
// A WAL record walker: decodes every record of one segment (page headers, records split
// across pages and segments, CRC-32C, block references) and reports the transaction
// commit/abort times it finds, so a segment can be indexed by the times it covers.
//
// Attribution rule: a record belongs to the segment that holds its LAST byte. A record that
// starts in segment N and ends in N+1 is counted (and its commit time reported) by the scan
// of N+1, given N's SegmentScan::carry; the scan of N only hands it on as the carry. This is
// the segment recovery needs in order to replay that record.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/crc32c.hpp"

namespace walvault {

// Records longer than this are skipped unverified instead of being assembled or carried.
inline constexpr std::size_t k_max_carried_record = 64ULL << 20;

// One RM_XACT commit or abort record (XLOG_XACT_COMMIT, _ABORT, _COMMIT_PREPARED,
// _ABORT_PREPARED). PREPARE, ASSIGNMENT and INVALIDATION records are not events.
struct XactEvent {
  std::uint64_t lsn = 0;          // start of the record
  bool commit = false;            // commit (prepared or not); false: abort
  bool prepared = false;          // COMMIT PREPARED / ROLLBACK PREPARED
  std::int64_t xact_time_us = 0;  // TimestampTz: microseconds since 2000-01-01 00:00:00 UTC
  std::uint32_t xid = 0;          // the transaction that ended: the prepared transaction's
                                  // xid for *_PREPARED records, otherwise xl_xid (a
                                  // subtransaction's own xid for a ROLLBACK TO SAVEPOINT)
  bool operator==(const XactEvent&) const = default;
};

enum class ScanStop {
  segment_end,     // walked to the last byte (perhaps leaving a carry)
  switch_record,   // an XLOG_SWITCH record: the rest of the segment is padding
  end_of_wal,      // xl_tot_len 0 or a zeroed page: nothing more was written here
  invalid_record,  // bad record header, prev-link, CRC or block references
  invalid_page,    // bad page header, or a continuation that does not fit its record
};
std::string_view to_string(ScanStop stop);

struct SegmentScan {
  std::uint64_t start_lsn = 0;  // the segment's first byte (its first page address)
  std::uint32_t timeline = 0;   // of the first page
  std::uint32_t segment_size = 0;
  std::uint32_t block_size = 0;

  // Commit/abort times of the first and last such record ending here, in WAL order (not
  // min/max: concurrent commits can be out of order by a little).
  std::optional<std::int64_t> first_xact_time, last_xact_time;
  std::size_t records = 0;       // complete records ending here
  std::size_t xact_records = 0;  // of which commit/abort records

  std::uint64_t last_record_lsn = 0;  // start of the last record counted; 0 if none
  std::uint64_t end_lsn = 0;          // just past its last byte (PostgreSQL's EndRecPtr); 0 if none

  ScanStop stop = ScanStop::segment_end;
  std::uint64_t stop_lsn = 0;  // where the walk stopped; segment_end: the segment's end
  std::string stop_detail;     // the cause, PostgreSQL-style, for end_of_wal and invalid_*

  bool carry_in_completed = false;  // carry_in's record ended here and was counted
  bool carry_in_abandoned = false;  // carry_in did not continue on the first page (an
                                    // overwritten contrecord, or a carry of other WAL)
  std::uint64_t skipped_bytes = 0;  // continuation bytes skipped on the first pages
                                    // because no carry was given

  // A record that starts here and continues in the next segment: its bytes so far (page
  // headers removed) and its start LSN. Empty when none, when the walk stopped early, or
  // when the record is longer than k_max_carried_record (then carry_too_large is set).
  std::vector<std::byte> carry;
  std::uint64_t carry_lsn = 0;
  bool carry_too_large = false;
};

using XactVisitor = std::function<void(const XactEvent&)>;

// Walks the records of `segment`, a whole segment or .partial file whose size matches its
// long page header. `carry_in` is the previous segment's SegmentScan::carry (and
// `carry_in_lsn` its carry_lsn); when empty, the continuation of a record from the previous
// segment is skipped by xlp_rem_len, and that record is counted by neither scan.
// `on_xact` sees every commit/abort event counted, in WAL order.
// Fails (ErrorKind::refused) only when the first page header cannot be walked: unknown
// magic, no long header, a segment or block size that does not fit the content. Anything
// wrong further in is a ScanStop, since archived segments legitimately end in garbage.
Result<SegmentScan> scan_segment(std::span<const std::byte> segment, std::span<const std::byte> carry_in,
                                 std::uint64_t carry_in_lsn, std::string_view file_name,
                                 const XactVisitor& on_xact = {});


// RFC 3339 in UTC with microseconds, e.g. "2026-11-24T09:30:01.123456Z"; PostgreSQL's
// DT_NOBEGIN/DT_NOEND print as "-infinity"/"infinity".
std::string format_timestamp_utc(std::int64_t pg_time_us);

}  // namespace walvault
