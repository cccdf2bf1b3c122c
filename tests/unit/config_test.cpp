#include "common/core/config.hpp"

#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

// A fake environment for resolve_config.
class FakeEnv {
 public:
  FakeEnv& set(std::string name, std::string value) {
    m_vars[std::move(name)] = std::move(value);
    return *this;
  }
  GetEnv getter() const {
    return [this](const char* name) -> const char* {
      auto it = m_vars.find(name);
      return it == m_vars.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> m_vars;
};

DaemonCommandLine with_flags(std::map<std::string, std::string> flags, std::string config_file = "") {
  DaemonCommandLine command_line;
  command_line.flags = std::move(flags);
  command_line.config_file = std::move(config_file);
  return command_line;
}

std::string error_of(const Result<DaemonConfig>& result) {
  EXPECT_FALSE(result) << "the configuration was accepted";
  if (result) return "<accepted>";
  EXPECT_EQ(result.error().kind, ErrorKind::invalid);
  return result.error().message;
}

Result<DaemonCommandLine> parse_args(std::vector<std::string> args) {
  std::vector<const char*> argv{"walvaultd"};
  for (const auto& arg : args) argv.push_back(arg.c_str());
  return parse_daemon_command_line(static_cast<int>(argv.size()), argv.data());
}

TEST(ConfigTable, NamesAreLowercaseUniqueAndDocumented) {
  std::set<std::string_view> seen;
  ASSERT_FALSE(daemon_options().empty());
  for (const auto& option : daemon_options()) {
    SCOPED_TRACE(std::string(option.name));
    ASSERT_FALSE(option.name.empty());
    // Lower case, digits (s3-...) and dashes; a letter first.
    for (char c : option.name) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') << "character '" << c << "'";
    EXPECT_TRUE(option.name.front() >= 'a' && option.name.front() <= 'z');
    EXPECT_NE(option.name.back(), '-');
    EXPECT_EQ(option.name.find("--"), std::string_view::npos);
    EXPECT_TRUE(seen.insert(option.name).second) << "duplicate option";
    EXPECT_FALSE(option.help.empty());
    EXPECT_FALSE(option.value_name.empty());
    EXPECT_EQ(find_option(option.name), &option);
    EXPECT_NE(option.name, "config");  // --config is not an option of the table
  }
  EXPECT_EQ(find_option("no-such-option"), nullptr);
  EXPECT_EQ(find_option(""), nullptr);
  for (const char* core : {"repo", "socket", "compress", "allow-uid", "log-level", "log-format"})
    EXPECT_NE(find_option(core), nullptr) << core;
}

TEST(ConfigTable, EnvironmentNames) {
  EXPECT_EQ(env_name_for("socket-mode"), "WALVAULT_SOCKET_MODE");
  EXPECT_EQ(env_name_for("repo"), "WALVAULT_REPO");
  EXPECT_EQ(env_name_for("max-connections"), "WALVAULT_MAX_CONNECTIONS");
  std::set<std::string> env_names;
  for (const auto& option : daemon_options()) EXPECT_TRUE(env_names.insert(env_name_for(option.name)).second);
}

TEST(ConfigTable, EveryDefaultResolves) {
  FakeEnv env;
  auto config = resolve_config(with_flags({{"repo", "/var/lib/walvault/repo"}}), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->repos, std::vector<std::string>{"/var/lib/walvault/repo"});
  EXPECT_EQ(config->socket, "/run/walvault/walvault.sock");
  EXPECT_EQ(config->socket_mode, 0660u);
  EXPECT_EQ(config->allow_uids, std::vector<uid_t>{::getuid()});
  EXPECT_EQ(config->compress, (CompressSpec{Codec::zstd, 3}));
  EXPECT_EQ(config->workers, 0u);
  EXPECT_EQ(config->max_connections, 64u);
  EXPECT_EQ(config->request_timeout, std::chrono::seconds(10));
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->log_format, "text");
  EXPECT_EQ(config->config_file, "");

  // Each default, given explicitly as a flag, resolves to the same configuration.
  for (const auto& option : daemon_options()) {
    if (option.default_value.empty()) continue;
    auto explicit_default = resolve_config(
        with_flags({{"repo", "/r"}, {std::string(option.name), std::string(option.default_value)}}), env.getter());
    EXPECT_TRUE(explicit_default) << option.name << ": " << explicit_default.error().message;
  }
}

TEST(ConfigTable, HelpMentionsEveryOption) {
  const std::string help = daemon_help();
  for (const auto& option : daemon_options()) {
    const std::string flag = "--" + std::string(option.name) + " " + std::string(option.value_name);
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
    EXPECT_NE(help.find(std::string(option.help)), std::string::npos) << option.name;
    if (!option.default_value.empty()) {
      EXPECT_NE(help.find("[default: " + std::string(option.default_value) + "]"), std::string::npos) << option.name;
    }
  }
  EXPECT_NE(help.find("--config FILE"), std::string::npos);
  EXPECT_NE(help.find("--check-config"), std::string::npos);
}

TEST(ConfigTable, DocumentationHasARowForEveryOption) {
  const std::string path = std::string(WALVAULT_SOURCE_DIR) + "/docs/configuration.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path << " does not exist";
  std::vector<std::string> rows;
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("| `")) rows.push_back(line);
  for (const auto& option : daemon_options()) {
    SCOPED_TRACE(std::string(option.name));
    const std::string cell = "| `" + std::string(option.name) + "` |";
    const std::string* row = nullptr;
    for (const auto& candidate : rows)
      if (candidate.starts_with(cell)) row = &candidate;
    ASSERT_NE(row, nullptr) << path << " has no row starting with " << cell;
    if (!option.default_value.empty()) {
      EXPECT_NE(row->find("`" + std::string(option.default_value) + "`"), std::string::npos)
          << "the documented default differs: " << *row;
    }
    // Third column: SIGHUP.
    std::vector<std::string> cells;
    std::stringstream split(*row);
    std::string part;
    while (std::getline(split, part, '|')) cells.push_back(part);
    ASSERT_GE(cells.size(), 5u) << *row;
    EXPECT_EQ(cells[3], option.reloadable ? " yes " : " no ") << *row;
  }
  // And no row for an option that does not exist.
  for (const auto& row : rows) {
    const auto end = row.find('`', 3);
    const std::string name = row.substr(3, end - 3);
    EXPECT_NE(find_option(name), nullptr) << "documented but not in the table: " << name;
  }
}

