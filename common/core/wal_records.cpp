// One file on purpose (about 500 lines): the record walk follows xlogreader.c's state
// machine (page headers, continuation records, record headers and CRCs, block references),
// and splitting it would scatter the one reading a reviewer compares against PostgreSQL's.
#include "common/core/wal_records.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <utility>

#include "common/base/byte_order.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/crc32c.hpp"
#include "common/core/wal_page.hpp"

namespace walvault {

namespace {

// src/include/access/xlog_internal.h
constexpr std::size_t k_short_page_header_size = 24;  // SizeOfXLogShortPHD
constexpr std::uint16_t k_xlp_first_is_contrecord = 0x0001;
constexpr std::uint16_t k_xlp_first_is_overwrite_contrecord = 0x0008;
constexpr std::uint16_t k_xlp_all_flags = 0x000F;

// src/include/access/xlogrecord.h
constexpr std::size_t k_record_header_size = 24;  // SizeOfXLogRecord
constexpr std::size_t k_crc_offset = 20;          // offsetof(XLogRecord, xl_crc)
constexpr std::uint32_t k_max_record_length = 0x3FFFFFFF;  // MaxAllocSize: the reader's limit
constexpr std::uint8_t k_max_block_id = 32;
constexpr std::uint8_t k_block_id_data_short = 255;
constexpr std::uint8_t k_block_id_data_long = 254;
constexpr std::uint8_t k_block_id_origin = 253;
constexpr std::uint8_t k_block_id_toplevel_xid = 252;
constexpr std::uint8_t k_bkpblock_has_image = 0x10;
constexpr std::uint8_t k_bkpblock_has_data = 0x20;
constexpr std::uint8_t k_bkpblock_same_rel = 0x80;
constexpr std::uint8_t k_bkpimage_has_hole = 0x01;
constexpr std::uint8_t k_bkpimage_compressed_pg14 = 0x02;  // BKPIMAGE_IS_COMPRESSED, up to 14
constexpr std::uint8_t k_bkpimage_compressed_pg15 = 0x1C;  // PGLZ | LZ4 | ZSTD, from 15
constexpr std::size_t k_relfilenode_size = 12;

// src/include/access/rmgrlist.h, rmgr.h
constexpr std::uint8_t k_rm_xlog_id = 0;
constexpr std::uint8_t k_rm_xact_id = 1;
constexpr std::uint8_t k_rm_max_builtin_id = 21;  // RM_LOGICALMSG_ID, 12 to 17
constexpr std::uint8_t k_rm_min_custom_id = 128;  // custom resource managers, from 15
constexpr std::uint8_t k_xlr_rmgr_info_mask = 0xF0;
constexpr std::uint8_t k_xlog_switch = 0x40;

// src/include/access/xact.h
constexpr std::uint8_t k_xlog_xact_opmask = 0x70;
constexpr std::uint8_t k_xlog_xact_has_info = 0x80;
constexpr std::uint8_t k_xlog_xact_commit = 0x00;
constexpr std::uint8_t k_xlog_xact_abort = 0x20;
constexpr std::uint8_t k_xlog_xact_commit_prepared = 0x30;
constexpr std::uint8_t k_xlog_xact_abort_prepared = 0x40;
constexpr std::uint32_t k_xinfo_has_dbinfo = 1U << 0;
constexpr std::uint32_t k_xinfo_has_subxacts = 1U << 1;
constexpr std::uint32_t k_xinfo_has_relfilenodes = 1U << 2;
constexpr std::uint32_t k_xinfo_has_invals = 1U << 3;
constexpr std::uint32_t k_xinfo_has_twophase = 1U << 4;
constexpr std::uint32_t k_xinfo_has_dropped_stats = 1U << 8;  // from 15
constexpr std::size_t k_shared_inval_message_size = 16;
constexpr std::size_t k_stats_item_size = 12;  // xl_xact_stats_item, 15 to 17

constexpr std::size_t max_align(std::size_t offset) { return (offset + 7) & ~std::size_t{7}; }

std::string hex4(std::uint32_t value) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04X", value);
  return buf;
}

// Where DecodeXLogRecord finds the main data: after all block headers and block data.
struct MainData {
  std::size_t offset = 0;
  std::size_t length = 0;
};

// The block-reference walk of DecodeXLogRecord (xlogreader.c), without copying anything.
std::expected<MainData, std::string> locate_main_data(std::span<const std::byte> record, int pg_version) {
  const std::uint8_t compressed_mask = pg_version >= 15 ? k_bkpimage_compressed_pg15 : k_bkpimage_compressed_pg14;
  std::size_t pos = k_record_header_size;
  std::uint64_t remaining = record.size() - k_record_header_size;
  std::uint64_t data_total = 0;
  std::uint64_t main_length = 0;
  int max_block_id = -1;
  bool have_rel = false;
  auto take = [&](std::size_t size) -> std::optional<std::size_t> {
    if (remaining < size) return std::nullopt;
    remaining -= size;
    pos += size;
    return pos - size;
  };
  const std::string short_data = "record with invalid length";

  while (remaining > data_total) {
    const auto id_at = take(1);
    if (!id_at) return std::unexpected(short_data);
    const auto block_id = std::to_integer<std::uint8_t>(record[*id_at]);
    if (block_id == k_block_id_data_short) {
      const auto at = take(1);
      if (!at) return std::unexpected(short_data);
      main_length = std::to_integer<std::uint8_t>(record[*at]);
      data_total += main_length;
      break;
    }
    if (block_id == k_block_id_data_long) {
      const auto at = take(4);
      if (!at) return std::unexpected(short_data);
      main_length = load_le<std::uint32_t>(record, *at);
      data_total += main_length;
      break;
    }
    if (block_id == k_block_id_origin) {
      if (!take(2)) return std::unexpected(short_data);
      continue;
    }
    if (block_id == k_block_id_toplevel_xid) {
      if (!take(4)) return std::unexpected(short_data);
      continue;
    }
    if (block_id > k_max_block_id) return std::unexpected("invalid block_id " + std::to_string(block_id));
    if (block_id <= max_block_id) return std::unexpected("out-of-order block_id " + std::to_string(block_id));
    max_block_id = block_id;

    const auto fixed = take(3);
    if (!fixed) return std::unexpected(short_data);
    const auto fork_flags = std::to_integer<std::uint8_t>(record[*fixed]);
    const auto data_length = load_le<std::uint16_t>(record, *fixed + 1);
    const bool has_data = (fork_flags & k_bkpblock_has_data) != 0;
    if (has_data && data_length == 0) return std::unexpected(std::string("BKPBLOCK_HAS_DATA set, but no data included"));
    if (!has_data && data_length != 0)
      return std::unexpected("BKPBLOCK_HAS_DATA not set, but data length is " + std::to_string(data_length));
    data_total += data_length;

    if (fork_flags & k_bkpblock_has_image) {
      const auto image = take(5);  // length, hole_offset, bimg_info
      if (!image) return std::unexpected(short_data);
      const auto image_length = load_le<std::uint16_t>(record, *image);
      const auto bimg_info = std::to_integer<std::uint8_t>(record[*image + 4]);
      if ((bimg_info & compressed_mask) && (bimg_info & k_bkpimage_has_hole) && !take(2))  // hole_length
        return std::unexpected(short_data);
      data_total += image_length;
    }
    if (!(fork_flags & k_bkpblock_same_rel)) {
      if (!take(k_relfilenode_size)) return std::unexpected(short_data);
      have_rel = true;
    } else if (!have_rel) {
      return std::unexpected(std::string("BKPBLOCK_SAME_REL set but no previous rel"));
    }
    if (!take(4)) return std::unexpected(short_data);  // BlockNumber
  }
  if (remaining != data_total) return std::unexpected(short_data);
  return MainData{record.size() - static_cast<std::size_t>(main_length), static_cast<std::size_t>(main_length)};
}

// The transaction that a commit/abort record ends: the prepared transaction's xid when the
// record carries one (ParseCommitRecord / ParseAbortRecord in xactdesc.c), else nullopt.
// Fails when the record is too short for what its xinfo announces.
std::expected<std::optional<std::uint32_t>, std::string> twophase_xid(std::span<const std::byte> main,
                                                                     std::uint8_t info, bool commit) {
  if (!(info & k_xlog_xact_has_info)) return std::nullopt;
  const std::string truncated = "transaction record is shorter than its xinfo says";
  std::size_t pos = 8;  // xact_time
  if (main.size() < pos + 4) return std::unexpected(truncated);
  const auto xinfo = load_le<std::uint32_t>(main, pos);
  pos += 4;
  auto skip_array = [&](std::size_t item_size) {
    if (main.size() < pos + 4) return false;
    const auto count = load_le<std::int32_t>(main, pos);
    if (count < 0) return false;
    pos += 4 + static_cast<std::size_t>(count) * item_size;
    return pos <= main.size();
  };
  if (xinfo & k_xinfo_has_dbinfo) pos += 8;
  if ((xinfo & k_xinfo_has_subxacts) && !skip_array(4)) return std::unexpected(truncated);
  if ((xinfo & k_xinfo_has_relfilenodes) && !skip_array(k_relfilenode_size)) return std::unexpected(truncated);
  if ((xinfo & k_xinfo_has_dropped_stats) && !skip_array(k_stats_item_size)) return std::unexpected(truncated);
  if (commit && (xinfo & k_xinfo_has_invals) && !skip_array(k_shared_inval_message_size))
    return std::unexpected(truncated);
  if (!(xinfo & k_xinfo_has_twophase)) return std::nullopt;
  if (main.size() < pos + 4) return std::unexpected(truncated);
  return load_le<std::uint32_t>(main, pos);
}

// A record being assembled across pages, or a continuation being skipped.
struct Pending {
  bool active = false;
  bool headless = false;    // continuation of a record from the previous segment, skipped
  bool keep = false;        // bytes are assembled (the record fits k_max_carried_record)
  bool from_carry = false;  // started in the previous segment, bytes from carry_in
  bool header_checked = false;
  std::uint64_t lsn = 0;
  std::uint32_t total = 0;
  std::uint64_t got = 0;
  std::array<std::byte, k_record_header_size> head{};
  std::vector<std::byte> bytes;
};

class Walker {
 public:
  Walker(std::span<const std::byte> segment, const WalPageHeader& first, int pg_version, std::string_view file_name,
         const XactVisitor& on_xact)
      : m_segment(segment), m_pg_version(pg_version), m_magic(first.magic), m_file_name(file_name), m_on_xact(on_xact) {
    m_scan.start_lsn = first.page_address;
    m_scan.timeline = first.timeline;
    m_scan.segment_size = first.segment_size;
    m_scan.block_size = first.block_size;
    m_last_timeline = first.timeline;
  }

