#include "common/core/config.hpp"

#include "common/base/path_access.hpp"
#include "common/base/text.hpp"
#include "common/core/cron.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "common/core/time_format.hpp"
#include <fstream>
#include <sstream>

namespace walvault {

namespace {

constexpr OptionSpec k_options[] = {
    {"repo", "", "PATH|URL", "repository: an absolute directory path, or s3://bucket[/prefix] (then spool is required); repeat it for several (spool required): a push is stored in every one, a get asks them in order (environment: comma-separated)", false},
    {"s3-endpoint", "", "URL", "S3: the endpoint, https://host[:port] (http:// only when written so); empty: AWS's for s3-region", false},
    {"s3-region", "us-east-1", "REGION", "S3: the region requests are signed for", false},
    {"s3-uri-style", "host", "STYLE", "S3: host (bucket.endpoint/key) or path (endpoint/bucket/key, for most self-hosted stores)", false},
    {"s3-storage-class", "", "CLASS", "S3: storage class of new objects (STANDARD_IA, ...); empty: the bucket's default", false},
    {"s3-ca-file", "", "FILE", "S3: CA certificates (PEM) that sign the endpoint's certificate; empty: the system's", false},
    {"s3-verify-tls", "on", "on|off", "S3: verify the endpoint's TLS certificate (off only for tests)", false},
    {"s3-key", "", "KEY-ID", "S3: access key id; empty: AWS_ACCESS_KEY_ID", false},
    {"s3-key-secret", "", "SECRET", "S3: secret access key; empty: AWS_SECRET_ACCESS_KEY (prefer the environment or the config file to a flag, which ps shows)", false},
    {"s3-credentials-file", "", "FILE", "S3: credentials in the AWS shared-credentials format ([default] aws_access_key_id, aws_secret_access_key, aws_session_token), not readable by others; re-read whenever it changes (a rotated Kubernetes secret). Instead of s3-key and the AWS_* variables", false},
    {"s3-timeout", "20", "SECONDS", "S3: a request that moves no data for this long fails and is retried (5 tries in all), so a store that stops answering fails a push or get within about 5 x this", false},
    {"encryption-key-file", "", "FILE", "encrypt every new object (AES-256-GCM, a random data key per object wrapped by this key) with the key in FILE: 32 random bytes or 64 hex digits ('openssl rand -hex 32'), mode 0600 or 0400. Empty: new objects are not encrypted. Encrypted objects are read with this key or an old one; losing every key loses the data", false},
    {"encryption-old-key-files", "", "LIST", "comma-separated key files that only decrypt (the keys before a rotation); `walvault rekey` moves objects to the current key, after which they may go", false},
    {"core-dumps", "on", "on|off", "off: walvaultd makes itself non-dumpable (prctl PR_SET_DUMPABLE 0) before it reads any key: no core dump holds key material, and other processes of its user cannot ptrace it; on keeps crashes debuggable", false},
    {"spool", "", "DIR", "directory for walvaultd's local state, the index (empty: the repository directory)", false},
    {"socket", "/run/walvault/walvault.sock", "PATH", "Unix socket the clients connect to", false},
    {"socket-mode", "0660", "OCTAL", "permission bits of the socket (its directory is created 0755 if missing)", false},
    {"socket-group", "", "GROUP", "group the socket is given (name or gid). Empty: as root with allow-uid naming other users, the primary group of the first of them; otherwise the group it is created with (walvaultd's, or a setgid directory's)", false},
    {"allow-uid", "", "LIST", "comma-separated user names or uids allowed to connect (empty: only walvaultd's own uid)", true},
    {"compress", "zstd:3", "CODEC", "compression of stored objects: zstd, zstd:1 .. zstd:19, or none", true},
    {"workers", "0", "N", "worker threads for checking, compressing and storing (0: one per CPU)", false},
    {"max-connections", "64", "N", "connections served at once; more get BUSY and the client retries", false},
    {"request-timeout", "10", "SECONDS", "time a client has to send its request after connecting", true},
    {"shutdown-timeout", "60", "SECONDS", "SIGTERM: how long open connections may take to finish; after it walvaultd exits anyway (exit 1), dropping only requests it never acknowledged", true},
    {"check-max-wal-age", "30m", "DURATION", "walvault check: the newest archived segment may be this old (30m, 1h, 2d); keep archive_timeout below it", true},
    {"check-max-backup-age", "48h", "DURATION", "walvault check: the newest base backup may be this old", true},
    {"check-max-disk-usage", "80%", "PERCENT", "walvault check: the repository's filesystem may be this full", true},
    {"retention-backups", "1", "N", "keep at least this many newest complete base backups (never fewer than 1)", true},
    {"retention-backup-days", "30", "DAYS", "keep every complete base backup younger than this many days", true},
    {"retention-wal-days", "7", "DAYS", "point-in-time window: keep WAL back to the newest backup at least this old", true},
    {"prune-interval", "3600", "SECONDS", "seconds between automatic prunes; also one after each .backup file (0: timer off)", true},
    {"pgdata", "", "DIR", "data directory of the PostgreSQL served: without pg-conninfo, base backups find the server from its postmaster.pid (user: the directory's owner); its system identifier must match the repository's", true},
    {"look-ahead-workers", "2", "N", "with pgdata: threads that push every segment PostgreSQL marks .ready in pg_wal/archive_status ahead of its archive_command (read-only; PostgreSQL's status files are never touched), so its own archive-push of a segment already stored is answered at once. Needs read access to pg_wal (same uid, or initdb --allow-group-access). 0: off", false},
    {"prefetch-bytes", "128MiB", "SIZE", "during archive recovery (%p = pg_wal/RECOVERYXLOG): after serving a segment, fetch, decode and verify up to this much of the WAL that follows (along the timeline recovery follows) into the spool's prefetch/ directory while PostgreSQL replays; 0: off. pg_rewind's exact requests are never prefetched", true},
    {"push-rate-limit", "0", "SIZE", "bytes per second that all pushes together may read (PostgreSQL's and look-ahead's), e.g. 100MiB or 100MiB/s; 0: no limit, otherwise at least 1MiB. Keep it above the rate the server writes WAL, or archiving falls behind and pg_wal grows", true},
    {"get-rate-limit", "0", "SIZE", "bytes per second that archive-get, prefetch and walvault restore together may read out of the repository (a spool hit is not counted); 0: no limit, otherwise at least 1MiB", true},
    {"backup-rate-limit", "0", "SIZE", "bytes per second a base backup may read from PostgreSQL (walvault backup, backup-schedule): pg_basebackup's stream, and so the server's reads, slow to match; 0: no limit, otherwise at least 1MiB", true},
    {"pg-conninfo", "", "CONNINFO", "libpq connection string for base backups (pg_basebackup -d), e.g. 'host=/var/run/postgresql user=postgres'; wins over walvault backup -d and pgdata; a password in it goes to pg_basebackup as PGPASSWORD, never on its command line", true},
    {"pg-bindir", "/usr/lib/postgresql/15/bin", "DIR", "where walvaultd finds pg_basebackup", true},
    {"backup-schedule", "off", "CRON", "take a base backup on this cron schedule, in UTC ('0 2 * * *' = daily at 02:00; off: only `walvault backup`)", true},
    {"drill-schedule", "off", "CRON", "run 'walvault drill' (restore the newest backup into a scratch directory, start PostgreSQL on it, check it, record RTO and RPO) on this cron schedule, in UTC; walvaultd's own uid must be allowed (allow-uid). off: only by hand", true},
    {"backup-chunk-size", "64MiB", "SIZE", "a base backup is stored as chunks of about this much tar data (1MiB to 4GiB); restore fetches chunks in parallel", true},
    {"backup-checkpoint", "fast", "MODE", "checkpoint a backup starts with: fast (start now) or spread (gentler on a busy server, slower to start)", true},
    {"metrics-listen", "", "LIST", "comma-separated IP:PORT addresses (127.0.0.1:9187, [::1]:9187) where walvaultd serves /metrics (Prometheus), /healthz and /readyz over HTTP; empty: off. Anyone who can reach it reads the metrics: keep it on loopback or a pod network", false},
    {"notify-command", "", "FILE", "a program walvaultd runs for each event (backup finished or failed, archiving failing and recovered, prune failed, drill passed or failed) with one JSON document on its stdin and WALVAULT_EVENT set; one at a time, never on the archiving path; exit 0 is delivered. Empty: off", true},
    {"notify-timeout", "30", "SECONDS", "notify-command: a run that takes longer is killed (logged as failed)", true},
    {"notify-archive-failing-after", "10m", "DURATION", "notify-command: the 'archive_failing' event comes once pushes have failed this long with no success in between", true},
    {"log-level", "info", "LEVEL", "debug, info, warn or error", true},
    {"log-format", "text", "FORMAT", "text or json (one object per line)", true},
};

std::string trim(std::string_view text) { return std::string(trim_blanks(text)); }

// "a, b,,c" -> {"a", "b", "c"}: the list options' items, trimmed, empty ones dropped.
std::vector<std::string> comma_list(const std::string& value) {
  std::vector<std::string> items;
  std::stringstream list(value);
  for (std::string item; std::getline(list, item, ',');)
    if (item = trim(item); !item.empty()) items.push_back(std::move(item));
  return items;
}

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return fail(ErrorKind::invalid, "listen address '" + std::string(text) + "' " + why + " (expected IP:PORT, e.g. 127.0.0.1:9187 or [::1]:9187)");
  };
  ListenAddress out;
  std::string_view port;
  bool v6 = false;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return bad("has no port");
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    v6 = true;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad("is an IPv6 address without brackets");
    port = text.substr(colon + 1);
  }
  unsigned char parsed[16];
  if (out.host.empty() || ::inet_pton(v6 ? AF_INET6 : AF_INET, out.host.c_str(), parsed) != 1)
    return bad("does not start with an IP address");
  unsigned value = 0;
  auto [end, perr] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (perr != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return bad("has no port from 1 to 65535");
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

namespace {

// A group name or a numeric gid, as PostgreSQL's unix_socket_group takes it.
Result<gid_t> parse_group(const std::string& text) {
  if (all_digits(text)) {
    gid_t gid = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), gid);
    if (ec != std::errc() || ptr != text.data() + text.size()) return fail(ErrorKind::invalid, "gid '" + text + "' is out of range");
    return gid;
  }
  std::vector<char> buffer(16384);
  group gr{};
  group* found = nullptr;
  if (::getgrnam_r(text.c_str(), &gr, buffer.data(), buffer.size(), &found) != 0 || !found)
    return fail(ErrorKind::invalid, "no group named '" + text + "' (expected a group name or a gid)");
  return found->gr_gid;
}