TEST(Config, PrecedenceFlagOverEnvOverFileOverDefault) {
  test::TempDir dir("walvault-config");
  const std::string file = dir / "walvaultd.conf";
  test::write_text_file(file,
                        "# walvaultd test configuration\n"
                        "\n"
                        "repo = /from/file\n"
                        "  log-level = warn  \n"
                        "compress = \"zstd:5\"\n"
                        "workers = 3\n"
                        "max-connections = 10\n"
                        "socket = '/run/file.sock'\n");
  FakeEnv env;
  env.set("WALVAULT_COMPRESS", "zstd:7").set("WALVAULT_WORKERS", "4").set("WALVAULT_MAX_CONNECTIONS", "11");
  auto config = resolve_config(with_flags({{"workers", "5"}}, file), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->repos, std::vector<std::string>{"/from/file"});              // file
  EXPECT_EQ(config->log_level, "warn");               // file, trimmed
  EXPECT_EQ(config->socket, "/run/file.sock");        // file, quotes removed
  EXPECT_EQ(config->compress, (CompressSpec{Codec::zstd, 7}));  // env over file
  EXPECT_EQ(config->max_connections, 11u);            // env over file
  EXPECT_EQ(config->workers, 5u);                     // flag over env over file
  EXPECT_EQ(config->request_timeout, std::chrono::seconds(10));  // default
  EXPECT_EQ(config->config_file, file);
}

