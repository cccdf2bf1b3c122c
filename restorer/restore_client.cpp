// `walvault restore`: everything that touches the data directory runs here, in the CLI, as the
// user who runs it (root or the PostgreSQL user), never in the daemon. Order matters:
//   1. read-only checks of DIR (non-empty without --force, a running postmaster);
//   2. the daemon's plan (PLAN restore=1): an unreachable target stops us before DIR is touched;
//   3. chunks fetched in parallel (BACKUP-READ: decoded and proven by the daemon, streamed into a
//      pipe) and extracted as they arrive (extract.cpp: no path may leave DIR);
//   4. pg_verifybackup against the backup's own manifest;
//   5. only then recovery.signal / standby.signal and the recovery settings, and a sync.
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/fd.hpp"
#include "common/base/process.hpp"
#include "restorer/cli.hpp"
#include "restorer/extract.hpp"

namespace walvault {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct RestoreOptions {
  std::string pgdata;
  std::string backup = "latest";
  std::vector<std::pair<std::string, std::string>> targets;  // recovery_* settings to write
  bool has_target = false;
  std::string target_timeline = "latest";
  std::string target_action = "promote";
  bool standby = false;
  std::string primary_conninfo;
  bool force = false;
  std::optional<uid_t> owner_uid;
  std::optional<gid_t> owner_gid;
  unsigned jobs = 4;
  std::string pg_bindir;
  std::string archive_get;  // as PostgreSQL will see it; empty: the one beside this walvault
};

int refuse(const std::string& message) {
  std::fprintf(stderr, "walvault restore: %s\n", message.c_str());
  return k_exit_check_failed;
}

int usage(const std::string& message) {
  std::fprintf(stderr, "walvault restore: %s (see walvault --help)\n", message.c_str());
  return k_exit_usage;
}

// A value for postgresql.auto.conf: single-quoted, quotes doubled.
std::string conf_quoted(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += "''";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out + "'";
}

// 2026-11-24T09:30:00.5Z -> 2026-11-24 09:30:00.5+00: PostgreSQL refuses zone abbreviations
// (and takes "Z" for one) in recovery_target_time, but a numeric offset is exact.
std::string postgres_time(std::string rfc3339) {
  if (rfc3339.size() > 10 && rfc3339[10] == 'T') rfc3339[10] = ' ';
  if (!rfc3339.empty() && rfc3339.back() == 'Z') rfc3339.replace(rfc3339.size() - 1, 1, "+00");
  return rfc3339;
}

// PostgreSQL runs restore_command in the data directory, not where `walvault restore` ran: a
// relative socket path must be made absolute.
std::string absolute_path(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return path;
  std::string base = cwd;
  std::string rest = path;
  while (rest.starts_with("./")) rest = rest.substr(2);
  return (base == "/" ? "" : base) + "/" + rest;
}

std::string rate(std::uint64_t bytes, double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB/s", seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0);
  return buf;
}

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / 1048576.0);
  return buf;
}

