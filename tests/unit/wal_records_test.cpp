#include "common/core/wal_records.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/base/wal_name.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

constexpr std::uint32_t k_segment = 1U << 20;
constexpr std::uint32_t k_block = 8192;
constexpr std::uint64_t k_seg1 = k_segment;  // LSN 0/100000: segment 000000010000000000000001
constexpr std::size_t k_long_header = 40;
constexpr std::size_t k_short_header = 24;

std::uint64_t align8(std::uint64_t value) { return (value + 7) & ~std::uint64_t{7}; }

void put_u8(std::vector<std::byte>& out, std::uint8_t value) { out.push_back(static_cast<std::byte>(value)); }
template <typename T>
void put_le(std::vector<std::byte>& out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<std::byte>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFFU));
}

// Main data of a commit/abort record: xact_time, then (when xinfo != 0) xl_xact_xinfo and
// the subxact list and two-phase xid it announces.
std::vector<std::byte> xact_main(std::int64_t time, std::uint32_t xinfo = 0, std::uint32_t nsubxacts = 0,
                                 std::uint32_t prepared_xid = 0) {
  std::vector<std::byte> out;
  put_le<std::int64_t>(out, time);
  if (xinfo == 0) return out;
  put_le<std::uint32_t>(out, xinfo);
  if (xinfo & 0x02) {  // XACT_XINFO_HAS_SUBXACTS
    put_le<std::int32_t>(out, static_cast<std::int32_t>(nsubxacts));
    for (std::uint32_t i = 0; i < nsubxacts; ++i) put_le<std::uint32_t>(out, 5000 + i);
  }
  if (xinfo & 0x10) put_le<std::uint32_t>(out, prepared_xid);  // XACT_XINFO_HAS_TWOPHASE
  return out;
}

// Writes PostgreSQL 15 WAL the way XLogInsert lays it out: MAXALIGN'd records, page headers
// (long on a segment's first page), continuation flags and xlp_rem_len, CRC-32C, prev-links.
class WalWriter {
 public:
  explicit WalWriter(std::uint64_t start_lsn = k_seg1) : m_base(start_lsn) {}

  // Appends a record; returns its LSN. `blocks` are block headers, `block_data` their data.
  std::uint64_t add(std::uint8_t rmid, std::uint8_t info, std::uint32_t xid, std::span<const std::byte> main,
                    std::span<const std::byte> blocks = {}, std::span<const std::byte> block_data = {}) {
    std::vector<std::byte> record(24);
    record.insert(record.end(), blocks.begin(), blocks.end());
    if (!main.empty()) {
      if (main.size() < 256) {
        put_u8(record, 255);
        put_u8(record, static_cast<std::uint8_t>(main.size()));
      } else {
        put_u8(record, 254);
        put_le<std::uint32_t>(record, static_cast<std::uint32_t>(main.size()));
      }
    }
    record.insert(record.end(), block_data.begin(), block_data.end());
    record.insert(record.end(), main.begin(), main.end());
    test::store_le<std::uint32_t>(record, 0, static_cast<std::uint32_t>(record.size()));
    test::store_le<std::uint32_t>(record, 4, xid);
    test::store_le<std::uint64_t>(record, 8, m_prev);
    record[16] = static_cast<std::byte>(info);
    record[17] = static_cast<std::byte>(rmid);
    std::uint32_t crc = crc32c_update(0xFFFFFFFFU, std::span<const std::byte>(record).subspan(24));
    crc = crc32c_update(crc, std::span<const std::byte>(record).first(20)) ^ 0xFFFFFFFFU;
    test::store_le<std::uint32_t>(record, 20, crc);
    return write(record);
  }

  std::uint64_t commit(std::int64_t time, std::uint32_t xid, std::uint32_t nsubxacts = 0) {
    const auto main = xact_main(time, nsubxacts ? 0x02 : 0, nsubxacts);
    return add(1, nsubxacts ? 0x80 : 0x00, xid, main);
  }
  std::uint64_t abort(std::int64_t time, std::uint32_t xid) { return add(1, 0x20, xid, xact_main(time)); }
  // An RM_LOGICALMSG_ID record of exactly `total` bytes, to move the insert position.
  std::uint64_t filler(std::size_t total) {
    const std::size_t main = total - 24 - (total - 24 - 2 < 256 ? 2 : 5);
    return add(21, 0x00, 0, std::vector<std::byte>(main, std::byte{0x5A}));
  }

  // Fillers until the next record starts exactly at `target` (an LSN in a later page).
  void pad_to(std::uint64_t target) {
    for (;;) {
      std::uint64_t pos = align8(m_pos);
      if (pos % k_block == 0) pos += header_size(pos);
      if (m_base + pos == target) return;
      if (m_base + pos > target) throw std::runtime_error("pad_to: target already passed");
      const std::uint64_t page_end = (pos / k_block + 1) * k_block;
      if (target - m_base < page_end && target - m_base - pos >= 32) {
        filler(target - m_base - pos);
        return;
      }
      filler(page_end - pos >= 32 ? page_end - pos : page_end - pos + 64);
    }
  }

  // Where the next record would start (before any page header).
  std::uint64_t position() const { return m_base + m_pos; }
  // The segment starting at `start_lsn`, zero past what was written.
  std::vector<std::byte> segment(std::uint64_t start_lsn) const {
    std::vector<std::byte> out(k_segment);
    const std::uint64_t from = start_lsn - m_base;
    if (from < m_wal.size())
      std::copy_n(m_wal.begin() + static_cast<std::ptrdiff_t>(from), std::min<std::uint64_t>(k_segment, m_wal.size() - from),
                  out.begin());
    return out;
  }
  // The prev-link of the next record, when it does not follow this writer's last one.
  void set_prev(std::uint64_t lsn) { m_prev = lsn; }

 private:
  std::size_t header_size(std::uint64_t offset) const {
    return (m_base + offset) % k_segment == 0 ? k_long_header : k_short_header;
  }

  void page_header(std::uint32_t remaining) {
    const bool first = (m_base + m_pos) % k_segment == 0;
    const std::size_t size = header_size(m_pos);
    grow(m_pos + size);
    std::vector<std::byte>& w = m_wal;
    test::store_le<std::uint16_t>(w, m_pos, 0xD110);
    test::store_le<std::uint16_t>(w, m_pos + 2, static_cast<std::uint16_t>((first ? 0x0002 : 0) | (remaining ? 0x0001 : 0)));
    test::store_le<std::uint32_t>(w, m_pos + 4, 1);
    test::store_le<std::uint64_t>(w, m_pos + 8, m_base + m_pos);
    test::store_le<std::uint32_t>(w, m_pos + 16, remaining);
    if (first) {
      test::store_le<std::uint64_t>(w, m_pos + 24, test::k_test_system_identifier);
      test::store_le<std::uint32_t>(w, m_pos + 32, k_segment);
      test::store_le<std::uint32_t>(w, m_pos + 36, k_block);
    }
    m_pos += size;
  }