Result<unsigned long> parse_unsigned(std::string_view text, unsigned long min, unsigned long max, int base = 10) {
  unsigned long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < min || value > max)
    return fail(ErrorKind::invalid, "expected a number from " + std::to_string(min) + " to " + std::to_string(max));
  return value;
}

// 1048576, 512KiB, 64MiB, 1GiB (also K/M/G, KB/MB/GB as binary units).
std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc()) return std::nullopt;
  std::string unit(ptr, text.data() + text.size());
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::uint64_t scale = 1;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") scale = 1ULL << 10;
  else if (unit == "M" || unit == "MB" || unit == "MIB") scale = 1ULL << 20;
  else if (unit == "G" || unit == "GB" || unit == "GIB") scale = 1ULL << 30;
  else return std::nullopt;
  if (value > (std::uint64_t{1} << 40) / scale) return std::nullopt;  // no wrap-around
  return value * scale;
}

Result<std::vector<uid_t>> parse_uid_list(std::string_view text) {
  std::vector<uid_t> uids;
  if (trim(text).empty()) {
    uids.push_back(::getuid());
    return uids;
  }
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    std::string item = trim(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (item.empty()) return fail(ErrorKind::invalid, "empty entry in the list");
    if (item.find_first_not_of("0123456789") == std::string::npos) {
      auto uid = parse_unsigned(item, 0, 4294967294UL);
      if (!uid) return std::unexpected(uid.error());
      uids.push_back(static_cast<uid_t>(*uid));
    } else {
      const passwd* pw = ::getpwnam(item.c_str());
      if (!pw) return fail(ErrorKind::invalid, "unknown user '" + item + "'");
      uids.push_back(pw->pw_uid);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return uids;
}

struct Setting {
  std::string value;
  std::string origin;  // "default", "--name", "WALVAULT_NAME", "file:line"
};

Result<void> read_config_file(const std::string& path, std::map<std::string, Setting>& settings) {
  std::ifstream in(path);
  if (!in) return fail(ErrorKind::invalid, os_error_text("open config file", path, errno));
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number);
    std::string text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    auto eq = text.find('=');
    if (eq == std::string::npos) return fail(ErrorKind::invalid, where + ": expected 'name = value'");
    std::string name = trim(std::string_view(text).substr(0, eq));
    std::string value = trim(std::string_view(text).substr(eq + 1));
    if (value.size() >= 2 && ((value.front() == '"' && value.back() == '"') || (value.front() == '\'' && value.back() == '\'')))
      value = value.substr(1, value.size() - 2);
    if (!find_option(name)) return fail(ErrorKind::invalid, where + ": unknown option '" + name + "'");
    // 'repo' may repeat: each line adds a repository (another option's later line wins).
    auto& slot = settings[name];
    if (name == "repo" && slot.origin.starts_with(path + ":")) slot = Setting{slot.value + k_list_separator + value, slot.origin + "," + std::to_string(number)};
    else slot = Setting{value, where};
  }
  if (in.bad()) return fail(ErrorKind::invalid, os_error_text("read config file", path, errno));
  return {};
}