  void take_carry(std::span<const std::byte> carry_in, std::uint64_t carry_in_lsn) {
    if (carry_in.empty()) return;
    const std::uint32_t total = carry_in.size() >= 4 ? load_le<std::uint32_t>(carry_in, 0) : 0;
    if (total < k_record_header_size || total > k_max_carried_record || carry_in.size() >= total) {
      m_scan.carry_in_abandoned = true;
      return;
    }
    m_pending.active = true;
    m_pending.keep = true;
    m_pending.from_carry = true;
    m_pending.lsn = carry_in_lsn;
    m_pending.total = total;
    m_pending.header_checked = carry_in.size() >= k_record_header_size;  // by the previous scan
    m_pending.bytes.reserve(total);
    append(carry_in);
  }

  SegmentScan run() && {
    for (std::size_t page = 0; page < m_segment.size(); page += m_scan.block_size)
      if (!walk_page(page)) return std::move(m_scan);
    m_scan.stop = ScanStop::segment_end;
    m_scan.stop_lsn = m_scan.start_lsn + m_segment.size();
    if (m_pending.active && !m_pending.headless) {
      if (m_pending.keep) {
        m_scan.carry = std::move(m_pending.bytes);
        m_scan.carry_lsn = m_pending.lsn;
      } else {
        m_scan.carry_too_large = true;
      }
    }
    return std::move(m_scan);
  }