  std::uint64_t write(const std::vector<std::byte>& record) {
    m_pos = align8(m_pos);
    if (m_pos % k_block == 0) page_header(0);
    const std::uint64_t lsn = m_base + m_pos;
    std::size_t done = 0;
    while (done < record.size()) {
      if (m_pos % k_block == 0) page_header(static_cast<std::uint32_t>(record.size() - done));
      const std::size_t take = std::min<std::size_t>(k_block - m_pos % k_block, record.size() - done);
      grow(m_pos + take);
      std::copy_n(record.begin() + static_cast<std::ptrdiff_t>(done), take, m_wal.begin() + static_cast<std::ptrdiff_t>(m_pos));
      m_pos += take;
      done += take;
    }
    m_prev = lsn;
    return lsn;
  }

  void grow(std::size_t size) {
    if (m_wal.size() < size) m_wal.resize(std::max<std::size_t>(size, m_wal.size() * 2));
  }

  std::uint64_t m_base;
  std::uint64_t m_pos = 0;
  std::uint64_t m_prev = 0;
  std::vector<std::byte> m_wal;
};

Result<SegmentScan> scan(std::span<const std::byte> segment, std::vector<XactEvent>* events = nullptr,
                         std::span<const std::byte> carry = {}, std::uint64_t carry_lsn = 0) {
  return scan_segment(segment, carry, carry_lsn, "000000010000000000000001", [&](const XactEvent& event) {
    if (events) events->push_back(event);
  });
}

constexpr std::int64_t k_t0 = 848827801123456;  // 2026-11-24T09:30:01.123456Z

// --- pure functions ---

TEST(WalRecords, Crc32cMatchesTheCastagnoliCheckValue) {
  EXPECT_EQ(crc32c(as_bytes(std::string_view("123456789"))), 0xE3069283U);
  EXPECT_EQ(crc32c({}), 0U);
  // Slicing must not change the result: split the input at every position.
  const std::string text = "PostgreSQL write-ahead log, checksummed in pieces of any size";
  const auto bytes = as_bytes(std::string_view(text));
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut)
    EXPECT_EQ(crc32c_update(crc32c_update(0xFFFFFFFFU, bytes.first(cut)), bytes.subspan(cut)) ^ 0xFFFFFFFFU,
              crc32c(bytes));
}

TEST(WalRecords, FormatsTimestampsAsRfc3339Utc) {
  EXPECT_EQ(format_timestamp_utc(0), "2000-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_timestamp_utc(k_t0), "2026-11-24T09:30:01.123456Z");
  EXPECT_EQ(format_timestamp_utc(762566399999999), "2024-02-29T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp_utc(-1), "1999-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp_utc(-946684800000000), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_timestamp_utc(std::numeric_limits<std::int64_t>::max()), "infinity");
  EXPECT_EQ(format_timestamp_utc(std::numeric_limits<std::int64_t>::min()), "-infinity");
}

// --- crafted WAL ---

TEST(WalRecords, FindsCommitsAndAbortsAndStopsAtZeroLength) {
  WalWriter wal;
  wal.filler(100);
  const auto c1 = wal.commit(k_t0, 700);
  const auto a1 = wal.abort(k_t0 + 5, 701);
  wal.add(1, 0x10, 702, xact_main(k_t0 + 6));  // PREPARE: not an event
  const auto p1 = wal.add(1, 0x30 | 0x80, 0, xact_main(k_t0 + 7, 0x02 | 0x10, 3, 702));  // COMMIT PREPARED
  const auto p2 = wal.add(1, 0x40 | 0x80, 0, xact_main(k_t0 + 8, 0x10, 0, 703));         // ABORT PREPARED
  const std::uint64_t end = wal.position();

  std::vector<XactEvent> events;
  const auto segment = wal.segment(k_seg1);
  auto result = scan(segment, &events);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->start_lsn, k_seg1);
  EXPECT_EQ(result->timeline, 1U);
  EXPECT_EQ(result->segment_size, k_segment);
  EXPECT_EQ(result->block_size, k_block);
  EXPECT_EQ(result->records, 6U);
  EXPECT_EQ(result->xact_records, 4U);
  EXPECT_EQ(result->first_xact_time, k_t0);
  EXPECT_EQ(result->last_xact_time, k_t0 + 8);
  EXPECT_EQ(result->last_record_lsn, p2);
  EXPECT_EQ(result->end_lsn, end);
  EXPECT_EQ(result->stop, ScanStop::end_of_wal);
  EXPECT_EQ(result->stop_lsn, align8(end));
  EXPECT_EQ(result->stop_detail, "invalid record length at " + format_lsn(align8(end)) + ": wanted 24, got 0");
  EXPECT_TRUE(result->carry.empty());
  const std::vector<XactEvent> expected = {
      {c1, true, false, k_t0, 700},
      {a1, false, false, k_t0 + 5, 701},
      {p1, true, true, k_t0 + 7, 702},
      {p2, false, true, k_t0 + 8, 703},
  };
  EXPECT_EQ(events, expected);
}

TEST(WalRecords, AssemblesARecordContinuedOnTheNextPage) {
  WalWriter wal;
  wal.pad_to(k_seg1 + 3 * k_block - 1000);
  const auto big = wal.commit(k_t0, 800, 3000);  // 12 KB of subxacts: spans pages 3, 4 and 5
  wal.pad_to(k_seg1 + 6 * k_block - 8);           // the next header is split 8/16 over a page boundary
  const auto split = wal.abort(k_t0 + 1, 801);
  const auto last = wal.commit(k_t0 + 2, 802);

  std::vector<XactEvent> events;
  const auto segment = wal.segment(k_seg1);
  auto result = scan(segment, &events);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->stop, ScanStop::end_of_wal) << result->stop_detail;
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[0], (XactEvent{big, true, false, k_t0, 800}));
  EXPECT_EQ(events[1], (XactEvent{split, false, false, k_t0 + 1, 801}));
  EXPECT_EQ(split, k_seg1 + 6 * k_block - 8);
  EXPECT_EQ(events[2], (XactEvent{last, true, false, k_t0 + 2, 802}));
  EXPECT_EQ(result->first_xact_time, k_t0);
  EXPECT_EQ(result->last_xact_time, k_t0 + 2);
}

TEST(WalRecords, CrcMismatchStopsTheWalkAndIsReported) {
  WalWriter wal;
  wal.commit(k_t0, 900);
  const auto bad = wal.commit(k_t0 + 1, 901);
  wal.commit(k_t0 + 2, 902);
  auto segment = wal.segment(k_seg1);
  segment[bad - k_seg1 + 30] ^= std::byte{0x01};  // a bit of the commit time

  std::vector<XactEvent> events;
  auto result = scan(segment, &events);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->stop, ScanStop::invalid_record);
  EXPECT_EQ(result->stop_lsn, bad);
  EXPECT_EQ(result->stop_detail, "incorrect resource manager data checksum in record at " + format_lsn(bad));
  EXPECT_EQ(result->records, 1U);
  EXPECT_EQ(result->xact_records, 1U);
  EXPECT_EQ(result->last_xact_time, k_t0);
  EXPECT_EQ(events.size(), 1U);
}