Result<RestoreOptions> parse_options(const std::map<std::string, std::string>& values) {
  RestoreOptions o;
  auto get = [&](const char* key) -> std::optional<std::string> {
    auto it = values.find(key);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  auto pgdata = get("pgdata");
  if (!pgdata || pgdata->empty()) return fail(ErrorKind::invalid, "--pgdata DIR is required");
  o.pgdata = *pgdata;
  if (o.pgdata[0] != '/') {
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) return fail_os("get", "the current directory", errno);
    o.pgdata = std::string(cwd) + "/" + o.pgdata;
  }
  while (o.pgdata.size() > 1 && o.pgdata.back() == '/') o.pgdata.pop_back();
  if (o.pgdata == "/") return fail(ErrorKind::invalid, "--pgdata / is not a data directory");
  if (auto b = get("backup")) o.backup = *b;
  static const std::pair<const char*, const char*> k_targets[] = {{"target-time", "recovery_target_time"},
                                                                  {"target-lsn", "recovery_target_lsn"},
                                                                  {"target-xid", "recovery_target_xid"},
                                                                  {"target-name", "recovery_target_name"}};
  for (const auto& [option, setting] : k_targets)
    if (auto v = get(option)) o.targets.emplace_back(setting, *v);
  if (get("target-immediate")) o.targets.emplace_back("recovery_target", "immediate");
  o.has_target = !o.targets.empty();
  if (auto tl = get("target-timeline")) o.target_timeline = *tl;
  if (auto action = get("target-action")) {
    if (*action != "promote" && *action != "pause" && *action != "shutdown")
      return fail(ErrorKind::invalid, "--target-action must be promote, pause or shutdown");
    if (!o.has_target) return fail(ErrorKind::invalid, "--target-action needs a recovery target (--target-time, ...)");
    o.target_action = *action;
  }
  o.standby = get("standby").has_value();
  if (auto conninfo = get("primary-conninfo")) {
    if (!o.standby) return fail(ErrorKind::invalid, "--primary-conninfo is for --standby");
    o.primary_conninfo = *conninfo;
  }
  o.force = get("force").has_value();
  if (auto jobs = get("jobs")) {
    const long n = std::strtol(jobs->c_str(), nullptr, 10);
    if (n < 1 || n > 64) return fail(ErrorKind::invalid, "--jobs must be from 1 to 64");
    o.jobs = static_cast<unsigned>(n);
  }
  if (auto bindir = get("pg-bindir")) o.pg_bindir = *bindir;
  if (auto path = get("archive-get")) {
    // It is run by PostgreSQL's shell from the data directory, perhaps in another container
    // (a sidecar's client copied to /walvault/bin): absolute, and nothing the shell would split.
    if (path->empty() || (*path)[0] != '/')
      return fail(ErrorKind::invalid, "--archive-get must be an absolute path (PostgreSQL runs restore_command in the data directory)");
    for (const char c : *path)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' || c == '-' || c == '+'))
        return fail(ErrorKind::invalid, "--archive-get '" + *path + "' has a character the shell would interpret: use letters, digits and / . _ - +");
    o.archive_get = *path;
  }
  std::optional<std::string> owner = get("owner");
  if (!owner && ::geteuid() == 0 && ::getpwnam("postgres")) owner = "postgres";
  if (owner) {
    const passwd* pw = ::getpwnam(owner->c_str());
    if (!pw) {
      char* end = nullptr;
      const unsigned long uid = std::strtoul(owner->c_str(), &end, 10);
      if (owner->empty() || *end) return fail(ErrorKind::invalid, "--owner '" + *owner + "' is not a user on this host");
      pw = ::getpwuid(static_cast<uid_t>(uid));
      if (!pw) return fail(ErrorKind::invalid, "--owner '" + *owner + "' is not a user on this host");
    }
    if (::geteuid() != 0 && pw->pw_uid != ::geteuid())
      return fail(ErrorKind::invalid, "only root can restore files owned by another user (--owner " + *owner + ")");
    if (::geteuid() == 0) {
      o.owner_uid = pw->pw_uid;
      o.owner_gid = pw->pw_gid;
    }
  }
  return o;
}

// DIR's state before anything is written: entries in it (empty when missing), and whether a
// postmaster looks alive there.
struct DirectoryState {
  bool exists = false;
  std::vector<std::string> entries;
  std::optional<pid_t> live_postmaster;
};

Result<DirectoryState> inspect(const std::string& dir) {
  DirectoryState state;
  DIR* handle = ::opendir(dir.c_str());
  if (!handle) {
    if (errno == ENOENT) return state;
    return fail_os("open directory", dir, errno);
  }
  state.exists = true;
  while (dirent* entry = ::readdir(handle)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") state.entries.push_back(name);
  }
  ::closedir(handle);
  if (FILE* pid_file = std::fopen((dir + "/postmaster.pid").c_str(), "r")) {
    long pid = 0;
    if (std::fscanf(pid_file, "%ld", &pid) == 1 && pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM))
      state.live_postmaster = static_cast<pid_t>(pid);
    std::fclose(pid_file);
  }
  return state;
}

