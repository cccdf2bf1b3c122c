#include "common/base/wal_name.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace walvault {
namespace {

std::vector<std::uint64_t> all_segment_sizes() {
  std::vector<std::uint64_t> sizes;
  for (std::uint64_t size = k_min_segment_size; size <= k_max_segment_size; size <<= 1) sizes.push_back(size);
  return sizes;
}

WalName seg(std::uint32_t timeline, std::uint32_t log, std::uint32_t segment) {
  return WalName{WalFileKind::segment, timeline, log, segment, 0};
}

TEST(WalName, ParsesSegment) {
  auto name = parse_wal_name("0000000A000000FF000000FE");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->kind, WalFileKind::segment);
  EXPECT_EQ(name->timeline, 10u);
  EXPECT_EQ(name->log, 0xFFu);
  EXPECT_EQ(name->seg, 0xFEu);
  EXPECT_EQ(name->backup_offset, 0u);
}

TEST(WalName, ParsesHistory) {
  auto name = parse_wal_name("0000001F.history");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->kind, WalFileKind::history);
  EXPECT_EQ(name->timeline, 0x1Fu);
  EXPECT_EQ(name->log, 0u);
  EXPECT_EQ(name->seg, 0u);
}

TEST(WalName, ParsesPartial) {
  auto name = parse_wal_name("000000020000000100000003.partial");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->kind, WalFileKind::partial);
  EXPECT_EQ(name->timeline, 2u);
  EXPECT_EQ(name->log, 1u);
  EXPECT_EQ(name->seg, 3u);
}

TEST(WalName, ParsesBackupWithOffset) {
  auto name = parse_wal_name("000000010000000000000002.00000028.backup");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->kind, WalFileKind::backup);
  EXPECT_EQ(name->timeline, 1u);
  EXPECT_EQ(name->log, 0u);
  EXPECT_EQ(name->seg, 2u);
  EXPECT_EQ(name->backup_offset, 0x28u);
}

TEST(WalName, RoundTripsEveryForm) {
  const std::vector<std::string> names = {
      "000000010000000000000001",
      "FFFFFFFFFFFFFFFFFFFFFFFF",
      "0000000A0000ABCD000000FF",
      "00000001.history",
      "FFFFFFFF.history",
      "000000030000000200000001.partial",
      "000000010000000000000002.00000028.backup",
      "0000000100000000000000FF.00FFFFF8.backup",
  };
  for (const auto& text : names) {
    auto name = parse_wal_name(text);
    ASSERT_TRUE(name) << text;
    EXPECT_EQ(format_wal_name(*name), text);
  }
}

TEST(WalName, FormatsUpperCaseZeroPadded) {
  EXPECT_EQ(format_wal_name(seg(1, 0xab, 0xc)), "00000001000000AB0000000C");
  EXPECT_EQ(format_wal_name(WalName{WalFileKind::history, 0x2a, 0, 0, 0}), "0000002A.history");
  EXPECT_EQ(format_wal_name(WalName{WalFileKind::partial, 2, 0, 0xff, 0}), "0000000200000000000000FF.partial");
  EXPECT_EQ(format_wal_name(WalName{WalFileKind::backup, 1, 0, 2, 0x28}), "000000010000000000000002.00000028.backup");
}

TEST(WalName, KindNames) {
  EXPECT_EQ(to_string(WalFileKind::segment), "segment");
  EXPECT_EQ(to_string(WalFileKind::history), "history");
  EXPECT_EQ(to_string(WalFileKind::partial), "partial");
  EXPECT_EQ(to_string(WalFileKind::backup), "backup");
}

TEST(WalName, SegmentPart) {
  EXPECT_EQ(segment_part(*parse_wal_name("000000010000000000000002.00000028.backup")), "000000010000000000000002");
  EXPECT_EQ(segment_part(*parse_wal_name("000000030000000200000001.partial")), "000000030000000200000001");
  EXPECT_FALSE(segment_part(*parse_wal_name("00000002.history")));
}