TEST(WalRecords, CrcMismatchInARecordSpanningPagesStopsTheWalk) {
  WalWriter wal;
  wal.pad_to(k_seg1 + k_block - 200);
  const auto big = wal.commit(k_t0, 910, 100);  // 400 bytes of subxacts over the page boundary
  wal.commit(k_t0 + 1, 911);
  auto segment = wal.segment(k_seg1);
  segment[k_block + k_short_header + 50] ^= std::byte{0x80};  // in the continuation on page 2

  auto result = scan(segment);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(result->stop, ScanStop::invalid_record);
  EXPECT_EQ(result->stop_detail, "incorrect resource manager data checksum in record at " + format_lsn(big));
  EXPECT_EQ(result->xact_records, 0U);
}

TEST(WalRecords, BadRecordHeadersStopTheWalk) {
  {
    WalWriter wal;
    wal.commit(k_t0, 1);
    const auto next = wal.commit(k_t0 + 1, 2);
    auto segment = wal.segment(k_seg1);
    test::store_le<std::uint64_t>(segment, next - k_seg1 + 8, 0x12345678);  // xl_prev
    auto result = scan(segment);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->stop, ScanStop::invalid_record);
    EXPECT_EQ(result->stop_detail,
              "record with incorrect prev-link 0/12345678 at " + format_lsn(next));
    EXPECT_EQ(result->records, 1U);
  }
  {
    WalWriter wal;
    const auto first = wal.commit(k_t0, 1);
    auto segment = wal.segment(k_seg1);
    segment[first - k_seg1 + 17] = std::byte{99};  // xl_rmid
    auto result = scan(segment);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->stop, ScanStop::invalid_record);
    EXPECT_EQ(result->stop_detail, "invalid resource manager ID 99 at " + format_lsn(first));
  }
  {
    WalWriter wal;
    const auto first = wal.commit(k_t0, 1);
    auto segment = wal.segment(k_seg1);
    test::store_le<std::uint32_t>(segment, first - k_seg1, 12);  // xl_tot_len < SizeOfXLogRecord
    auto result = scan(segment);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->stop, ScanStop::invalid_record);
    EXPECT_EQ(result->stop_detail, "invalid record length at " + format_lsn(first) + ": wanted 24, got 12");
  }
}

TEST(WalRecords, DecodesBlockReferencesBeforeTheMainData) {
  // Two block references: a compressed image with a hole (+ hole_length) and data, then a
  // SAME_REL reference with data only; the commit time must still be found at the end.
  std::vector<std::byte> headers;
  put_u8(headers, 0);                          // block id 0
  put_u8(headers, 0x10 | 0x20);                // HAS_IMAGE | HAS_DATA, main fork
  put_le<std::uint16_t>(headers, 6);           // data_length
  put_le<std::uint16_t>(headers, 300);         // image length
  put_le<std::uint16_t>(headers, 64);          // hole_offset
  put_u8(headers, 0x01 | 0x02 | 0x04);         // HAS_HOLE | APPLY | COMPRESS_PGLZ
  put_le<std::uint16_t>(headers, 4000);        // hole_length
  for (int i = 0; i < 12; ++i) put_u8(headers, static_cast<std::uint8_t>(i));  // RelFileNode
  put_le<std::uint32_t>(headers, 17);          // BlockNumber
  put_u8(headers, 1);                          // block id 1
  put_u8(headers, 0x20 | 0x80);                // HAS_DATA | SAME_REL
  put_le<std::uint16_t>(headers, 3);
  put_le<std::uint32_t>(headers, 18);
  put_u8(headers, 253);                        // XLR_BLOCK_ID_ORIGIN
  put_le<std::uint16_t>(headers, 1);
  put_u8(headers, 252);                        // XLR_BLOCK_ID_TOPLEVEL_XID
  put_le<std::uint32_t>(headers, 4242);
  const std::vector<std::byte> data(300 + 6 + 3, std::byte{0xEE});

  WalWriter wal;
  const auto lsn = wal.add(1, 0x00, 1000, xact_main(k_t0 + 42), headers, data);
  std::vector<XactEvent> events;
  auto segment = wal.segment(k_seg1);
  auto result = scan(segment, &events);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->stop, ScanStop::end_of_wal) << result->stop_detail;
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0], (XactEvent{lsn, true, false, k_t0 + 42, 1000}));

  // An out-of-range block id is an invalid record, as DecodeXLogRecord says.
  std::vector<std::byte> bad_headers = {std::byte{40}};
  WalWriter bad;
  const auto bad_lsn = bad.add(10, 0x00, 1, xact_main(k_t0), bad_headers);
  auto bad_segment = bad.segment(k_seg1);
  auto bad_result = scan(bad_segment);
  ASSERT_TRUE(bad_result);
  EXPECT_EQ(bad_result->stop, ScanStop::invalid_record);
  EXPECT_EQ(bad_result->stop_detail, "invalid block_id 40 at " + format_lsn(bad_lsn));
  EXPECT_EQ(bad_result->records, 0U);
}

TEST(WalRecords, SwitchRecordEndsTheSegmentDespiteGarbageAfterIt) {
  WalWriter wal;
  wal.commit(k_t0, 1);
  const auto switch_lsn = wal.add(0, 0x40, 0, {});
  auto segment = wal.segment(k_seg1);
  for (std::size_t i = switch_lsn - k_seg1 + 24; i < 3 * k_block; ++i) segment[i] = static_cast<std::byte>(i * 7 + 1);

  auto result = scan(segment);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->stop, ScanStop::switch_record);
  EXPECT_EQ(result->stop_lsn, switch_lsn + 24);
  EXPECT_EQ(result->stop_detail, "");
  EXPECT_EQ(result->records, 2U);
  EXPECT_EQ(result->last_record_lsn, switch_lsn);
}

TEST(WalRecords, InvalidPageHeaderStopsTheWalk) {
  WalWriter wal;
  wal.pad_to(k_seg1 + k_block - 100);
  const auto spanning = wal.commit(k_t0, 3, 200);
  auto segment = wal.segment(k_seg1);
  test::store_le<std::uint64_t>(segment, k_block + 8, 0xABC000);  // page 2's xlp_pageaddr

  auto result = scan(segment);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->stop, ScanStop::invalid_page);
  EXPECT_EQ(result->stop_lsn, k_seg1 + k_block);
  EXPECT_EQ(result->stop_detail, "unexpected pageaddr 0/ABC000 in WAL file '000000010000000000000001', offset 8192");
  EXPECT_LT(result->last_record_lsn, spanning);
  EXPECT_TRUE(result->carry.empty());

  // A continuation whose xlp_rem_len disagrees with the record is refused too.
  auto other = wal.segment(k_seg1);
  test::store_le<std::uint32_t>(other, k_block + 16, 4);
  auto mismatch = scan(other);
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->stop, ScanStop::invalid_page);
  EXPECT_TRUE(mismatch->stop_detail.starts_with("invalid contrecord length 4 (expected "));
}

