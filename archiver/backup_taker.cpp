#include "archiver/backup_taker.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <algorithm>
#include <deque>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/base/process.hpp"
#include "common/base/wal_name.hpp"
#include "common/core/client_output.hpp"
#include "common/core/object_store.hpp"
#include "common/core/pgdata.hpp"
#include "common/core/sha256.hpp"
#include "common/core/time_format.hpp"
#include "common/core/document.hpp"

namespace walvault {

namespace {

// pg_basebackup as a child: tar on `out`, messages and -P progress on `err`.
struct Child {
  pid_t pid = 0;
  UniqueFd out;
  UniqueFd err;
};

Result<Child> spawn_pg_basebackup(const BackupSettings& settings, const std::string& label) {
  const std::string program = settings.bindir + "/pg_basebackup";
  if (::access(program.c_str(), X_OK) != 0)
    return fail(ErrorKind::invalid, os_error_text("run", program, errno) + " (set pg-bindir to PostgreSQL's bin directory)");
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail_os("create", "pipe", errno);
  UniqueFd out_read(out[0]), out_write(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return fail_os("create", "pipe", errno);
  UniqueFd err_read(err[0]), err_write(err[1]);

  std::vector<std::string> argv = {program};
  if (!settings.connection.dbname.empty()) argv.push_back("--dbname=" + settings.connection.dbname);  // never a password
  for (const char* arg : {"--pgdata=-", "--format=tar", "--wal-method=none", "--progress", "--no-password"}) argv.push_back(arg);
  argv.push_back("--checkpoint=" + settings.checkpoint);
  argv.push_back("--label=" + label);
  auto pid = spawn_process(argv, out_write.get(), err_write.get(),
                           SpawnOptions{settings.connection.environment, settings.connection.run_as});
  if (!pid) return std::unexpected(pid.error());
  return Child{*pid, std::move(out_read), std::move(err_read)};
}

// Reads pg_basebackup's stderr: its -P lines ("  1234/56789 kB (2%), 0/1 tablespace") give
// the size estimate; the other lines are kept (the last few) to explain a failure.
class StderrReader {
 public:
  StderrReader(UniqueFd fd, std::function<void(std::uint64_t)> on_estimate)
      : m_fd(std::move(fd)), m_on_estimate(std::move(on_estimate)), m_thread([this] { loop(); }) {}
  ~StderrReader() {
    if (m_thread.joinable()) m_thread.join();
  }
  // After the child exited (its end of the pipe is closed): everything it said.
  std::string messages() {
    if (m_thread.joinable()) m_thread.join();
    std::string text;
    for (const auto& line : m_lines) text += (text.empty() ? "" : "; ") + line;
    return text;
  }

 private:
  void loop() {
    std::string pending;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(m_fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\r' || buf[i] == '\n') {
          take(pending);
          pending.clear();
        } else if (pending.size() < 4096) {
          pending += buf[i];
        }
      }
    }
    take(pending);
  }
  void take(const std::string& line) {
    if (line.find_first_not_of(' ') == std::string::npos) return;
    const auto slash = line.find('/');
    const auto kb = line.find(" kB");
    if (slash != std::string::npos && kb != std::string::npos && slash < kb) {
      const std::string total = line.substr(slash + 1, kb - slash - 1);
      if (!total.empty() && total.find_first_not_of("0123456789") == std::string::npos) {
        m_on_estimate(std::stoull(total) * 1024);
        return;
      }
    }
    m_lines.push_back(line);
    if (m_lines.size() > 8) m_lines.pop_front();
  }

  UniqueFd m_fd;
  std::function<void(std::uint64_t)> m_on_estimate;
  std::deque<std::string> m_lines;
  std::thread m_thread;
};

// One chunk: a tar archive written by libarchive straight into an object being encoded.
class ChunkWriter {
 public:
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;
  ~ChunkWriter() {
    if (m_archive) archive_write_free(m_archive);
  }