Result<void> apply(DaemonConfig& config, const std::string& name, const std::string& value) {
  if (name == "repo") {
    config.repos.clear();
    std::size_t start = 0;
    while (start <= value.size()) {
      auto end = value.find(k_list_separator, start);
      std::string location = trim(std::string_view(value).substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (!location.empty()) {
        // The same place spelled twice (/a, /a/, file:///a) is still one repository.
        const auto same_place = [](std::string text) {
          if (text.starts_with("file://")) text = text.substr(7);
          while (text.size() > 1 && text.back() == '/') text.pop_back();
          return text;
        };
        for (const auto& other : config.repos)
          if (same_place(other) == same_place(location))
            return fail(ErrorKind::invalid, "repository '" + location + "' is given twice");
        if (!location.starts_with("s3://") && !location.starts_with("/") && !location.starts_with("file:///"))
          return fail(ErrorKind::invalid, "repository '" + location + "' is neither an absolute directory path nor s3://bucket[/prefix]");
        config.repos.push_back(std::move(location));
      }
      if (end == std::string::npos) break;
      start = end + 1;
    }
  } else if (name == "socket") {
    if (value.empty() || value.size() > 107) return fail(ErrorKind::invalid, "expected a path of 1 to 107 bytes");
    config.socket = value;
  } else if (name == "socket-mode") {
    auto mode = parse_unsigned(value, 0, 0777, 8);
    if (!mode) return fail(ErrorKind::invalid, "expected octal permission bits such as 0660");
    config.socket_mode = static_cast<unsigned>(*mode);
  } else if (name == "socket-group") {
    if (value.empty()) {
      config.socket_group.reset();
    } else {
      auto gid = parse_group(value);
      if (!gid) return std::unexpected(gid.error());
      config.socket_group = *gid;
    }
  } else if (name == "allow-uid") {
    auto uids = parse_uid_list(value);
    if (!uids) return std::unexpected(uids.error());
    config.allow_uids = *uids;
  } else if (name == "compress") {
    auto spec = parse_compress_spec(value);
    if (!spec) return std::unexpected(spec.error());
    config.compress = *spec;
  } else if (name == "workers") {
    auto n = parse_unsigned(value, 0, 256);
    if (!n) return std::unexpected(n.error());
    config.workers = static_cast<unsigned>(*n);
  } else if (name == "max-connections") {
    auto n = parse_unsigned(value, 1, 10000);
    if (!n) return std::unexpected(n.error());
    config.max_connections = static_cast<unsigned>(*n);
  } else if (name == "request-timeout") {
    auto n = parse_unsigned(value, 1, 3600);
    if (!n) return std::unexpected(n.error());
    config.request_timeout = std::chrono::seconds(*n);
  } else if (name == "shutdown-timeout") {
    auto n = parse_unsigned(value, 1, 86400);
    if (!n) return std::unexpected(n.error());
    config.shutdown_timeout = std::chrono::seconds(*n);
  } else if (name == "s3-endpoint") {
    if (!value.empty() && !value.starts_with("https://") && !value.starts_with("http://"))
      return fail(ErrorKind::invalid, "expected https://host[:port] or http://host[:port]");
    config.storage.s3_endpoint = value;
  } else if (name == "s3-region") {
    if (value.empty()) return fail(ErrorKind::invalid, "expected a region such as us-east-1");
    config.storage.s3_region = value;
  } else if (name == "s3-uri-style") {
    if (value != "host" && value != "path") return fail(ErrorKind::invalid, "expected host or path");
    config.storage.s3_path_style = value == "path";
  } else if (name == "s3-storage-class") {
    config.storage.s3_storage_class = value;
  } else if (name == "s3-ca-file") {
    if (!value.empty() && value[0] != '/') return fail(ErrorKind::invalid, "expected an absolute file path");
    config.storage.s3_ca_file = value;
  } else if (name == "s3-verify-tls") {
    if (value != "on" && value != "off") return fail(ErrorKind::invalid, "expected on or off");
    config.storage.s3_verify_tls = value == "on";
  } else if (name == "s3-key") {
    config.storage.s3_key = value;
  } else if (name == "s3-key-secret") {
    config.storage.s3_key_secret = value;
  } else if (name == "s3-credentials-file") {
    if (!value.empty() && value[0] != '/') return fail(ErrorKind::invalid, "expected an absolute file path");
    config.storage.s3_credentials_file = value;
  } else if (name == "s3-timeout") {
    auto n = parse_unsigned(value, 1, 3600);
    if (!n) return std::unexpected(n.error());
    config.storage.s3_timeout = std::chrono::seconds(*n);
  } else if (name == "core-dumps") {
    if (value != "on" && value != "off") return fail(ErrorKind::invalid, "expected on or off");
    config.core_dumps = value == "on";
  } else if (name == "encryption-key-file") {
    if (!value.empty() && value[0] != '/') return fail(ErrorKind::invalid, "expected an absolute file path");
    config.encryption_key_file = value;
  } else if (name == "encryption-old-key-files") {
    config.encryption_old_key_files.clear();
    for (auto& file : comma_list(value)) {
      if (file[0] != '/') return fail(ErrorKind::invalid, "expected absolute file paths, comma-separated");
      config.encryption_old_key_files.push_back(std::move(file));
    }
  } else if (name == "notify-command") {
    if (!value.empty() && value[0] != '/') return fail(ErrorKind::invalid, "expected an absolute file path (arguments are not taken: the event comes on stdin)");
    config.notify_command = value;
  } else if (name == "notify-timeout") {
    auto n = parse_unsigned(value, 1, 3600);
    if (!n) return std::unexpected(n.error());
    config.notify_timeout = std::chrono::seconds(*n);
  } else if (name == "notify-archive-failing-after") {
    auto us = parse_duration_us(value);
    if (!us || *us < 1000000) return fail(ErrorKind::invalid, "expected a duration of at least 1s, such as 10m");
    config.notify_archive_failing_after = std::chrono::seconds(*us / 1000000);
  } else if (name == "metrics-listen") {
    config.metrics_listen.clear();
    for (const auto& item : comma_list(value)) {
      auto address = parse_listen_address(item);
      if (!address) return std::unexpected(address.error());
      config.metrics_listen.push_back(*address);
    }
  } else if (name == "spool") {
    if (!value.empty() && value[0] != '/') return fail(ErrorKind::invalid, "expected an absolute directory path");
    config.spool = value;
  } else if (name == "check-max-wal-age" || name == "check-max-backup-age") {
    auto us = parse_duration_us(value);
    if (!us) return fail(ErrorKind::invalid, "expected a duration such as 30m, 1h or 2d");
    (name == "check-max-wal-age" ? config.check_max_wal_age_us : config.check_max_backup_age_us) = *us;
  } else if (name == "check-max-disk-usage") {
    std::string number = value;
    if (!number.empty() && number.back() == '%') number.pop_back();
    auto percent = parse_unsigned(number, 1, 100);
    if (!percent) return fail(ErrorKind::invalid, "expected a percentage from 1% to 100%");
    config.check_max_disk_usage = static_cast<double>(*percent) / 100.0;
  } else if (name == "retention-backups") {
    auto n = parse_unsigned(value, 1, 100000);
    if (!n) return std::unexpected(n.error());
    config.retention_backups = static_cast<unsigned>(*n);
  } else if (name == "retention-backup-days" || name == "retention-wal-days") {
    auto n = parse_unsigned(value, 0, 36500);
    if (!n) return std::unexpected(n.error());
    (name == "retention-wal-days" ? config.retention_wal_days_us : config.retention_backup_days_us) =
        static_cast<std::int64_t>(*n) * 86400 * 1000000;
  } else if (name == "prune-interval") {
    auto n = parse_unsigned(value, 0, 86400 * 30);
    if (!n) return std::unexpected(n.error());
    config.prune_interval = std::chrono::seconds(*n);
  } else if (name == "pgdata") {
    if (!value.empty() && value[0] != '/') return fail(ErrorKind::invalid, "expected an absolute directory path");
    config.pgdata = value;
  } else if (name == "look-ahead-workers") {
    auto n = parse_unsigned(value, 0, 64);
    if (!n) return std::unexpected(n.error());
    config.look_ahead_workers = static_cast<unsigned>(*n);
  } else if (name == "prefetch-bytes") {
    auto bytes = parse_size(value);
    if (!bytes || *bytes > (64ULL << 30)) return fail(ErrorKind::invalid, "expected a size up to 64GiB, such as 128MiB (0: off)");
    config.prefetch_bytes = *bytes;
  } else if (name == "push-rate-limit" || name == "get-rate-limit" || name == "backup-rate-limit") {
    std::string_view text = trim_blanks(value);
    if (text.ends_with("/s")) text.remove_suffix(2);
    auto bytes = parse_size(std::string(text));
    if (!bytes || (*bytes != 0 && *bytes < (1ULL << 20)) || *bytes > (1ULL << 40))
      return fail(ErrorKind::invalid, "expected bytes per second from 1MiB to 1TiB, such as 100MiB or 100MiB/s (0: no limit)");
    (name == "push-rate-limit" ? config.push_rate_limit : name == "get-rate-limit" ? config.get_rate_limit : config.backup_rate_limit) =
        *bytes;
  } else if (name == "pg-conninfo") {
    config.pg_conninfo = value;
  } else if (name == "pg-bindir") {
    if (value.empty() || value[0] != '/') return fail(ErrorKind::invalid, "expected an absolute directory path");
    config.pg_bindir = value;
  } else if (name == "backup-schedule") {
    if (trim(value).empty() || trim(value) == "off") {
      config.backup_schedule.clear();
    } else {
      if (auto schedule = parse_cron(value); !schedule) return std::unexpected(schedule.error());
      config.backup_schedule = trim(value);
    }
  } else if (name == "drill-schedule") {
    config.drill_schedule.clear();
    if (value != "off" && !value.empty()) {
      if (auto schedule = parse_cron(value); !schedule) return std::unexpected(schedule.error());
      config.drill_schedule = value;
    }
  } else if (name == "backup-chunk-size") {
    auto bytes = parse_size(value);
    if (!bytes || *bytes < (1ULL << 20) || *bytes > (4ULL << 30))
      return fail(ErrorKind::invalid, "expected a size from 1MiB to 4GiB, such as 64MiB");
    config.backup_chunk_size = *bytes;
  } else if (name == "backup-checkpoint") {
    if (value != "fast" && value != "spread") return fail(ErrorKind::invalid, "expected fast or spread");
    config.backup_checkpoint = value;
  } else if (name == "log-level") {
    if (value != "debug" && value != "info" && value != "warn" && value != "error")
      return fail(ErrorKind::invalid, "expected debug, info, warn or error");
    config.log_level = value;
  } else if (name == "log-format") {
    if (value != "text" && value != "json") return fail(ErrorKind::invalid, "expected text or json");
    config.log_format = value;
  } else {
    return fail(ErrorKind::internal, "option '" + name + "' has no handler");
  }
  return {};
}

}  // namespace