TEST(Config, ConfigFileFromEnvironment) {
  test::TempDir dir("walvault-config");
  const std::string file = dir / "from-env.conf";
  test::write_text_file(file, "repo = /env/file/repo\nrequest-timeout = 30\n");
  FakeEnv env;
  env.set("WALVAULT_CONFIG", file);
  auto config = resolve_config(with_flags({}), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->repos, std::vector<std::string>{"/env/file/repo"});
  EXPECT_EQ(config->request_timeout, std::chrono::seconds(30));
  EXPECT_EQ(config->config_file, file);

  // --config wins over WALVAULT_CONFIG.
  const std::string other = dir / "flag.conf";
  test::write_text_file(other, "repo = /flag/file/repo\n");
  config = resolve_config(with_flags({}, other), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->repos, std::vector<std::string>{"/flag/file/repo"});
}

TEST(Config, FileErrorsNameFileAndLine) {
  test::TempDir dir("walvault-config");
  const std::string file = dir / "bad.conf";
  FakeEnv env;

  test::write_text_file(file, "repo = /r\n# comment\nbogus-key = 1\n");
  std::string message = error_of(resolve_config(with_flags({}, file), env.getter()));
  EXPECT_NE(message.find(file + ":3: unknown option 'bogus-key'"), std::string::npos) << message;

  test::write_text_file(file, "repo = /r\nworkers = many\n");
  message = error_of(resolve_config(with_flags({}, file), env.getter()));
  EXPECT_NE(message.find("invalid value 'many' for option 'workers' (from " + file + ":2)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("expected a number from 0 to 256"), std::string::npos) << message;

  test::write_text_file(file, "repo = /r\n\nthis line has no equals sign\n");
  message = error_of(resolve_config(with_flags({}, file), env.getter()));
  EXPECT_NE(message.find(file + ":3: expected 'name = value'"), std::string::npos) << message;

  test::write_text_file(file, "repo = /r\ncompress = lz4\n");
  message = error_of(resolve_config(with_flags({}, file), env.getter()));
  EXPECT_NE(message.find("(from " + file + ":2)"), std::string::npos) << message;
  EXPECT_NE(message.find("invalid compression 'lz4'"), std::string::npos) << message;

  // A bad value in the file is still reported when a flag overrides another option.
  test::write_text_file(file, "repo = /r\nlog-format = xml\n");
  message = error_of(resolve_config(with_flags({{"log-level", "debug"}}, file), env.getter()));
  EXPECT_NE(message.find("invalid value 'xml' for option 'log-format' (from " + file + ":2): expected text or json"),
            std::string::npos)
      << message;

  // ...but not when the flag replaces that very value.
  auto overridden = resolve_config(with_flags({{"log-format", "json"}}, file), env.getter());
  ASSERT_TRUE(overridden) << overridden.error().message;
  EXPECT_EQ(overridden->log_format, "json");
}

TEST(Config, MissingConfigFileIsNamed) {
  FakeEnv env;
  const std::string message = error_of(resolve_config(with_flags({{"repo", "/r"}}, "/nonexistent/walvaultd.conf"),
                                                      env.getter()));
  EXPECT_NE(message.find("unable to open config file '/nonexistent/walvaultd.conf'"), std::string::npos) << message;
}

TEST(Config, BadValueFromEnvironmentNamesTheVariable) {
  FakeEnv env;
  env.set("WALVAULT_SOCKET_MODE", "rw-rw----");
  std::string message = error_of(resolve_config(with_flags({{"repo", "/r"}}), env.getter()));
  EXPECT_NE(message.find("invalid value 'rw-rw----' for option 'socket-mode' (from WALVAULT_SOCKET_MODE)"),
            std::string::npos)
      << message;

  FakeEnv env2;
  env2.set("WALVAULT_REQUEST_TIMEOUT", "0");
  message = error_of(resolve_config(with_flags({{"repo", "/r"}}), env2.getter()));
  EXPECT_NE(message.find("(from WALVAULT_REQUEST_TIMEOUT)"), std::string::npos) << message;
  EXPECT_NE(message.find("expected a number from 1 to 3600"), std::string::npos) << message;
}

TEST(Config, BadValueFromFlagNamesTheFlag) {
  FakeEnv env;
  std::string message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"max-connections", "0"}}), env.getter()));
  EXPECT_NE(message.find("invalid value '0' for option 'max-connections' (from --max-connections)"), std::string::npos)
      << message;
  message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"socket", std::string(108, 's')}}), env.getter()));
  EXPECT_NE(message.find("(from --socket): expected a path of 1 to 107 bytes"), std::string::npos) << message;
  message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"log-level", "verbose"}}), env.getter()));
  EXPECT_NE(message.find("expected debug, info, warn or error"), std::string::npos) << message;
  message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"socket-mode", "0999"}}), env.getter()));
  EXPECT_NE(message.find("expected octal permission bits such as 0660"), std::string::npos) << message;
  message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"workers", "-1"}}), env.getter()));
  EXPECT_NE(message.find("(from --workers)"), std::string::npos) << message;
  message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"workers", "257"}}), env.getter()));
  EXPECT_NE(message.find("(from --workers)"), std::string::npos) << message;
}

