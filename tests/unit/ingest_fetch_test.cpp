#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "archiver/ingest.hpp"
#include "common/core/object_format.hpp"
#include "restorer/fetch.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using test::k_mib;
using test::k_test_system_identifier;
using test::make_segment;
using test::segment_name;
using test::SegmentSpec;

class IngestFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto repository = Repository::open(m_dir / "repo");
    ASSERT_TRUE(repository) << repository.error().message;
    m_repository = std::move(*repository);
    m_ingest = std::make_unique<Ingest>(*m_repository, CompressSpec{Codec::zstd, 1});
    auto index = Index::open(m_dir / "index.db");
    ASSERT_TRUE(index) << index.error().message;
    m_index = std::move(*index);
    m_index->set_trusted(true);  // nothing archived yet: an empty index is the whole truth
    m_fetch = std::make_unique<Fetch>(*m_repository, *m_index);
  }

  // Writes `content` to a fresh file of the spool and opens it read-only, as archive-push does.
  UniqueFd source(std::span<const std::byte> content) {
    const std::string path = m_dir / ("source." + std::to_string(m_sources++));
    test::write_bytes_file(path, content);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd) << path;
    return fd;
  }

  Result<PushOutcome> push(std::string_view name, std::span<const std::byte> content) {
    UniqueFd fd = source(content);
    return m_ingest->push(name, fd.get());
  }

  // An empty output file, as archive-get creates next to %p.
  UniqueFd output(const std::string& name) {
    UniqueFd fd(::open((m_dir / name).c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    EXPECT_TRUE(fd);
    return fd;
  }

  Result<std::vector<std::byte>> fetch(std::string_view name) {
    UniqueFd out = output("fetched");
    auto size = m_fetch->get(name, out.get());
    if (!size) return std::unexpected(size.error());
    auto data = read_file(m_dir / "fetched");
    if (!data) return std::unexpected(data.error());
    EXPECT_EQ(*size, data->size());
    return data;
  }

  std::string object_path(std::string_view name) const {
    return m_dir / ("repo/" + object_key(*parse_wal_name(name)));
  }

  test::TempDir m_dir{"walvault-ingest"};
  std::unique_ptr<Repository> m_repository;
  std::unique_ptr<Ingest> m_ingest;
  std::unique_ptr<Index> m_index;
  std::unique_ptr<Fetch> m_fetch;
  int m_sources = 0;
};

template <typename T>
Failure failure_of(const Result<T>& result) {
  EXPECT_FALSE(result.has_value()) << "expected a failure";
  return result.has_value() ? Failure{ErrorKind::internal, "<succeeded>"} : result.error();
}

TEST_F(IngestFetchTest, PushStoresThenDuplicateThenConflict) {
  const std::string name = "000000010000000000000001";
  const auto content = make_segment(segment_name(1, 0, 1), k_mib);
  auto first = push(name, content);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(*first, PushOutcome::stored);
  EXPECT_EQ(object_key(*parse_wal_name(name)), "wal/0000000100000000/000000010000000000000001");
  struct stat st {};
  ASSERT_EQ(::stat(object_path(name).c_str(), &st), 0);
  EXPECT_LT(static_cast<std::uint64_t>(st.st_size), k_mib / 2);  // compressed

  auto again = push(name, content);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, PushOutcome::duplicate);

  const auto stored_before = test::read_bytes_file(object_path(name));
  auto different = make_segment(segment_name(1, 0, 1), k_mib, SegmentSpec{}.with_fill(9));
  auto conflict = push(name, different);
  const Failure f = failure_of(conflict);
  EXPECT_EQ(f.kind, ErrorKind::conflict);
  EXPECT_NE(f.message.find("WAL file '000000010000000000000001' is already archived with different content"),
            std::string::npos)
      << f.message;
  EXPECT_NE(f.message.find("left untouched"), std::string::npos) << f.message;
  EXPECT_TRUE(test::read_bytes_file(object_path(name)) == stored_before);

  auto fetched = fetch(name);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_TRUE(*fetched == content);
}