TEST(WalName, RefusesEverythingElse) {
  const std::vector<std::string> bad = {
      "",
      "0000000a0000000000000001",                       // lower-case hex
      std::string("000000010000000000000001").substr(0, 23),  // 23 digits
      "0000000100000000000000011",                      // 25 digits
      "000000000000000000000001",                       // timeline 0
      "00000000.history",                               // timeline 0
      "00000000000000000000001.partial",                // short segment in .partial
      "000000000000000000000001.partial",               // timeline 0
      "000000000000000000000001.00000028.backup",       // timeline 0
      "000000010000000000000001x",                      // extra char
      "x000000010000000000000001",                      // leading char
      "000000010000000000000001.partialx",
      "000000010000000000000001.partial ",
      "000000010000000000000001.backup",                // no offset
      "000000010000000000000001.0000028.backup",        // short offset
      "000000010000000000000001.0000002g.backup",       // non-hex offset
      "000000010000000000000001.0000002a.backup",       // lower-case offset
      "000000010000000000000001_00000028.backup",       // wrong separator
      "000000010000000000000001.00000028.backupx",
      "00000001.HISTORY",
      "0000001.history",
      "000000001.history",
      "0000000g.history",
      ".history",
      "00000001history1",
      "0000000G0000000000000001",                       // G is not hex
      "00000001 000000000000001",                       // space
      "-00000010000000000000001",
      "+00000010000000000000001",
      "../../etc/passwd",
      "/etc/passwd",
      "/00000001000000000000001",                       // 24 chars, starts with '/'
      "/var/lib/postgresql/pg_wal/000000010000000000000001",
      "pg_wal/000000010000000000000001",
      "./000000010000000000000001",
      "000000010000000000000001/",
      std::string(200, '0'),
      std::string(200, 'A') + ".history",
      "000000010000000000000001" + std::string(176, '0'),
  };
  for (const auto& text : bad) EXPECT_FALSE(parse_wal_name(text)) << "accepted '" << text << "'";
}

TEST(WalName, RefusesEmbeddedNul) {
  std::string text = "000000010000000000000001";
  text[10] = '\0';
  EXPECT_FALSE(parse_wal_name(text));
  std::string history = "00000001.history";
  history[3] = '\0';
  EXPECT_FALSE(parse_wal_name(history));
}

TEST(WalName, ValidSegmentSizes) {
  for (std::uint64_t size : all_segment_sizes()) EXPECT_TRUE(is_valid_segment_size(size)) << size;
  EXPECT_EQ(all_segment_sizes().size(), 11u);
  for (std::uint64_t size : std::initializer_list<std::uint64_t>{0ULL, 1ULL, 512ULL * 1024, (1ULL << 20) - 1, (1ULL << 20) + 1, 3ULL << 20, 24ULL << 20,
                             (1ULL << 30) + 1, 1ULL << 31, 1ULL << 32, ~0ULL})
    EXPECT_FALSE(is_valid_segment_size(size)) << size;
}

TEST(WalName, SegmentsPerLogForEverySize) {
  EXPECT_EQ(segments_per_log(16 * k_min_segment_size), 256u);
  EXPECT_EQ(segments_per_log(k_min_segment_size), 4096u);
  EXPECT_EQ(segments_per_log(k_max_segment_size), 4u);
  for (std::uint64_t size : all_segment_sizes()) EXPECT_EQ(segments_per_log(size) * size, 0x100000000ULL) << size;
}

TEST(WalName, SixteenMiBBoundary) {
  const std::uint64_t size = 16ULL << 20;
  auto last = *parse_wal_name("0000000100000000000000FF");
  auto next = next_segment(last, size);
  ASSERT_TRUE(next);
  EXPECT_EQ(format_wal_name(*next), "000000010000000100000000");
  auto back = previous_segment(*next, size);
  ASSERT_TRUE(back);
  EXPECT_EQ(format_wal_name(*back), "0000000100000000000000FF");
  EXPECT_EQ(format_wal_name(*next_segment(*parse_wal_name("000000010000000000000001"), size)), "000000010000000000000002");
  EXPECT_EQ(segment_start_lsn(*next, size), 0x100000000ULL);
  EXPECT_FALSE(segment_fits_size(*parse_wal_name("000000010000000000000100"), size));
}