TEST(Config, MissingRepoIsAnError) {
  FakeEnv env;
  const std::string message = error_of(resolve_config(with_flags({}), env.getter()));
  EXPECT_NE(message.find("'repo'"), std::string::npos) << message;
  EXPECT_NE(message.find("--repo"), std::string::npos) << message;
  EXPECT_NE(message.find("WALVAULT_REPO"), std::string::npos) << message;
}

TEST(Config, AllowUidTakesNamesAndNumbers) {
  const passwd* pw = ::getpwnam("postgres");
  if (!pw) GTEST_SKIP() << "no postgres user on this machine";
  FakeEnv env;
  auto config = resolve_config(with_flags({{"repo", "/r"}, {"allow-uid", "postgres,0"}}), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->allow_uids, (std::vector<uid_t>{pw->pw_uid, 0}));

  config = resolve_config(with_flags({{"repo", "/r"}, {"allow-uid", " 1000 , postgres "}}), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->allow_uids, (std::vector<uid_t>{1000, pw->pw_uid}));
}

TEST(Config, AllowUidRefusesUnknownUserAndEmptyEntries) {
  FakeEnv env;
  std::string message =
      error_of(resolve_config(with_flags({{"repo", "/r"}, {"allow-uid", "root,no-such-user-xyz"}}), env.getter()));
  EXPECT_NE(message.find("unknown user 'no-such-user-xyz'"), std::string::npos) << message;
  EXPECT_NE(message.find("(from --allow-uid)"), std::string::npos) << message;

  message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"allow-uid", "0,,1"}}), env.getter()));
  EXPECT_NE(message.find("empty entry"), std::string::npos) << message;

  message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"allow-uid", "4294967295"}}), env.getter()));
  EXPECT_NE(message.find("(from --allow-uid)"), std::string::npos) << message;
}