  static Result<std::unique_ptr<ChunkWriter>> open(ObjectStore& objects, std::string key, const CompressSpec& spec) {
    auto object = objects.begin_put(key, spec, PutMode::create_only);
    if (!object) return std::unexpected(object.error());
    std::unique_ptr<ChunkWriter> chunk(new ChunkWriter(std::move(*object), std::move(key)));
    chunk->m_archive = archive_write_new();
    archive* a = chunk->m_archive;
    if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || archive_write_set_bytes_per_block(a, 1 << 16) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open2(a, chunk.get(), nullptr, &ChunkWriter::write_callback, nullptr, nullptr) != ARCHIVE_OK)
      return fail(ErrorKind::internal, "unable to start tar chunk '" + chunk->m_key + "': " + chunk->archive_error());
    return chunk;
  }

  Result<void> write_header(archive_entry* entry) {
    if (archive_write_header(m_archive, entry) != ARCHIVE_OK) return failure("write entry header");
    ++m_entries;
    return {};
  }
  Result<void> write_data(const void* data, std::size_t size) {
    const la_ssize_t n = archive_write_data(m_archive, data, size);
    if (n < 0 || static_cast<std::size_t>(n) != size) return failure("write entry data");
    return {};
  }
  Result<void> finish_entry() {
    if (archive_write_finish_entry(m_archive) != ARCHIVE_OK) return failure("finish entry");
    return {};
  }
  // Ends the tar archive and makes the object durable.
  Result<BackupChunk> close() {
    if (archive_write_close(m_archive) != ARCHIVE_OK) return std::unexpected(failure("end tar archive").error());
    auto header = m_object.finish();
    if (!header) return std::unexpected(header.error());
    return BackupChunk{m_key, header->plain_size, m_object.stored_size(), to_hex(header->plain_sha256), m_entries};
  }
  std::uint64_t plain_size() const { return m_object.plain_size(); }
  const std::string& key() const { return m_key; }

 private:
  ChunkWriter(ObjectPut object, std::string key) : m_object(std::move(object)), m_key(std::move(key)) {}

  static la_ssize_t write_callback(archive*, void* client, const void* buffer, size_t length) {
    auto* self = static_cast<ChunkWriter*>(client);
    if (auto r = self->m_object.append({static_cast<const std::byte*>(buffer), length}); !r) {
      self->m_storage_failure = r.error();
      return -1;
    }
    return static_cast<la_ssize_t>(length);
  }
  std::string archive_error() const {
    const char* text = m_archive ? archive_error_string(m_archive) : nullptr;
    return text ? text : "unknown libarchive error";
  }
  std::unexpected<Failure> failure(const std::string& what) {
    if (m_storage_failure) return std::unexpected(*m_storage_failure);
    return std::unexpected(Failure{ErrorKind::io, "unable to " + what + " in '" + m_key + "': " + archive_error()});
  }

  ObjectPut m_object;
  std::string m_key;
  archive* m_archive = nullptr;
  std::uint64_t m_entries = 0;
  std::optional<Failure> m_storage_failure;
};

// The lines of backup_label this needs: where the backup starts and on which timeline.
struct BackupLabel {
  std::uint64_t start_lsn = 0;
  std::uint64_t checkpoint_lsn = 0;
  std::uint32_t timeline = 0;
  bool from_standby = false;
};

Result<BackupLabel> parse_backup_label(std::string_view text) {
  BackupLabel label;
  bool have_start = false, have_timeline = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    auto value_of = [&](std::string_view key) -> std::optional<std::string_view> {
      if (!line.starts_with(key)) return std::nullopt;
      std::string_view value = line.substr(key.size());
      return value.substr(0, value.find(' '));
    };
    if (auto v = value_of("START WAL LOCATION: ")) {
      if (auto lsn = parse_lsn(*v)) label.start_lsn = *lsn, have_start = true;
    } else if (auto c = value_of("CHECKPOINT LOCATION: ")) {
      if (auto lsn = parse_lsn(*c)) label.checkpoint_lsn = *lsn;
    } else if (auto from = value_of("BACKUP FROM: ")) {
      label.from_standby = *from == "standby";
    } else if (auto t = value_of("START TIMELINE: ")) {
      label.timeline = static_cast<std::uint32_t>(std::strtoul(std::string(*t).c_str(), nullptr, 10));
      have_timeline = label.timeline != 0;
    }
  }
  if (!have_start || !have_timeline)
    return fail(ErrorKind::refused, "pg_basebackup's backup_label has no START WAL LOCATION or START TIMELINE line");
  return label;
}

