#include "common/core/wal_page.hpp"

#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "common/base/fd.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using test::k_mib;
using test::k_test_system_identifier;
using test::make_segment;
using test::segment_name;
using test::SegmentSpec;

constexpr std::uint64_t k_16mib = 16 * k_mib;

SegmentExpectations with_identifier(std::uint64_t id = k_test_system_identifier) {
  SegmentExpectations expect;
  expect.system_identifier = id;
  return expect;
}

// The failure of `result`, or a test failure when it succeeded.
template <typename T>
Failure failure_of(const Result<T>& result) {
  EXPECT_FALSE(result.has_value()) << "expected a failure";
  return result.has_value() ? Failure{ErrorKind::internal, "<succeeded>"} : result.error();
}

TEST(WalPage, AcceptsCorrect16MiBSegment) {
  const WalName name = segment_name(1, 0, 3);
  const auto content = make_segment(name, k_16mib);
  auto header = check_segment(content, name, "000000010000000000000003", with_identifier());
  ASSERT_TRUE(header) << header.error().message;
  EXPECT_EQ(header->magic, 0xD110);
  EXPECT_EQ(header->info, k_xlp_long_header);
  EXPECT_EQ(header->timeline, 1u);
  EXPECT_EQ(header->page_address, 3 * k_16mib);
  EXPECT_EQ(header->remaining_length, 0u);
  EXPECT_EQ(header->system_identifier, k_test_system_identifier);
  EXPECT_EQ(header->segment_size, k_16mib);
  EXPECT_EQ(header->block_size, 8192u);
}

TEST(WalPage, AcceptsCorrect1MiBSegmentBeyondFirstLog) {
  const WalName name = segment_name(3, 2, 0xFFF);  // last 1 MiB segment of log 2
  const auto content = make_segment(name, k_mib);
  auto header = check_segment(content, name, format_wal_name(name), with_identifier());
  ASSERT_TRUE(header) << header.error().message;
  EXPECT_EQ(header->page_address, (3ULL << 32) - k_mib);
  EXPECT_EQ(header->segment_size, k_mib);
}

TEST(WalPage, AcceptsPartialAndNoRepositoryIdentifierYet) {
  auto name = *parse_wal_name("000000010000000000000005.partial");
  const auto content = make_segment(name, k_16mib, SegmentSpec{}.with_system_identifier(42));
  auto header = check_segment(content, name, "000000010000000000000005.partial", SegmentExpectations{});
  ASSERT_TRUE(header) << header.error().message;
  EXPECT_EQ(header->system_identifier, 42u);
}

TEST(WalPage, ReadsHeaderFieldsLittleEndian) {
  const WalName name = segment_name(0x01020304, 0x0A0B0C0D, 0x5);
  auto content = make_segment(name, k_mib, SegmentSpec{}.with_magic(0xD113).with_info(0x0007).with_system_identifier(0x1122334455667788ULL));
  test::store_le<std::uint32_t>(content, 16, 0xCAFEBABE);
  auto header = read_long_page_header(std::span<const std::byte>(content).first(k_long_page_header_size), "x");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->magic, 0xD113);
  EXPECT_EQ(header->info, 0x0007);
  EXPECT_EQ(header->timeline, 0x01020304u);
  EXPECT_EQ(header->page_address, segment_start_lsn(name, k_mib));
  EXPECT_EQ(header->remaining_length, 0xCAFEBABEu);
  EXPECT_EQ(header->system_identifier, 0x1122334455667788ULL);
  EXPECT_EQ(header->segment_size, k_mib);
  EXPECT_EQ(header->block_size, 8192u);
}

TEST(WalPage, MagicOfEverySupportedPostgresVersion) {
  const std::vector<std::pair<std::uint16_t, int>> magics = {
      {0xD101, 12}, {0xD106, 13}, {0xD10D, 14}, {0xD110, 15}, {0xD113, 16}, {0xD116, 17}};
  const WalName name = segment_name(1, 0, 1);
  for (const auto& [magic, version] : magics) {
    EXPECT_EQ(postgres_version_for_wal_magic(magic), version);
    const auto content = make_segment(name, k_mib, SegmentSpec{}.with_magic(magic));
    auto header = check_segment(content, name, "000000010000000000000001", with_identifier());
    ASSERT_TRUE(header) << "magic " << magic << ": " << header.error().message;
    EXPECT_EQ(header->magic, magic);
  }
}