std::span<const OptionSpec> daemon_options() { return k_options; }

const OptionSpec* find_option(std::string_view name) {
  for (const auto& option : k_options)
    if (option.name == name) return &option;
  return nullptr;
}

std::string env_name_for(std::string_view option) {
  std::string env = "WALVAULT_";
  for (char c : option) env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

Result<DaemonCommandLine> parse_daemon_command_line(int argc, const char* const* argv) {
  DaemonCommandLine result;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") { result.help = true; continue; }
    if (arg == "--version") { result.version = true; continue; }
    if (arg == "--check-config") { result.check_config = true; continue; }
    if (!arg.starts_with("--")) return fail(ErrorKind::invalid, "unexpected argument '" + std::string(arg) + "'");
    std::string name(arg.substr(2)), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (name != "config" && !find_option(name))
      return fail(ErrorKind::invalid, "unknown option '--" + name + "' (see --help)");
    if (!has_value) {
      if (i + 1 >= argc) return fail(ErrorKind::invalid, "option '--" + name + "' needs a value");
      value = argv[++i];
    }
    if (name == "config") result.config_file = value;
    else if (name == "repo" && result.flags.contains(name)) result.flags[name] += k_list_separator + value;  // repeats
    else result.flags[name] = value;
  }
  return result;
}

