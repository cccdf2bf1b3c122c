// The one command-line parser of archive-push, archive-get and walvault.
#include "common/base/client_common.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace walvault {
namespace {

Result<ClientCommandLine> parse(std::vector<std::string> args, const ClientOptionsFor& extra = {}) {
  args.insert(args.begin(), "client");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_client_command_line(static_cast<int>(argv.size()), argv.data(), extra);
}

class ClientCommandLineTest : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("WALVAULT_SOCKET"); }
  void TearDown() override { ::unsetenv("WALVAULT_SOCKET"); }
};

TEST_F(ClientCommandLineTest, SocketFromTheOptionElseTheEnvironmentElseTheDefault) {
  EXPECT_EQ(parse({"%p"})->options.socket_path, "/run/walvault/walvault.sock");
  ::setenv("WALVAULT_SOCKET", "/env/sock", 1);
  EXPECT_EQ(parse({"%p"})->options.socket_path, "/env/sock");
  EXPECT_EQ(parse({"--socket", "/opt/s", "%p"})->options.socket_path, "/opt/s");
  EXPECT_EQ(parse({"--socket=/opt/t", "%p"})->options.socket_path, "/opt/t");
  EXPECT_FALSE(parse({"--socket="}));
}

TEST_F(ClientCommandLineTest, TimeoutsAreRangeChecked) {
  auto ok = parse({"--timeout", "2.5", "--connect-timeout=0.25", "a", "b"});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->options.timeout.count(), 2500);
  EXPECT_EQ(ok->options.connect_timeout.count(), 250);
  EXPECT_TRUE(ok->timeout_given);
  EXPECT_EQ(ok->positional, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(parse({"a"})->timeout_given);
  for (const char* bad : {"0", "-1", "86401", "abc", "", "5s"}) {
    auto r = parse({"--timeout", bad});
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("option '--timeout' needs seconds between 0 and 86400"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(parse({"--connect-timeout", "0"}));
  EXPECT_NE(parse({"--timeout"}).error().message.find("option '--timeout' needs a value"), std::string::npos);
}

TEST_F(ClientCommandLineTest, HelpVersionAndTheEndOfOptions) {
  EXPECT_TRUE(parse({"-h"})->help);
  EXPECT_TRUE(parse({"--help"})->help);
  EXPECT_TRUE(parse({"--version"})->version);
  auto r = parse({"--", "--timeout", "x"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->positional, (std::vector<std::string>{"--timeout", "x"}));
  auto unknown = parse({"--bogus", "1"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message, "unknown option '--bogus'");
}

// walvault: --json anywhere; a verb's options only after that verb; -d for backup.
TEST_F(ClientCommandLineTest, ACallersOptionsCanDependOnTheVerb) {
  auto spec = [](const std::vector<std::string>& positional) {
    ClientOptionSpec s;
    s.flag_options.insert("json");
    if (!positional.empty() && positional[0] == "list") {
      s.owner = "'list'";
      s.value_options.insert("timeline");
      s.flag_options.insert("backups");
    }
    if (!positional.empty() && positional[0] == "backup") s.short_value["-d"] = "dbname";
    return s;
  };
  auto list = parse({"--json", "list", "--timeline=2", "--backups"}, spec);
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_EQ(list->values, (std::map<std::string, std::string>{{"json", "1"}, {"timeline", "2"}, {"backups", "1"}}));
  auto early = parse({"--timeline", "2", "list"}, spec);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().message, "unknown option '--timeline'");
  auto other = parse({"list", "--target-time", "x"}, spec);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().message, "unknown option '--target-time' for 'list'");
  auto flag_with_value = parse({"list", "--backups=yes"}, spec);
  ASSERT_FALSE(flag_with_value);
  EXPECT_NE(flag_with_value.error().message.find("takes no value"), std::string::npos);
  auto backup = parse({"backup", "-d", "host=x"}, spec);
  ASSERT_TRUE(backup);
  EXPECT_EQ(backup->values.at("dbname"), "host=x");
  EXPECT_FALSE(parse({"backup", "-d"}, spec));
  EXPECT_EQ(parse({"list", "-d", "x"}, spec)->positional, (std::vector<std::string>{"list", "-d", "x"})) << "-d is backup's only";
}

}  // namespace
}  // namespace walvault