class ArchiveReader {
 public:
  explicit ArchiveReader(int fd) : m_archive(archive_read_new()) {
    archive_read_support_format_tar(m_archive);
    m_open = archive_read_open_fd(m_archive, fd, 1 << 20) == ARCHIVE_OK;
  }
  ~ArchiveReader() { archive_read_free(m_archive); }
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;
  archive* get() const { return m_archive; }
  bool opened() const { return m_open; }
  std::string error() const {
    const char* text = archive_error_string(m_archive);
    return text ? text : "unknown libarchive error";
  }

 private:
  archive* m_archive;
  bool m_open = false;
};

}  // namespace

BackupTaker::BackupTaker(Repository& repository, Index& index, std::function<BackupSettings()> settings)
    : m_repository(repository), m_index(index), m_settings(std::move(settings)) {}

BackupTaker::~BackupTaker() {
  cancel();
  if (m_thread.joinable()) m_thread.join();
}

void BackupTaker::cancel() {
  m_cancel = true;
  std::lock_guard lock(m_child_mutex);
  if (m_child > 0) ::kill(m_child, SIGTERM);
}

std::optional<BackupProgress> BackupTaker::progress() const {
  std::lock_guard lock(m_mutex);
  return m_progress;
}

void BackupTaker::update(const std::function<void(BackupProgress&)>& change) {
  {
    std::lock_guard lock(m_mutex);
    if (m_progress) change(*m_progress);
  }
  m_changed.notify_all();
}

Result<std::string> BackupTaker::unique_id(std::int64_t now_us) {
  const std::string base = backup_id_for(now_us);
  // Any directory counts as taken, even one holding only a crashed write's temp file.
  auto taken = m_repository.objects().list_children(std::string(k_backup_prefix));
  if (!taken) return std::unexpected(taken.error());
  for (int n = 1; n < 100; ++n) {
    const std::string id = n == 1 ? base : base + "-" + std::to_string(n);
    if (std::find(taken->begin(), taken->end(), id) == taken->end()) return id;
  }
  return fail(ErrorKind::conflict, "unable to find a free backup id for " + base);
}

Result<std::string> BackupTaker::start(std::string label, std::string trigger, const CallerConnection& caller) {
  BackupSettings settings = m_settings();
  auto connection = choose_connection(settings.conninfo, settings.pgdata, caller, ::geteuid());
  if (!connection) return std::unexpected(connection.error());
  settings.connection = std::move(*connection);
  if (!settings.pgdata.empty()) {
    // Another cluster's pgdata is refused; one walvaultd cannot read is only a warning (the
    // connection may come from -d or pg-conninfo, and pg_basebackup says what it reaches).
    if (auto r = check_pgdata_cluster(settings.pgdata, m_repository); !r) {
      if (r.error().kind == ErrorKind::refused) return std::unexpected(r.error());
      spdlog::warn("backup: unable to check pgdata's system identifier: {}", r.error().message);
    }
  }
  if (label.size() > 1000 || label.find_first_of("\r\n") != std::string::npos)
    return fail(ErrorKind::invalid, "--label must be one line of at most 1000 bytes (PostgreSQL keeps it in backup_label)");
  std::lock_guard lock(m_mutex);
  if (m_progress && !m_progress->finished())
    return fail(ErrorKind::conflict, "backup " + m_progress->id + " is already running (" + m_progress->phase + ")");
  if (m_thread.joinable()) m_thread.join();  // the previous one has finished
  const std::int64_t now = now_unix_us();
  auto id = unique_id(now);
  if (!id) return std::unexpected(id.error());
  if (label.empty()) label = "walvault " + *id;
  m_cancel = false;
  m_result.reset();
  m_progress = BackupProgress{};
  m_progress->id = *id;
  m_progress->label = label;
  m_progress->trigger = std::move(trigger);
  m_progress->phase = "starting";
  m_progress->started_at_us = now;
  m_thread = std::thread([this, id = *id, settings = std::move(settings)] { run(id, settings); });
  return *id;
}