TEST(WalPage, RefusesUnknownMagic) {
  const WalName name = segment_name(1, 0, 1);
  for (std::uint16_t magic : {std::uint16_t{0xD0FF}, std::uint16_t{0xD100}, std::uint16_t{0xD117}, std::uint16_t{0},
                              std::uint16_t{0x10D1}}) {
    EXPECT_FALSE(postgres_version_for_wal_magic(magic));
    const auto content = make_segment(name, k_mib, SegmentSpec{}.with_magic(magic));
    auto f = failure_of(check_segment(content, name, "000000010000000000000001", with_identifier()));
    EXPECT_EQ(f.kind, ErrorKind::refused);
    EXPECT_NE(f.message.find("WAL file '000000010000000000000001' refused"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("unknown WAL magic"), std::string::npos) << f.message;
  }
  const auto content = make_segment(name, k_mib, SegmentSpec{}.with_magic(0xD0FF));
  auto f = failure_of(check_segment(content, name, "000000010000000000000001", with_identifier()));
  EXPECT_NE(f.message.find("0xD0FF"), std::string::npos) << f.message;
}

TEST(WalPage, RefusesTruncatedSegment) {
  const WalName name = segment_name(1, 0, 2);
  const auto content = make_segment(name, k_16mib);
  for (std::size_t size : std::initializer_list<std::size_t>{k_16mib - 1, k_16mib - 8192, 8 * k_mib, std::uint64_t{8192}}) {
    auto f = failure_of(check_segment(std::span<const std::byte>(content).first(size), name, "000000010000000000000002",
                                      with_identifier()));
    EXPECT_EQ(f.kind, ErrorKind::refused);
    EXPECT_NE(f.message.find("torn"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("000000010000000000000002"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find(std::to_string(size) + " bytes"), std::string::npos) << f.message;
  }
  // Longer than the header says is refused too.
  auto longer = content;
  longer.resize(k_16mib + 8192);
  auto f = failure_of(check_segment(longer, name, "000000010000000000000002", with_identifier()));
  EXPECT_NE(f.message.find("torn"), std::string::npos) << f.message;
}

TEST(WalPage, RefusesFileTooShortForHeader) {
  const WalName name = segment_name(1, 0, 2);
  auto content = make_segment(name, k_mib);
  for (std::size_t size : std::initializer_list<std::size_t>{std::size_t{0}, std::size_t{1}, k_long_page_header_size - 1}) {
    auto f = failure_of(check_segment(std::span<const std::byte>(content).first(size), name, "000000010000000000000002",
                                      with_identifier()));
    EXPECT_EQ(f.kind, ErrorKind::refused);
    EXPECT_NE(f.message.find("'000000010000000000000002' is too short (" + std::to_string(size) + " bytes)"),
              std::string::npos)
        << f.message;
  }
}

TEST(WalPage, RefusesWrongPageAddress) {
  const WalName name = segment_name(1, 0, 2);
  // A copy of segment 1 renamed to segment 2.
  const auto content = make_segment(name, k_16mib, SegmentSpec{}.with_page_address(k_16mib));
  auto f = failure_of(check_segment(content, name, "000000010000000000000002", with_identifier()));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("page address 0/1000000 does not match the name's 0/2000000"), std::string::npos) << f.message;

  // Same segment number but another log id.
  const auto other_log = make_segment(name, k_16mib, SegmentSpec{}.with_page_address((1ULL << 32) + 2 * k_16mib));
  f = failure_of(check_segment(other_log, name, "000000010000000000000002", with_identifier()));
  EXPECT_NE(f.message.find("does not match"), std::string::npos) << f.message;
}

TEST(WalPage, RefusesForeignSystemIdentifier) {
  const WalName name = segment_name(1, 0, 2);
  const auto content = make_segment(name, k_16mib, SegmentSpec{}.with_system_identifier(1234));
  auto f = failure_of(check_segment(content, name, "000000010000000000000002", with_identifier(5678)));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("another cluster"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("1234"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("5678"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("'000000010000000000000002'"), std::string::npos) << f.message;
}

TEST(WalPage, RefusesHeaderWithoutLongFlag) {
  const WalName name = segment_name(1, 0, 2);
  const auto content = make_segment(name, k_mib, SegmentSpec{}.with_info(0x0001));
  auto f = failure_of(check_segment(content, name, "000000010000000000000002", with_identifier()));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("no long header"), std::string::npos) << f.message;
}

TEST(WalPage, RefusesBadSegmentSizeInHeader) {
  const WalName name = segment_name(1, 0, 2);
  auto content = make_segment(name, k_mib);
  test::store_le<std::uint32_t>(content, 32, 3 * 1024 * 1024);
  auto f = failure_of(check_segment(content, name, "000000010000000000000002", with_identifier()));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("invalid segment size 3145728"), std::string::npos) << f.message;
}

TEST(WalPage, RefusesBadBlockSize) {
  const WalName name = segment_name(1, 0, 2);
  for (std::uint32_t block : {0u, 512u, 8000u, 131072u}) {
    const auto content = make_segment(name, k_mib, SegmentSpec{}.with_block_size(block));
    auto f = failure_of(check_segment(content, name, "000000010000000000000002", with_identifier()));
    EXPECT_EQ(f.kind, ErrorKind::refused);
    EXPECT_NE(f.message.find("invalid WAL block size " + std::to_string(block)), std::string::npos) << f.message;
  }
  for (std::uint32_t block : {1024u, 32768u, 65536u}) {
    const auto content = make_segment(name, k_mib, SegmentSpec{}.with_block_size(block));
    EXPECT_TRUE(check_segment(content, name, "000000010000000000000002", with_identifier())) << block;
  }
}

TEST(WalPage, RefusesNameThatDoesNotExistForTheSize) {
  // Segment 0x1000 does not exist with 1 MiB segments (4096 per log id).
  const WalName name = segment_name(1, 0, 0x1000);
  const auto content = make_segment(name, k_mib, SegmentSpec{}.with_page_address(0x100000000ULL));
  auto f = failure_of(check_segment(content, name, "000000010000000000001000", with_identifier()));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("does not exist for 1 MiB segments"), std::string::npos) << f.message;
}

TEST(WalPage, RefusesOlderHeaderTimelineWithoutHistory) {
  const WalName name = segment_name(2, 0, 3);
  const auto content = make_segment(name, k_16mib, SegmentSpec{}.with_header_timeline(1));
  auto f = failure_of(check_segment(content, name, "000000020000000000000003", with_identifier()));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("history file is not archived"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("timeline 1"), std::string::npos) << f.message;
}

TEST(WalPage, AcceptsAncestorTimelineThatSwitchedInsideTheSegment) {
  const WalName name = segment_name(2, 0, 3);
  const auto content = make_segment(name, k_16mib, SegmentSpec{}.with_header_timeline(1));
  const std::vector<TimelineHistoryEntry> history = {{1, 3 * k_16mib + 0x158, "no recovery target specified"}};
  SegmentExpectations expect = with_identifier();
  expect.history = &history;
  auto header = check_segment(content, name, "000000020000000000000003", expect);
  ASSERT_TRUE(header) << header.error().message;
  EXPECT_EQ(header->timeline, 1u);

  // A grandparent whose timeline ended in this segment too (timeline 2 lived for a moment).
  const WalName name3 = segment_name(3, 0, 3);
  const auto content3 = make_segment(name3, k_16mib, SegmentSpec{}.with_header_timeline(1));
  const std::vector<TimelineHistoryEntry> history3 = {{1, 3 * k_16mib + 0x158, ""}, {2, 3 * k_16mib + 0x2000, ""}};
  expect.history = &history3;
  EXPECT_TRUE(check_segment(content3, name3, "000000030000000000000003", expect));
}

TEST(WalPage, RefusesAncestorThatSwitchedOutsideTheSegment) {
  const WalName name = segment_name(2, 0, 3);
  const auto content = make_segment(name, k_16mib, SegmentSpec{}.with_header_timeline(1));
  SegmentExpectations expect = with_identifier();
  for (std::uint64_t lsn : std::initializer_list<std::uint64_t>{2 * k_16mib + 0x158, 4 * k_16mib + 0x158, 0x100000000ULL + 3 * k_16mib + 0x158}) {
    const std::vector<TimelineHistoryEntry> history = {{1, lsn, "no recovery target specified"}};
    expect.history = &history;
    auto f = failure_of(check_segment(content, name, "000000020000000000000003", expect));
    EXPECT_EQ(f.kind, ErrorKind::refused);
    EXPECT_NE(f.message.find("is not an ancestor of timeline 2 that ended in this segment"), std::string::npos)
        << format_lsn(lsn) << ": " << f.message;
  }
  // The history names another parent.
  const std::vector<TimelineHistoryEntry> other_parent = {{4, 3 * k_16mib + 0x158, ""}};
  const auto content5 = make_segment(segment_name(5, 0, 3), k_16mib, SegmentSpec{}.with_header_timeline(1));
  expect.history = &other_parent;
  auto f = failure_of(check_segment(content5, segment_name(5, 0, 3), "000000050000000000000003", expect));
  EXPECT_NE(f.message.find("is not an ancestor"), std::string::npos) << f.message;
}

// PostgreSQL (xlog.c, XLogInitNewTimeline) copies the old timeline's last segment only when
// the switch point lies strictly inside it; a switch exactly on a segment boundary starts the
// new timeline in a fresh segment whose first page carries the new timeline. So a segment
// with the parent's header is genuine only for start < switch < start + size.
TEST(WalPage, SwitchExactlyOnSegmentBoundaryIsNotInsideTheSegment) {
  const WalName name = segment_name(2, 0, 3);
  const auto content = make_segment(name, k_16mib, SegmentSpec{}.with_header_timeline(1));
  SegmentExpectations expect = with_identifier();
  for (std::uint64_t lsn : std::initializer_list<std::uint64_t>{3 * k_16mib, 4 * k_16mib}) {
    const std::vector<TimelineHistoryEntry> history = {{1, lsn, "no recovery target specified"}};
    expect.history = &history;
    auto result = check_segment(content, name, "000000020000000000000003", expect);
    EXPECT_FALSE(result) << "a copy of timeline 1's segment was accepted as timeline 2's although the switch at "
                         << format_lsn(lsn) << " is a segment boundary";
  }
}

TEST(WalPage, RefusesNewerHeaderTimeline) {
  const WalName name = segment_name(2, 0, 3);
  const auto content = make_segment(name, k_16mib, SegmentSpec{}.with_header_timeline(3));
  const std::vector<TimelineHistoryEntry> history = {{1, 3 * k_16mib + 0x158, ""}};
  SegmentExpectations expect = with_identifier();
  expect.history = &history;
  auto f = failure_of(check_segment(content, name, "000000020000000000000003", expect));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("page header timeline 3 is newer than the name's 2"), std::string::npos) << f.message;
}