TEST_F(IngestFetchTest, FirstPushFixesTheSystemIdentifier) {
  EXPECT_FALSE(m_repository->system_identifier());
  ASSERT_TRUE(push("000000010000000000000001", make_segment(segment_name(1, 0, 1), k_mib)));
  EXPECT_EQ(m_repository->system_identifier(), k_test_system_identifier);
  const std::string identity(as_text(test::read_bytes_file(m_dir / "repo/walvault.repo")));
  EXPECT_NE(identity.find("system-identifier=" + std::to_string(k_test_system_identifier) + "\n"), std::string::npos)
      << identity;
  EXPECT_NE(identity.find("format=1\n"), std::string::npos) << identity;
  EXPECT_NE(identity.find("pg-version=15"), std::string::npos) << identity;

  const auto foreign = make_segment(segment_name(1, 0, 2), k_mib, SegmentSpec{}.with_system_identifier(1111));
  const Failure f = failure_of(push("000000010000000000000002", foreign));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("'000000010000000000000002'"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("another cluster"), std::string::npos) << f.message;
  EXPECT_EQ(test::raw_storage(*m_repository).exists(object_key(*parse_wal_name("000000010000000000000002"))), false);

  // A repository opened again remembers the identifier.
  auto reopened = Repository::open(m_dir / "repo");
  ASSERT_TRUE(reopened) << reopened.error().message;
  EXPECT_EQ((*reopened)->system_identifier(), k_test_system_identifier);
  Ingest other(**reopened, CompressSpec{Codec::none, 0});
  UniqueFd fd = source(foreign);
  const Failure again = failure_of(other.push("000000010000000000000002", fd.get()));
  EXPECT_NE(again.message.find("another cluster"), std::string::npos) << again.message;
}

TEST_F(IngestFetchTest, HistoryIsNeverOverwritten) {
  const std::string first = "1\t0/3000158\tno recovery target specified\n";
  auto stored = push("00000002.history", test::bytes_of(first));
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(*stored, PushOutcome::stored);
  EXPECT_EQ(test::raw_storage(*m_repository).exists("wal/history/00000002.history"), true);
  EXPECT_EQ(push("00000002.history", test::bytes_of(first)).value_or(PushOutcome::stored), PushOutcome::duplicate);

  const Failure f = failure_of(push("00000002.history", test::bytes_of("1\t0/4000000\tanother promotion\n")));
  EXPECT_EQ(f.kind, ErrorKind::conflict);
  EXPECT_NE(f.message.find("'00000002.history'"), std::string::npos) << f.message;

  auto fetched = fetch("00000002.history");
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(as_text(*fetched), first);
}

TEST_F(IngestFetchTest, GarbageHistoryIsRefused) {
  Failure f = failure_of(push("00000002.history", test::bytes_of("this is not a history file\n")));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("'00000002.history' line 1"), std::string::npos) << f.message;

  f = failure_of(push("00000002.history", test::bytes_of("# nothing but a comment\n")));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("names no parent timeline"), std::string::npos) << f.message;

  f = failure_of(push("00000002.history", test::bytes_of("2\t0/3000158\tself as parent\n")));
  EXPECT_EQ(f.kind, ErrorKind::refused);

  // Larger than any history file.
  std::string huge(2 * k_mib, '#');
  f = failure_of(push("00000002.history", test::bytes_of(huge)));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("larger than any history file"), std::string::npos) << f.message;
  EXPECT_EQ(test::raw_storage(*m_repository).exists("wal/history/00000002.history"), false);
}

TEST_F(IngestFetchTest, BackupHistoryMustLookLikePostgres) {
  const std::string name = "000000010000000000000002.00000028.backup";
  const std::string content =
      "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
      "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n"
      "CHECKPOINT LOCATION: 0/2000060\n"
      "BACKUP METHOD: streamed\n"
      "BACKUP FROM: primary\n"
      "START TIME: 2024-01-01 00:00:00 UTC\n"
      "LABEL: pg_basebackup base backup\n"
      "START TIMELINE: 1\n";
  auto stored = push(name, test::bytes_of(content));
  ASSERT_TRUE(stored) << stored.error().message;
  auto fetched = fetch(name);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(as_text(*fetched), content);

  const Failure f = failure_of(push("000000010000000000000003.00000028.backup", test::bytes_of("LABEL: x\n")));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("backup history file '000000010000000000000003.00000028.backup' refused"), std::string::npos)
      << f.message;
  EXPECT_NE(f.message.find("START WAL LOCATION"), std::string::npos) << f.message;
  EXPECT_EQ(test::raw_storage(*m_repository).exists(object_key(*parse_wal_name("000000010000000000000003.00000028.backup"))),
            false);
}

