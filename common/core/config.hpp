#pragma once
// walvaultd's options: one table drives command-line flags (--name), config-file keys
// (name = value), environment variables (WALVAULT_NAME), defaults, --help and docs.
// Precedence: flag > environment > config file > default.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.hpp"
#include "common/core/codec.hpp"
#include "common/core/storage/storage.hpp"

namespace walvault {

struct OptionSpec {
  std::string_view name;
  std::string_view default_value;
  std::string_view value_name;
  std::string_view help;
  bool reloadable;  // takes effect on SIGHUP without a restart
};

std::span<const OptionSpec> daemon_options();
const OptionSpec* find_option(std::string_view name);
std::string env_name_for(std::string_view option);  // socket-mode -> WALVAULT_SOCKET_MODE

// Between the repositories of a repeated 'repo' in DaemonConfig::values and the flags.
inline constexpr char k_list_separator = '\n';

struct ListenAddress {
  std::string host;  // an IP literal: 127.0.0.1, ::1, 0.0.0.0
  std::uint16_t port = 0;
};

// "127.0.0.1:9187" or "[::1]:9187": IP literals only (no name lookup at start-up), port 1..65535.
Result<ListenAddress> parse_listen_address(std::string_view text);

struct DaemonConfig {
  // In order: writes go to every one, reads ask them in turn. Several only with a spool.
  std::vector<std::string> repos;
  std::string socket;
  unsigned socket_mode = 0660;
  std::optional<gid_t> socket_group;  // empty: see socket_group_for()
  std::vector<uid_t> allow_uids;
  CompressSpec compress;
  unsigned workers = 0;
  unsigned max_connections = 64;
  std::chrono::seconds request_timeout{10};
  std::string log_level = "info";
  std::string log_format = "text";
  std::string spool;        // local state (the index); defaults to the repository directory
  std::int64_t check_max_wal_age_us = 30LL * 60 * 1000000;
  std::int64_t check_max_backup_age_us = 48LL * 3600 * 1000000;
  double check_max_disk_usage = 0.80;
  unsigned retention_backups = 1;
  std::int64_t retention_backup_days_us = 30LL * 86400 * 1000000;
  std::int64_t retention_wal_days_us = 7LL * 86400 * 1000000;
  std::chrono::seconds prune_interval{3600};  // 0: only `walvault prune`
  std::string pgdata;                          // empty: not known
  unsigned look_ahead_workers = 2;             // 0: off; only with pgdata
  std::uint64_t prefetch_bytes = 128ULL << 20;  // 0: off
  std::uint64_t push_rate_limit = 0;            // bytes per second; 0: no limit
  std::uint64_t get_rate_limit = 0;
  std::uint64_t backup_rate_limit = 0;
  std::string pg_conninfo;                     // empty: -d, the caller's PG* variables, or pgdata
  std::string pg_bindir = "/usr/lib/postgresql/15/bin";
  std::string backup_schedule;                 // cron text; empty: off
  std::string drill_schedule;                  // cron text; empty: off
  std::uint64_t backup_chunk_size = 64ULL << 20;
  std::string backup_checkpoint = "fast";
  std::chrono::seconds shutdown_timeout{60};  // SIGTERM: how long open connections may take
  std::string encryption_key_file;                     // empty: new objects are written plain
  std::vector<std::string> encryption_old_key_files;  // decrypt only
  bool core_dumps = true;                              // off: PR_SET_DUMPABLE 0
  std::vector<ListenAddress> metrics_listen;           // empty: no HTTP endpoint
  std::string notify_command;                          // empty: off
  std::chrono::seconds notify_timeout{30};
  std::chrono::seconds notify_archive_failing_after{600};
  StorageOptions storage;  // the s3-* options (credentials completed from AWS_* by resolve_config)
  std::string config_file;  // empty when none
  // The resolved text of every option, by name: what restart_only_changes() compares.
  std::map<std::string, std::string> values;
};

// The options that differ between `running` and `next` and that the option table marks as
// needing a restart (reloadable = false), in table order.
std::vector<std::string> restart_only_changes(const DaemonConfig& running, const DaemonConfig& next);
// `next` with every restart-only option set back to `running`'s value: what a reload runs
// with, so one snapshot always describes the daemon as it really is.
DaemonConfig keep_restart_only(const DaemonConfig& running, DaemonConfig next);

struct DaemonCommandLine {
  std::map<std::string, std::string> flags;  // option name -> value
  std::string config_file;
  bool help = false;
  bool version = false;
  bool check_config = false;
};

Result<DaemonCommandLine> parse_daemon_command_line(int argc, const char* const* argv);

using GetEnv = std::function<const char*(const char*)>;
// Merges defaults, the config file (from --config or WALVAULT_CONFIG), the environment and the
// flags, then validates every value. Errors name where the bad value came from (file:line,
// variable or flag).
Result<DaemonConfig> resolve_config(const DaemonCommandLine& command_line, const GetEnv& getenv);

std::string daemon_help();

// The group walvaultd gives its socket: `socket-group` when set; else, for a daemon running as
// root whose allow-uid names other users, the primary group of the first of them (so that the
// default 0660 socket lets PostgreSQL in); else nullopt: the socket keeps the group it is
// created with (the daemon's own, or a setgid directory's).
std::optional<gid_t> socket_group_for(const DaemonConfig& config, uid_t daemon_uid);

}  // namespace walvault