TEST(WalRecords, RecordSpanningSegmentsIsCountedWhereItEnds) {
  WalWriter wal;
  wal.pad_to(k_seg1 + k_segment - 4096);
  const auto spanning = wal.commit(k_t0, 1200, 3000);  // ~12 KB: 4 KB here, 8 KB in segment 2
  const auto after = wal.commit(k_t0 + 1, 1201);
  const auto later = wal.abort(k_t0 + 2, 1202);
  const auto seg1 = wal.segment(k_seg1);
  const auto seg2 = wal.segment(k_seg1 + k_segment);

  std::vector<XactEvent> first_events;
  auto first = scan(seg1, &first_events);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->stop, ScanStop::segment_end) << first->stop_detail;
  EXPECT_EQ(first->stop_lsn, k_seg1 + k_segment);
  EXPECT_TRUE(first_events.empty());
  EXPECT_EQ(first->carry_lsn, spanning);
  EXPECT_EQ(first->carry.size(), 4096U);
  EXPECT_FALSE(first->carry_too_large);
  EXPECT_LT(first->end_lsn, spanning + 8);

  std::vector<XactEvent> events;
  auto second = scan_segment(seg2, first->carry, first->carry_lsn, "000000010000000000000002",
                             [&](const XactEvent& event) { events.push_back(event); });
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(second->carry_in_completed);
  EXPECT_FALSE(second->carry_in_abandoned);
  EXPECT_EQ(second->skipped_bytes, 0U);
  EXPECT_EQ(second->records, 3U);
  const std::vector<XactEvent> expected = {
      {spanning, true, false, k_t0, 1200}, {after, true, false, k_t0 + 1, 1201}, {later, false, false, k_t0 + 2, 1202}};
  EXPECT_EQ(events, expected);
  EXPECT_EQ(second->first_xact_time, k_t0);

  // Without the carry the continuation is skipped by xlp_rem_len and the rest still found.
  std::vector<XactEvent> alone_events;
  auto alone = scan_segment(seg2, {}, 0, "000000010000000000000002",
                            [&](const XactEvent& event) { alone_events.push_back(event); });
  ASSERT_TRUE(alone);
  EXPECT_FALSE(alone->carry_in_completed);
  EXPECT_EQ(alone->skipped_bytes, 24U + 5U + (8U + 4U + 4U + 3000U * 4U) - 4096U);  // header, long data header, main
  EXPECT_EQ(alone->records, 2U);
  EXPECT_EQ(alone_events, std::vector<XactEvent>(expected.begin() + 1, expected.end()));
  EXPECT_EQ(alone->first_xact_time, k_t0 + 1);

  // A carry that does not continue here is dropped, and the segment walked as if alone.
  auto wrong_carry = first->carry;
  test::store_le<std::uint32_t>(wrong_carry, 0, 24U + 5U + 12016U + 8U);
  std::vector<XactEvent> wrong_events;
  auto wrong = scan_segment(seg2, wrong_carry, first->carry_lsn, "000000010000000000000002",
                            [&](const XactEvent& event) { wrong_events.push_back(event); });
  ASSERT_TRUE(wrong);
  EXPECT_TRUE(wrong->carry_in_abandoned);
  EXPECT_FALSE(wrong->carry_in_completed);
  EXPECT_EQ(wrong->skipped_bytes, alone->skipped_bytes);
  EXPECT_EQ(wrong_events, alone_events);
}

TEST(WalRecords, OverwrittenContrecordIsAbandoned) {
  // After crash recovery found a record cut short, PostgreSQL 15 starts the next page with
  // XLP_FIRST_IS_OVERWRITE_CONTRECORD and an XLOG_OVERWRITE_CONTRECORD record instead.
  WalWriter wal;
  wal.pad_to(k_seg1 + k_block - 200);
  const auto last_complete = wal.commit(k_t0, 10);
  const auto cut = wal.commit(k_t0 + 1, 11, 500);  // would continue on page 2
  ASSERT_GT(cut, last_complete);
  WalWriter page2(k_seg1 + k_block);
  page2.set_prev(last_complete);
  const auto overwrite = page2.add(0, 0xD0, 0, std::vector<std::byte>(16, std::byte{1}));  // XLOG_OVERWRITE_CONTRECORD
  const auto after = page2.commit(k_t0 + 2, 12);
  auto segment = wal.segment(k_seg1);
  const auto replacement = page2.segment(k_seg1 + k_block);
  std::copy_n(replacement.begin(), k_block, segment.begin() + k_block);
  test::store_le<std::uint16_t>(segment, k_block + 2, 0x0008);

  std::vector<XactEvent> events;
  auto result = scan(segment, &events);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->stop, ScanStop::end_of_wal) << result->stop_detail;
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[0].lsn, last_complete);
  EXPECT_EQ(events[1].lsn, after);
  EXPECT_EQ(overwrite, k_seg1 + k_block + k_short_header);

  // The same flag on a segment's first page drops the carry of the cut record.
  WalWriter next_segment(k_seg1 + k_segment);
  next_segment.set_prev(last_complete);
  next_segment.add(0, 0xD0, 0, std::vector<std::byte>(16, std::byte{1}));
  const auto first_commit = next_segment.commit(k_t0 + 3, 13);
  auto seg2 = next_segment.segment(k_seg1 + k_segment);
  test::store_le<std::uint16_t>(seg2, 2, 0x0002 | 0x0008);
  const std::vector<std::byte> carry(segment.begin() + static_cast<std::ptrdiff_t>(cut - k_seg1),
                                     segment.begin() + k_block);  // page 1 is untouched
  std::vector<XactEvent> seg2_events;
  auto second = scan_segment(seg2, carry, cut, "000000010000000000000002",
                             [&](const XactEvent& event) { seg2_events.push_back(event); });
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->carry_in_abandoned);
  EXPECT_FALSE(second->carry_in_completed);
  ASSERT_EQ(seg2_events.size(), 1U);
  EXPECT_EQ(seg2_events[0].lsn, first_commit);
}