TEST_F(IngestFetchTest, InvalidNamesAreRefused) {
  const auto content = make_segment(segment_name(1, 0, 1), k_mib);
  for (const char* name : {"../../etc/passwd", "000000010000000000000001/../x", "0000000100000000000000010", "",
                           "00000001000000000000000a", "RECOVERYXLOG"}) {
    const Failure f = failure_of(push(name, content));
    EXPECT_EQ(f.kind, ErrorKind::invalid) << name;
    EXPECT_NE(f.message.find("is not a WAL file name"), std::string::npos) << f.message;
    UniqueFd out = output("fetched");
    const Failure g = failure_of(m_fetch->get(name, out.get()));
    EXPECT_EQ(g.kind, ErrorKind::invalid) << name;
  }
  auto keys = test::raw_storage(*m_repository).list("wal");
  ASSERT_TRUE(keys);
  EXPECT_TRUE(keys->empty());
}

TEST_F(IngestFetchTest, BadFileDescriptorsAreRefused) {
  Failure f = failure_of(m_ingest->push("000000010000000000000001", -1));
  EXPECT_EQ(f.kind, ErrorKind::invalid);
  EXPECT_NE(f.message.find("no file descriptor"), std::string::npos) << f.message;

  UniqueFd dir(::open(m_dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  f = failure_of(m_ingest->push("000000010000000000000001", dir.get()));
  EXPECT_EQ(f.kind, ErrorKind::invalid);
  EXPECT_NE(f.message.find("is not a regular file"), std::string::npos) << f.message;

  f = failure_of(m_fetch->get("000000010000000000000001", dir.get()));
  EXPECT_EQ(f.kind, ErrorKind::invalid);
  f = failure_of(m_fetch->get("000000010000000000000001", -1));
  EXPECT_EQ(f.kind, ErrorKind::invalid);
}

TEST_F(IngestFetchTest, SegmentsThatAreNotWalOfThisNameAreRefused) {
  // Truncated copy.
  auto torn = make_segment(segment_name(1, 0, 1), k_mib);
  torn.resize(k_mib / 2);
  Failure f = failure_of(push("000000010000000000000001", torn));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("torn"), std::string::npos) << f.message;
  // Renamed copy.
  f = failure_of(push("000000010000000000000002", make_segment(segment_name(1, 0, 1), k_mib)));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("does not match"), std::string::npos) << f.message;
  // Not WAL at all.
  f = failure_of(push("000000010000000000000003", std::vector<std::byte>(k_mib, std::byte{'x'})));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("unknown WAL magic"), std::string::npos) << f.message;
  // Nothing stored, and the identifier is still open.
  EXPECT_FALSE(m_repository->system_identifier());
}

TEST_F(IngestFetchTest, PromotionSegmentNeedsTheArchivedHistory) {
  // Timeline 2 began inside segment 3 of timeline 1; its first segment starts with a copy.
  const std::string name = "000000020000000000000003";
  const auto content = make_segment(segment_name(2, 0, 3), k_mib, SegmentSpec{}.with_header_timeline(1));
  Failure f = failure_of(push(name, content));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("history file is not archived"), std::string::npos) << f.message;

  ASSERT_TRUE(push("00000002.history", test::bytes_of("1\t0/300158\tno recovery target specified\n")));
  auto stored = push(name, content);
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(*stored, PushOutcome::stored);
  auto fetched = fetch(name);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_TRUE(*fetched == content);

  // The history says timeline 1 ended elsewhere: a copy of another segment is refused.
  const auto elsewhere = make_segment(segment_name(2, 0, 5), k_mib, SegmentSpec{}.with_header_timeline(1));
  f = failure_of(push("000000020000000000000005", elsewhere));
  EXPECT_NE(f.message.find("is not an ancestor of timeline 2"), std::string::npos) << f.message;
}