TEST(Config, SocketGroupTakesNamesAndNumbers) {
  FakeEnv env;
  auto config = resolve_config(with_flags({{"repo", "/r"}, {"socket-group", "root"}}), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->socket_group, std::optional<gid_t>(0));
  config = resolve_config(with_flags({{"repo", "/r"}, {"socket-group", "4321"}}), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->socket_group, std::optional<gid_t>(4321));
  config = resolve_config(with_flags({{"repo", "/r"}}), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_FALSE(config->socket_group.has_value());
  const std::string message = error_of(resolve_config(with_flags({{"repo", "/r"}, {"socket-group", "no-such-group-xyz"}}), env.getter()));
  EXPECT_NE(message.find("no group named 'no-such-group-xyz'"), std::string::npos) << message;
  EXPECT_NE(message.find("(from --socket-group)"), std::string::npos) << message;
}

// The default that makes a root daemon with allow-uid postgres reachable by postgres.
TEST(Config, SocketGroupDefaultsToTheFirstAllowedUsersPrimaryGroupForRoot) {
  const passwd* pw = ::getpwnam("nobody");
  if (!pw) GTEST_SKIP() << "no nobody user on this machine";
  const uid_t nobody_uid = pw->pw_uid;
  const gid_t nobody_gid = pw->pw_gid;
  DaemonConfig config;
  config.allow_uids = {0, nobody_uid};
  EXPECT_EQ(socket_group_for(config, 0), std::optional<gid_t>(nobody_gid)) << "root skips itself, takes nobody's group";
  EXPECT_EQ(socket_group_for(config, 1000), std::nullopt) << "not root: the socket keeps the group it is created with";
  config.allow_uids = {0};
  EXPECT_EQ(socket_group_for(config, 0), std::nullopt) << "only root allowed: nothing to open up";
  config.socket_group = 77;
  EXPECT_EQ(socket_group_for(config, 0), std::optional<gid_t>(77)) << "an explicit socket-group wins";
  EXPECT_EQ(socket_group_for(config, 1000), std::optional<gid_t>(77));
}

TEST(Config, CommandLineParsing) {
  auto parsed = parse_args({"--repo", "/r", "--compress=none", "--config", "/etc/w.conf", "--check-config"});
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->flags.at("repo"), "/r");
  EXPECT_EQ(parsed->flags.at("compress"), "none");
  EXPECT_EQ(parsed->config_file, "/etc/w.conf");
  EXPECT_TRUE(parsed->check_config);
  EXPECT_FALSE(parsed->help);
  EXPECT_EQ(parsed->flags.count("config"), 0u);

  auto help = parse_args({"--help", "--version"});
  ASSERT_TRUE(help);
  EXPECT_TRUE(help->help);
  EXPECT_TRUE(help->version);

  auto unknown = parse_args({"--bogus", "1"});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown option '--bogus'"), std::string::npos) << unknown.error().message;

  auto missing = parse_args({"--repo"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("option '--repo' needs a value"), std::string::npos) << missing.error().message;

  auto stray = parse_args({"repo"});
  ASSERT_FALSE(stray);
  EXPECT_NE(stray.error().message.find("unexpected argument 'repo'"), std::string::npos) << stray.error().message;

  // Later flags win; an empty value through '=' is a value.
  auto twice = parse_args({"--log-level", "warn", "--log-level=error", "--allow-uid="});
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->flags.at("log-level"), "error");
  EXPECT_EQ(twice->flags.at("allow-uid"), "");
}

TEST(ConfigReload, RestartOnlyChangesFollowTheTablesReloadableColumn) {
  FakeEnv env;
  auto running = resolve_config(with_flags({{"repo", "/r"}, {"workers", "2"}, {"compress", "zstd:3"}}), env.getter());
  auto next = resolve_config(
      with_flags({{"repo", "/r"}, {"workers", "4"}, {"socket", "/run/other.sock"}, {"compress", "zstd:9"}}), env.getter());
  ASSERT_TRUE(running && next);
  EXPECT_EQ(restart_only_changes(*running, *next), (std::vector<std::string>{"socket", "workers"}))
      << "compress is reloadable; socket and workers are not (table order)";
  for (const auto& option : daemon_options()) {
    if (option.name == "compress") {
      EXPECT_TRUE(option.reloadable);
    } else if (option.name == "workers" || option.name == "socket") {
      EXPECT_FALSE(option.reloadable);
    }
  }

  const DaemonConfig kept = keep_restart_only(*running, *next);
  EXPECT_EQ(kept.workers, 2u) << "the running value of a restart-only option stays";
  EXPECT_EQ(kept.socket, running->socket);
  EXPECT_EQ(kept.compress.level, 9) << "a reloadable option takes the new value";
  EXPECT_TRUE(restart_only_changes(*running, kept).empty()) << "the snapshot describes the daemon as it runs";
}