TEST(WalRecords, RecordHeaderSplitAcrossSegmentsIsCarried) {
  WalWriter wal;
  wal.pad_to(k_seg1 + k_segment - 8);  // only xl_tot_len and xl_xid fit in segment 1
  const auto split = wal.commit(k_t0, 4711);
  const auto next = wal.abort(k_t0 + 1, 4712);
  const auto seg1 = wal.segment(k_seg1);
  const auto seg2 = wal.segment(k_seg1 + k_segment);

  auto first = scan(seg1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->stop, ScanStop::segment_end) << first->stop_detail;
  EXPECT_EQ(first->carry_lsn, split);
  EXPECT_EQ(first->carry.size(), 8U);

  std::vector<XactEvent> events;
  auto second = scan_segment(seg2, first->carry, first->carry_lsn, "000000010000000000000002",
                             [&](const XactEvent& event) { events.push_back(event); });
  ASSERT_TRUE(second);
  EXPECT_EQ(second->stop, ScanStop::end_of_wal) << second->stop_detail;
  const std::vector<XactEvent> expected = {{split, true, false, k_t0, 4711}, {next, false, false, k_t0 + 1, 4712}};
  EXPECT_EQ(events, expected);

  auto alone = scan_segment(seg2, {}, 0, "000000010000000000000002");
  ASSERT_TRUE(alone);
  EXPECT_EQ(alone->skipped_bytes, 34U - 8U);
  EXPECT_EQ(alone->records, 1U);
  EXPECT_EQ(alone->first_xact_time, k_t0 + 1);
}

TEST(WalRecords, RecordSpanningWholeSegmentsIsCarriedThrough) {
  WalWriter wal;
  wal.pad_to(k_seg1 + k_segment - 1024);
  const std::vector<std::byte> message(2 * k_segment - 100000, std::byte{0x77});
  const auto huge = wal.add(21, 0x00, 0, message);
  const auto after = wal.commit(k_t0, 77);
  const auto seg1 = wal.segment(k_seg1);
  const auto seg2 = wal.segment(k_seg1 + k_segment);
  const auto seg3 = wal.segment(k_seg1 + 2 * k_segment);

  auto first = scan(seg1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->carry_lsn, huge);
  EXPECT_EQ(first->carry.size(), 1024U);

  auto middle = scan_segment(seg2, first->carry, first->carry_lsn, "000000010000000000000002");
  ASSERT_TRUE(middle);
  EXPECT_EQ(middle->stop, ScanStop::segment_end) << middle->stop_detail;
  EXPECT_EQ(middle->records, 0U);
  EXPECT_FALSE(middle->carry_in_completed);
  EXPECT_EQ(middle->carry_lsn, huge);
  EXPECT_EQ(middle->carry.size(), 1024U + k_segment - k_long_header - (k_segment / k_block - 1) * k_short_header);
  EXPECT_EQ(middle->end_lsn, 0U);

  auto middle_alone = scan_segment(seg2, {}, 0, "000000010000000000000002");
  ASSERT_TRUE(middle_alone);
  EXPECT_EQ(middle_alone->records, 0U);
  EXPECT_TRUE(middle_alone->carry.empty());
  EXPECT_EQ(middle_alone->skipped_bytes, middle->carry.size() - 1024U);

  std::vector<XactEvent> events;
  auto last = scan_segment(seg3, middle->carry, middle->carry_lsn, "000000010000000000000003",
                           [&](const XactEvent& event) { events.push_back(event); });
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->carry_in_completed) << to_string(last->stop) << ": " << last->stop_detail;
  EXPECT_EQ(last->records, 2U);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].lsn, after);
}

TEST(WalRecords, SurvivesCorruptionAnywhere) {
  // Random byte flips over records, page headers and continuations: the walk must stop
  // cleanly (sanitizer builds check the bounds), never count more than the clean walk.
  WalWriter wal;
  for (int i = 0; i < 40; ++i) wal.commit(k_t0 + i, static_cast<std::uint32_t>(100 + i), static_cast<std::uint32_t>(i * 3));
  wal.pad_to(k_seg1 + 5 * k_block - 16);
  wal.commit(k_t0 + 100, 999, 2000);
  const auto clean = wal.segment(k_seg1);
  auto reference = scan(clean);
  ASSERT_TRUE(reference);
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245U + 12345U; };
  for (int round = 0; round < 1500; ++round) {
    auto segment = clean;
    const std::size_t flips = 1 + next() % 4;
    for (std::size_t f = 0; f < flips; ++f) {
      const std::size_t at = 40 + next() % (6 * k_block - 40);
      segment[at] ^= static_cast<std::byte>(1U << (next() % 8));
    }
    auto result = scan(segment);
    ASSERT_TRUE(result);
    EXPECT_LE(result->records, reference->records);
  }
}

TEST(WalRecords, RefusesWhatIsNotAWholeSegment) {
  WalWriter wal;
  wal.commit(k_t0, 1);
  auto segment = wal.segment(k_seg1);
  auto short_span = std::span<const std::byte>(segment).first(k_segment / 2);
  auto truncated = scan(short_span);
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().kind, ErrorKind::refused);
  EXPECT_EQ(truncated.error().message,
            "unable to walk WAL file '000000010000000000000001': size is 524288 bytes but its header says "
            "segments are 1048576 bytes (torn or truncated copy?)");

  test::store_le<std::uint16_t>(segment, 0, 0x1234);
  auto foreign = scan(segment);
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().message, "unable to walk WAL file '000000010000000000000001': unknown WAL magic 0x1234 (not a WAL file of "
            "PostgreSQL 12 to 17)");

  auto tiny = scan(std::span<const std::byte>(segment).first(10));
  ASSERT_FALSE(tiny);
  EXPECT_EQ(tiny.error().kind, ErrorKind::refused);
}


// --- real PostgreSQL 15 WAL, compared with pg_waldump ---

constexpr const char* k_pg_bin = "/usr/lib/postgresql/15/bin";

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buffer[65536];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string as_postgres(const std::string& command) { return "runuser -u postgres -- " + command; }

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  ::close(fd);
  return port;
}

// One record as pg_waldump prints it.
struct DumpRecord {
  std::string rmgr;
  std::uint32_t total = 0;
  std::uint32_t xid = 0;
  std::uint64_t lsn = 0;
  std::string desc;
};

std::uint64_t number_after(const std::string& line, const std::string& label, std::size_t from = 0) {
  std::size_t at = line.find(label, from);
  if (at == std::string::npos) throw std::runtime_error("no '" + label + "' in pg_waldump line: " + line.substr(0, 200));
  at += label.size();
  while (at < line.size() && line[at] == ' ') ++at;
  return std::stoull(line.substr(at, 12));
}

std::vector<DumpRecord> parse_waldump(const std::string& output) {
  std::vector<DumpRecord> records;
  std::size_t start = 0;
  while (start < output.size()) {
    std::size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    const std::string line = output.substr(start, end - start);
    start = end + 1;
    if (!line.starts_with("rmgr: ")) continue;
    DumpRecord record;
    record.rmgr = line.substr(6, line.find(' ', 6) - 6);
    const std::size_t slash = line.find('/', line.find("len (rec/tot):") + 14);
    record.total = static_cast<std::uint32_t>(number_after(line, "/", slash));
    record.xid = static_cast<std::uint32_t>(number_after(line, "tx:"));
    const std::size_t lsn_at = line.find("lsn: ") + 5;
    record.lsn = *parse_lsn(line.substr(lsn_at, line.find(',', lsn_at) - lsn_at));
    const std::size_t desc_at = line.find("desc: ", lsn_at);
    record.desc = desc_at == std::string::npos ? "" : line.substr(desc_at + 6, 300);
    records.push_back(std::move(record));
  }
  return records;
}

