#include "restorer/fetch.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/object_format.hpp"
#include "common/core/sha256.hpp"
#include "common/core/time_format.hpp"
#include "common/core/wal_page.hpp"
#include "common/core/wal_checks.hpp"

namespace walvault {

Result<std::uint64_t> Fetch::get(std::string_view file_name, int out_fd, bool exact) {
  auto name = parse_wal_name(file_name);
  if (!name)
    return fail(ErrorKind::invalid, "'" + std::string(file_name).substr(0, 80) +
                                        "' is not a WAL file name (segment, .history, .partial or .backup)");
  if (out_fd < 0) return fail(ErrorKind::invalid, "no file descriptor was passed with the request for '" + std::string(file_name) + "'");
  struct stat st {};
  if (::fstat(out_fd, &st) != 0 || !S_ISREG(st.st_mode))
    return fail(ErrorKind::invalid, "the descriptor passed for '" + std::string(file_name) + "' is not a regular file");

  const std::string key = object_key(*name);
  // Storage is always asked first (another walvaultd, a standby's sidecar, may write to the
  // same repository): one GET, which costs what an existence check costs, never a LIST.
  auto stored = read_stored(key, file_name, *name, exact);
  if (!stored) return std::unexpected(stored.error());
  const std::string what = m_repository.describe() + "/" + key;
  // What the index recorded when the name was archived: the content served must be that one
  // (an object replaced or swapped behind walvaultd's back is valid, and wrong).
  auto row = m_index.find(file_name);
  if (!row) return std::unexpected(row.error());
  std::string recorded;
  if (*row && (*row)->sha256 != k_unreadable_sha256 && (*row)->sha256 != k_missing_sha256) recorded = (*row)->sha256;
  if (name->kind == WalFileKind::history || name->kind == WalFileKind::backup) {
    auto opened = open_object(*stored, what);
    if (!opened) return std::unexpected(opened.error());
    if (auto r = check_wal_content(m_repository, opened->plain, *name, file_name); !r)
      return fail(ErrorKind::corrupt, "stored object '" + what + "' fails verification: " + r.error().message);
    if (!recorded.empty() && to_hex(opened->header.plain_sha256) != recorded)
      return fail(ErrorKind::corrupt, different_content(what));
    if (::ftruncate(out_fd, 0) != 0) return fail_os("truncate output for", file_name, errno);
    if (auto r = pwrite_all(out_fd, opened->plain, 0, file_name); !r) return std::unexpected(r.error());
    return static_cast<std::uint64_t>(opened->plain.size());
  }
  return stream_segment(*stored, *name, file_name, what, recorded, out_fd);
}

std::string Fetch::different_content(const std::string& what) {
  return "stored object '" + what + "' is not the content archived under its name (its SHA-256 differs from the "
         "index's): replaced or swapped behind walvaultd's back; not served (see 'walvault verify')";
}

// The stored bytes of `key`, or why there are none. A name judged lost is looked at once more:
// a push may have stored and indexed it between the read and the judgement.
Result<std::vector<std::byte>> Fetch::read_stored(const std::string& key, std::string_view file_name, const WalName& name, bool exact) {
  for (int attempt = 0;; ++attempt) {
    auto stored = m_repository.storage().get(key);
    if (!stored) return std::unexpected(stored.error());
    if (*stored) return std::move(**stored);
    Failure why = judge_absent(file_name, name, key, exact);
    if (why.kind != ErrorKind::corrupt || attempt > 0) return std::unexpected(why);
    auto now = m_repository.storage().exists(key);
    if (!now || !*now) return std::unexpected(why);
  }
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
  auto identity = m_repository.storage().get(std::string(k_identity_key));
  if (!identity)
    return {ErrorKind::io, "cannot tell whether " + quoted + " was archived: " + identity.error().message};
  if (!*identity)
    return {ErrorKind::corrupt, quoted + " is not in " + where + ", and neither is the repository's identity file " +
                                    std::string(k_identity_key) + ": the repository is unmounted, emptied or not the one "
                                    "walvaultd opened; refusing to answer 'not there'"};
  if (const auto id = m_repository.system_identifier();
      id && std::string(as_text(**identity)).find("system-identifier=" + std::to_string(*id) + "\n") == std::string::npos)
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

// Segments stream in one pass: decode a piece, check the page header (first piece), hash it,
// write it. The output is the client's unnamed temporary file, which gets its name only after
// OK, so bytes are never visible before the whole content is proven; on any mismatch the file
// is truncated as well.
Result<std::uint64_t> Fetch::stream_segment(std::span<const std::byte> stored, const WalName& name, std::string_view file_name,
                                            const std::string& what, const std::string& recorded, int out_fd) {
  auto header = decode_object_header(stored, what);
  if (!header) return std::unexpected(header.error());
  const std::span<const std::byte> body = stored.subspan(k_object_header_size);
  auto corrupt = [&](const std::string& why) {
    (void)::ftruncate(out_fd, 0);
    return fail(ErrorKind::corrupt, "stored object '" + what + "' is corrupt: " + why);
  };
  if (body.size() != header->body_size)
    return corrupt("body is " + std::to_string(body.size()) + " bytes, header says " + std::to_string(header->body_size));
  auto decoder = make_decoder(header->codec);
  if (!decoder) return corrupt(decoder.error().message);
  if (::ftruncate(out_fd, 0) != 0) return fail_os("truncate output for", file_name, errno);

  // 256 KiB pieces stay in the CPU cache from decode through hash to write.
  thread_local std::vector<std::byte> t_piece(256 << 10);
  Sha256 hasher;
  std::uint64_t written = 0;
  std::size_t consumed = 0;
  for (;;) {
    auto produced = (*decoder)->decode_some(body, consumed, t_piece);
    if (!produced) return corrupt(produced.error().message);
    if (*produced == 0) break;
    if (written + *produced > header->plain_size) return corrupt("object body decodes to more bytes than its header says");
    const std::span<const std::byte> piece(t_piece.data(), *produced);
    if (written == 0) {
      // The first piece holds the long page header: prove it is the WAL the name says.
      if (piece.size() < k_long_page_header_size) return corrupt("first decoded piece is shorter than a page header");
      if (auto r = check_segment_header(m_repository, piece, header->plain_size, name, file_name); !r) {
        (void)::ftruncate(out_fd, 0);
        return fail(ErrorKind::corrupt, "stored object '" + what + "' fails verification: " + r.error().message);
      }
    }
    hasher.update(piece);
    if (auto r = pwrite_all(out_fd, piece, static_cast<off_t>(written), file_name); !r) return std::unexpected(r.error());
    written += piece.size();
  }
  if (consumed != body.size()) return corrupt("trailing bytes after the compressed data");
  if (auto r = (*decoder)->finish(); !r) return corrupt(r.error().message);
  if (written != header->plain_size)
    return corrupt("decodes to " + std::to_string(written) + " bytes, header says " + std::to_string(header->plain_size));
  const Sha256Digest digest = hasher.finish();
  if (digest != header->plain_sha256) return corrupt("SHA-256 of the content does not match the header");
  if (!recorded.empty() && to_hex(digest) != recorded) {
    (void)::ftruncate(out_fd, 0);
    return fail(ErrorKind::corrupt, different_content(what));
  }
  return written;
}

protocol::Message Fetch::handle(Request& request) {
  const std::string name(request.message.argument());
  const bool exact = request.message.field("mode") != std::optional<std::string_view>("recovery");
  auto size = get(name, request.fd.get(), exact);
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