 private:
  std::string offset_text(std::size_t offset) const {
    return "in WAL file '" + std::string(m_file_name) + "', offset " + std::to_string(offset);
  }

  bool stop(ScanStop why, std::uint64_t lsn, std::string detail) {
    m_scan.stop = why;
    m_scan.stop_lsn = lsn;
    m_scan.stop_detail = std::move(detail);
    return false;
  }

  // Walks one page; false once the walk has stopped.
  bool walk_page(std::size_t page) {
    const std::uint64_t page_lsn = m_scan.start_lsn + page;
    const auto magic = load_le<std::uint16_t>(m_segment, page);
    const auto info = load_le<std::uint16_t>(m_segment, page + 2);
    const auto timeline = load_le<std::uint32_t>(m_segment, page + 4);
    const auto address = load_le<std::uint64_t>(m_segment, page + 8);
    const auto remaining = load_le<std::uint32_t>(m_segment, page + 16);
    if (magic != m_magic) {
      const auto header = m_segment.subspan(page, k_short_page_header_size);
      if (std::all_of(header.begin(), header.end(), [](std::byte b) { return b == std::byte{0}; }))
        return stop(ScanStop::end_of_wal, page_lsn, "zeroed page header " + offset_text(page));
      return stop(ScanStop::invalid_page, page_lsn, "invalid magic number " + hex4(magic) + " " + offset_text(page));
    }
    if (info & ~k_xlp_all_flags)
      return stop(ScanStop::invalid_page, page_lsn, "invalid info bits " + hex4(info) + " " + offset_text(page));
    if (address != page_lsn)
      return stop(ScanStop::invalid_page, page_lsn, "unexpected pageaddr " + format_lsn(address) + " " + offset_text(page));
    if (timeline < m_last_timeline)
      return stop(ScanStop::invalid_page, page_lsn,
                  "out-of-sequence timeline ID " + std::to_string(timeline) + " (after " +
                      std::to_string(m_last_timeline) + ") " + offset_text(page));
    m_last_timeline = timeline;

    std::size_t pos = page + (page == 0 ? k_long_page_header_size : k_short_page_header_size);
    const std::size_t page_end = page + m_scan.block_size;
    const bool continued = (info & k_xlp_first_is_contrecord) != 0;

    if (m_pending.active && m_pending.from_carry && page == 0 &&
        (!continued || (info & k_xlp_first_is_overwrite_contrecord) ||
         remaining != m_pending.total - m_pending.got)) {
      // Not the continuation of the carried record: crash recovery overwrote it, or the
      // carry came from other WAL. Walk this segment as if no carry had been given.
      m_scan.carry_in_abandoned = true;
      m_pending = Pending{};
    }
    if (m_pending.active && (info & k_xlp_first_is_overwrite_contrecord)) {
      // The record was never finished: an XLOG_OVERWRITE_CONTRECORD record starts here.
      m_pending = Pending{};
    } else if (m_pending.active) {
      if (!continued)
        return stop(ScanStop::invalid_page, page_lsn, "there is no contrecord flag at " + format_lsn(page_lsn));
      const std::uint64_t expected = m_pending.total - m_pending.got;
      if (remaining == 0 || remaining != expected)
        return stop(ScanStop::invalid_page, page_lsn,
                    "invalid contrecord length " + std::to_string(remaining) + " (expected " + std::to_string(expected) +
                        ") at " + format_lsn(page_lsn));
      const std::size_t take = std::min<std::size_t>(remaining, page_end - pos);
      if (m_pending.headless) {
        m_pending.got += take;
        m_scan.skipped_bytes += take;
      } else if (!append(m_segment.subspan(pos, take))) {
        return false;
      }
      pos += take;
      if (m_pending.got < m_pending.total) return true;  // continues on the next page
      if (!finish_pending(pos)) return false;
      pos = max_align(pos);
    } else if (continued) {
      if (page != 0)
        return stop(ScanStop::invalid_page, page_lsn, "unexpected contrecord flag at " + format_lsn(page_lsn));
      // The tail of a record from the previous segment, and no carry to complete it.
      const std::size_t take = std::min<std::size_t>(remaining, page_end - pos);
      m_scan.skipped_bytes += take;
      pos += take;
      if (take < remaining) {
        m_pending.active = true;
        m_pending.headless = true;
        m_pending.total = remaining;
        m_pending.got = take;
        return true;
      }
      pos = max_align(pos);
    }

    while (pos < page_end) {
      if (!start_record(pos, page_end)) return false;
      if (m_pending.active) return true;
    }
    return true;
  }

