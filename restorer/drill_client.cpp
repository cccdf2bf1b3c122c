// `walvault drill`: the disaster-recovery drill an operator would otherwise script. It restores
// a stored base backup (the same code as `walvault restore`) into a scratch directory, starts
// PostgreSQL there on a free loopback port as the data's owner, waits for recovery to end,
// checks the result (pg_amcheck where amcheck is installed, the rows of every table, an
// optional SQL file whose output must match), stops it and removes the directory. It reports
// the RTO (start to recovery finished), the RPO (newest archived commit minus newest replayed
// commit) and the WAL replayed, and records the outcome in walvaultd (DRILL-RESULT) so status
// and the metrics show it. Nothing here touches the repository or the production cluster.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/base/fd.hpp"
#include "common/base/process.hpp"
#include "common/base/socket_client.hpp"
#include "restorer/cli.hpp"

namespace walvault {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Owner {
  std::string name;
  std::optional<RunAs> run_as;  // set when we are root and the data belongs to another user
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// One line of at most `limit` bytes, cut at a character boundary (PostgreSQL may log in UTF-8).
std::string one_line(std::string text, std::size_t limit = 400) {
  for (char& c : text)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (text.size() <= limit) return text;
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

// A string field of walvaultd's record, "" when absent or null (a drill without --check-sql).
std::string text_of(const json& record, const char* key) {
  return record.is_object() && record.contains(key) && record[key].is_string() ? record[key].get<std::string>() : "";
}

// Reports never fail on bytes that are not UTF-8 (a label, a log line in another encoding).
std::string dump(const json& document, int indent = -1) { return document.dump(indent, ' ', false, json::error_handler_t::replace); }

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) { g_interrupted = 1; }

// FNV-1a, 64 bits: a stable fingerprint of a check's output, to compare with the last drill's.
std::string fingerprint(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Result<Owner> resolve_owner(const std::optional<std::string>& requested) {
  std::optional<std::string> name = requested;
  if (!name && ::geteuid() == 0) name = "postgres";  // as `walvault restore` does
  if (!name) {
    const passwd* me = ::getpwuid(::geteuid());
    if (!me) return fail(ErrorKind::invalid, "the current user has no passwd entry");
    return Owner{me->pw_name, std::nullopt};
  }
  const passwd* pw = ::getpwnam(name->c_str());
  if (!pw) return fail(ErrorKind::invalid, "--owner '" + *name + "' is not a user on this host");
  if (pw->pw_uid == 0) return fail(ErrorKind::invalid, "PostgreSQL does not run as root: give --owner a user of its own");
  if (::geteuid() != 0) {
    if (pw->pw_uid != ::geteuid()) return fail(ErrorKind::invalid, "only root can run a drill as another user (--owner " + *name + ")");
    return Owner{pw->pw_name, std::nullopt};
  }
  RunAs who{pw->pw_uid, pw->pw_gid, {}};
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &count) >= 0) {
    groups.resize(static_cast<std::size_t>(count));
    who.groups = groups;
  } else {
    who.groups = {pw->pw_gid};
  }
  return Owner{pw->pw_name, who};
}

// Runs a program (as the owner when we are root) and collects what it prints.
Result<ProgramRun> run(const std::vector<std::string>& argv, const Owner& owner, std::vector<std::string> environment = {}) {
  SpawnOptions options;
  options.run_as = owner.run_as;
  options.environment = std::move(environment);
  return run_program(argv, options);
}

std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::string read_text(const std::string& path, std::size_t limit = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > limit ? text.substr(text.size() - limit) : text;
}

std::string tail_lines(const std::string& text, int lines) {
  std::size_t at = text.size();
  for (int i = 0; i <= lines && at != std::string::npos && at > 0; ++i) at = text.rfind('\n', at - 1);
  return at == std::string::npos || at == 0 ? text : text.substr(at + 1);
}

// One admin document from walvaultd (STATUS, TIMELINES) as JSON; null when it cannot be had.
json ask_json(const ClientOptions& options, const char* verb) {
  protocol::Message request{verb, {}};
  request.set("format", "json");
  auto reply = exchange_document(options, request, false);
  if (!reply || reply->response.head() != "OK") return nullptr;
  return json::parse(reply->document, nullptr, false);
}

class Drill {
 public:
  Drill(const ClientOptions& options, std::map<std::string, std::string> values, bool as_json)
      : m_options(options), m_values(std::move(values)), m_as_json(as_json) {}