TEST(WalName, OneGiBBoundary) {
  const std::uint64_t size = 1ULL << 30;
  auto third = *parse_wal_name("000000010000000000000003");
  auto next = next_segment(third, size);
  ASSERT_TRUE(next);
  EXPECT_EQ(format_wal_name(*next), "000000010000000100000000");
  EXPECT_EQ(format_wal_name(*previous_segment(*next, size)), "000000010000000000000003");
  EXPECT_FALSE(segment_fits_size(*parse_wal_name("000000010000000000000004"), size));
  EXPECT_TRUE(segment_fits_size(third, size));
}

TEST(WalName, NeighboursAcrossLogBoundaryForEverySize) {
  for (std::uint64_t size : all_segment_sizes()) {
    SCOPED_TRACE("segment size " + std::to_string(size));
    const auto per_log = static_cast<std::uint32_t>(segments_per_log(size));
    for (std::uint32_t log : {0u, 1u, 0x7Fu, 0xFFFFFFFEu}) {
      const WalName last = seg(7, log, per_log - 1);
      auto next = next_segment(last, size);
      ASSERT_TRUE(next);
      EXPECT_EQ(*next, seg(7, log + 1, 0));
      auto back = previous_segment(*next, size);
      ASSERT_TRUE(back);
      EXPECT_EQ(*back, last);
      EXPECT_EQ(segment_number(*next, size), segment_number(last, size) + 1);
      EXPECT_EQ(segment_start_lsn(*next, size), static_cast<std::uint64_t>(log + 1ULL) << 32);
      EXPECT_EQ(segment_start_lsn(last, size), (static_cast<std::uint64_t>(log + 1ULL) << 32) - size);
    }
    // Inside a log id.
    if (per_log > 2) {
      EXPECT_EQ(*next_segment(seg(3, 5, 0), size), seg(3, 5, 1));
      EXPECT_EQ(*previous_segment(seg(3, 5, 1), size), seg(3, 5, 0));
    }
    // Neighbours keep the timeline and yield segments.
    auto n = next_segment(seg(0xFFFFFFFFu, 0, 0), size);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->timeline, 0xFFFFFFFFu);
    EXPECT_EQ(n->kind, WalFileKind::segment);
  }
}

TEST(WalName, EndsOfAddressSpaceForEverySize) {
  for (std::uint64_t size : all_segment_sizes()) {
    SCOPED_TRACE("segment size " + std::to_string(size));
    const auto per_log = static_cast<std::uint32_t>(segments_per_log(size));
    const WalName very_last = seg(1, 0xFFFFFFFFu, per_log - 1);
    EXPECT_TRUE(segment_fits_size(very_last, size));
    EXPECT_FALSE(next_segment(very_last, size));
    auto before = previous_segment(very_last, size);
    ASSERT_TRUE(before);
    EXPECT_EQ(*next_segment(*before, size), very_last);
    EXPECT_EQ(segment_start_lsn(very_last, size), ~0ULL - size + 1);

    const WalName first = seg(1, 0, 0);
    EXPECT_FALSE(previous_segment(first, size));
    EXPECT_EQ(segment_number(first, size), 0u);
    EXPECT_EQ(*next_segment(first, size), seg(1, 0, 1));
  }
}