  // Reads the record starting at `pos`; leaves m_pending active when it continues on the
  // next page. false once the walk has stopped.
  bool start_record(std::size_t& pos, std::size_t page_end) {
    const std::uint64_t lsn = m_scan.start_lsn + pos;
    const auto total = load_le<std::uint32_t>(m_segment, pos);
    if (total == 0)
      return stop(ScanStop::end_of_wal, lsn, "invalid record length at " + format_lsn(lsn) + ": wanted 24, got 0");
    if (total < k_record_header_size)
      return stop(ScanStop::invalid_record, lsn,
                  "invalid record length at " + format_lsn(lsn) + ": wanted 24, got " + std::to_string(total));
    if (total > k_max_record_length)
      return stop(ScanStop::invalid_record, lsn,
                  "record length " + std::to_string(total) + " at " + format_lsn(lsn) + " too long");
    const std::size_t available = page_end - pos;
    if (total <= available) {
      const auto record = m_segment.subspan(pos, total);
      if (!check_header(record.first(k_record_header_size), lsn)) return false;
      if (!process_record(record, lsn, pos + total)) return false;
      pos = max_align(pos + total);
      return true;
    }
    m_pending = Pending{};
    m_pending.active = true;
    m_pending.keep = total <= k_max_carried_record;
    m_pending.lsn = lsn;
    m_pending.total = total;
    if (m_pending.keep) m_pending.bytes.reserve(std::min<std::size_t>(total, 1U << 20));
    if (!append(m_segment.subspan(pos, available))) return false;
    pos = page_end;
    return true;
  }