int remove_entry(const char* path, const struct stat*, int, FTW*) { return ::remove(path) == 0 || errno == ENOENT ? 0 : -1; }

// --force: DIR's old contents go (never following symlinks), DIR itself stays.
Result<void> empty_directory(const std::string& dir, const std::vector<std::string>& entries) {
  for (const auto& name : entries) {
    const std::string path = dir + "/" + name;
    if (::nftw(path.c_str(), remove_entry, 32, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
      return fail_os("remove", path, errno);
  }
  return {};
}

Result<void> prepare_directory(const std::string& dir, const RestoreOptions& o) {
  if (auto r = make_directories(parent_directory(dir), 0755); !r) return r;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail_os("create directory", dir, errno);
  if (::chmod(dir.c_str(), 0700) != 0) return fail_os("set mode of", dir, errno);
  if (o.owner_uid && ::chown(dir.c_str(), *o.owner_uid, *o.owner_gid) != 0) return fail_os("change owner of", dir, errno);
  return {};
}

// Runs pg_verifybackup on the restored directory (WAL is checked by recovery itself: the
// backup carries none). Returns its complaint, or nothing when it passed.
Result<std::optional<std::string>> verify_backup(const std::string& bindir, const std::string& dir) {
  auto run = run_program({bindir + "/pg_verifybackup", "--no-parse-wal", "--quiet", dir}, {}, 8192);
  if (!run) return std::unexpected(run.error());
  if (run->ok()) return std::optional<std::string>();
  std::string said = std::move(run->output);
  while (!said.empty() && said.back() == '\n') said.pop_back();
  return std::optional<std::string>(said.empty() ? "pg_verifybackup failed" : said);
}

Result<void> write_owned_file(const std::string& path, const std::string& content, bool append, const RestoreOptions& o) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (append ? O_APPEND : O_TRUNC), 0600));
  if (!fd) return fail_os("write", path, errno);
  if (auto r = write_all(fd.get(), as_bytes(content), path); !r) return r;
  if (o.owner_uid && ::fchown(fd.get(), *o.owner_uid, *o.owner_gid) != 0) return fail_os("change owner of", path, errno);
  if (::fsync(fd.get()) != 0) return fail_os("sync", path, errno);
  return {};
}

}  // namespace

std::string utc_now_text() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// One chunk: the daemon writes it, decoded and proven, into our pipe; we extract it as it
// arrives; its OK (sent after the last byte was proven) is what makes the chunk good.
Result<ExtractStats> restore_chunk(const ClientOptions& options, const std::string& id, std::size_t number,
                                   const ExtractOptions& extract) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_os("create", "pipe", errno);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // A larger pipe lets the daemon's decoder and our extractor run in bigger steps (best-effort:
  // the default 64 KiB works, only slower).
  (void)::fcntl(write_end.get(), F_SETPIPE_SZ, 1 << 20);
  auto client = SocketClient::connect(options.socket_path, options.connect_timeout, options.timeout);
  if (!client) return std::unexpected(client.error());
  protocol::Message request{"BACKUP-READ", {}};
  request.set("id", id).set("chunk", std::to_string(number));
  if (auto r = client->send(request, write_end.get()); !r) return std::unexpected(r.error());
  write_end.reset();
  auto stats = extract_tar(read_end.get(), extract);
  read_end.reset();  // an early stop: the daemon's next write fails and it gives up
  auto response = client->receive(options.timeout);
  // An unsafe entry is our own verdict; any other extraction failure (a stream cut short) is
  // the symptom of what walvaultd reports (a corrupt chunk), so its words come first.
  if (!stats && (stats.error().kind == ErrorKind::refused || !response || response->head() == "OK")) return stats;
  if (!response) return std::unexpected(response.error());
  if (response->head() != "OK") {
    auto text = response->field("message");
    std::string message = "chunk " + std::to_string(number) + " of backup " + id + ": " + (text ? std::string(*text) : response->line);
    // Both sides failed: when ours stopped reading first (the daemon then sees a broken pipe),
    // our reason is the cause, so it is named too.
    if (!stats) message += " (the extraction had stopped: " + stats.error().message + ")";
    return fail(ErrorKind::corrupt, message);
  }
  return stats;
}

}  // namespace