TEST(WalName, SegmentNumberRoundTripForEverySize) {
  for (std::uint64_t size : all_segment_sizes()) {
    SCOPED_TRACE("segment size " + std::to_string(size));
    const std::uint64_t per_log = segments_per_log(size);
    const std::uint64_t max_segno = ~0ULL / size;
    for (std::uint64_t segno : std::initializer_list<std::uint64_t>{0ULL, 1ULL, per_log - 1, per_log, per_log + 1, 12345ULL * per_log + 7,
                                max_segno - 1, max_segno}) {
      const WalName name = segment_from_number(42, segno, size);
      EXPECT_EQ(name.timeline, 42u);
      EXPECT_EQ(name.kind, WalFileKind::segment);
      EXPECT_TRUE(segment_fits_size(name, size)) << segno;
      EXPECT_EQ(segment_number(name, size), segno);
      EXPECT_EQ(segment_start_lsn(name, size), segno * size);
      EXPECT_EQ(name.log, static_cast<std::uint32_t>((segno * size) >> 32));
      // The name survives a trip through its text form.
      EXPECT_EQ(*parse_wal_name(format_wal_name(name)), name);
    }
    EXPECT_EQ(segment_from_number(1, max_segno, size), seg(1, 0xFFFFFFFFu, static_cast<std::uint32_t>(per_log - 1)));
  }
}

TEST(WalName, SegmentFitsSizeForEverySize) {
  for (std::uint64_t size : all_segment_sizes()) {
    SCOPED_TRACE("segment size " + std::to_string(size));
    const auto per_log = static_cast<std::uint32_t>(segments_per_log(size));
    EXPECT_TRUE(segment_fits_size(seg(1, 9, 0), size));
    EXPECT_TRUE(segment_fits_size(seg(1, 9, per_log - 1), size));
    EXPECT_FALSE(segment_fits_size(seg(1, 9, per_log), size));
    EXPECT_FALSE(segment_fits_size(seg(1, 9, 0xFFFFFFFFu), size));
  }
  // Not a valid size: nothing fits.
  EXPECT_FALSE(segment_fits_size(seg(1, 0, 0), 3ULL << 20));
  EXPECT_FALSE(segment_fits_size(seg(1, 0, 0), 0));
  EXPECT_FALSE(segment_fits_size(seg(1, 0, 0), 2ULL << 30));
}

TEST(WalName, FormatsLsnLikePostgres) {
  EXPECT_EQ(format_lsn(0), "0/0");
  EXPECT_EQ(format_lsn(0x3000158), "0/3000158");
  EXPECT_EQ(format_lsn(0x100000000ULL), "1/0");
  EXPECT_EQ(format_lsn(0xAB000000CDULL), "AB/CD");
  EXPECT_EQ(format_lsn(~0ULL), "FFFFFFFF/FFFFFFFF");
}

TEST(WalName, ParsesLsn) {
  EXPECT_EQ(parse_lsn("0/0"), 0u);
  EXPECT_EQ(parse_lsn("0/3000158"), 0x3000158u);
  EXPECT_EQ(parse_lsn("1/0"), 0x100000000ULL);
  EXPECT_EQ(parse_lsn("ab/cd"), 0xAB000000CDULL);  // PostgreSQL's %X/%X scan takes either case
  EXPECT_EQ(parse_lsn("FFFFFFFF/FFFFFFFF"), ~0ULL);
  EXPECT_EQ(parse_lsn("00000001/00000002"), 0x100000002ULL);
  for (std::uint64_t lsn : std::initializer_list<std::uint64_t>{0ULL, 1ULL, 0x16B3748ULL, 0x1FFFFFFFFULL, 0xDEADBEEFCAFEULL, ~0ULL})
    EXPECT_EQ(parse_lsn(format_lsn(lsn)), lsn);
}

TEST(WalName, RefusesBadLsn) {
  for (const char* text : {"", "/", "0", "0/", "/0", "123456789/0", "0/123456789", "G/0", "0/G", "1/2/3", " 1/2",
                           "1/2 ", "-1/0", "+1/0", "0x1/0", "1\\2"})
    EXPECT_FALSE(parse_lsn(text)) << "accepted '" << text << "'";
}

}  // namespace
}  // namespace walvault