  bool append(std::span<const std::byte> piece) {
    if (m_pending.got < k_record_header_size) {
      const std::size_t n = std::min<std::size_t>(k_record_header_size - m_pending.got, piece.size());
      std::copy_n(piece.begin(), n, m_pending.head.begin() + static_cast<std::ptrdiff_t>(m_pending.got));
    }
    if (m_pending.keep) m_pending.bytes.insert(m_pending.bytes.end(), piece.begin(), piece.end());
    m_pending.got += piece.size();
    if (!m_pending.header_checked && m_pending.got >= k_record_header_size) {
      m_pending.header_checked = true;
      return check_header(m_pending.head, m_pending.lsn);
    }
    return true;
  }

  // ValidXLogRecordHeader: a known resource manager and a prev-link to the record before.
  bool check_header(std::span<const std::byte> header, std::uint64_t lsn) {
    const auto rmid = std::to_integer<std::uint8_t>(header[17]);
    const bool builtin = rmid <= k_rm_max_builtin_id;
    const bool custom = m_pg_version >= 15 && rmid >= k_rm_min_custom_id;
    if (!builtin && !custom)
      return stop(ScanStop::invalid_record, lsn,
                  "invalid resource manager ID " + std::to_string(rmid) + " at " + format_lsn(lsn));
    const auto prev = load_le<std::uint64_t>(header, 8);
    if (m_prev_lsn ? prev != *m_prev_lsn : prev >= lsn)
      return stop(ScanStop::invalid_record, lsn,
                  "record with incorrect prev-link " + format_lsn(prev) + " at " + format_lsn(lsn));
    return true;
  }

  bool finish_pending(std::size_t end_pos) {
    Pending done = std::move(m_pending);
    m_pending = Pending{};
    if (done.headless) return true;
    if (!done.keep) {
      // Too long to assemble: counted, but neither verified nor decoded.
      count_record(done.lsn, end_pos);
      return true;
    }
    if (!process_record(done.bytes, done.lsn, end_pos)) return false;
    if (done.from_carry) m_scan.carry_in_completed = true;
    return true;
  }

  void count_record(std::uint64_t lsn, std::size_t end_pos) {
    ++m_scan.records;
    m_scan.last_record_lsn = lsn;
    m_scan.end_lsn = m_scan.start_lsn + end_pos;
    m_prev_lsn = lsn;
  }

