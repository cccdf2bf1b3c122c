#include "restorer/cli.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/base/client_common.hpp"
#include "common/base/fd.hpp"
#include "common/base/socket_client.hpp"

namespace walvault {

namespace {

struct Verb {
  const char* name;
  const char* wire;
  const char* usage;
  std::set<std::string> value_options;
  std::set<std::string> flag_options;
};

const Verb k_verbs[] = {
    {"status", "STATUS", "status                      version, uptime, repository, newest segment, counts, errors", {}, {}},
    {"list", "LIST", "list [--timeline N] [--from SEG] [--to SEG] [--backups]\n"
                     "                              archived segments (or base backups) with sizes and commit times",
     {"timeline", "from", "to"}, {"backups"}},
    {"timelines", "TIMELINES", "timelines                   the timeline tree, switch points and recoverable windows", {}, {}},
    {"check", "CHECK", "check [--max-wal-age 30m] [--max-backup-age 48h] [--max-disk-usage 80%]\n"
                       "                              newest WAL age, newest backup age, disk usage, WAL continuity",
     {"max-wal-age", "max-backup-age", "max-disk-usage"}, {}},
    {"verify", "VERIFY", "verify                      re-read and check every stored object against the index", {}, {}},
    {"plan", "PLAN", "plan [--target-time T | --target-lsn L | --target-xid X | --target-name N | --target-immediate]\n"
                     "     [--target-timeline latest|N] [--backup ID|latest]\n"
                     "                              which backup and WAL a restore needs, and whether the target is reachable",
     {"target-time", "target-lsn", "target-xid", "target-name", "target-timeline", "backup"}, {"target-immediate"}},
    {"prune", "PRUNE", "prune [--dry-run]           delete what the retention rules no longer need (--dry-run: only list\n"
                       "                              what would go and why each kept object stays)",
     {}, {"dry-run"}},
    {"reindex", "REINDEX", "reindex                     rebuild the index from the repository alone", {}, {}},
    {"sync", "SYNC", "sync                        with several repositories: copy into each what the others hold and it\n"
                     "                              lacks (one that was down, emptied or added), proving every copy", {}, {}},
    {"rekey", "REKEY", "rekey                       after a key rotation: wrap every encrypted object's data key with the\n"
                       "                              current key (bodies are not rewritten), so old key files can go", {}, {}},
    {"backup", "BACKUP", "backup [--label L] [-d|--dbname CONNINFO]\n"
                         "                              take a base backup now (walvaultd runs pg_basebackup and stores it);\n"
                         "                              exit 0 once it is complete, its WAL archived. The server: walvaultd's\n"
                         "                              pg-conninfo if set, else -d over this shell's PGHOST, PGPORT, PGUSER,\n"
                         "                              PGDATABASE, over walvaultd's pgdata (postmaster.pid)",
     {"label", "dbname"}, {}},
    {"restore", "PLAN", "restore --pgdata DIR [--backup ID|latest] [--target-time T | --target-lsn L | --target-xid X |\n"
                        "        --target-name N | --target-immediate] [--target-timeline latest|N]\n"
                        "        [--target-action promote|pause|shutdown] [--standby [--primary-conninfo S]] [--force]\n"
                        "        [--owner USER] [--jobs N] [--pg-bindir DIR] [--archive-get PATH]\n"
                        "                              restore a stored base backup into DIR, ready to start: refuses an\n"
                        "                              unreachable target or a non-empty DIR (without --force) before\n"
                        "                              writing anything; see docs/cli.md",
     {"pgdata", "backup", "target-time", "target-lsn", "target-xid", "target-name", "target-timeline", "target-action",
      "primary-conninfo", "owner", "jobs", "pg-bindir", "archive-get"},
     {"target-immediate", "standby", "force"}},
    {"drill", "PLAN", "drill [--workdir DIR] [--backup ID|latest] [--target-time T | ...] [--check-sql FILE\n"
                      "      [--expect FILE]] [--owner USER] [--recovery-timeout SECONDS] [--keep] [--no-amcheck]\n"
                      "                              disaster-recovery drill: restore into a scratch directory, start\n"
                      "                              PostgreSQL there, check it (pg_amcheck, every table's rows, the SQL\n"
                      "                              file), report RTO and RPO, remove it; walvaultd records the result",
     {"workdir", "backup", "target-time", "target-lsn", "target-xid", "target-name", "target-timeline", "check-sql", "expect",
      "owner", "jobs", "pg-bindir", "recovery-timeout"},
     {"target-immediate", "keep", "no-amcheck"}},
};

void usage(FILE* out) {
  std::fputs("Usage: walvault [--socket PATH] [--json] VERB [OPTIONS]\n\n"
             "Asks walvaultd about the archive. Verbs:\n", out);
  for (const auto& verb : k_verbs) std::fprintf(out, "  %s\n", verb.usage);
  std::fputs("\nOptions for every verb:\n"
             "  --socket PATH   walvaultd's socket (default: $WALVAULT_SOCKET, else /run/walvault/walvault.sock)\n"
             "  --json          print one JSON document (keys in docs/cli.md) instead of text\n"
             "  --timeout SECONDS  how long to wait for the answer (default 3600; backup: a week)\n"
             "  --connect-timeout SECONDS  how long to retry while walvaultd is not accepting (default 1)\n\n"
             "Times: RFC 3339 (2026-11-24T09:30:00Z) or 'YYYY-MM-DD HH:MM:SS[+TZ]'; output is UTC.\n"
             "Exit status: 0 done / all checks hold; 1 a check failed or the target is unreachable;\n"
             "2 usage or connection error.\n", out);
}

bool name_is(const Verb* verb, std::string_view name) { return verb && name == verb->name; }

int usage_error(const std::string& message) {
  std::fprintf(stderr, "walvault: %s (see walvault --help)\n", message.c_str());
  return k_exit_usage;
}

const Verb* find_verb(std::string_view name) {
  for (const auto& candidate : k_verbs)
    if (name == candidate.name) return &candidate;
  return nullptr;
}

// The options walvault takes where it is on its command line: --json everywhere, and the
// verb's own once the verb was seen.
ClientOptionSpec options_for(const std::vector<std::string>& positional) {
  ClientOptionSpec spec;
  spec.flag_options.insert("json");
  const Verb* verb = positional.empty() ? nullptr : find_verb(positional.front());
  if (!verb) return spec;
  spec.owner = "'" + std::string(verb->name) + "'";
  spec.value_options = verb->value_options;
  spec.flag_options.insert(verb->flag_options.begin(), verb->flag_options.end());
  if (name_is(verb, "backup")) spec.short_value["-d"] = "dbname";  // pg_basebackup's spelling
  return spec;
}

}  // namespace

int run_walvault_cli(int argc, const char* const* argv) {
  auto parsed = parse_client_command_line(argc, argv, options_for);
  if (!parsed) return usage_error(parsed.error().message);
  if (parsed->help || (!parsed->positional.empty() && parsed->positional.front() == "help")) {
    usage(stdout);
    return k_exit_ok;
  }
  if (parsed->version) {
    std::printf("walvault %s\n", WALVAULT_VERSION);
    return k_exit_ok;
  }
  if (parsed->positional.empty()) {
    usage(stderr);
    return k_exit_usage;
  }
  const Verb* verb = find_verb(parsed->positional.front());
  if (!verb) return usage_error("unknown verb '" + parsed->positional.front() + "'");
  if (parsed->positional.size() > 1) return usage_error("unexpected argument '" + parsed->positional[1] + "'");
  ClientOptions options = parsed->options;
  if (!parsed->timeout_given) options.timeout = std::chrono::milliseconds(3600 * 1000);
  std::map<std::string, std::string> values = std::move(parsed->values);
  const bool as_json = values.erase("json") > 0;
  const bool timeout_given = parsed->timeout_given;
  int targets = 0;
  for (const char* t : {"target-time", "target-lsn", "target-xid", "target-name", "target-immediate"}) targets += values.contains(t);
  if (targets > 1) return usage_error("give at most one of --target-time, --target-lsn, --target-xid, --target-name, --target-immediate");

  if (std::string(verb->name) == "restore") return run_restore(options, values, as_json);
  if (std::string(verb->name) == "drill") {
    if (values.contains("expect") && !values.contains("check-sql")) return usage_error("--expect goes with --check-sql");
    return run_drill(options, values, as_json);
  }
  if (std::string(verb->name) == "backup" && !timeout_given) options.timeout = std::chrono::hours(24 * 7);

  protocol::Message request{verb->wire, {}};
  request.set("format", as_json ? "json" : "text");
  for (const auto& [key, value] : values) request.set(key, value);
  if (name_is(verb, "backup")) {
    // As pg_basebackup would: the caller's libpq environment (walvaultd uses it only when it
    // has no pg-conninfo of its own).
    for (const char* variable : protocol::k_backup_caller_variables)
      if (const char* value = std::getenv(variable); value && *value) request.set(variable, value);
  }
  const std::string name = verb->name;
  const bool progress = (name == "verify" || name == "backup" || name == "sync" || name == "rekey") && ::isatty(STDERR_FILENO);
  auto reply = exchange_document(options, request, progress);
  if (!reply) {
    std::fprintf(stderr, "walvault: %s\n", reply.error().message.c_str());
    return k_exit_usage;
  }
  std::fwrite(reply->document.data(), 1, reply->document.size(), stdout);
  std::fflush(stdout);
  return exit_code_of(reply->response);
}

int exit_code_of(const protocol::Message& response) {
  if (response.head() != "OK") {
    auto text = response.field("message");
    std::fprintf(stderr, "walvault: %s\n", text ? std::string(*text).c_str() : response.line.c_str());
    return response.head() == "ERR" && response.argument() == "invalid" ? k_exit_usage : k_exit_check_failed;
  }
  auto code = response.field("exit");
  if (code && *code == "0") return k_exit_ok;
  if (auto reason = response.field("message")) std::fprintf(stderr, "walvault: %s\n", std::string(*reason).c_str());
  return k_exit_check_failed;
}

Result<DocumentReply> exchange_document(const ClientOptions& options, const protocol::Message& request, bool progress) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail_os("create", "pipe", errno);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);

  auto client = SocketClient::connect(options.socket_path, options.connect_timeout, options.timeout);
  if (!client) return std::unexpected(client.error());
  // The document comes through the pipe; read it on a thread so a large one never blocks the
  // daemon while we wait for its answer on the socket.
  DocumentReply reply;
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(read_end.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      reply.document.append(buf, static_cast<std::size_t>(n));
    }
  });
  Result<void> sent;
  if (progress) {
    // Two descriptors: the pipe, then our terminal for progress lines.
    protocol::Message with_progress = request;
    with_progress.set("progress", "1");
    sent = client->send_with_fds(with_progress, {write_end.get(), STDERR_FILENO});
  } else {
    sent = client->send(request, write_end.get());
  }
  write_end.reset();  // the daemon holds the only other copy: EOF arrives when it is done
  Result<protocol::Message> response = sent ? client->receive(options.timeout) : std::unexpected(sent.error());
  if (!response) read_end.reset();
  reader.join();
  if (!response) return std::unexpected(response.error());
  reply.response = std::move(*response);
  return reply;
}

}  // namespace walvault