TEST_F(IngestFetchTest, PartialSegmentRoundTrip) {
  const std::string name = "000000010000000000000004.partial";
  const auto content = make_segment(segment_name(1, 0, 4), k_mib);
  auto stored = push(name, content);
  ASSERT_TRUE(stored) << stored.error().message;
  auto fetched = fetch(name);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_TRUE(*fetched == content);
  // The full segment of the same number is a different name.
  const Failure f = failure_of(fetch("000000010000000000000004"));
  EXPECT_EQ(f.kind, ErrorKind::not_found);
}

TEST_F(IngestFetchTest, FetchOfMissingNameIsNotFound) {
  UniqueFd out = output("fetched");
  Failure f = failure_of(m_fetch->get("000000010000000000000009", out.get()));
  EXPECT_EQ(f.kind, ErrorKind::not_found);
  EXPECT_NE(f.message.find("'000000010000000000000009' is not in the archive"), std::string::npos) << f.message;
  f = failure_of(m_fetch->get("00000005.history", out.get()));
  EXPECT_EQ(f.kind, ErrorKind::not_found);
  struct stat st {};
  ASSERT_EQ(::fstat(out.get(), &st), 0);
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(IngestFetchTest, FetchTruncatesWhatTheOutputHeld) {
  const auto content = make_segment(segment_name(1, 0, 1), k_mib);
  ASSERT_TRUE(push("000000010000000000000001", content));
  UniqueFd out = output("fetched");
  std::vector<std::byte> junk(3 * k_mib, std::byte{0xEE});
  ASSERT_TRUE(write_all(out.get(), junk, "junk"));
  auto size = m_fetch->get("000000010000000000000001", out.get());
  ASSERT_TRUE(size) << size.error().message;
  EXPECT_EQ(*size, k_mib);
  EXPECT_TRUE(test::read_bytes_file(m_dir / "fetched") == content);
}

TEST_F(IngestFetchTest, CorruptStoredObjectIsRefusedAndNothingWritten) {
  const std::string name = "000000010000000000000001";
  const auto content = make_segment(segment_name(1, 0, 1), k_mib);
  ASSERT_TRUE(push(name, content));
  const std::string path = object_path(name);
  const auto pristine = test::read_bytes_file(path);

  auto expect_corrupt = [&](std::size_t offset) {
    SCOPED_TRACE("flipped byte at " + std::to_string(offset) + " of " + std::to_string(pristine.size()));
    auto damaged = pristine;
    damaged[offset] ^= std::byte{0x01};
    test::write_bytes_file(path, damaged);
    UniqueFd out = output("fetched");
    const Failure f = failure_of(m_fetch->get(name, out.get()));
    EXPECT_EQ(f.kind, ErrorKind::corrupt);
    EXPECT_NE(f.message.find("stored object '" + m_repository->describe() + "/wal/0000000100000000/" + name + "'"),
              std::string::npos)
        << f.message;
    struct stat st {};
    ASSERT_EQ(::fstat(out.get(), &st), 0);
    EXPECT_EQ(st.st_size, 0) << "unverified bytes reached the output";
  };
  // Header bytes (magic, codec, sizes, digest, header check) and the compressed data.
  for (std::size_t offset : std::initializer_list<std::size_t>{0, 10, 20, 30, 60, 70, pristine.size() / 2,
                                                               pristine.size() - 1})
    expect_corrupt(offset);

  // Any single flipped byte anywhere: either refused with nothing written, or (when zstd
  // ignores the bit, e.g. in the window descriptor) exactly the archived content. Never other bytes.
  for (std::size_t offset = 0; offset < pristine.size(); offset += 1 + offset / 8) {
    auto damaged = pristine;
    damaged[offset] ^= std::byte{0x80};
    test::write_bytes_file(path, damaged);
    UniqueFd out = output("fetched");
    auto size = m_fetch->get(name, out.get());
    const auto written = test::read_bytes_file(m_dir / "fetched");
    if (size) {
      EXPECT_TRUE(written == content) << "flipped byte at " << offset << " produced other content";
    } else {
      EXPECT_EQ(size.error().kind, ErrorKind::corrupt) << offset << ": " << size.error().message;
      EXPECT_TRUE(written.empty()) << offset;
    }
  }

  // A stored object that decodes fine but is not the WAL its name says fails verification too.
  const auto other = make_segment(segment_name(1, 0, 7), k_mib);
  auto object = build_object(CompressSpec{Codec::none, 0}, other, sha256(other));
  ASSERT_TRUE(object);
  test::write_bytes_file(path, *object);
  UniqueFd out = output("fetched");
  const Failure f = failure_of(m_fetch->get(name, out.get()));
  EXPECT_EQ(f.kind, ErrorKind::corrupt);
  EXPECT_NE(f.message.find("fails verification"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("does not match"), std::string::npos) << f.message;
  struct stat st {};
  ASSERT_EQ(::fstat(out.get(), &st), 0);
  EXPECT_EQ(st.st_size, 0);

  // A stored object whose header is damaged no longer stalls archiving: PostgreSQL's retry (its
  // content proven like any push) replaces it, as for a damaged body. With an index that
  // recorded other content it is a conflict instead (fetch_absent_test.cpp).
  auto damaged = pristine;
  damaged[10] ^= std::byte{0x01};
  test::write_bytes_file(path, damaged);
  auto replaced = push(name, content);
  ASSERT_TRUE(replaced) << replaced.error().message;
  EXPECT_EQ(*replaced, PushOutcome::stored);
  auto fetched = fetch(name);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_TRUE(*fetched == content);
}

TEST_F(IngestFetchTest, EveryByteOfAnUncompressedObjectIsCovered) {
  m_ingest = std::make_unique<Ingest>(*m_repository, CompressSpec{Codec::none, 0});
  const std::string name = "00000002.history";
  const std::string content = "1\t0/3000158\tno recovery target specified\n";
  ASSERT_TRUE(push(name, test::bytes_of(content)));
  const std::string path = object_path(name);
  const auto pristine = test::read_bytes_file(path);
  ASSERT_EQ(pristine.size(), k_object_head_v2_size + content.size() + k_object_trailer_size);  // format version 2
  for (std::size_t offset = 0; offset < pristine.size(); ++offset) {
    auto damaged = pristine;
    damaged[offset] ^= std::byte{0x04};
    test::write_bytes_file(path, damaged);
    UniqueFd out = output("fetched");
    auto size = m_fetch->get(name, out.get());
    ASSERT_FALSE(size) << "flipped byte at " << offset << " went unnoticed";
    EXPECT_EQ(size.error().kind, ErrorKind::corrupt) << size.error().message;
  }
}

TEST_F(IngestFetchTest, HandlersSpeakTheProtocol) {
  const auto content = make_segment(segment_name(1, 0, 1), k_mib);
  Request request;
  request.message = protocol::Message{"PUSH 000000010000000000000001", {}};
  request.fd = source(content);
  auto response = m_ingest->handle(request);
  EXPECT_EQ(response.line, "OK");
  EXPECT_EQ(response.field("detail"), "stored");
  EXPECT_FALSE(request.fd.valid()) << "the handler keeps the descriptor open";

  request.fd = source(content);
  response = m_ingest->handle(request);
  EXPECT_EQ(response.line, "OK");
  EXPECT_EQ(response.field("detail"), "duplicate");

  request.fd = source(make_segment(segment_name(1, 0, 1), k_mib, SegmentSpec{}.with_fill(3)));
  response = m_ingest->handle(request);
  EXPECT_EQ(response.line, "ERR conflict");
  EXPECT_NE(response.field("message").value_or("").find("different content"), std::string::npos);

  request.message = protocol::Message{"PUSH 000000010000000000000002", {}};
  request.fd = source(make_segment(segment_name(1, 0, 2), k_mib, SegmentSpec{}.with_system_identifier(5)));
  response = m_ingest->handle(request);
  EXPECT_EQ(response.line, "ERR refused");

  EXPECT_EQ(m_ingest->counters().stored.load(), 1u);
  EXPECT_EQ(m_ingest->counters().duplicates.load(), 1u);
  EXPECT_EQ(m_ingest->counters().conflicts.load(), 1u);
  EXPECT_EQ(m_ingest->counters().refused.load(), 1u);

  Request get;
  get.message = protocol::Message{"GET 000000010000000000000001", {{"mode", "recovery"}}};
  get.fd = output("fetched");
  response = m_fetch->handle(get);
  EXPECT_EQ(response.line, "OK");
  EXPECT_EQ(response.field("size"), std::to_string(k_mib));
  EXPECT_EQ(m_fetch->served(), 1u);
  EXPECT_TRUE(test::read_bytes_file(m_dir / "fetched") == content);

  get.message = protocol::Message{"GET 000000010000000000000002", {{"mode", "recovery"}}};
  get.fd = output("fetched2");
  response = m_fetch->handle(get);
  EXPECT_EQ(response.line, "NOTFOUND");
  EXPECT_EQ(m_fetch->served(), 1u);
}

TEST_F(IngestFetchTest, EightConcurrentPushesOfTheSameSegment) {
  const std::string name = "000000010000000000000001";
  const auto content = make_segment(segment_name(1, 0, 1), k_mib);
  std::vector<UniqueFd> fds;
  for (int i = 0; i < 8; ++i) fds.push_back(source(content));
  std::atomic<int> stored{0}, duplicate{0}, failed{0};
  std::atomic<bool> go{false};
  std::vector<std::string> errors(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      auto outcome = m_ingest->push(name, fds[static_cast<std::size_t>(i)].get());
      if (!outcome) {
        ++failed;
        errors[static_cast<std::size_t>(i)] = outcome.error().message;
      } else if (*outcome == PushOutcome::stored) {
        ++stored;
      } else {
        ++duplicate;
      }
    });
  }
  go = true;
  for (auto& thread : threads) thread.join();
  for (const auto& error : errors) EXPECT_EQ(error, "");
  EXPECT_EQ(stored.load(), 1);
  EXPECT_EQ(duplicate.load(), 7);
  EXPECT_EQ(failed.load(), 0);
  auto fetched = fetch(name);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_TRUE(*fetched == content);
  EXPECT_TRUE(test::temp_files_below(m_dir / "repo").empty());
}