  bool process_record(std::span<const std::byte> record, std::uint64_t lsn, std::size_t end_pos) {
    std::uint32_t crc = crc32c_update(0xFFFFFFFFU, record.subspan(k_record_header_size));
    crc = crc32c_update(crc, record.first(k_crc_offset)) ^ 0xFFFFFFFFU;
    if (crc != load_le<std::uint32_t>(record, k_crc_offset))
      return stop(ScanStop::invalid_record, lsn, "incorrect resource manager data checksum in record at " + format_lsn(lsn));
    const auto main = locate_main_data(record, m_pg_version);
    if (!main) return stop(ScanStop::invalid_record, lsn, main.error() + " at " + format_lsn(lsn));
    count_record(lsn, end_pos);

    const auto info = std::to_integer<std::uint8_t>(record[16]);
    const auto rmid = std::to_integer<std::uint8_t>(record[17]);
    if (rmid == k_rm_xlog_id && (info & k_xlr_rmgr_info_mask) == k_xlog_switch)
      return stop(ScanStop::switch_record, m_scan.end_lsn, "");
    if (rmid != k_rm_xact_id) return true;
    const std::uint8_t op = info & k_xlog_xact_opmask;
    if (op != k_xlog_xact_commit && op != k_xlog_xact_abort && op != k_xlog_xact_commit_prepared &&
        op != k_xlog_xact_abort_prepared)
      return true;

    const auto data = record.subspan(main->offset, main->length);
    if (data.size() < 8)
      return stop(ScanStop::invalid_record, lsn, "transaction record without a time at " + format_lsn(lsn));
    XactEvent event;
    event.lsn = lsn;
    event.commit = op == k_xlog_xact_commit || op == k_xlog_xact_commit_prepared;
    event.prepared = op == k_xlog_xact_commit_prepared || op == k_xlog_xact_abort_prepared;
    event.xact_time_us = load_le<std::int64_t>(data, 0);
    event.xid = load_le<std::uint32_t>(record, 4);
    const auto prepared_xid = twophase_xid(data, info, event.commit);
    if (!prepared_xid) return stop(ScanStop::invalid_record, lsn, prepared_xid.error() + " at " + format_lsn(lsn));
    if (*prepared_xid) event.xid = **prepared_xid;

    ++m_scan.xact_records;
    if (!m_scan.first_xact_time) m_scan.first_xact_time = event.xact_time_us;
    m_scan.last_xact_time = event.xact_time_us;
    if (m_on_xact) m_on_xact(event);
    return true;
  }

  std::span<const std::byte> m_segment;
  int m_pg_version;
  std::uint16_t m_magic;
  std::string_view m_file_name;
  const XactVisitor& m_on_xact;
  SegmentScan m_scan;
  Pending m_pending;
  std::optional<std::uint64_t> m_prev_lsn;
  std::uint32_t m_last_timeline = 0;
};

}  // namespace

std::string_view to_string(ScanStop stop) {
  switch (stop) {
    case ScanStop::segment_end: return "segment-end";
    case ScanStop::switch_record: return "switch-record";
    case ScanStop::end_of_wal: return "end-of-wal";
    case ScanStop::invalid_record: return "invalid-record";
    case ScanStop::invalid_page: return "invalid-page";
  }
  return "unknown";
}

Result<SegmentScan> scan_segment(std::span<const std::byte> segment, std::span<const std::byte> carry_in,
                                 std::uint64_t carry_in_lsn, std::string_view file_name, const XactVisitor& on_xact) {
  auto refused = [&](const std::string& why) {
    return fail(ErrorKind::refused, "unable to walk WAL file '" + std::string(file_name) + "': " + why);
  };
  auto parsed = read_long_page_header(segment, file_name);
  if (!parsed) return std::unexpected(parsed.error());
  const WalPageHeader& header = *parsed;
  if (auto r = check_long_header(header, segment.size()); !r) return refused(r.error().message);
  const auto version = postgres_version_for_wal_magic(header.magic);
  if (header.page_address % header.segment_size != 0)
    return refused("first page address " + format_lsn(header.page_address) + " is not a segment start");

  Walker walker(segment, header, *version, file_name, on_xact);
  walker.take_carry(carry_in, carry_in_lsn);
  return std::move(walker).run();
}

std::string format_timestamp_utc(std::int64_t pg_time_us) {
  if (pg_time_us == std::numeric_limits<std::int64_t>::min()) return "-infinity";
  if (pg_time_us == std::numeric_limits<std::int64_t>::max()) return "infinity";
  constexpr std::int64_t k_us_per_day = 86'400'000'000;
  constexpr std::int64_t k_unix_days_at_pg_epoch = 10957;  // 1970-01-01 .. 2000-01-01
  std::int64_t days = pg_time_us / k_us_per_day;
  std::int64_t of_day = pg_time_us % k_us_per_day;
  if (of_day < 0) {
    of_day += k_us_per_day;
    --days;
  }
  // civil_from_days (H. Hinnant), on days since 1970-01-01.
  const std::int64_t z = days + k_unix_days_at_pg_epoch + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);

  const std::int64_t seconds = of_day / 1'000'000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ", static_cast<long long>(year),
                static_cast<long long>(month), static_cast<long long>(day), static_cast<long long>(seconds / 3600),
                static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60),
                static_cast<long long>(of_day % 1'000'000));
  return buf;
}

}  // namespace walvault