TEST(ConfigReload, ShutdownTimeoutIsRangeChecked) {
  FakeEnv env;
  auto config = resolve_config(with_flags({{"repo", "/r"}}), env.getter());
  ASSERT_TRUE(config);
  EXPECT_EQ(config->shutdown_timeout, std::chrono::seconds(60));
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "/r"}, {"shutdown-timeout", "0"}}), env.getter())).find("shutdown-timeout"),
            std::string::npos);
}

TEST(ConfigS3, CredentialsComeFromTheOptionsThenTheAwsVariables) {
  FakeEnv env;
  env.set("AWS_ACCESS_KEY_ID", "AKIDFROMENV").set("AWS_SECRET_ACCESS_KEY", "secret-from-env").set("AWS_SESSION_TOKEN", "token");
  auto from_env = resolve_config(with_flags({{"repo", "s3://b/p"}, {"spool", "/var/lib/walvault/spool"}}), env.getter());
  ASSERT_TRUE(from_env) << from_env.error().message;
  EXPECT_EQ(from_env->storage.s3_key, "AKIDFROMENV");
  EXPECT_EQ(from_env->storage.s3_key_secret, "secret-from-env");
  EXPECT_EQ(from_env->storage.s3_session_token, "token");
  auto from_options = resolve_config(with_flags({{"repo", "s3://b/p"}, {"spool", "/s"}, {"s3-key", "AKIDOPTION"},
                                                 {"s3-key-secret", "secret-option"}, {"s3-uri-style", "path"},
                                                 {"s3-endpoint", "http://127.0.0.1:9000"}}),
                                     env.getter());
  ASSERT_TRUE(from_options) << from_options.error().message;
  EXPECT_EQ(from_options->storage.s3_key, "AKIDOPTION");
  EXPECT_EQ(from_options->storage.s3_key_secret, "secret-option");
  EXPECT_TRUE(from_options->storage.s3_path_style);
  EXPECT_EQ(from_options->storage.s3_endpoint, "http://127.0.0.1:9000");
  // A local repository takes nothing from AWS_*.
  auto local = resolve_config(with_flags({{"repo", "/r"}}), env.getter());
  ASSERT_TRUE(local);
  EXPECT_TRUE(local->storage.s3_key_secret.empty());
}

TEST(ConfigS3, ACredentialsFileReplacesTheKeysAndTheAwsVariables) {
  FakeEnv env;
  env.set("AWS_ACCESS_KEY_ID", "AKIDFROMENV").set("AWS_SECRET_ACCESS_KEY", "secret-from-env");
  auto from_file = resolve_config(with_flags({{"repo", "s3://b/p"}, {"spool", "/s"}, {"s3-credentials-file", "/etc/walvault/s3"}}),
                                  env.getter());
  ASSERT_TRUE(from_file) << from_file.error().message;
  EXPECT_EQ(from_file->storage.s3_credentials_file, "/etc/walvault/s3");
  EXPECT_TRUE(from_file->storage.s3_key.empty()) << "the AWS_* variables are not mixed in";
  EXPECT_TRUE(from_file->storage.s3_key_secret.empty());
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "s3://b"}, {"spool", "/s"}, {"s3-credentials-file", "/f"}, {"s3-key", "AKID"}}),
                                    env.getter()))
                .find("both set"),
            std::string::npos);
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "s3://b"}, {"spool", "/s"}, {"s3-credentials-file", "relative"}}), env.getter()))
                .find("absolute"),
            std::string::npos);
}

TEST(ConfigS3, TheRequestTimeoutIsBounded) {
  FakeEnv env;
  auto defaults = resolve_config(with_flags({{"repo", "s3://b"}, {"spool", "/s"}, {"s3-key", "A"}, {"s3-key-secret", "B"}}), env.getter());
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_EQ(defaults->storage.s3_timeout, std::chrono::seconds(20));
  auto short_one = resolve_config(with_flags({{"repo", "s3://b"}, {"spool", "/s"}, {"s3-timeout", "2"}}), env.getter());
  ASSERT_TRUE(short_one);
  EXPECT_EQ(short_one->storage.s3_timeout, std::chrono::seconds(2));
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "s3://b"}, {"spool", "/s"}, {"s3-timeout", "0"}}), env.getter())).find("s3-timeout"),
            std::string::npos);
}