Result<DaemonConfig> resolve_config(const DaemonCommandLine& command_line, const GetEnv& getenv) {
  std::map<std::string, Setting> settings;
  for (const auto& option : k_options) settings[std::string(option.name)] = Setting{std::string(option.default_value), "default"};

  std::string config_file = command_line.config_file;
  if (config_file.empty())
    if (const char* env = getenv("WALVAULT_CONFIG"); env && *env) config_file = env;
  if (!config_file.empty())
    if (auto r = read_config_file(config_file, settings); !r) return std::unexpected(r.error());

  for (const auto& option : k_options) {
    const std::string env = env_name_for(option.name);
    if (const char* value = getenv(env.c_str()); value != nullptr) {
      std::string text = value;
      // Several repositories in one variable: comma-separated.
      if (option.name == "repo") std::replace(text.begin(), text.end(), ',', k_list_separator);
      settings[std::string(option.name)] = Setting{text, env};
    }
  }
  for (const auto& [name, value] : command_line.flags) settings[name] = Setting{value, "--" + name};

  DaemonConfig config;
  config.config_file = config_file;
  for (const auto& [name, setting] : settings) {
    if (auto r = apply(config, name, setting.value); !r)
      return fail(ErrorKind::invalid, "invalid value '" + setting.value + "' for option '" + name + "' (from " +
                                          setting.origin + "): " + r.error().message);
    config.values[name] = setting.value;
  }
  if (config.repos.empty())
    return fail(ErrorKind::invalid, "option 'repo' is required (--repo, WALVAULT_REPO or 'repo = ...' in the config file)");
  const auto in_directory = [](const std::string& path, std::string dir) {
    if (dir.starts_with("file://")) dir = dir.substr(7);
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return path == dir || path.starts_with(dir + "/");
  };
  if (config.repos.size() > 1) {
    // The index must outlive any one repository (the point of having several).
    if (config.spool.empty())
      return fail(ErrorKind::invalid, "option 'repo' names " + std::to_string(config.repos.size()) +
                                      " repositories, so option 'spool' is required: a local directory for walvaultd's "
                                      "index outside all of them (e.g. /var/lib/walvault/spool)");
    for (const auto& repo : config.repos)
      if (!repo.starts_with("s3://") && in_directory(config.spool, repo))
        return fail(ErrorKind::invalid, "spool '" + config.spool + "' is inside repository '" + repo +
                                        "': with several repositories the index must outlive any one of them");
  }
  const bool any_s3 = std::any_of(config.repos.begin(), config.repos.end(), [](const std::string& r) { return r.starts_with("s3://"); });
  if (any_s3) {
    // The usual order: the options, then the AWS SDKs' variables.
    auto from_env = [&](std::string& slot, const char* variable) {
      if (!slot.empty()) return;
      if (const char* value = getenv(variable)) slot = value;
    };
    if (!config.storage.s3_credentials_file.empty()) {
      if (!config.storage.s3_key.empty() || !config.storage.s3_key_secret.empty())
        return fail(ErrorKind::invalid, "options 's3-credentials-file' and 's3-key'/'s3-key-secret' are both set: keep one");
    } else {
      from_env(config.storage.s3_key, "AWS_ACCESS_KEY_ID");
      from_env(config.storage.s3_key_secret, "AWS_SECRET_ACCESS_KEY");
      from_env(config.storage.s3_session_token, "AWS_SESSION_TOKEN");
    }
    // The hot path never lists the bucket: the index must live on local disk, and not in the
    // data directory (a restore or pg_rewind would take it along or wipe it).
    const std::string& s3_repo = *std::find_if(config.repos.begin(), config.repos.end(), [](const std::string& r) { return r.starts_with("s3://"); });
    if (config.spool.empty())
      return fail(ErrorKind::invalid, "repository '" + s3_repo + "' is in S3, so option 'spool' is required: a local "
                                      "directory for walvaultd's index (e.g. /var/lib/walvault/spool)");
  }
  if (!config.spool.empty() && !config.pgdata.empty() && in_directory(config.spool, config.pgdata))
    return fail(ErrorKind::invalid, "spool '" + config.spool + "' is inside pgdata '" + config.pgdata +
                                    "': keep walvaultd's index out of PostgreSQL's data directory");
  return config;
}