// The real thing: initdb writes the first segment; walvault must accept it and read the same
// system identifier that pg_controldata prints.
TEST(WalPage, AcceptsSegmentWrittenByInitdb) {
  const std::string bin = "/usr/lib/postgresql/15/bin";
  if (::access((bin + "/initdb").c_str(), X_OK) != 0) GTEST_SKIP() << "PostgreSQL 15 is not installed";
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run initdb as postgres";
  const passwd* pw = ::getpwnam("postgres");
  if (!pw) GTEST_SKIP() << "no postgres user";

  test::TempDir dir("walvault-initdb");
  ASSERT_EQ(::chown(dir.path().c_str(), pw->pw_uid, pw->pw_gid), 0);
  const std::string data = dir / "data";
  auto init = test::run_command("runuser -u postgres -- " + bin + "/initdb --no-sync --auth=trust -D '" + data +
                                "' >/dev/null 2>&1 && echo done");
  ASSERT_TRUE(init) << "initdb failed";

  auto control = test::run_command("runuser -u postgres -- " + bin + "/pg_controldata -D '" + data + "'");
  ASSERT_TRUE(control) << "pg_controldata failed";
  const std::string label = "Database system identifier:";
  auto at = control->find(label);
  ASSERT_NE(at, std::string::npos) << *control;
  std::size_t begin = control->find_first_not_of(' ', at + label.size());
  std::size_t end = control->find('\n', begin);
  std::uint64_t expected_id = 0;
  auto [ptr, ec] = std::from_chars(control->data() + begin, control->data() + end, expected_id);
  ASSERT_EQ(ec, std::errc()) << control->substr(begin, end - begin);
  ASSERT_NE(expected_id, 0u);

  const std::string file = "000000010000000000000001";
  auto content = read_file(data + "/pg_wal/" + file);
  ASSERT_TRUE(content) << content.error().message;
  ASSERT_EQ(content->size(), k_16mib);
  auto header = check_segment(*content, *parse_wal_name(file), file, with_identifier(expected_id));
  ASSERT_TRUE(header) << header.error().message;
  EXPECT_EQ(header->system_identifier, expected_id);
  EXPECT_EQ(postgres_version_for_wal_magic(header->magic), 15);
  EXPECT_EQ(header->timeline, 1u);
  EXPECT_EQ(header->page_address, k_16mib);
  EXPECT_EQ(header->block_size, 8192u);

  // The same real segment is refused by a repository of another cluster, and under a wrong name.
  auto f = failure_of(check_segment(*content, *parse_wal_name(file), file, with_identifier(expected_id + 1)));
  EXPECT_NE(f.message.find("another cluster"), std::string::npos) << f.message;
  f = failure_of(check_segment(*content, *parse_wal_name("000000010000000000000002"), "000000010000000000000002",
                               with_identifier(expected_id)));
  EXPECT_NE(f.message.find("does not match"), std::string::npos) << f.message;
}

}  // namespace
}  // namespace walvault