TEST_F(IngestFetchTest, EightConcurrentPushesOfDifferentSegments) {
  std::vector<std::vector<std::byte>> contents;
  std::vector<UniqueFd> fds;
  for (std::uint32_t i = 0; i < 8; ++i) {
    contents.push_back(make_segment(segment_name(1, 0, 0x10 + i), k_mib, SegmentSpec{}.with_fill(static_cast<std::uint8_t>(i))));
    fds.push_back(source(contents.back()));
  }
  std::atomic<bool> go{false};
  std::vector<std::string> results(8);
  std::vector<std::thread> threads;
  for (std::uint32_t i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      auto outcome = m_ingest->push(format_wal_name(segment_name(1, 0, 0x10 + i)), fds[i].get());
      results[i] = !outcome ? outcome.error().message : *outcome == PushOutcome::stored ? "stored" : "duplicate";
    });
  }
  go = true;
  for (auto& thread : threads) thread.join();
  for (std::uint32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(results[i], "stored") << i;
    auto fetched = fetch(format_wal_name(segment_name(1, 0, 0x10 + i)));
    ASSERT_TRUE(fetched) << fetched.error().message;
    EXPECT_TRUE(*fetched == contents[i]) << i;
  }
  EXPECT_EQ(m_repository->system_identifier(), k_test_system_identifier);
  auto keys = test::raw_storage(*m_repository).list("wal");
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->size(), 8u);
}

