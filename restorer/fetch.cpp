#include "restorer/fetch.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/crc32c.hpp"
#include "common/core/object_store.hpp"
#include "common/core/sha256.hpp"
#include "common/core/time_format.hpp"
#include "common/core/wal_page.hpp"
#include "common/core/wal_checks.hpp"

namespace walvault {

namespace {

// archive-push refuses larger .history and .backup files, so a stored one never is.
constexpr std::uint64_t k_max_text_object = 1 << 20;

}  // namespace

Result<std::uint64_t> Fetch::get(std::string_view file_name, int out_fd, bool exact, std::uint32_t* written_crc, bool for_postgres) {
  auto name = parse_wal_name(file_name);
  if (!name)
    return fail(ErrorKind::invalid, "'" + std::string(file_name).substr(0, 80) +
                                        "' is not a WAL file name (segment, .history, .partial or .backup)");
  if (out_fd < 0) return fail(ErrorKind::invalid, "no file descriptor was passed with the request for '" + std::string(file_name) + "'");
  struct stat st {};
  if (::fstat(out_fd, &st) != 0 || !S_ISREG(st.st_mode))
    return fail(ErrorKind::invalid, "the descriptor passed for '" + std::string(file_name) + "' is not a regular file");

  ObjectStore& objects = m_repository.objects();
  auto served = serve(objects, *name, file_name, out_fd, exact, written_crc, for_postgres);
  if (served || served.error().kind != ErrorKind::corrupt || objects.member_count() < 2) return served;
  // Served by the first repository that holds the name, and that copy is damaged: another
  // repository may hold a sound one (what having several is for). Absent there is no answer.
  for (std::size_t i = 0; i < objects.member_count(); ++i) {
    spdlog::error("{}; trying '{}'", served.error().message, objects.member(i).describe());
    if (::ftruncate(out_fd, 0) != 0) return fail_os("truncate output for", file_name, errno);
    auto again = serve(objects.member(i), *name, file_name, out_fd, exact, written_crc, for_postgres);
    if (again) return again;
  }
  if (::ftruncate(out_fd, 0) != 0) return fail_os("truncate output for", file_name, errno);
  return served;
}

Result<std::uint64_t> Fetch::serve(ObjectStore& objects, const WalName& wal_name, std::string_view file_name, int out_fd, bool exact,
                                   std::uint32_t* written_crc, bool for_postgres) {
  const WalName* name = &wal_name;
  const std::string key = object_key(*name);
  const std::string what = objects.describe() + "/" + key;
  // Storage is always asked first (another walvaultd, a standby's sidecar, may write to the
  // same repository): one open, which costs what an existence check costs, never a LIST.
  const bool small = name->kind == WalFileKind::history || name->kind == WalFileKind::backup;
  ReadChecks checks = ReadChecks::named(what);
  if (!small) {
    // The first decoded piece holds the long page header: prove it is the WAL the name says
    // before a byte of it reaches the output.
    checks.first_piece = [this, &name, file_name, &what](std::span<const std::byte> piece, const ObjectHeader& header) -> Result<void> {
      if (piece.size() < k_long_page_header_size)
        return fail(ErrorKind::corrupt, "stored object '" + what + "' is corrupt: first decoded piece is shorter than a page header");
      if (auto r = check_segment_header(m_repository, piece, header.plain_size, *name, file_name); !r)
        return fail(ErrorKind::corrupt, "stored object '" + what + "' fails verification: " + r.error().message);
      return {};
    };
  }
  auto stored = present_or_judged<ObjectStream>(key, file_name, *name, exact, [&] { return objects.open(key, checks); });
  if (!stored) return std::unexpected(stored.error());
  // What the index recorded when the name was archived: the content served must be that one
  // (an object replaced or swapped behind walvaultd's back is valid, and wrong). The stream
  // proves the content against the digest the object declares, so comparing that is enough.
  auto row = m_index.find(file_name);
  if (!row) return std::unexpected(row.error());
  std::string recorded;
  if (*row && (*row)->sha256 != k_unreadable_sha256 && (*row)->sha256 != k_missing_sha256) recorded = (*row)->sha256;
  if (!recorded.empty() && to_hex(stored->header().plain_sha256) != recorded) return fail(ErrorKind::corrupt, different_content(what));
  if (small) return copy_small(*stored, *name, file_name, what, out_fd, written_crc);
  return stream_segment(*stored, file_name, out_fd, written_crc, for_postgres);
}

std::string Fetch::different_content(const std::string& what) {
  return "stored object '" + what + "' is not the content archived under its name (its SHA-256 differs from the "
         "index's): replaced or swapped behind walvaultd's back; not served (see 'walvault verify')";
}

// The opened object under `key`, or why there is none. A name judged lost is looked at once
// more: a push may have stored and indexed it between the read and the judgement.
template <class T>
Result<T> Fetch::present_or_judged(const std::string& key, std::string_view file_name, const WalName& name, bool exact,
                                   const std::function<Result<std::optional<T>>()>& open) {
  for (int attempt = 0;; ++attempt) {
    auto stored = open();
    if (!stored) return std::unexpected(stored.error());
    if (*stored) return std::move(**stored);
    Failure why = judge_absent(file_name, name, key, exact);
    if (why.kind != ErrorKind::corrupt || attempt > 0) return std::unexpected(why);
    auto now = m_repository.objects().exists(key);
    if (!now || !*now) return std::unexpected(why);
  }
}

// .history and .backup files: small text, proven whole before a byte is written.
Result<std::uint64_t> Fetch::copy_small(ObjectStream& stream, const WalName& name, std::string_view file_name, const std::string& what,
                                        int out_fd, std::uint32_t* written_crc) {
  if (stream.header().plain_size > k_max_text_object)
    return fail(ErrorKind::corrupt, "stored object '" + what + "' declares " + std::to_string(stream.header().plain_size) +
                                        " bytes, more than a .history or .backup file ever holds");
  std::vector<std::byte> plain(static_cast<std::size_t>(stream.header().plain_size));
  std::size_t got = 0;
  for (;;) {
    std::byte spare[1];
    auto n = got < plain.size() ? stream.read(std::span<std::byte>(plain).subspan(got)) : stream.read(spare);
    if (!n) return std::unexpected(n.error());
    if (*n == 0) break;
    got += *n;
  }
  if (auto r = check_wal_content(m_repository, plain, name, file_name); !r)
    return fail(ErrorKind::corrupt, "stored object '" + what + "' fails verification: " + r.error().message);
  if (auto r = make_empty(out_fd, "output for " + std::string(file_name)); !r) return std::unexpected(r.error());
  if (auto r = pwrite_all(out_fd, plain, 0, file_name); !r) return std::unexpected(r.error());
  if (written_crc) *written_crc = crc32c(plain);
  return static_cast<std::uint64_t>(plain.size());
}

// Storage has no object for `file_name`. This is the one place that decides whether that is
// "not there" (NOTFOUND: PostgreSQL may take it as the end of WAL, promote, and pick a timeline
// it believes unused) or a loss (any other answer: archive-get exits 126 and recovery stops,
// or 1 in standby mode, which keeps waiting). It is "not there" only when nothing says the
// name was archived: the index has no row for it and can be believed, the repository still
// holds its identity (an unmounted or emptied repository is damage, not an empty archive) and,
// for a segment during recovery, no later segment of its timeline is archived (a hole). A name
// retention pruned on purpose is "not there": the end of an older backup's island of WAL.
Failure Fetch::judge_absent(std::string_view file_name, const WalName& name, const std::string& key, bool exact) {
  const std::string quoted = "'" + std::string(file_name) + "'";
  const std::string where = "repository '" + m_repository.describe() + "' (object " + key + ")";
  auto row = m_index.find(file_name);
  if (!row) return {ErrorKind::io, "cannot tell whether " + quoted + " was archived: " + row.error().message};
  if (*row)
    return {ErrorKind::corrupt, quoted + " was archived on " + format_timestamp((*row)->stored_at_us) + " and is gone from " + where +
                                    ": the archive lost it; restore the object from a copy or take a new base backup "
                                    "(see 'walvault verify')"};
  auto pruned = m_index.was_pruned(file_name);
  if (!pruned) return {ErrorKind::io, "cannot tell whether " + quoted + " was archived: " + pruned.error().message};
  if (!*pruned && !m_index.trusted())
    return {ErrorKind::io, quoted + " is not in " + where + ", but walvaultd's index '" + m_index.path() +
                               "' is not trusted since an index write failed, so it cannot prove the name was never "
                               "archived; run 'walvault reindex'"};
  auto identity = m_repository.read_identity();
  if (!identity)
    return {ErrorKind::io, "cannot tell whether " + quoted + " was archived: " + identity.error().message};
  if (!*identity)
    return {ErrorKind::corrupt, quoted + " is not in " + where + ", and neither is the repository's identity file " +
                                    std::string(k_identity_key) + ": the repository is unmounted, emptied or not the one "
                                    "walvaultd opened; refusing to answer 'not there'"};
  if (const auto id = m_repository.system_identifier();
      id && (*identity)->find("system-identifier=" + std::to_string(*id) + "\n") == std::string::npos)
    return {ErrorKind::corrupt, quoted + " is not in " + where + ", whose identity file no longer names cluster " +
                                    std::to_string(*id) + ": another repository is mounted there; refusing to answer 'not there'"};
  if (!*pruned && !exact) {
    if (auto hole = hole_around(file_name, name); hole) return *hole;
  }
  if (*pruned) return {ErrorKind::not_found, quoted + " is not in the archive (retention removed it)"};
  return {ErrorKind::not_found, quoted + " is not in the archive"};
}

// During recovery, a name missing where the archive shows WAL went on is a hole, not the end of
// WAL: answering "not there" would make PostgreSQL end recovery (and promote) there.
std::optional<Failure> Fetch::hole_around(std::string_view file_name, const WalName& name) {
  const std::string quoted = "'" + std::string(file_name) + "'";
  auto unknown = [&](const Failure& f) { return Failure{ErrorKind::io, "cannot tell whether " + quoted + " was archived: " + f.message}; };
  if (name.kind == WalFileKind::history) {
    // A timeline above 1 that the archive already holds WAL or a child of has a history file.
    auto newest = m_index.newest_timeline();
    if (!newest) return unknown(newest.error());
    if (name.timeline > 1 && *newest && **newest >= name.timeline)
      return Failure{ErrorKind::corrupt, quoted + " is missing from the archive although timeline " + std::to_string(**newest) +
                                             " is archived: its history was lost (see 'walvault timelines')"};
    return std::nullopt;
  }
  if (name.kind != WalFileKind::segment) return std::nullopt;
  auto later = m_index.later_segment(name.timeline, file_name);
  if (!later) return unknown(later.error());
  if (*later)
    return Failure{ErrorKind::corrupt, quoted + " is missing from the archive although the later '" + **later +
                                           "' is archived: a gap, not the end of WAL (see 'walvault check')"};
  // A timeline that branched off this one later in WAL proves this one went on past the name.
  auto segment_size = m_index.segment_size();
  if (!segment_size) return unknown(segment_size.error());
  if (*segment_size == 0) return std::nullopt;
  auto timelines = m_index.timelines();
  if (!timelines) return unknown(timelines.error());
  const std::uint64_t segno = segment_number(name, *segment_size);
  for (const auto& t : *timelines)
    if (t.parent == name.timeline && t.switch_lsn / *segment_size > segno)
      return Failure{ErrorKind::corrupt, quoted + " is missing from the archive although timeline " + std::to_string(t.timeline) +
                                             " branched off timeline " + std::to_string(name.timeline) + " after it: a gap, "
                                             "not the end of WAL (see 'walvault check')"};
  return std::nullopt;
}

// Segments stream in one pass: decode a piece, check the page header (first piece, in the
// stream's hook), hash it, write it. The output is the client's unnamed temporary file, which
// gets its name only after OK, so bytes are never visible before the whole content is proven;
// on any mismatch the file is truncated as well.
Result<std::uint64_t> Fetch::stream_segment(ObjectStream& stream, std::string_view file_name, int out_fd, std::uint32_t* written_crc,
                                           bool for_postgres) {
  if (auto r = make_empty(out_fd, "output for " + std::string(file_name)); !r) return std::unexpected(r.error());
  // 256 KiB pieces stay in the CPU cache from decode through hash to write.
  thread_local std::vector<std::byte> t_piece(256 << 10);
  std::uint64_t written = 0;
  std::uint32_t crc = 0xFFFFFFFF;
  std::optional<EarlyWriteback> writeback;
  if (for_postgres) writeback.emplace(out_fd);
  for (;;) {
    auto n = stream.read(t_piece);
    if (!n) {
      (void)::ftruncate(out_fd, 0);
      return std::unexpected(n.error());
    }
    if (*n == 0) break;
    if (m_rate_limit) m_rate_limit->acquire(*n);
    const std::span<const std::byte> piece(t_piece.data(), *n);
    if (auto r = pwrite_all(out_fd, piece, static_cast<off_t>(written), file_name); !r) return std::unexpected(r.error());
    if (written_crc) crc = crc32c_update(crc, piece);  // while the piece is still in the cache
    written += piece.size();
    if (writeback) writeback->written_up_to(written);
  }
  if (written_crc) *written_crc = crc ^ 0xFFFFFFFF;
  return written;
}

protocol::Message Fetch::handle(Request& request) {
  const std::string name(request.message.argument());
  const bool exact = request.message.field("mode") != std::optional<std::string_view>("recovery");
  auto size = get(name, request.fd.get(), exact, /*written_crc=*/nullptr, /*for_postgres=*/true);
  request.fd.reset();
  if (!size) {
    if (size.error().kind == ErrorKind::not_found) {
      spdlog::debug("{} requested, not in the archive", name.substr(0, 80));
      return protocol::not_found(size.error().message);
    }
    spdlog::error("get of '{}' failed: {}", name.substr(0, 80), size.error().message);
    return protocol::error(size.error());
  }
  ++m_served;
  spdlog::info("restored {} ({} bytes)", name, *size);
  protocol::Message response = protocol::ok();
  response.set("size", std::to_string(*size));
  return response;
}

}  // namespace walvault