// The LSN just past a record of `total` bytes starting at `lsn` (page headers skipped).
std::uint64_t record_end(std::uint64_t lsn, std::uint64_t total) {
  std::uint64_t pos = lsn;
  while (total > 0) {
    if (pos % k_block == 0) pos += pos % k_segment == 0 ? k_long_header : k_short_header;
    const std::uint64_t take = std::min<std::uint64_t>(k_block - pos % k_block, total);
    pos += take;
    total -= take;
  }
  return pos;
}

// pg_waldump's commit/abort records as events with their time as text:
// "COMMIT 2026-11-24 09:30:01.123456 UTC; ...", "COMMIT_PREPARED 725: 2026-...".
struct DumpEvent {
  XactEvent event;  // xact_time_us unset
  std::string time;  // RFC 3339, converted from pg_waldump's text
};
std::optional<DumpEvent> dump_event(const DumpRecord& record) {
  if (record.rmgr != "Transaction") return std::nullopt;
  const std::string word = record.desc.substr(0, record.desc.find(' '));
  DumpEvent out;
  out.event.lsn = record.lsn;
  out.event.xid = record.xid;
  if (word == "COMMIT" || word == "COMMIT_PREPARED") out.event.commit = true;
  else if (word != "ABORT" && word != "ABORT_PREPARED") return std::nullopt;
  out.event.prepared = word.ends_with("_PREPARED");
  std::string rest = record.desc.substr(word.size() + 1);
  if (out.event.prepared) {
    out.event.xid = static_cast<std::uint32_t>(std::stoul(rest));
    rest = rest.substr(rest.find(": ") + 2);
  }
  // "YYYY-MM-DD HH:MM:SS.ffffff UTC"
  if (rest.size() < 30 || rest.substr(26, 4) != " UTC") throw std::runtime_error("unexpected desc: " + record.desc);
  out.time = rest.substr(0, 10) + "T" + rest.substr(11, 15) + "Z";
  return out;
}

// Generates WAL once per run: a PostgreSQL 15 cluster with 1 MiB segments archiving by cp.
class WalRecordsPostgres : public ::testing::Test {
 protected:
  struct Cluster {
    std::unique_ptr<test::TempDir> dir;
    std::string archive;
    std::vector<std::string> segments;  // archived segment names, ascending
    std::vector<DumpRecord> dump;       // pg_waldump over all of them
    std::string skip_reason;
    std::string error;
  };

  static Cluster& cluster() {
    static Cluster instance;
    return instance;
  }

  static void SetUpTestSuite() {
    Cluster& c = cluster();
    if (::geteuid() != 0) {
      c.skip_reason = "needs root to run PostgreSQL as the postgres user";
      return;
    }
    struct stat st {};
    if (::stat((std::string(k_pg_bin) + "/initdb").c_str(), &st) != 0) {
      c.skip_reason = std::string("no PostgreSQL 15 binaries in ") + k_pg_bin;
      return;
    }
    const passwd* postgres = ::getpwnam("postgres");
    if (!postgres) {
      c.skip_reason = "no postgres user";
      return;
    }
    try {
      c.error = generate(c, postgres->pw_uid, postgres->pw_gid);
    } catch (const std::exception& e) {
      c.error = e.what();
    }
  }

  static void TearDownTestSuite() { cluster().dir.reset(); }

  void SetUp() override {
    if (!cluster().skip_reason.empty()) GTEST_SKIP() << cluster().skip_reason;
    ASSERT_EQ(cluster().error, "");
  }

  static std::string workload() {
    std::string sql = "SET synchronous_commit = off;\n"
                      "CREATE TABLE t (id int PRIMARY KEY, v text);\n"
                      "CREATE TABLE big (id int);\n";
    for (int i = 1; i <= 200; ++i) sql += "INSERT INTO t VALUES (" + std::to_string(i) + ", 'row');\n";
    for (int i = 1; i <= 30; ++i)
      sql += "BEGIN; INSERT INTO t VALUES (" + std::to_string(100000 + i) + ", 'aborted'); ROLLBACK;\n";
    for (int i = 1; i <= 10; ++i)  // a subtransaction abort record, then the commit
      sql += "BEGIN; INSERT INTO t VALUES (" + std::to_string(200000 + i) + ", 's'); SAVEPOINT s; INSERT INTO t VALUES (" +
             std::to_string(300000 + i) + ", 's'); ROLLBACK TO SAVEPOINT s; COMMIT;\n";
    sql += "BEGIN; INSERT INTO t VALUES (400001, 'p'); PREPARE TRANSACTION 'walvault_p1'; COMMIT PREPARED 'walvault_p1';\n"
           "BEGIN; INSERT INTO t VALUES (400002, 'p'); PREPARE TRANSACTION 'walvault_p2'; ROLLBACK PREPARED 'walvault_p2';\n"
           "CHECKPOINT;\n"
           "UPDATE t SET v = v || '!' WHERE id % 7 = 0;\n"  // full-page images, pglz-compressed
           "SELECT pg_switch_wal();\n"
           "SET wal_compression = off;\n"
           "CHECKPOINT;\n"
           "UPDATE t SET v = v || '?' WHERE id % 5 = 0;\n";  // uncompressed images with holes
    // A commit record with 3000 subtransactions (12 KB), placed to start ~6 KB before a
    // segment boundary by a non-transactional logical message sized from the insert position.
    sql += "BEGIN;\n"
           "DO $$ BEGIN FOR i IN 1..3000 LOOP BEGIN INSERT INTO big VALUES (i); "
           "EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$;\n"
           "SELECT pg_logical_emit_message(false, 'walvault-pad', repeat('x', r - 6000 - 24 * (r / 8192 + 2) - 64))\n"
           "  FROM (SELECT CASE WHEN r0 > 14000 THEN r0 ELSE r0 + 1048576 END AS r\n"
           "          FROM (SELECT 1048576 - ((pg_current_wal_insert_lsn() - '0/0'::pg_lsn) % 1048576)::int AS r0) s) p;\n"
           "COMMIT;\n";
    // A record spanning more than two whole segments.
    sql += "SELECT pg_logical_emit_message(false, 'walvault-big', repeat('y', 2500000));\n";
    for (int i = 1; i <= 150; ++i) {
      sql += "INSERT INTO t VALUES (" + std::to_string(500000 + i) + ", 'more');\n";
      if (i % 10 == 0) sql += "BEGIN; INSERT INTO t VALUES (" + std::to_string(600000 + i) + ", 'no'); ROLLBACK;\n";
    }
    sql += "SELECT pg_switch_wal();\n";
    for (int i = 1; i <= 50; ++i) sql += "INSERT INTO t VALUES (" + std::to_string(700000 + i) + ", 'last');\n";
    return sql;
  }