TEST(ConfigS3, AnS3RepositoryNeedsASpoolOutsidePgdata) {
  FakeEnv env;
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "s3://b/p"}}), env.getter())).find("option 'spool' is required"),
            std::string::npos);
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "s3://b"}, {"pgdata", "/pg/data"}, {"spool", "/pg/data/walvault"}}),
                                    env.getter()))
                .find("inside pgdata"),
            std::string::npos);
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "s3://b"}, {"spool", "/s"}, {"s3-uri-style", "virtual"}}), env.getter()))
                .find("s3-uri-style"),
            std::string::npos);
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "s3://b"}, {"spool", "/s"}, {"s3-endpoint", "ftp://x"}}), env.getter()))
                .find("s3-endpoint"),
            std::string::npos);
}

TEST(ConfigRepositories, RepoRepeatsInTheFileOnTheCommandLineAndInTheEnvironment) {
  test::TempDir dir("walvault-config");
  const std::string file = dir / "two.conf";
  test::write_text_file(file, "repo = /srv/walvault/local\nspool = /var/lib/walvault/spool\nrepo = s3://bucket/cluster-a\n");
  FakeEnv env;
  auto config = resolve_config(with_flags({}, file), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->repos, (std::vector<std::string>{"/srv/walvault/local", "s3://bucket/cluster-a"}));

  // Flags: each --repo adds one; together they replace the file's list (flag over file).
  auto flags = parse_args({"--repo", "/a", "--repo=/b", "--spool", "/s"});
  ASSERT_TRUE(flags) << flags.error().message;
  flags->config_file = file;
  config = resolve_config(*flags, env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->repos, (std::vector<std::string>{"/a", "/b"}));

  env.set("WALVAULT_REPO", "/e1,s3://b/e2").set("WALVAULT_SPOOL", "/s");
  config = resolve_config(with_flags({}), env.getter());
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->repos, (std::vector<std::string>{"/e1", "s3://b/e2"}));
}

TEST(ConfigRepositories, SeveralNeedASpoolOutsideEveryOneAndNoRepositoryTwice) {
  FakeEnv env;
  auto no_spool = error_of(resolve_config(with_flags({{"repo", "/a\n/b"}}), env.getter()));
  EXPECT_NE(no_spool.find("names 2 repositories, so option 'spool' is required"), std::string::npos) << no_spool;
  auto inside = error_of(resolve_config(with_flags({{"repo", "/a\n/b"}, {"spool", "/b/spool"}}), env.getter()));
  EXPECT_NE(inside.find("spool '/b/spool' is inside repository '/b'"), std::string::npos) << inside;
  auto twice = error_of(resolve_config(with_flags({{"repo", "/a\nfile:///a/"}, {"spool", "/s"}}), env.getter()));
  EXPECT_NE(twice.find("repository 'file:///a/' is given twice"), std::string::npos) << twice;
  auto relative = error_of(resolve_config(with_flags({{"repo", "repo"}}), env.getter()));
  EXPECT_NE(relative.find("neither an absolute directory path"), std::string::npos) << relative;
  EXPECT_TRUE(resolve_config(with_flags({{"repo", "/a\n/b"}, {"spool", "/bb"}}), env.getter()));
}

}  // namespace
}  // namespace walvault