Result<StoredBackup> BackupTaker::wait(const std::string& id, const std::function<void(const BackupProgress&)>& on_progress) {
  std::unique_lock lock(m_mutex);
  for (;;) {
    if (!m_progress || m_progress->id != id) {
      // Finished, and another backup (the schedule) started before this waiter woke up.
      auto done = m_outcomes.find(id);
      if (done == m_outcomes.end()) return fail(ErrorKind::not_found, "backup " + id + " is not running");
      if (!done->second.result) return fail(ErrorKind::io, "backup " + id + " failed: " + done->second.error);
      return *done->second.result;
    }
    if (m_progress->finished()) break;
    const BackupProgress snapshot = *m_progress;
    lock.unlock();
    if (on_progress) on_progress(snapshot);
    lock.lock();
    m_changed.wait_for(lock, std::chrono::seconds(1), [&] { return !m_progress || m_progress->finished(); });
  }
  if (m_progress->phase == "failed") return fail(ErrorKind::io, "backup " + id + " failed: " + m_progress->error);
  if (!m_result) return fail(ErrorKind::internal, "backup " + id + " finished without a result");
  return *m_result;
}

void BackupTaker::run(std::string id, BackupSettings settings) {
  spdlog::info("backup {}: starting pg_basebackup ({}/pg_basebackup, checkpoint {})", id, settings.bindir, settings.checkpoint);
  Result<StoredBackup> result = take(id, settings);
  if (!result) {
    // Nothing of a failed backup may look like a backup: remove its chunks now (prune sweeps
    // whatever a crash leaves behind).
    // backup.json first (it may exist if its directory sync failed): a crash during this
    // cleanup must never leave a description whose chunks are gone.
    (void)m_repository.objects().remove(backup_info_key(id));
    if (auto removed = m_repository.objects().remove_all(backup_directory_key(id)); !removed)
      spdlog::warn("backup {}: unable to remove its chunks now ({}); prune will", id, removed.error().message);
    spdlog::error("backup {} failed: {}", id, result.error().message);
  } else {
    spdlog::info("backup {} complete: {} files, {} bytes ({} stored) in {} chunk(s), WAL {} .. {} on timeline {}", id, result->files,
                 result->plain_bytes, result->stored_bytes, result->chunks.size(), format_lsn(result->start_lsn),
                 format_lsn(result->stop_lsn), result->timeline);
  }
  {
    std::lock_guard lock(m_mutex);
    if (result) m_result = *result;
    m_progress->phase = result ? "complete" : "failed";
    if (!result) m_progress->error = result.error().message;
    m_progress->finished_at_us = now_unix_us();
    if (m_outcomes.size() >= 16) m_outcomes.erase(m_outcomes.begin());  // ids sort by time
    m_outcomes[id] = Outcome{result ? std::optional<StoredBackup>(*result) : std::nullopt, m_progress->error};
  }
  m_changed.notify_all();
  if (m_on_finished) m_on_finished();
}