  static std::string generate(Cluster& c, uid_t uid, gid_t gid) {
    c.dir = std::make_unique<test::TempDir>("walvault-walrecords");
    const std::string root = c.dir->path();
    const std::string data = root + "/data";
    c.archive = root + "/archive";
    if (::mkdir(c.archive.c_str(), 0700) != 0) return "mkdir " + c.archive + " failed";
    if (::chown(root.c_str(), uid, gid) != 0 || ::chown(c.archive.c_str(), uid, gid) != 0) return "chown failed";
    const std::string bin = k_pg_bin;

    auto initdb = run(as_postgres(bin + "/initdb -D " + data + " --wal-segsize=1 -A trust -U postgres --no-sync"));
    if (initdb.status != 0) return "initdb failed: " + initdb.output;
    const int port = free_loopback_port();
    test::write_text_file(root + "/extra.conf",
                          "listen_addresses = '127.0.0.1'\n"
                          "port = " + std::to_string(port) + "\n"
                          "unix_socket_directories = '" + root + "'\n"
                          "archive_mode = on\n"
                          "archive_command = 'cp %p " + c.archive + "/%f'\n"
                          "max_prepared_transactions = 4\n"
                          "wal_compression = pglz\n"
                          "autovacuum = off\n"
                          "fsync = off\n");
    auto conf = run("cat " + root + "/extra.conf >> " + data + "/postgresql.conf");
    if (conf.status != 0) return "configuring failed: " + conf.output;

    auto start = run(as_postgres(bin + "/pg_ctl -D " + data + " -l " + root + "/server.log -w -t 60 start"));
    if (start.status != 0) return "pg_ctl start failed: " + start.output + run("cat " + root + "/server.log").output;
    struct Stopper {
      std::string command;
      ~Stopper() { run(command); }
    } stopper{as_postgres(bin + "/pg_ctl -D " + data + " -m fast -w stop")};

    test::write_text_file(root + "/workload.sql", workload());
    const std::string psql = bin + "/psql -X -q -v ON_ERROR_STOP=1 -h " + root + " -p " + std::to_string(port) + " -d postgres";
    auto load = run(as_postgres(psql + " -f " + root + "/workload.sql > /dev/null"));
    if (load.status != 0) return "workload failed: " + load.output;
    auto last = run(as_postgres(psql + " -At -c \"SELECT pg_walfile_name(pg_switch_wal())\""));
    if (last.status != 0) return "pg_switch_wal failed: " + last.output;
    const std::string last_name = last.output.substr(0, 24);
    struct stat st {};
    for (int i = 0; i < 300 && ::stat((c.archive + "/" + last_name).c_str(), &st) != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (::stat((c.archive + "/" + last_name).c_str(), &st) != 0) return "segment " + last_name + " was not archived";

    for (const auto& name : test::walk_tree(c.archive))
      if (auto parsed = parse_wal_name(name); parsed && parsed->kind == WalFileKind::segment) c.segments.push_back(name);
    std::sort(c.segments.begin(), c.segments.end());
    if (c.segments.size() < 5) return "only " + std::to_string(c.segments.size()) + " segments archived";

    auto dump = run("TZ=UTC " + bin + "/pg_waldump -p " + c.archive + " " + c.segments.front() + " " + c.segments.back());
    if (dump.status != 0) return "pg_waldump failed: " + dump.output.substr(0, 2000);
    c.dump = parse_waldump(dump.output);
    return "";
  }

  static std::vector<std::byte> segment_bytes(const std::string& name) {
    return test::read_bytes_file(cluster().archive + "/" + name);
  }
  static std::uint64_t segment_start(const std::string& name) {
    return segment_start_lsn(*parse_wal_name(name), k_segment);
  }
  // pg_waldump's records whose last byte is in segment `name`: the attribution rule.
  static std::vector<DumpRecord> dumped_ending_in(const std::string& name) {
    std::vector<DumpRecord> out;
    const std::uint64_t start = segment_start(name);
    for (const auto& record : cluster().dump) {
      const std::uint64_t last_byte = record_end(record.lsn, record.total) - 1;
      if (last_byte >= start && last_byte < start + k_segment) out.push_back(record);
    }
    return out;
  }
  // The record of pg_waldump's matching `pred` whose first and last bytes are in different segments.
  template <typename Pred>
  static std::optional<DumpRecord> spanning(Pred pred) {
    for (const auto& record : cluster().dump)
      if (pred(record) && record.lsn / k_segment != (record_end(record.lsn, record.total) - 1) / k_segment) return record;
    return std::nullopt;
  }
};

TEST_F(WalRecordsPostgres, MatchesPgWaldumpForEverySegment) {
  std::vector<std::byte> carry;
  std::uint64_t carry_lsn = 0;
  std::size_t total_events = 0, aborts = 0, prepared = 0;
  for (const auto& name : cluster().segments) {
    SCOPED_TRACE(name);
    const auto content = segment_bytes(name);
    std::vector<XactEvent> ours;
    auto result = scan_segment(content, carry, carry_lsn, name, [&](const XactEvent& e) { ours.push_back(e); });
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_TRUE(result->stop == ScanStop::segment_end || result->stop == ScanStop::switch_record)
        << to_string(result->stop) << ": " << result->stop_detail;
    EXPECT_FALSE(result->carry_in_abandoned);
    EXPECT_EQ(result->timeline, 1U);

    const auto theirs = dumped_ending_in(name);
    EXPECT_EQ(result->records, theirs.size());
    std::vector<DumpEvent> expected;
    for (const auto& record : theirs)
      if (auto event = dump_event(record)) expected.push_back(*event);
    ASSERT_EQ(ours.size(), expected.size());
    EXPECT_EQ(result->xact_records, expected.size());
    for (std::size_t i = 0; i < ours.size(); ++i) {
      SCOPED_TRACE(format_lsn(ours[i].lsn));
      EXPECT_EQ(ours[i].lsn, expected[i].event.lsn);
      EXPECT_EQ(ours[i].commit, expected[i].event.commit);
      EXPECT_EQ(ours[i].prepared, expected[i].event.prepared);
      EXPECT_EQ(ours[i].xid, expected[i].event.xid);
      EXPECT_EQ(format_timestamp_utc(ours[i].xact_time_us), expected[i].time);
      aborts += ours[i].commit ? 0 : 1;
      prepared += ours[i].prepared ? 1 : 0;
    }
    if (expected.empty()) {
      EXPECT_FALSE(result->first_xact_time);
      EXPECT_FALSE(result->last_xact_time);
    } else {
      ASSERT_TRUE(result->first_xact_time && result->last_xact_time);
      EXPECT_EQ(format_timestamp_utc(*result->first_xact_time), expected.front().time);
      EXPECT_EQ(format_timestamp_utc(*result->last_xact_time), expected.back().time);
    }
    if (!theirs.empty()) {
      EXPECT_EQ(result->last_record_lsn, theirs.back().lsn);
      EXPECT_EQ(result->end_lsn, record_end(theirs.back().lsn, theirs.back().total));
    }
    total_events += ours.size();
    carry = std::move(result->carry);
    carry_lsn = result->carry_lsn;
  }
  EXPECT_GE(total_events, 450U);
  EXPECT_GE(aborts, 45U);  // 30 + 10 subtransactions + 15 later + 1 prepared
  EXPECT_EQ(prepared, 2U);
}

TEST_F(WalRecordsPostgres, CommitSpanningSegmentsNeedsTheCarry) {
  const auto big = spanning([](const DumpRecord& r) {
    return r.rmgr == "Transaction" && r.desc.starts_with("COMMIT ") && r.total > 12000;
  });
  ASSERT_TRUE(big) << "the workload did not place its 3000-subtransaction commit across a segment boundary";
  const std::string first_name = format_wal_name(segment_from_number(1, big->lsn / k_segment, k_segment));
  const std::string second_name = format_wal_name(segment_from_number(1, big->lsn / k_segment + 1, k_segment));
  const auto first_content = segment_bytes(first_name);
  const auto second_content = segment_bytes(second_name);

  // The segment before is walked alone: its first record may continue from yet another one.
  auto first = scan_segment(first_content, {}, 0, first_name);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->stop, ScanStop::segment_end) << first->stop_detail;
  ASSERT_EQ(first->carry_lsn, big->lsn);
  EXPECT_LT(first->carry.size(), big->total);