int run_restore(const ClientOptions& options, const std::map<std::string, std::string>& values, bool as_json, nlohmann::json* report) {
  if (report) as_json = true;  // quiet: the caller (walvault drill) prints its own report
  auto parsed = parse_options(values);
  if (!parsed) return usage(parsed.error().message);
  const RestoreOptions& checked = *parsed;
  const auto started = Clock::now();

  // 1. DIR, read only. Also the current directory: libarchive opens it (to come back to it)
  // before it writes any file, so from one this user cannot enter (a container image's WORKDIR
  // owned by another uid) every file would fail as if DIR were not writable.
  if (UniqueFd cwd(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)); !cwd)
    return refuse(os_error_text("open the current directory", ".", errno) + ": the extraction needs it; run walvault restore "
                  "from a directory uid " + std::to_string(::geteuid()) + " can enter (e.g. cd /); nothing was changed");
  auto state = inspect(checked.pgdata);
  if (!state) return refuse(state.error().message);
  if (state->live_postmaster)
    return refuse("PostgreSQL is running in '" + checked.pgdata + "' (postmaster.pid, pid " + std::to_string(*state->live_postmaster) +
                  "): stop it first; nothing was changed");
  if (!state->entries.empty() && !checked.force)
    return refuse("'" + checked.pgdata + "' is not empty (" + std::to_string(state->entries.size()) + " entries, e.g. '" +
                  state->entries.front() + "'): restore into an empty or new directory, or pass --force to replace its "
                  "contents; nothing was changed");

  // 2. The plan, from the daemon's index.
  protocol::Message request{"PLAN", {}};
  request.set("format", "json").set("restore", "1").set("backup", checked.backup);
  for (const char* key : {"target-time", "target-lsn", "target-xid", "target-name", "target-immediate", "target-timeline"})
    if (auto it = values.find(key); it != values.end()) request.set(key, it->second);
  auto reply = exchange_document(options, request, false);
  if (!reply) {
    std::fprintf(stderr, "walvault restore: %s\n", reply.error().message.c_str());
    return k_exit_usage;
  }
  if (reply->response.head() != "OK" || reply->response.field("exit") != std::optional<std::string_view>("0")) {
    std::fprintf(stderr, "walvault restore: nothing was changed in '%s'\n", checked.pgdata.c_str());
    return exit_code_of(reply->response);
  }
  json plan = json::parse(reply->document, nullptr, false);
  if (plan.is_discarded() || !plan.contains("stored_backup") || plan["stored_backup"].is_null())
    return refuse("walvaultd's plan names no stored backup; nothing was changed");
  const json& backup = plan["stored_backup"];
  // A zone-less --target-time means UTC to walvault's plan, but PostgreSQL would read it in the
  // restored cluster's own timezone: write the instant the plan used, with its zone.
  RestoreOptions o = *parsed;
  if (plan.contains("target_time") && plan["target_time"].is_string())
    for (auto& [key, value] : o.targets)
      if (key == "recovery_target_time") value = postgres_time(plan["target_time"].get<std::string>());
  const std::string id = backup["id"].get<std::string>();
  const std::size_t chunk_count = backup["chunks"].size();
  const std::uint64_t total = backup["plain_bytes"].get<std::uint64_t>();
  const bool has_manifest = backup["has_manifest"].get<bool>();
  const int pg_version = backup["pg_version"].get<int>();
  if (!as_json)
    std::fprintf(stderr, "walvault restore: backup %s (%s, %zu chunks) into %s, %s\n", id.c_str(), mib(total).c_str(), chunk_count,
                 o.pgdata.c_str(),
                 o.has_target ? ("target " + o.targets.front().first + " = " + o.targets.front().second).c_str() : "to the end of the archived WAL");

  // 3. Fetch and extract.
  if (o.force && !state->entries.empty())
    if (auto r = empty_directory(o.pgdata, state->entries); !r) return refuse(r.error().message);
  if (auto r = prepare_directory(o.pgdata, o); !r) return refuse(r.error().message);

  // Largest chunks first: a 1 GiB relation file is one chunk, and starting it last would leave
  // one worker running alone at the end.
  std::vector<std::size_t> order(chunk_count);
  for (std::size_t i = 0; i < chunk_count; ++i) order[i] = i + 1;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return backup["chunks"][a - 1]["plain_size"].get<std::uint64_t>() > backup["chunks"][b - 1]["plain_size"].get<std::uint64_t>();
  });
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> done_bytes{0}, files{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::optional<Failure> first_error;
  const bool show_progress = !as_json && ::isatty(STDERR_FILENO);
  auto worker = [&] {
    for (;;) {
      if (stop) return;
      const std::size_t slot = next++;
      if (slot >= chunk_count) return;
      const std::size_t number = order[slot];
      ExtractOptions extract;
      extract.root = o.pgdata;
      extract.owner_uid = o.owner_uid;
      extract.owner_gid = o.owner_gid;
      extract.progress = [&](std::uint64_t bytes) { done_bytes += bytes; };
      extract.what = "backup " + id + " chunk " + std::to_string(number);
      auto stats = restore_chunk(options, id, number, extract);
      if (!stats) {
        std::lock_guard lock(error_mutex);
        if (!first_error) first_error = stats.error();
        stop = true;
        return;
      }
      files += stats->files;
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < std::min<std::size_t>(o.jobs, chunk_count); ++i) threads.emplace_back(worker);
  std::atomic<bool> extracting{true};
  std::thread progress([&] {
    while (show_progress && extracting) {
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      const std::uint64_t bytes = done_bytes.load();
      std::string line = "\rrestore " + id + ": " + mib(bytes) + " of " + mib(total);
      if (total) line += " (" + std::to_string(bytes * 100 / total) + "%)";
      line += ", " + rate(bytes, seconds);
      if (bytes > 0 && bytes < total) line += ", ETA " + std::to_string(static_cast<long>(seconds * static_cast<double>(total - bytes) / static_cast<double>(bytes))) + "s";
      line += "      ";
      (void)::write(STDERR_FILENO, line.data(), line.size());
      for (int i = 0; i < 5 && extracting; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  for (auto& t : threads) t.join();
  extracting = false;
  progress.join();
  if (show_progress) (void)::write(STDERR_FILENO, "\n", 1);
  if (first_error)
    return refuse(first_error->message + "\nthe restore did not finish: '" + o.pgdata +
                  "' is incomplete and has no recovery.signal, so PostgreSQL will not start from it; fix the cause and run "
                  "walvault restore again with --force");
  const double extract_seconds = std::chrono::duration<double>(Clock::now() - started).count();

  // 4. The backup's own manifest, read back from the page cache while the kernel writes the
  // extracted data out (syncfs in parallel: the two mostly use different resources).
  UniqueFd data_dir(::open(o.pgdata.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!data_dir) return refuse(os_error_text("open", o.pgdata, errno));
  int sync_errno = 0;
  std::thread syncer([&] {
    if (::syncfs(data_dir.get()) != 0) sync_errno = errno;
  });
  struct JoinOnExit {
    std::thread& thread;
    ~JoinOnExit() {
      if (thread.joinable()) thread.join();  // early returns below: never leave it running
    }
  } join_syncer{syncer};
  std::string verified = "no backup_manifest in this backup";
  if (has_manifest) {
    const std::string bindir = !o.pg_bindir.empty() ? o.pg_bindir : "/usr/lib/postgresql/" + std::to_string(pg_version) + "/bin";
    if (::access((bindir + "/pg_verifybackup").c_str(), X_OK) != 0) {
      verified = "skipped: " + bindir + "/pg_verifybackup not found (use --pg-bindir)";
      std::fprintf(stderr, "walvault restore: warning: %s\n", verified.c_str());
    } else {
      auto result = verify_backup(bindir, o.pgdata);
      if (!result) return refuse(result.error().message);
      if (*result)
        return refuse("pg_verifybackup found problems in '" + o.pgdata + "': " + **result +
                      "\nno recovery.signal was written; PostgreSQL will not start from this directory");
      verified = "pg_verifybackup: backup successfully verified";
    }
  }

  syncer.join();
  if (sync_errno != 0) return refuse(os_error_text("sync the filesystem of", o.pgdata, sync_errno));

  // 5. Recovery settings, then the signal file (each fsync'd), then the directory entry.
  const std::string archive_get = !o.archive_get.empty() ? o.archive_get : executable_directory() + "/archive-get";
  const std::string restore_command =
      archive_get + " --socket " + absolute_path(options.socket_path) + " %f %p";
  std::string settings = "\n# Added by walvault restore of backup " + id + " at " + utc_now_text() + "\n";
  settings += "restore_command = " + conf_quoted(restore_command) + "\n";
  for (const auto& [key, value] : o.targets) settings += key + " = " + conf_quoted(value) + "\n";
  settings += "recovery_target_timeline = " + conf_quoted(o.target_timeline) + "\n";
  if (o.has_target) settings += "recovery_target_action = " + conf_quoted(o.target_action) + "\n";
  if (o.standby && !o.primary_conninfo.empty()) settings += "primary_conninfo = " + conf_quoted(o.primary_conninfo) + "\n";
  if (auto r = write_owned_file(o.pgdata + "/postgresql.auto.conf", settings, true, o); !r) return refuse(r.error().message);
  const std::string signal = o.standby ? "standby.signal" : "recovery.signal";
  if (auto r = write_owned_file(o.pgdata + "/" + signal, "", false, o); !r) return refuse(r.error().message);
  if (::fsync(data_dir.get()) != 0) return refuse(os_error_text("sync directory", o.pgdata, errno));
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const std::uint64_t bytes = done_bytes.load();
  if (as_json) {
    json out{{"backup", id},
             {"pgdata", o.pgdata},
             {"files", files.load()},
             {"bytes", bytes},
             {"chunks", chunk_count},
             {"seconds", seconds},
             {"extract_seconds", extract_seconds},
             {"mb_per_s", extract_seconds > 0 ? static_cast<double>(bytes) / 1e6 / extract_seconds : 0.0},
             {"verified", verified},
             {"signal", signal},
             {"restore_command", restore_command},
             {"target", o.has_target ? json(o.targets.front().first + " = " + o.targets.front().second) : json(nullptr)},
             {"plan", plan}};
    if (report) *report = std::move(out);
    else std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("restored backup %s into %s: %llu files, %s in %.1f s (%s)\n%s\n%s written; recovery will fetch WAL with:\n  %s\n",
                id.c_str(), o.pgdata.c_str(), static_cast<unsigned long long>(files.load()), mib(bytes).c_str(), seconds,
                rate(bytes, extract_seconds).c_str(), verified.c_str(), signal.c_str(), restore_command.c_str());
    if (o.has_target)
      std::printf("recovery stops at %s = %s, then %s\n", o.targets.front().first.c_str(), o.targets.front().second.c_str(),
                  o.target_action.c_str());
    if (o.standby && o.primary_conninfo.empty())
      std::printf("note: no --primary-conninfo: this standby replays from the archive only\n");
    std::printf("next: start PostgreSQL on %s (e.g. pg_ctl -D %s start)\n", o.pgdata.c_str(), o.pgdata.c_str());
  }
  return k_exit_ok;
}

}  // namespace walvault
