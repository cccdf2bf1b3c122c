#include "archiver/ingest.hpp"

#include <sys/stat.h>

#include <array>
#include <chrono>
#include <future>
#include <optional>
#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/crc32c.hpp"
#include "common/core/object_store.hpp"
#include "common/core/sha256.hpp"
#include "common/core/wal_checks.hpp"
#include "common/core/wal_page.hpp"

namespace walvault {

namespace {

// Text files (.history, .backup) are tiny; anything larger is not PostgreSQL's.
constexpr std::uint64_t k_max_text_file = 1 << 20;

bool same_content(const ObjectHeader& stored, std::uint64_t size, const Sha256Digest& digest) {
  return stored.plain_size == size && stored.plain_sha256 == digest;
}

}  // namespace

Ingest::Ingest(Repository& repository, LiveSetting<CompressSpec> compress, Indexer* indexer)
    : m_repository(repository), m_indexer(indexer), m_compress(std::move(compress)) {}

// The object is durable before this runs, so a failure here never fails the push: the index
// stops being trusted for "not there" answers until start-up repair or `reindex` catches up.
void Ingest::record(const WalName& name, std::span<const std::byte> content, const Sha256Digest& digest, bool duplicate,
                    std::optional<std::uint32_t> key_id) {
  if (!m_indexer) return;
  // A duplicate's row stays, unless it is that of an unreadable or lost object: that one is
  // indexed again from the proven content.
  if (duplicate && !recorded_sha256(format_wal_name(name)).empty()) return;
  if (auto r = m_indexer->index_pushed(name, content, digest, key_id); !r) {
    m_indexer->index().record_failure();
    spdlog::error("unable to index '{}' (the object is stored; the index will be repaired at start-up or by "
                  "'walvault reindex'): {}", format_wal_name(name), r.error().message);
  }
}

// The SHA-256 (hex) the index holds for `file_name`; empty without an index, a row, or with a
// row of an unreadable or lost object.
std::string Ingest::recorded_sha256(std::string_view file_name) {
  if (!m_indexer) return "";
  auto row = m_indexer->index().find(file_name);
  if (!row || !*row || (*row)->sha256 == k_unreadable_sha256 || (*row)->sha256 == k_missing_sha256) return "";
  return (*row)->sha256;
}


bool Ingest::stored_ahead(std::string_view file_name, int fd, const struct stat& st) {
  auto record = m_ahead->find(file_name);
  if (!record) return false;
  if (!(record->file == FileIdentity::of(st))) {
    ++m_counters.ahead_misses;
    if (!m_warned_ahead_miss.exchange(true))
      spdlog::warn("archive-push of '{}' passed another file than the one look-ahead stored (device {} inode {} vs {} {}, or "
                   "changed since): pushed the slow way. If every push says so, PostgreSQL sees pg_wal through another "
                   "filesystem view than walvaultd (look-ahead then only costs reads; set look-ahead-workers = 0)",
                   file_name, st.st_dev, st.st_ino, record->file.device, record->file.inode);
    return false;
  }
  // The same first page as well: a cheap second witness beside the file's times.
  std::array<std::byte, k_ahead_first_page> first{};
  const std::span<std::byte> page(first.data(), std::min<std::size_t>(first.size(), static_cast<std::size_t>(st.st_size)));
  if (!pread_exact(fd, page, 0, file_name) || crc32c(page) != record->first_page_crc) return false;
  if (recorded_sha256(file_name) != record->sha256) return false;
  ObjectStore& objects = m_repository.objects();
  if (!objects.writable()) return false;  // a repository closed for writes: the full path says why
  if (std::chrono::steady_clock::now() - record->stored_at < k_ahead_trusted_for) return true;
  const std::string key = object_key(*parse_wal_name(file_name));
  for (std::size_t i = 0; i < objects.member_count(); ++i) {
    auto header = objects.member(i).header(key);
    if (!header || !*header) return false;
    if ((*header)->plain_size != static_cast<std::uint64_t>(st.st_size) || to_hex((*header)->plain_sha256) != record->sha256) return false;
  }
  return true;
}

Result<void> Ingest::read_content(int fd, std::span<std::byte> content, std::string_view file_name) {
  if (!m_rate_limit) return pread_exact(fd, content, 0, file_name);
  constexpr std::size_t k_piece = 1 << 20;
  for (std::size_t done = 0; done < content.size(); done += k_piece) {
    const auto piece = content.subspan(done, std::min(k_piece, content.size() - done));
    m_rate_limit->acquire(piece.size());
    if (auto r = pread_exact(fd, piece, static_cast<off_t>(done), file_name); !r) return r;
  }
  return {};
}

Result<PushOutcome> Ingest::push(std::string_view file_name, int fd, const std::function<Result<void>()>& unchanged_since_read) {
  auto name = parse_wal_name(file_name);
  if (!name)
    return fail(ErrorKind::invalid, "'" + std::string(file_name).substr(0, 80) +
                                        "' is not a WAL file name (segment, .history, .partial or .backup)");
  struct stat st {};
  if (fd < 0) return fail(ErrorKind::invalid, "no file descriptor was passed with the request for '" + std::string(file_name) + "'");
  if (::fstat(fd, &st) != 0) return fail_os("stat WAL file", file_name, errno);
  if (!S_ISREG(st.st_mode)) return fail(ErrorKind::invalid, "WAL file '" + std::string(file_name) + "' is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  // PostgreSQL's push (look-ahead's own pushes pass unchanged_since_read).
  std::optional<AheadRegistry::PostgresPush> postgres_push;
  if (m_ahead && name->kind == WalFileKind::segment && !unchanged_since_read) {
    if (stored_ahead(file_name, fd, st)) return PushOutcome::ahead;
    postgres_push.emplace(*m_ahead, std::string(file_name));
    // Look-ahead is storing this very segment: its record is the cheap answer.
    if (m_ahead->wait_while_storing(file_name, std::chrono::seconds(60)) && stored_ahead(file_name, fd, st)) return PushOutcome::ahead;
  }
  const bool is_text = name->kind == WalFileKind::history || name->kind == WalFileKind::backup;
  if (size > (is_text ? k_max_text_file : k_max_segment_size))
    return fail(ErrorKind::refused, "WAL file '" + std::string(file_name) + "' refused: " + std::to_string(size) +
                                        " bytes is larger than any " + std::string(to_string(name->kind)) + " file");

  // Each worker keeps its segment buffer across requests: no 16 MiB allocation, zero-fill or
  // page faults per push.
  if (!is_text) {
    // Prove the size is this WAL's segment size before reserving memory for it, so a large
    // file with a segment's name cannot make a worker hold up to 1 GiB.
    std::array<std::byte, k_long_page_header_size> first{};
    if (size < first.size())
      return fail(ErrorKind::refused, "WAL file '" + std::string(file_name) + "' refused: " + std::to_string(size) +
                                          " bytes is too short to hold a page header");
    if (auto r = pread_exact(fd, first, 0, file_name); !r) return std::unexpected(r.error());
    auto header = read_long_page_header(first, file_name);
    if (!header) return std::unexpected(header.error());
    if (auto r = check_long_header(*header, size); !r)
      return fail(ErrorKind::refused, "WAL file '" + std::string(file_name) + "' refused: " + r.error().message);
    // Before any buffer of its size exists: a repository holds WAL of one segment size.
    if (auto r = m_repository.check_segment_size(header->segment_size, file_name); !r) return std::unexpected(r.error());
  }
  thread_local std::vector<std::byte> t_content;
  // A buffer grown past the repository's segment size (a first push of another size, before it
  // was refused) is given back rather than kept by the worker for good.
  if (const auto segment = m_repository.segment_size(); segment && t_content.size() > std::max<std::uint64_t>(*segment, size))
    std::vector<std::byte>().swap(t_content);
  if (t_content.size() < size) t_content.resize(size);
  const std::span<std::byte> content(t_content.data(), size);
  if (auto r = read_content(fd, content, file_name); !r) return std::unexpected(r.error());
  if (unchanged_since_read) {
    if (auto r = unchanged_since_read(); !r) return std::unexpected(r.error());
  }
  if (auto r = check_wal_content(m_repository, content, *name, file_name); !r) return std::unexpected(r.error());
  if (name->kind == WalFileKind::segment || name->kind == WalFileKind::partial) {
    auto header = read_long_page_header(content, file_name);
    if (auto r = m_repository.adopt_system_identifier(header->system_identifier,
                                                      postgres_version_for_wal_magic(header->magic).value_or(0), file_name,
                                                      header->segment_size);
        !r)
      return std::unexpected(r.error());
  }
  const std::string key = object_key(*name);

  // PostgreSQL archives one file at a time, so each push's latency is the archive's
  // throughput: hash on a second thread while this one compresses.
  std::future<Sha256Digest> hashing = std::async(std::launch::async, [content] { return sha256(content); });
  std::optional<Sha256Digest> digest_value;
  auto digest = [&]() -> const Sha256Digest& {
    if (!digest_value) digest_value = hashing.get();
    return *digest_value;
  };
  // Never leave the hashing thread reading `content` after we return.
  struct JoinHashing {
    std::future<Sha256Digest>& future;
    ~JoinHashing() {
      if (future.valid()) future.wait();
    }
  } join_hashing{hashing};

  NameLocks::Guard guard(m_locks, key);
  ObjectStore& objects = m_repository.objects();
  // A repository closed for writes (it lost its identity) refuses the push before anything is
  // written anywhere: the segment would be in fewer repositories than configured.
  if (auto r = objects.writable(); !r) return std::unexpected(r.error());
  // Each repository's copy is judged on its own (with one repository, the loop runs once): a
  // read served by the first copy cannot speak for the others.
  enum class Copy { absent, damaged, same };
  const std::size_t count = objects.member_count();
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<Copy> copies(count, Copy::absent);
    std::vector<std::string> damage(count);
    bool any_held = false;
    std::optional<std::uint32_t> key_id;  // the first repository's copy's
    for (std::size_t i = 0; i < count; ++i) {
      ObjectStore& copy = objects.member(i);
      // What the stored object says it holds (its head and trailer, not its body).
      auto header = copy.header(key);
      if (!header && header.error().kind != ErrorKind::corrupt) return std::unexpected(header.error());
      if (header && !*header) continue;
      any_held = true;
      const std::string in_repository = count > 1 ? " (in " + copy.describe() + ")" : std::string();
      if (!header) {
        copies[i] = Copy::damaged;
        damage[i] = header.error().message + in_repository;
        continue;
      }
      if (!key_id) key_id = (*header)->cipher ? (*header)->key_id : 0;
      if (!same_content(**header, size, digest()))
        return fail(ErrorKind::conflict, "WAL file '" + std::string(file_name) + "' is already archived with different content" +
                                             in_repository + "; the stored object was left untouched");
      // Same content by its header; prove the stored body too, since a duplicate answer tells
      // PostgreSQL it may recycle its own copy.
      auto whole = copy.read(key);
      if (!whole && whole.error().kind != ErrorKind::corrupt) return std::unexpected(whole.error());
      copies[i] = whole && *whole ? Copy::same : Copy::damaged;
      if (copies[i] == Copy::same) continue;
      damage[i] = (whole ? "stored object '" + key + "' vanished while it was read" : whole.error().message) + in_repository;
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (copies[i] != Copy::damaged) continue;
      // A damaged copy's content cannot be read, so only the index can say what it was:
      // replace it unless the index recorded other content under the name.
      const std::string recorded = recorded_sha256(file_name);
      if (!recorded.empty() && recorded != to_hex(digest()))
        return fail(ErrorKind::conflict, "WAL file '" + std::string(file_name) + "' is already archived with different content "
                                             "(by the index; the stored object's header is damaged: " + damage[i] +
                                             "); the stored object was left untouched");
    }
    if (!any_held) {
      // No repository holds the name (just found, under the name lock): one encoding, stored
      // in every repository.
      auto stored = objects.put(key, content, m_compress(), PutMode::create_after_lookup, digest);
      if (stored) {
        record(*name, content, digest(), false, stored->cipher ? stored->key_id : 0);
        return PushOutcome::stored;
      }
      if (stored.error().kind != ErrorKind::conflict) return std::unexpected(stored.error());
      continue;  // another writer created it between our check and our write: compare with theirs
    }
    // Some repository holds it: keep its proven copies, replace damaged ones with the content
    // PostgreSQL pushed again (it still holds the good one), and fill those that lack it (an
    // earlier push that failed part way).
    bool wrote = false;
    bool raced = false;
    for (std::size_t i = 0; i < count && !raced; ++i) {
      ObjectStore& copy = objects.member(i);
      if (copies[i] == Copy::same) {
        // The earlier push may have died between its link and its directory sync: make the
        // stored object durable before saying yes again.
        if (auto r = copy.make_durable(key); !r) return std::unexpected(r.error());
        continue;
      }
      if (copies[i] == Copy::damaged) spdlog::error("{}; replacing it with the content PostgreSQL pushed again", damage[i]);
      const PutMode mode = copies[i] == Copy::damaged ? PutMode::replace : PutMode::create_after_lookup;
      auto stored = copy.put(key, content, m_compress(), mode, digest);
      if (!stored && stored.error().kind == ErrorKind::conflict) raced = true;
      else if (!stored) return std::unexpected(stored.error());
      else {
        wrote = true;
        if (!key_id) key_id = stored->cipher ? stored->key_id : 0;
      }
    }
    if (raced) continue;
    record(*name, content, digest(), !wrote, key_id);
    return wrote ? PushOutcome::stored : PushOutcome::duplicate;
  }
  return fail(ErrorKind::internal, "WAL file '" + std::string(file_name) + "': repeated conflicting writes");
}

protocol::Message Ingest::handle(Request& request) {
  const auto started = std::chrono::steady_clock::now();
  const std::string name(request.message.argument());
  auto outcome = push(name, request.fd.get());
  request.fd.reset();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  if (!outcome) {
    const Failure& failure = outcome.error();
    switch (failure.kind) {
      case ErrorKind::refused: ++m_counters.refused; break;
      case ErrorKind::conflict: ++m_counters.conflicts; break;
      default: ++m_counters.failed; break;
    }
    spdlog::error("push of '{}' from uid {} failed: {}", name.substr(0, 80), request.peer_uid, failure.message);
    return protocol::error(failure);
  }
  protocol::Message response = protocol::ok();
  if (*outcome == PushOutcome::ahead) {
    ++m_counters.ahead;
    spdlog::info("archived {} (stored ahead by look-ahead; {} ms)", name, ms);
    response.set("detail", "ahead");
  } else if (*outcome == PushOutcome::duplicate) {
    ++m_counters.duplicates;
    spdlog::warn("{} was already archived with identical content; acknowledged again", name);
    response.set("detail", "duplicate");
  } else {
    ++m_counters.stored;
    spdlog::info("archived {} ({} ms)", name, ms);
    response.set("detail", "stored");
  }
  return response;
}

}  // namespace walvault