  std::vector<XactEvent> with_carry;
  auto second = scan_segment(second_content, first->carry, first->carry_lsn, second_name,
                             [&](const XactEvent& e) { with_carry.push_back(e); });
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(second->carry_in_completed);
  ASSERT_FALSE(with_carry.empty());
  EXPECT_EQ(with_carry.front().lsn, big->lsn);
  EXPECT_EQ(with_carry.front().xid, big->xid);
  EXPECT_EQ(format_timestamp_utc(*second->first_xact_time), dump_event(*big)->time);

  std::vector<XactEvent> alone;
  auto skipped = scan_segment(second_content, {}, 0, second_name, [&](const XactEvent& e) { alone.push_back(e); });
  ASSERT_TRUE(skipped) << skipped.error().message;
  EXPECT_FALSE(skipped->carry_in_completed);
  EXPECT_EQ(skipped->skipped_bytes, big->total - first->carry.size());
  EXPECT_EQ(skipped->records + 1, second->records);
  EXPECT_EQ(skipped->xact_records + 1, second->xact_records);
  EXPECT_EQ(alone, std::vector<XactEvent>(with_carry.begin() + 1, with_carry.end()));
  EXPECT_EQ(skipped->last_xact_time, alone.empty() ? std::nullopt : second->last_xact_time);
  EXPECT_EQ(skipped->stop, second->stop);
}

TEST_F(WalRecordsPostgres, MessageSpanningWholeSegmentsIsCarriedThrough) {
  const auto message = spanning([](const DumpRecord& r) { return r.rmgr == "LogicalMessage" && r.total > 2000000; });
  ASSERT_TRUE(message);
  const std::uint64_t first_segno = message->lsn / k_segment;
  const std::uint64_t last_segno = (record_end(message->lsn, message->total) - 1) / k_segment;
  ASSERT_GE(last_segno, first_segno + 2);

  auto first_name = format_wal_name(segment_from_number(1, first_segno, k_segment));
  auto scan_result = scan_segment(segment_bytes(first_name), {}, 0, first_name);
  ASSERT_TRUE(scan_result);
  std::vector<std::byte> carry = std::move(scan_result->carry);
  EXPECT_EQ(scan_result->carry_lsn, message->lsn);
  for (std::uint64_t segno = first_segno + 1; segno < last_segno; ++segno) {
    const auto name = format_wal_name(segment_from_number(1, segno, k_segment));
    const auto content = segment_bytes(name);
    auto middle = scan_segment(content, carry, message->lsn, name);
    ASSERT_TRUE(middle);
    EXPECT_EQ(middle->records, 0U);
    EXPECT_EQ(middle->carry_lsn, message->lsn);
    EXPECT_GT(middle->carry.size(), carry.size());
    auto alone = scan_segment(content, {}, 0, name);
    ASSERT_TRUE(alone);
    EXPECT_EQ(alone->records, 0U);
    EXPECT_EQ(alone->skipped_bytes, middle->carry.size() - carry.size());
    EXPECT_TRUE(alone->carry.empty());
    carry = std::move(middle->carry);
  }
  const auto last_name = format_wal_name(segment_from_number(1, last_segno, k_segment));
  auto last = scan_segment(segment_bytes(last_name), carry, message->lsn, last_name);
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->carry_in_completed);
  EXPECT_TRUE(last->stop == ScanStop::segment_end || last->stop == ScanStop::switch_record) << last->stop_detail;
}

TEST_F(WalRecordsPostgres, CorruptionInARealSegmentStopsTheWalk) {
  // The segment with the most commits; flip one byte in the middle of its 10th commit record.
  const std::string name = cluster().segments.back();
  auto content = segment_bytes(name);
  std::vector<XactEvent> events;
  auto clean = scan_segment(content, {}, 0, name, [&](const XactEvent& e) { events.push_back(e); });
  ASSERT_TRUE(clean);
  ASSERT_GE(events.size(), 20U);
  const std::uint64_t victim = events[9].lsn;
  content[victim - segment_start(name) + 26] ^= std::byte{0x10};  // inside the commit time
  auto broken = scan_segment(content, {}, 0, name);
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->stop, ScanStop::invalid_record);
  EXPECT_EQ(broken->stop_lsn, victim);
  EXPECT_EQ(broken->stop_detail, "incorrect resource manager data checksum in record at " + format_lsn(victim));
  EXPECT_EQ(broken->xact_records, 9U);
  EXPECT_EQ(broken->last_xact_time, events[8].xact_time_us);
}

}  // namespace
}  // namespace walvault

// The hardware and the table versions must agree on every length and alignment.
TEST(WalRecordsCrc, HardwareAndPortableAgree) {
  std::vector<std::byte> data(3 * 4096 * 3 + 100);  // room for the largest start + length below
  std::uint32_t x = 12345;
  for (auto& b : data) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::byte>(x >> 16);
  }
  for (std::size_t start : {0u, 1u, 3u, 7u})
    for (std::size_t length : {0u, 1u, 7u, 8u, 9u, 63u, 4096u, 3u * 4096u - 1u, 3u * 4096u, 3u * 4096u + 9u, 9u * 4096u + 77u}) {
      const auto piece = std::span<const std::byte>(data).subspan(start, length);
      EXPECT_EQ(walvault::crc32c_update(0xFFFFFFFFu, piece), walvault::crc32c_update_portable(0xFFFFFFFFu, piece))
          << "start " << start << " length " << length;
    }
}