TEST_F(IngestFetchTest, RepositoryOfAnotherFormatIsRefused) {
  test::write_text_file(m_dir / "repo/walvault.repo", "format=2\n");
  auto repository = Repository::open(m_dir / "repo");
  ASSERT_FALSE(repository);
  EXPECT_NE(repository.error().message.find("has format 2, this walvault reads format 1"), std::string::npos)
      << repository.error().message;

  test::write_text_file(m_dir / "repo/walvault.repo", "format=1\nsystem-identifier=12x\n");
  repository = Repository::open(m_dir / "repo");
  ASSERT_FALSE(repository);
  EXPECT_EQ(repository.error().kind, ErrorKind::corrupt);
  EXPECT_NE(repository.error().message.find("bad system-identifier"), std::string::npos) << repository.error().message;
}

// A duplicate answer lets PostgreSQL recycle its copy, so the stored copy is proven in full
// first; a damaged body (header intact) is replaced by the content pushed again.
TEST_F(IngestFetchTest, DuplicatePushReplacesAStoredCopyWhoseBodyIsDamaged) {
  const std::string name = "000000010000000000000001";
  const auto content = make_segment(segment_name(1, 0, 1), k_mib);
  ASSERT_TRUE(push(name, content));
  const std::string path = object_path(name);
  auto damaged = test::read_bytes_file(path);
  damaged[damaged.size() - 3] ^= std::byte{0x40};  // in the body, past the header
  test::write_bytes_file(path, damaged);
  ASSERT_FALSE(fetch(name)) << "the damaged copy must not be served";

  auto again = push(name, content);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, PushOutcome::stored) << "a damaged copy must not be acknowledged as a duplicate";
  auto restored = fetch(name);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_TRUE(*restored == content);
}