namespace walvault {
namespace {

TEST(ConfigEncryption, KeyFilesAreAbsolutePathsAndCoreDumpsOnOrOff) {
  FakeEnv env;
  auto defaults = resolve_config(with_flags({{"repo", "/r"}}), env.getter());
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_TRUE(defaults->encryption_key_file.empty());
  EXPECT_TRUE(defaults->encryption_old_key_files.empty());
  EXPECT_TRUE(defaults->core_dumps);
  auto set = resolve_config(with_flags({{"repo", "/r"},
                                        {"encryption-key-file", "/etc/walvault/keys/new"},
                                        {"encryption-old-key-files", " /etc/walvault/keys/a, /etc/walvault/keys/b ,"},
                                        {"core-dumps", "off"}}),
                            env.getter());
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->encryption_key_file, "/etc/walvault/keys/new");
  EXPECT_EQ(set->encryption_old_key_files, (std::vector<std::string>{"/etc/walvault/keys/a", "/etc/walvault/keys/b"}));
  EXPECT_FALSE(set->core_dumps);
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "/r"}, {"encryption-key-file", "keys/new"}}), env.getter())).find("absolute"),
            std::string::npos);
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "/r"}, {"encryption-old-key-files", "/a,b"}}), env.getter())).find("absolute"),
            std::string::npos);
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "/r"}, {"core-dumps", "maybe"}}), env.getter())).find("on or off"),
            std::string::npos);
}

TEST(ConfigObservability, MetricsListenAndNotifyOptions) {
  FakeEnv env;
  auto defaults = resolve_config(with_flags({{"repo", "/r"}}), env.getter());
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_TRUE(defaults->metrics_listen.empty());
  EXPECT_TRUE(defaults->notify_command.empty());
  EXPECT_EQ(defaults->notify_timeout, std::chrono::seconds(30));
  EXPECT_EQ(defaults->notify_archive_failing_after, std::chrono::seconds(600));
  auto set = resolve_config(with_flags({{"repo", "/r"},
                                        {"metrics-listen", " 127.0.0.1:9187, [::1]:9188 ,"},
                                        {"notify-command", "/etc/walvault/notify"},
                                        {"notify-timeout", "5"},
                                        {"notify-archive-failing-after", "2m"}}),
                            env.getter());
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->metrics_listen.size(), 2u);
  EXPECT_EQ(set->metrics_listen[1].host, "::1");
  EXPECT_EQ(set->metrics_listen[1].port, 9188);
  EXPECT_EQ(set->notify_command, "/etc/walvault/notify");
  EXPECT_EQ(set->notify_timeout, std::chrono::seconds(5));
  EXPECT_EQ(set->notify_archive_failing_after, std::chrono::seconds(120));
  const std::string bad_address = error_of(resolve_config(with_flags({{"repo", "/r"}, {"metrics-listen", "localhost:9187"}}), env.getter()));
  EXPECT_NE(bad_address.find("--metrics-listen"), std::string::npos) << bad_address;
  EXPECT_NE(bad_address.find("'localhost:9187' does not start with an IP address"), std::string::npos) << bad_address;
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "/r"}, {"notify-command", "notify.sh"}}), env.getter())).find("absolute"),
            std::string::npos);
  EXPECT_NE(error_of(resolve_config(with_flags({{"repo", "/r"}, {"notify-archive-failing-after", "0s"}}), env.getter())).find("at least 1s"),
            std::string::npos);
  auto drills = resolve_config(with_flags({{"repo", "/r"}, {"drill-schedule", "0 4 * * 0"}}), env.getter());
  ASSERT_TRUE(drills) << drills.error().message;
  EXPECT_EQ(drills->drill_schedule, "0 4 * * 0");
  EXPECT_TRUE(defaults->drill_schedule.empty());  // off
  EXPECT_FALSE(resolve_config(with_flags({{"repo", "/r"}, {"drill-schedule", "every sunday"}}), env.getter()));
  // metrics-listen is bound once: a reload keeps it (and says so); notify-* apply at once.
  auto next = *set;
  next.metrics_listen.clear();
  next.values["metrics-listen"] = "";
  next.values["notify-timeout"] = "9";
  const auto restart_only = restart_only_changes(*set, next);
  EXPECT_NE(std::find(restart_only.begin(), restart_only.end(), "metrics-listen"), restart_only.end());
  EXPECT_EQ(std::find(restart_only.begin(), restart_only.end(), "notify-timeout"), restart_only.end());
}

}  // namespace
}  // namespace walvault