  int run();

 private:
  std::optional<std::string> value(const char* key) const {
    auto it = m_values.find(key);
    return it == m_values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  void say(const std::string& line) const {
    if (!m_as_json) std::fprintf(stderr, "walvault drill: %s\n", line.c_str());
  }
  bool failed(std::string reason) {
    if (m_reason.empty()) m_reason = one_line(std::move(reason), 600);
    return false;
  }
  // As the superuser inside databases whose owners may not be trusted: the search_path is the
  // catalog's only (a database's ALTER DATABASE ... SET search_path cannot slip a function of
  // its own in front of format() or count()), and the name goes in a quoted connection string
  // (a database named 'host=elsewhere' is a name, not a server).
  Result<ProgramRun> psql(const std::string& database, const std::string& sql_or_file, bool file = false) {
    std::string quoted;
    for (char c : database) {
      if (c == '\\' || c == '\'') quoted += '\\';
      quoted += c;
    }
    std::vector<std::string> argv{m_bindir + "/psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", m_run_dir, "-p",
                                  std::to_string(m_port), "-U", m_owner.name, "-d", "dbname='" + quoted + "'"};
    argv.push_back(file ? "-f" : "-c");
    argv.push_back(sql_or_file);
    // The operator's --check-sql file runs with the database's own search_path (it names its tables).
    return walvault::run(argv, m_owner, {"PGCONNECT_TIMEOUT=10", file ? "PGOPTIONS=-c statement_timeout=600000"
                                                                      : "PGOPTIONS=-c statement_timeout=600000 -c search_path=pg_catalog,pg_temp"});
  }
  bool prepare_workdir();
  bool restore();
  bool start_and_recover();
  bool check();
  void stop_and_clean();
  void record(double rto);

  ClientOptions m_options;
  std::map<std::string, std::string> m_values;
  bool m_as_json;
  Owner m_owner;
  std::string m_workdir, m_pgdata, m_run_dir, m_log, m_bindir;
  bool m_created_workdir = false, m_started = false, m_keep = false;
  bool m_prepared = false;  // the scratch directory is ours (created, or found empty)
  std::optional<struct stat> m_given_workdir_mode;  // an existing empty --workdir, as found
  std::uint16_t m_port = 0;
  std::string m_reason;
  json m_report = json::object();
  json m_previous;  // walvaultd's record of the last successful drill (status.drill.last_success)
  Clock::time_point m_started_at = Clock::now();
  double m_restore_seconds = 0, m_recovery_seconds = 0;
};

bool Drill::prepare_workdir() {
  if (auto dir = value("workdir")) {
    m_workdir = *dir;
    if (m_workdir.empty() || m_workdir[0] != '/') return failed("--workdir must be an absolute path");
    while (m_workdir.size() > 1 && m_workdir.back() == '/') m_workdir.pop_back();
    struct stat st {};
    if (::stat(m_workdir.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return failed("--workdir '" + m_workdir + "' is not a directory");
      DIR* d = ::opendir(m_workdir.c_str());
      if (!d) return failed(os_error_text("open", m_workdir, errno));
      bool empty = true;
      while (dirent* e = ::readdir(d))
        if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") empty = false;
      ::closedir(d);
      if (!empty) return failed("--workdir '" + m_workdir + "' is not empty: a drill needs a scratch directory of its own; nothing was changed");
      m_given_workdir_mode = st;
    } else {
      if (::mkdir(m_workdir.c_str(), 0700) != 0) return failed(os_error_text("create", m_workdir, errno));
      m_created_workdir = true;
    }
  } else {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/var/tmp") + "/walvault-drill.XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!::mkdtemp(buffer.data())) return failed(os_error_text("create a scratch directory like", pattern, errno));
    m_workdir = buffer.data();
    m_created_workdir = true;
  }
  m_pgdata = m_workdir + "/pgdata";
  m_run_dir = m_workdir + "/run";
  m_log = m_workdir + "/postgresql.log";
  m_prepared = true;  // from here on it is ours to clean up
  if (::mkdir(m_run_dir.c_str(), 0700) != 0) return failed(os_error_text("create", m_run_dir, errno));
  if (m_owner.run_as) {
    for (const std::string& path : {m_workdir, m_run_dir})
      if (::chown(path.c_str(), m_owner.run_as->uid, m_owner.run_as->gid) != 0) return failed(os_error_text("chown", path, errno));
    // The owner must reach the scratch directory: its parents must let it through.
    if (::chmod(m_workdir.c_str(), 0700) != 0) return failed(os_error_text("chmod", m_workdir, errno));
  }
  m_report["workdir"] = m_workdir;
  m_prepared = true;
  return true;
}

bool Drill::restore() {
  std::map<std::string, std::string> restore_values{{"pgdata", m_pgdata}, {"owner", m_owner.name}};
  for (const char* key : {"backup", "target-time", "target-lsn", "target-xid", "target-name", "target-timeline", "jobs", "pg-bindir"})
    if (auto v = value(key)) restore_values[key] = *v;
  if (value("target-immediate")) restore_values["target-immediate"] = "";
  if (::geteuid() != 0) restore_values.erase("owner");
  say("restoring into " + m_pgdata);
  const auto started = Clock::now();
  json restored;
  const int rc = run_restore(m_options, restore_values, true, &restored);
  m_restore_seconds = seconds_since(started);
  if (rc != k_exit_ok) return failed("the restore failed (its reason is printed above)");
  m_report["backup"] = restored["backup"];
  m_report["restored_bytes"] = restored["bytes"];
  m_report["target"] = restored["target"];
  const int pg_version = restored["plan"]["stored_backup"].value("pg_version", 15);
  m_bindir = value("pg-bindir").value_or("/usr/lib/postgresql/" + std::to_string(pg_version) + "/bin");
  m_report["pg_version"] = pg_version;
  say("restored backup " + restored["backup"].get<std::string>() + " in " + std::to_string(static_cast<int>(m_restore_seconds)) + " s");
  return true;
}

bool Drill::start_and_recover() {
  m_port = free_loopback_port();
  if (!m_port) return failed("no free loopback port for the drill's PostgreSQL");
  // The drill's own settings win over the backed-up ones: its port and socket, no archiving
  // (it must never push into the repository), its own pg_hba (the production one may live
  // outside the data directory, as on Debian).
  const std::string hba = m_workdir + "/pg_hba.drill.conf";
  {
    std::ofstream out(hba);
    out << "# walvault drill: the data's owner over the drill's own socket\nlocal all all peer\n";
  }
  std::string settings = "\n# Added by walvault drill (a scratch copy; never archives)\n";
  settings += "port = " + std::to_string(m_port) + "\n";
  settings += "listen_addresses = '127.0.0.1'\n";
  settings += "unix_socket_directories = '" + m_run_dir + "'\n";
  settings += "hba_file = '" + hba + "'\n";
  settings += "archive_mode = off\n";
  settings += "logging_collector = off\n";
  settings += "cluster_name = 'walvault-drill'\n";
  // A promoted copy must not start the production cluster's subscriptions (they would take
  // changes from its publishers and their slots).
  settings += "max_logical_replication_workers = 0\n";
  // Debian keeps postgresql.conf in /etc: a backup of such a cluster has none, and PostgreSQL
  // will not start without one. An empty one gives the defaults plus the settings below.
  const std::string conf = m_pgdata + "/postgresql.conf";
  if (::access(conf.c_str(), F_OK) != 0) {
    std::ofstream(conf) << "# written by walvault drill: the backup had no postgresql.conf (kept outside the data directory)\n";
    if (m_owner.run_as) (void)!::chown(conf.c_str(), m_owner.run_as->uid, m_owner.run_as->gid);
  }
  {
    std::ofstream out(m_pgdata + "/postgresql.auto.conf", std::ios::app);
    out << settings;
    if (!out) return failed("unable to write the drill's settings into '" + m_pgdata + "/postgresql.auto.conf'");
  }
  if (m_owner.run_as) {
    for (const std::string& path : {hba})
      if (::chown(path.c_str(), m_owner.run_as->uid, m_owner.run_as->gid) != 0) return failed(os_error_text("chown", path, errno));
    ::close(::open(m_log.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (::chown(m_log.c_str(), m_owner.run_as->uid, m_owner.run_as->gid) != 0) return failed(os_error_text("chown", m_log, errno));
  }
  say("starting PostgreSQL on 127.0.0.1:" + std::to_string(m_port) + " as " + m_owner.name + "; waiting for recovery to finish");
  const auto started = Clock::now();
  auto start = walvault::run({m_bindir + "/pg_ctl", "-D", m_pgdata, "-l", m_log, "-W", "start"}, m_owner);
  if (!start) return failed(start.error().message);
  if (!start->ok()) return failed("pg_ctl start failed: " + one_line(start->output) + "; log: " + one_line(tail_lines(read_text(m_log), 5)));
  m_started = true;
  long timeout = 3600;
  if (auto t = value("recovery-timeout")) timeout = std::max(1L, std::strtol(t->c_str(), nullptr, 10));
  const auto deadline = started + std::chrono::seconds(timeout);
  bool seen_running = false;
  for (;;) {
    auto status = walvault::run({m_bindir + "/pg_ctl", "-D", m_pgdata, "status"}, m_owner);
    if (!status) return failed(status.error().message);
    if (status->ok()) {
      seen_running = true;
    } else {
      // Right after `pg_ctl -W start` the postmaster may not have written its pid file yet;
      // once it ran, or once its log says it ended, "not running" means it stopped.
      const std::string log = read_text(m_log);
      const bool ended = log.find("database system is shut down") != std::string::npos || log.find("FATAL") != std::string::npos;
      if (seen_running || ended || Clock::now() - started > std::chrono::seconds(60)) {
        return failed("PostgreSQL stopped during recovery: " + one_line(tail_lines(log, 6), 900));
      }
    }
    if (g_interrupted) return failed("interrupted (SIGTERM or SIGINT) while PostgreSQL recovered");
    auto in_recovery = psql("postgres", "select pg_is_in_recovery()");
    if (in_recovery && in_recovery->ok() && in_recovery->output.starts_with("f")) break;
    if (Clock::now() > deadline)
      return failed("recovery did not finish within --recovery-timeout " + std::to_string(timeout) + " s; log: " + one_line(tail_lines(read_text(m_log), 3)));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  m_recovery_seconds = seconds_since(started);
  const std::string log = read_text(m_log);
  std::size_t segments = 0;
  for (std::size_t at = 0; (at = log.find("restored log file \"", at)) != std::string::npos; ++at) ++segments;
  m_report["wal_segments_replayed"] = segments;
  say("recovery finished after " + std::to_string(static_cast<int>(m_recovery_seconds)) + " s (" + std::to_string(segments) +
      " WAL files restored from the archive)");
  return true;
}

bool Drill::check() {
  // RPO: what a restore now loses, the newest commit archived minus the newest one replayed.
  json timelines = ask_json(m_options, "TIMELINES");
  std::string newest_archived;
  if (timelines.is_object())
    for (const auto& t : timelines["timelines"])
      if (t["recoverable_to"].is_string() && t["recoverable_to"].get<std::string>() > newest_archived)
        newest_archived = t["recoverable_to"].get<std::string>();
  auto replayed = psql("postgres", "select coalesce(to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', "
                                   "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')");
  if (!replayed || !replayed->ok()) return failed("unable to ask the drill's PostgreSQL: " + (replayed ? one_line(replayed->output) : replayed.error().message));
  const std::string replayed_at = one_line(replayed->output);
  m_report["newest_archived_commit"] = newest_archived.empty() ? json(nullptr) : json(newest_archived);
  m_report["newest_replayed_commit"] = replayed_at.empty() ? json(nullptr) : json(replayed_at);
  m_report["rpo_seconds"] = nullptr;
  if (!newest_archived.empty() && !replayed_at.empty()) {
    auto rpo = psql("postgres", "select greatest(0, extract(epoch from timestamptz '" + newest_archived + "' - timestamptz '" + replayed_at + "'))");
    if (rpo && rpo->ok()) m_report["rpo_seconds"] = std::strtod(rpo->output.c_str(), nullptr);
  }

  // Every table of every database: its rows, counted (a read of every heap page).
  auto databases = psql("postgres", "select datname from pg_database where datallowconn and not datistemplate order by 1");
  if (!databases || !databases->ok()) return failed("unable to list the databases: " + (databases ? one_line(databases->output) : databases.error().message));
  json dbs = json::array();
  std::istringstream names(databases->output);
  for (std::string name; std::getline(names, name);) {
    if (name.empty()) continue;
    auto counts = psql(name, "select count(*), coalesce(sum((xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', "
                             "n.nspname, c.relname), false, true, '')))[1]::text::bigint), 0) from pg_class c join pg_namespace n on "
                             "n.oid = c.relnamespace where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema') "
                             "and n.nspname not like 'pg_toast%'");
    if (!counts || !counts->ok()) return failed("unable to count the rows of database '" + name + "': " + (counts ? one_line(counts->output) : counts.error().message));
    const std::string line = one_line(counts->output);
    const auto bar = line.find('|');
    dbs.push_back(json{{"name", name}, {"tables", std::strtoull(line.substr(0, bar).c_str(), nullptr, 10)},
                       {"rows", bar == std::string::npos ? 0 : std::strtoull(line.substr(bar + 1).c_str(), nullptr, 10)}});
  }
  m_report["databases"] = dbs;

  // pg_amcheck: B-tree and heap consistency, where the amcheck extension is installed.
  const std::string control = "/usr/share/postgresql/" + std::to_string(m_report["pg_version"].get<int>()) + "/extension/amcheck.control";
  if (value("no-amcheck")) {
    m_report["amcheck"] = "skipped: --no-amcheck";
  } else if (::access((m_bindir + "/pg_amcheck").c_str(), X_OK) != 0 || ::access(control.c_str(), R_OK) != 0) {
    m_report["amcheck"] = "skipped: pg_amcheck or the amcheck extension (postgresql-contrib) is not installed";
  } else {
    say("running pg_amcheck on every database");
    auto amcheck = walvault::run({m_bindir + "/pg_amcheck", "--all", "--install-missing", "-h", m_run_dir, "-p", std::to_string(m_port),
                                  "-U", m_owner.name}, m_owner, {"PGCONNECT_TIMEOUT=10"});
    if (!amcheck) return failed(amcheck.error().message);
    if (!amcheck->ok()) {
      m_report["amcheck"] = "failed";
      return failed("pg_amcheck found problems: " + one_line(amcheck->output, 500));
    }
    m_report["amcheck"] = "passed";
  }

  // --check-sql: its output must equal --expect, else the last drill's with the same SQL.
  if (auto file = value("check-sql")) {
    const std::string sql = read_text(*file);
    if (sql.empty()) return failed("--check-sql '" + *file + "' is empty or cannot be read");
    const std::string copy = m_workdir + "/check.sql";
    {
      std::ofstream(copy) << sql;
    }
    if (m_owner.run_as) (void)!::chown(copy.c_str(), m_owner.run_as->uid, m_owner.run_as->gid);
    auto result = psql("postgres", copy, true);
    if (!result) return failed(result.error().message);
    if (!result->ok()) return failed("--check-sql '" + *file + "' failed: " + one_line(result->output));
    json check{{"file", *file}, {"sql", fingerprint(sql)}, {"output", fingerprint(result->output)}, {"compared_with", nullptr}};
    if (auto expect = value("expect")) {
      check["compared_with"] = *expect;
      auto trimmed = [](std::string s) {
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        return s;
      };
      if (trimmed(read_text(*expect)) != trimmed(result->output)) {
        m_report["check_sql"] = check;
        return failed("--check-sql output differs from --expect '" + *expect + "': got '" + one_line(result->output, 200) + "'");
      }
    } else if (text_of(m_previous, "check_sql") == fingerprint(sql)) {
      check["compared_with"] = "the last drill (" + text_of(m_previous, "finished_at") + ")";
      if (text_of(m_previous, "check_output") != fingerprint(result->output)) {
        m_report["check_sql"] = check;
        return failed("--check-sql output differs from the last drill's (" + text_of(m_previous, "finished_at") +
                      "): got '" + one_line(result->output, 200) + "'");
      }
    }
    m_report["check_sql"] = check;
  }
  return true;
}

void Drill::stop_and_clean() {
  if (m_started) {
    auto stop = walvault::run({m_bindir + "/pg_ctl", "-D", m_pgdata, "-m", "fast", "-w", "-t", "120", "stop"}, m_owner);
    if (!stop || !stop->ok()) {
      // Never leave it running: immediate, then the scratch directory stays for a look.
      (void)walvault::run({m_bindir + "/pg_ctl", "-D", m_pgdata, "-m", "immediate", "-w", "-t", "60", "stop"}, m_owner);
      m_keep = true;
    }
    m_started = false;
  }
  if (!m_prepared) return;  // a --workdir refused (not empty) is never touched
  if (m_keep) {
    m_report["kept"] = true;
    return;
  }
  // As the data's owner (ourselves when not root): the tree is that user's, and root must not
  // walk a tree another user can change under it (a directory swapped for a link mid-walk).
  (void)walvault::run({"/bin/rm", "-rf", "--", m_pgdata, m_run_dir, m_log, m_workdir + "/pg_hba.drill.conf", m_workdir + "/check.sql"},
                      m_owner);
  if (m_created_workdir) {
    ::rmdir(m_workdir.c_str());
  } else if (m_given_workdir_mode) {
    // An operator's empty directory gets its owner and mode back.
    (void)!::chown(m_workdir.c_str(), m_given_workdir_mode->st_uid, m_given_workdir_mode->st_gid);
    (void)!::chmod(m_workdir.c_str(), m_given_workdir_mode->st_mode & 07777);
  }
  m_report["kept"] = false;
}

// walvaultd keeps the outcome for status and the metrics. A frame is small (4 KiB): the record
// is the summary, not the report. Field names are the protocol's (lowercase, hyphens).
void Drill::record(double rto) {
  protocol::Message request{"DRILL-RESULT", {}};
  request.set("ok", m_reason.empty() ? "1" : "0");
  request.set("started-at", m_report["started_at"].get<std::string>());
  request.set("finished-at", m_report["finished_at"].get<std::string>());
  request.set("rto-seconds", std::to_string(rto));
  if (m_report["rpo_seconds"].is_number()) request.set("rpo-seconds", std::to_string(m_report["rpo_seconds"].get<double>()));
  if (m_report["backup"].is_string()) request.set("backup", m_report["backup"].get<std::string>());
  if (m_report["wal_segments_replayed"].is_number()) request.set("wal-segments-replayed", std::to_string(m_report["wal_segments_replayed"].get<std::size_t>()));
  if (m_report.contains("check_sql") && m_report["check_sql"].is_object()) {
    request.set("check-sql", m_report["check_sql"]["sql"].get<std::string>());
    request.set("check-output", m_report["check_sql"]["output"].get<std::string>());
  }
  if (!m_reason.empty()) request.set("reason", m_reason.substr(0, 1500));
  auto answer = exchange(m_options, request);
  if (!answer || answer->head() != "OK") {
    std::fprintf(stderr, "walvault drill: warning: the result was not recorded in walvaultd: %s\n",
                 answer ? std::string(answer->field("message").value_or(answer->line)).c_str() : answer.error().message.c_str());
    m_report["recorded"] = false;
  } else {
    m_report["recorded"] = true;
  }
}

int Drill::run() {
  auto owner = resolve_owner(value("owner"));
  if (!owner) {
    std::fprintf(stderr, "walvault drill: %s\n", owner.error().message.c_str());
    return k_exit_usage;
  }
  m_owner = *owner;
  m_keep = value("keep").has_value();
  json status = ask_json(m_options, "STATUS");
  if (!status.is_object()) {
    std::fprintf(stderr, "walvault drill: walvaultd does not answer on '%s'\n", m_options.socket_path.c_str());
    return k_exit_usage;
  }
  if (status.contains("drill") && status["drill"].is_object()) m_previous = status["drill"]["last_success"];
  m_report["started_at"] = utc_now_text();
  m_started_at = Clock::now();
  // SIGTERM (walvaultd stopping) and SIGINT (Ctrl-C) end the drill through its cleanup: the
  // scratch PostgreSQL runs in a session of its own and would outlive us otherwise.
  struct sigaction interrupt {};
  interrupt.sa_handler = on_interrupt;
  ::sigaction(SIGTERM, &interrupt, nullptr);
  ::sigaction(SIGINT, &interrupt, nullptr);
  bool ok = false;
  try {
    ok = prepare_workdir() && restore() && (!g_interrupted || failed("interrupted (SIGTERM or SIGINT) during the restore")) &&
         start_and_recover() && check();
    if (g_interrupted && ok) ok = failed("interrupted (SIGTERM or SIGINT)");
  } catch (const std::exception& e) {
    ok = failed(std::string("internal error: ") + e.what());
  }
  const double rto = m_restore_seconds + m_recovery_seconds;
  if (!ok && m_reason.empty()) m_reason = "the drill failed";
  stop_and_clean();
  m_report["finished_at"] = utc_now_text();
  m_report["ok"] = ok;
  m_report["reason"] = ok ? json(nullptr) : json(m_reason);
  m_report["restore_seconds"] = m_restore_seconds;
  m_report["recovery_seconds"] = m_recovery_seconds;
  m_report["rto_seconds"] = ok ? json(rto) : json(nullptr);
  m_report["seconds"] = seconds_since(m_started_at);
  if (!m_report.contains("rpo_seconds")) m_report["rpo_seconds"] = nullptr;
  record(rto);
  if (m_as_json) {
    std::printf("%s\n", dump(m_report, 2).c_str());
  } else if (ok) {
    std::printf("drill passed: backup %s restored and recovered in %.1f s (RTO: restore %.1f s + recovery %.1f s), %s WAL file(s) replayed\n",
                m_report["backup"].get<std::string>().c_str(), rto, m_restore_seconds, m_recovery_seconds,
                m_report["wal_segments_replayed"].dump().c_str());
    std::printf("RPO: %s (newest archived commit %s, newest replayed %s)\n",
                m_report["rpo_seconds"].is_number() ? (std::to_string(m_report["rpo_seconds"].get<double>()) + " s").c_str() : "unknown",
                m_report["newest_archived_commit"].is_string() ? m_report["newest_archived_commit"].get<std::string>().c_str() : "none",
                m_report["newest_replayed_commit"].is_string() ? m_report["newest_replayed_commit"].get<std::string>().c_str() : "none");
    for (const auto& db : m_report["databases"])
      std::printf("database %s: %s table(s), %s row(s)\n", db["name"].get<std::string>().c_str(), db["tables"].dump().c_str(), db["rows"].dump().c_str());
    std::printf("pg_amcheck: %s\n", m_report["amcheck"].get<std::string>().c_str());
    if (m_report.contains("check_sql"))
      std::printf("check-sql: matched %s\n", m_report["check_sql"]["compared_with"].is_null() ? "(first run: recorded as the reference)"
                                                                                         : m_report["check_sql"]["compared_with"].get<std::string>().c_str());
  } else {
    std::fprintf(stderr, "walvault drill: FAILED: %s%s\n", m_reason.c_str(),
                 m_report.value("kept", false) ? ("\nthe scratch directory is kept: " + m_workdir).c_str() : "; run with --keep to look at the scratch directory");
  }
  return ok ? k_exit_ok : k_exit_check_failed;
}

}  // namespace

int run_drill(const ClientOptions& options, const std::map<std::string, std::string>& values, bool as_json) {
  return Drill(options, values, as_json).run();
}

}  // namespace walvault