Result<StoredBackup> BackupTaker::take(const std::string& id, const BackupSettings& settings) {
  StoredBackup backup;
  backup.id = id;
  backup.label = progress()->label;
  backup.started_at_us = progress()->started_at_us;

  auto child = spawn_pg_basebackup(settings, backup.label);
  if (!child) return std::unexpected(child.error());
  {
    std::lock_guard lock(m_child_mutex);
    m_child = child->pid;
  }
  if (m_cancel) ::kill(child->pid, SIGTERM);
  StderrReader messages(std::move(child->err), [this](std::uint64_t estimate) {
    update([&](BackupProgress& p) { p.estimated_bytes = estimate; });
  });
  // Reaps the child on every path; a backup that went wrong on our side stops it first.
  bool child_done = false;
  int child_status = 0;
  // The child is waited for without reaping it first (WNOWAIT), and forgotten under the lock
  // cancel() kills under: its pid can never be reused before cancel() stops using it.
  auto collect = [&](bool block) {
    siginfo_t info{};
    int rc;
    while ((rc = ::waitid(P_PID, static_cast<id_t>(child->pid), &info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG))) < 0 &&
           errno == EINTR) {
    }
    if (rc < 0 || info.si_pid == 0) return false;
    {
      std::lock_guard lock(m_child_mutex);
      m_child = 0;
    }
    child_status = wait_process(child->pid);
    child_done = true;
    return true;
  };
  auto reap = [&](bool stop) {
    if (child_done) return;
    if (stop) ::kill(child->pid, SIGTERM);
    collect(true);
  };
  auto failed = [&](Failure failure) -> Result<StoredBackup> {
    // When pg_basebackup itself failed (it exits at once on a bad connection string), its
    // own words are the cause; ours ("unrecognized archive format") only the symptom.
    bool exited_on_its_own = false;
    for (int i = 0; i < 20 && !child_done; ++i) {
      if (collect(false)) exited_on_its_own = true;
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    reap(true);
    const std::string said = messages.messages();
    if (exited_on_its_own && WIFEXITED(child_status) && WEXITSTATUS(child_status) != 0)
      failure.message = "pg_basebackup exited with status " + std::to_string(WEXITSTATUS(child_status)) +
                        (said.empty() ? "" : ": " + said) + " (then: " + failure.message + ")";
    else if (exited_on_its_own && WIFSIGNALED(child_status))
      failure.message = "pg_basebackup was killed by signal " + std::to_string(WTERMSIG(child_status)) + " (then: " +
                        failure.message + ")";
    else if (!said.empty())
      failure.message += " (pg_basebackup: " + said + ")";
    return std::unexpected(failure);
  };
  update([](BackupProgress& p) { p.phase = "streaming"; });

  ArchiveReader reader(child->out.get());
  if (!reader.opened()) return failed({ErrorKind::io, "unable to read pg_basebackup's output: " + reader.error()});
  std::unique_ptr<ChunkWriter> chunk;
  std::string label_text, version_text;
  std::vector<char> buffer(1 << 20);
  CompressSpec spec = settings.compress;
  for (;;) {
    if (m_cancel) return failed({ErrorKind::io, "cancelled (walvaultd is stopping)"});
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(reader.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return failed({ErrorKind::io, "pg_basebackup's tar stream ended or broke: " + reader.error()});
    if (!chunk) {
      auto opened = ChunkWriter::open(m_repository.objects(), backup_chunk_key(id, backup.chunks.size() + 1), spec);
      if (!opened) return failed(opened.error());
      chunk = std::move(*opened);
    }
    const std::string path = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    if (path == "backup_manifest") backup.has_manifest = true;
    std::string* capture = path == "backup_label" ? &label_text : path == "PG_VERSION" ? &version_text : nullptr;
    if (auto r = chunk->write_header(entry); !r) return failed(r.error());
    if (archive_entry_filetype(entry) == AE_IFREG) ++backup.files;
    for (;;) {
      const la_ssize_t n = archive_read_data(reader.get(), buffer.data(), buffer.size());
      if (n < 0) return failed({ErrorKind::io, "pg_basebackup's tar stream broke in '" + path + "': " + reader.error()});
      if (n == 0) break;
      if (auto r = chunk->write_data(buffer.data(), static_cast<std::size_t>(n)); !r) return failed(r.error());
      if (capture && capture->size() < 65536) capture->append(buffer.data(), static_cast<std::size_t>(std::min<la_ssize_t>(n, 65536)));
      backup.plain_bytes += static_cast<std::uint64_t>(n);
      update([&](BackupProgress& p) { p.bytes = backup.plain_bytes; });
    }
    if (auto r = chunk->finish_entry(); !r) return failed(r.error());
    if (chunk->plain_size() >= settings.chunk_size) {
      auto done = chunk->close();
      if (!done) return failed(done.error());
      backup.stored_bytes += done->stored_size;
      backup.chunks.push_back(std::move(*done));
      chunk.reset();
      update([&](BackupProgress& p) {
        p.chunks = backup.chunks.size();
        p.stored_bytes = backup.stored_bytes;
        p.files = backup.files;
      });
    }
  }
  if (chunk) {
    auto done = chunk->close();
    if (!done) return failed(done.error());
    backup.stored_bytes += done->stored_size;
    backup.chunks.push_back(std::move(*done));
    chunk.reset();
  }
  (void)read_to_end(child->out.get(), 0);  // the end-of-archive padding, so pg_basebackup never sees EPIPE
  reap(false);
  const std::string said = messages.messages();
  if (!WIFEXITED(child_status) || WEXITSTATUS(child_status) != 0)
    return std::unexpected(Failure{ErrorKind::io, "pg_basebackup " +
                                                      (WIFEXITED(child_status) ? "exited with status " + std::to_string(WEXITSTATUS(child_status))
                                                                               : "was killed by signal " + std::to_string(WTERMSIG(child_status))) +
                                                      (said.empty() ? "" : ": " + said)});
  if (backup.chunks.empty()) return fail(ErrorKind::io, "pg_basebackup produced no data");
  auto label = parse_backup_label(label_text);
  if (!label) return std::unexpected(label.error());
  backup.start_lsn = label->start_lsn;
  backup.checkpoint_lsn = label->checkpoint_lsn;
  backup.timeline = label->timeline;
  backup.pg_version = std::atoi(version_text.c_str());
  // PostgreSQL writes no .backup file for a backup taken during recovery, so walvault could
  // never prove it complete: say so now instead of after the WAL wait.
  if (label->from_standby)
    return fail(ErrorKind::refused, "the server (from " + settings.connection.source + ") is a standby: walvault takes base "
                                    "backups from the primary only (a standby archives no .backup file to prove a backup complete)");
  update([&](BackupProgress& p) {
    p.phase = "waiting for WAL";
    p.chunks = backup.chunks.size();
    p.stored_bytes = backup.stored_bytes;
    p.files = backup.files;
  });

  // Complete only once the .backup file and every segment from start to stop are archived.
  // With -X none pg_basebackup has already waited for PostgreSQL to archive them, so this
  // normally passes at once; it fails when archive_command does not point at walvault.
  const auto deadline = std::chrono::steady_clock::now() + settings.wal_wait;
  std::string missing;
  std::uint64_t segment_size = 0;
  for (;;) {
    missing.clear();
    auto rows = m_index.backups();
    if (!rows) return std::unexpected(rows.error());
    const IndexedBackup* found = nullptr;
    for (const auto& row : *rows)
      if (row.start_lsn == backup.start_lsn && row.timeline == backup.timeline && row.label == backup.label) found = &row;
    if (!found) {
      missing = "the .backup file for WAL location " + format_lsn(backup.start_lsn);
    } else {
      backup.backup_file = found->name;
      backup.stop_lsn = found->stop_lsn;
      backup.start_us = found->start_us;
      backup.stop_us = found->stop_us;
      if (segment_size == 0) {
        // Learnt once (the index knows it from any archived segment), not on every poll.
        auto segments = m_index.segments(SegmentFilter{backup.timeline, std::nullopt, std::nullopt});
        if (!segments) return std::unexpected(segments.error());
        if (!segments->empty()) segment_size = segments->front().segment_size;
      }
      if (segment_size == 0) {
        missing = "any segment of timeline " + std::to_string(backup.timeline);
      } else {
        const std::uint64_t first = backup.start_lsn / segment_size;
        const std::uint64_t last = (backup.stop_lsn > 0 ? backup.stop_lsn - 1 : 0) / segment_size;
        for (std::uint64_t segno = first; segno <= std::max(first, last) && missing.empty(); ++segno) {
          const std::string name = format_wal_name(segment_from_number(backup.timeline, segno, segment_size));
          auto there = m_index.contains(name);
          if (!there) return std::unexpected(there.error());
          if (!*there) missing = "segment " + name;
        }
      }
    }
    if (missing.empty()) break;
    if (m_cancel) return fail(ErrorKind::io, "cancelled (walvaultd is stopping)");
    if (std::chrono::steady_clock::now() > deadline)
      return fail(ErrorKind::not_found, "pg_basebackup finished, but " + missing +
                                            " has not been archived: is archive_mode on and archive_command 'archive-push %p'?");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }

  backup.system_identifier = m_repository.system_identifier().value_or(0);
  backup.finished_at_us = now_unix_us();
  const std::string info = render_backup_info(backup);
  if (auto r = m_repository.objects().put(backup_info_key(id), as_bytes(info), settings.compress, PutMode::create_only); !r)
    return std::unexpected(r.error());
  if (auto r = m_index.put_stored_backup(backup); !r) {
    // backup.json is durable, so the backup exists; the index catches up at the next repair.
    m_index.record_failure();
    spdlog::error("backup {}: stored, but the index could not record it: {}", id, r.error().message);
  }
  return backup;
}

namespace {

std::string rate_text(std::uint64_t bytes, double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB/s", seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0);
  return buf;
}

std::string progress_line(const BackupProgress& p) {
  const double seconds = static_cast<double>(now_unix_us() - p.started_at_us) / 1e6;
  std::string line = "\rbackup " + p.id + ": " + p.phase + ", " + human_bytes(p.bytes);
  if (p.estimated_bytes > 0 && p.phase == "streaming") {
    const double fraction = std::min(1.0, static_cast<double>(p.bytes) / static_cast<double>(p.estimated_bytes));
    line += " of ~" + human_bytes(p.estimated_bytes) + " (" + std::to_string(static_cast<int>(fraction * 100)) + "%)";
    if (fraction > 0.01) line += ", ETA " + std::to_string(static_cast<int>(seconds / fraction - seconds)) + "s";
  }
  line += ", " + rate_text(p.bytes, seconds) + "      ";
  return line;
}

}  // namespace

nlohmann::ordered_json backup_status_json(const std::optional<BackupProgress>& p) {
  using json = nlohmann::ordered_json;
  if (!p) return json(nullptr);
  return json{{"id", p->id},
              {"label", p->label},
              {"trigger", p->trigger},
              {"phase", p->phase},
              {"bytes", p->bytes},
              {"estimated_bytes", p->estimated_bytes},
              {"stored_bytes", p->stored_bytes},
              {"chunks", p->chunks},
              {"started_at", format_timestamp(p->started_at_us)},
              {"finished_at", p->finished_at_us ? json(format_timestamp(p->finished_at_us)) : json(nullptr)},
              {"error", p->error.empty() ? json(nullptr) : json(p->error)}};
}

protocol::Message serve_backup_request(BackupTaker& taker, Request& request) {
  using json = nlohmann::ordered_json;
  if (!request.fd) return protocol::error({ErrorKind::invalid, "no output descriptor was passed with the request"});
  CallerConnection caller;
  caller.uid = request.peer_uid;
  caller.dbname = std::string(request.message.field("dbname").value_or(""));
  for (const char* variable : protocol::k_backup_caller_variables)
    if (auto value = request.message.field(variable); value && !value->empty()) caller.environment.emplace_back(variable, *value);
  auto id = taker.start(std::string(request.message.field("label").value_or("")), "walvault backup", caller);
  if (!id) return protocol::error(id.error());
  const int progress_fd = request.progress_fd.get();
  auto result = taker.wait(*id, [&](const BackupProgress& p) {
    if (progress_fd >= 0) write_progress(progress_fd, progress_line(p));
  });
  write_progress(progress_fd, "\n");
  const bool as_json = request.message.field("format") == std::optional<std::string_view>("json");
  std::string document;
  protocol::Message response = protocol::ok();
  if (!result) {
    response.set("exit", "1").set("message", result.error().message);
    document = as_json ? json{{"id", *id}, {"complete", false}, {"error", result.error().message}}.dump(2) + "\n"
                       : "backup " + *id + " FAILED: " + result.error().message + "\n";
  } else {
    const StoredBackup& b = *result;
    const double seconds = static_cast<double>(b.finished_at_us - b.started_at_us) / 1e6;
    response.set("exit", "0");
    if (as_json) {
      document = json{{"id", b.id},
                      {"complete", true},
                      {"label", b.label},
                      {"timeline", b.timeline},
                      {"start_lsn", format_lsn(b.start_lsn)},
                      {"stop_lsn", format_lsn(b.stop_lsn)},
                      {"backup_file", b.backup_file},
                      {"files", b.files},
                      {"plain_bytes", b.plain_bytes},
                      {"stored_bytes", b.stored_bytes},
                      {"chunks", b.chunks.size()},
                      {"seconds", seconds},
                      {"mb_per_s", seconds > 0 ? static_cast<double>(b.plain_bytes) / 1e6 / seconds : 0.0}}
                     .dump(2) +
                 "\n";
    } else {
      char ratio[32];
      std::snprintf(ratio, sizeof ratio, "%.1fx", b.stored_bytes ? static_cast<double>(b.plain_bytes) / static_cast<double>(b.stored_bytes) : 0.0);
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1f s", seconds);
      document = "backup " + b.id + " complete: " + std::to_string(b.files) + " files, " + human_bytes(b.plain_bytes) + " (" +
                 human_bytes(b.stored_bytes) + " stored, " + ratio + ") in " + secs + " (" + rate_text(b.plain_bytes, seconds) +
                 "), " + std::to_string(b.chunks.size()) + " chunk(s)\n" + "WAL " + format_lsn(b.start_lsn) + " .. " +
                 format_lsn(b.stop_lsn) + " on timeline " + std::to_string(b.timeline) + " (" + b.backup_file + ")\n";
    }
  }
  return respond_with_document(request, document, std::move(response));
}

}  // namespace walvault