std::vector<std::string> restart_only_changes(const DaemonConfig& running, const DaemonConfig& next) {
  std::vector<std::string> changed;
  for (const auto& option : k_options) {
    if (option.reloadable) continue;
    const std::string name(option.name);
    auto a = running.values.find(name), b = next.values.find(name);
    const std::string before = a == running.values.end() ? std::string(option.default_value) : a->second;
    const std::string after = b == next.values.end() ? std::string(option.default_value) : b->second;
    if (before != after) changed.push_back(name);
  }
  return changed;
}

DaemonConfig keep_restart_only(const DaemonConfig& running, DaemonConfig next) {
  for (const std::string& name : restart_only_changes(running, next)) {
    auto kept = running.values.find(name);
    const std::string value = kept != running.values.end() ? kept->second : std::string(find_option(name)->default_value);
    (void)apply(next, name, value);  // it was valid when the running configuration was resolved
    next.values[name] = value;
  }
  return next;
}

std::optional<gid_t> socket_group_for(const DaemonConfig& config, uid_t daemon_uid) {
  if (config.socket_group) return config.socket_group;
  if (daemon_uid != 0) return std::nullopt;
  for (uid_t uid : config.allow_uids) {
    if (uid == daemon_uid) continue;
    const UserIdentity who = identity_of_uid(uid);
    if (!who.groups.empty()) return who.groups.front();
  }
  return std::nullopt;
}

std::string daemon_help() {
  std::ostringstream out;
  out << "Usage: walvaultd [--config FILE] [--OPTION VALUE ...] [--check-config]\n\n"
         "walvaultd receives WAL from archive-push, stores it durably (compressed) in the\n"
         "repository, and serves it back to archive-get. It runs until SIGTERM or SIGINT\n"
         "(in-flight requests finish first); SIGHUP re-reads the config file.\n\n"
         "  --config FILE    config file of 'name = value' lines (also WALVAULT_CONFIG)\n"
         "  --check-config   validate the configuration and the repository, then exit\n"
         "  --help, --version\n\n"
         "Options (flag --name, config key name, environment WALVAULT_NAME; flag wins over\n"
         "environment, environment over the file):\n";
  for (const auto& option : k_options) {
    std::string left = "  --" + std::string(option.name) + " " + std::string(option.value_name);
    out << left << std::string(left.size() < 32 ? 32 - left.size() : 1, ' ') << option.help;
    out << " [default: " << (option.default_value.empty() ? "none" : std::string(option.default_value)) << "]";
    if (option.reloadable) out << " (SIGHUP reloads)";
    out << "\n";
  }
  return out.str();
}

}  // namespace walvault