// A file named like a segment but far larger than its header's segment size is refused from
// its first page, before any buffer of its size is allocated.
TEST_F(IngestFetchTest, OversizedSegmentIsRefusedFromItsHeader) {
  const std::string name = "000000010000000000000001";
  auto content = make_segment(segment_name(1, 0, 1), k_mib);
  content.resize(64 * k_mib);
  const Failure f = failure_of(push(name, content));
  EXPECT_EQ(f.kind, ErrorKind::refused);
  EXPECT_NE(f.message.find("size is 67108864 bytes but its header says segments are 1048576 bytes"), std::string::npos)
      << f.message;
}


}  // namespace
}  // namespace walvault

namespace walvault {
namespace {

// A repository holds WAL of one segment size, fixed by its first segment like the system
// identifier: a segment of another size is refused from its first page.
TEST_F(IngestFetchTest, SegmentSizeIsFixedByTheFirstSegment) {
  ASSERT_TRUE(push("000000010000000000000001", make_segment(segment_name(1, 0, 1), k_mib)));
  EXPECT_EQ(m_repository->segment_size(), std::optional<std::uint64_t>(k_mib));
  const auto identity = test::read_bytes_file(m_dir / "repo/walvault.repo");
  EXPECT_NE(std::string(as_text(identity)).find("segment-size=1048576\n"), std::string::npos);

  const std::string name = "000000010000000000000003";
  const Failure f = failure_of(push(name, make_segment(*parse_wal_name(name), 2 * k_mib)));
  EXPECT_EQ(f.kind, ErrorKind::refused) << f.message;
  EXPECT_NE(f.message.find("its segment size is 2097152 bytes, the repository's is 1048576"), std::string::npos) << f.message;

  // Kept across a reopen.
  auto reopened = Repository::open(m_dir / "repo");
  ASSERT_TRUE(reopened) << reopened.error().message;
  EXPECT_EQ((*reopened)->segment_size(), std::optional<std::uint64_t>(k_mib));
}

// A repository written before segment sizes were kept learns it at its next segment.
TEST_F(IngestFetchTest, AnOlderIdentityLearnsTheSegmentSize) {
  ASSERT_TRUE(push("000000010000000000000001", make_segment(segment_name(1, 0, 1), k_mib)));
  test::write_text_file(m_dir / "repo/walvault.repo",
                        "format=1\nsystem-identifier=" + std::to_string(k_test_system_identifier) + "\npg-version=150000\n");
  auto older = Repository::open(m_dir / "repo");
  ASSERT_TRUE(older) << older.error().message;
  EXPECT_FALSE((*older)->segment_size());
  Ingest ingest(**older, CompressSpec{Codec::zstd, 1});
  UniqueFd fd = source(make_segment(segment_name(1, 0, 2), k_mib));
  ASSERT_TRUE(ingest.push("000000010000000000000002", fd.get()));
  EXPECT_EQ((*older)->segment_size(), std::optional<std::uint64_t>(k_mib));
  EXPECT_NE(std::string(as_text(test::read_bytes_file(m_dir / "repo/walvault.repo"))).find("segment-size=1048576\n"), std::string::npos);
}

}  // namespace
}  // namespace walvault
