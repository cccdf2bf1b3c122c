// Which server walvaultd backs up, and that a password never reaches a command line.
#include "archiver/backup_connection.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pwd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/core/pgdata.hpp"
#include "common/core/repository.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

bool has(const std::vector<std::string>& environment, const std::string& entry) {
  return std::find(environment.begin(), environment.end(), entry) != environment.end();
}
bool mentions(const PgConnection& c, const std::string& text) {
  if (c.dbname.find(text) != std::string::npos || c.source.find(text) != std::string::npos) return true;
  return std::any_of(c.environment.begin(), c.environment.end(),
                     [&](const std::string& e) { return !e.starts_with("PGPASSWORD=") && e.find(text) != std::string::npos; });
}

TEST(SplitPassword, KeyValueForms) {
  auto parts = split_password("host=/run/pg user=postgres password=s3cret dbname=x");
  EXPECT_EQ(parts.conninfo, "host=/run/pg user=postgres dbname=x");
  EXPECT_EQ(parts.password, "s3cret");
  parts = split_password("password='with \\'quote\\' and spaces' port=5433");
  EXPECT_EQ(parts.password, "with 'quote' and spaces");
  EXPECT_EQ(parts.conninfo, "port=5433");
  parts = split_password("host=h port=1");
  EXPECT_EQ(parts.conninfo, "host=h port=1");
  EXPECT_EQ(parts.password, "");
}

TEST(SplitPassword, UriForms) {
  auto parts = split_password("postgresql://rep:s3cret@db.example:5432/postgres?sslmode=require");
  EXPECT_EQ(parts.conninfo, "postgresql://rep@db.example:5432/postgres?sslmode=require");
  EXPECT_EQ(parts.password, "s3cret");
  parts = split_password("postgres:///postgres?host=/run/pg&password=s3cret&port=5433");
  EXPECT_EQ(parts.conninfo, "postgres:///postgres?host=/run/pg&port=5433");
  EXPECT_EQ(parts.password, "s3cret");
  parts = split_password("postgresql://rep:p%40ss?w@h/db");  // '?' and an encoded '@' in the password
  EXPECT_EQ(parts.conninfo, "postgresql://rep@h/db");
  EXPECT_EQ(parts.password, "p@ss?w");
  parts = split_password("postgresql://rep@h/db");
  EXPECT_EQ(parts.conninfo, "postgresql://rep@h/db");
  EXPECT_EQ(parts.password, "");
}

class ChooseConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_pgdata = m_dir / "pgdata";
    ASSERT_EQ(::mkdir(m_pgdata.c_str(), 0700), 0);
  }
  void write_postmaster_pid(const std::string& text) { test::write_text_file(m_pgdata + "/postmaster.pid", text); }

  test::TempDir m_dir{"walvault-conn"};
  std::string m_pgdata;
};

TEST_F(ChooseConnectionTest, PgConninfoWinsAndItsPasswordGoesToTheEnvironment) {
  write_postmaster_pid("123\n/x\n1700000000\n5432\n/run/postgresql\n*\n  1 2\nready\n");
  CallerConnection caller{0, "host=elsewhere", {{"PGHOST", "/tmp"}}};
  auto c = choose_connection("host=/run/pg user=rep password=s3cret", m_pgdata, caller, 0);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->dbname, "host=/run/pg user=rep");
  EXPECT_EQ(c->environment, std::vector<std::string>{"PGPASSWORD=s3cret"});
  EXPECT_FALSE(c->run_as);
  EXPECT_EQ(c->source, "walvaultd's pg-conninfo");
  EXPECT_FALSE(mentions(*c, "s3cret"));
}

TEST_F(ChooseConnectionTest, PgdataGivesHostPortAndTheOwner) {
  write_postmaster_pid("123\n" + m_pgdata + "\n1700000000\n5433\n/run/postgresql\n127.0.0.1\n  1 2\nready   \n");
  auto c = choose_connection("", m_pgdata, {}, 0);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->dbname, "");
  EXPECT_TRUE(has(c->environment, "PGHOST=/run/postgresql"));
  EXPECT_TRUE(has(c->environment, "PGPORT=5433"));
  EXPECT_TRUE(has(c->environment, "PGUSER=root"));  // the test's directory belongs to root
  EXPECT_FALSE(c->run_as) << "PGDATA owned by root: nothing to switch to";
  EXPECT_NE(c->source.find("pgdata '" + m_pgdata + "' (host /run/postgresql, port 5433, user root)"), std::string::npos) << c->source;
}

TEST_F(ChooseConnectionTest, ARootDaemonRunsPgBasebackupAsTheOwner) {
  const passwd* pw = ::getpwnam("nobody");
  if (!pw || ::geteuid() != 0) GTEST_SKIP() << "needs root and a nobody user";
  ASSERT_EQ(::chown(m_pgdata.c_str(), pw->pw_uid, pw->pw_gid), 0);
  write_postmaster_pid("1\nx\n1\n5432\n\n*\n");
  auto c = choose_connection("", m_pgdata, {}, 0);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->run_as);
  EXPECT_EQ(c->run_as->uid, pw->pw_uid);
  EXPECT_EQ(c->run_as->gid, pw->pw_gid);
  EXPECT_TRUE(has(c->environment, "PGHOST=localhost")) << "no Unix socket, listen_addresses '*'";
  EXPECT_TRUE(has(c->environment, "PGUSER=nobody"));
  EXPECT_TRUE(has(c->environment, std::string("HOME=") + pw->pw_dir));
  auto as_user = choose_connection("", m_pgdata, {}, 1000);
  ASSERT_TRUE(as_user);
  EXPECT_FALSE(as_user->run_as) << "only root switches user";
}

// -d over the caller's environment over pgdata, as libpq combines them.
TEST_F(ChooseConnectionTest, CallerPartsCombineOverPgdata) {
  write_postmaster_pid("1\nx\n1\n5432\n/run/postgresql\n*\n");
  CallerConnection caller{0, "dbname=postgres password=pw", {{"PGUSER", "replicator"}, {"PGPORT", "6000"}}};
  auto c = choose_connection("", m_pgdata, caller, 0);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->dbname, "dbname=postgres");
  EXPECT_TRUE(has(c->environment, "PGHOST=/run/postgresql"));
  EXPECT_TRUE(has(c->environment, "PGPORT=6000"));
  EXPECT_FALSE(has(c->environment, "PGPORT=5432"));
  EXPECT_TRUE(has(c->environment, "PGUSER=replicator"));
  EXPECT_TRUE(has(c->environment, "PGPASSWORD=pw"));
  EXPECT_FALSE(mentions(*c, "pw "));
  EXPECT_EQ(c->source.rfind("walvault backup -d over the caller's PGUSER, PGPORT over pgdata '", 0), 0u) << c->source;
}

TEST_F(ChooseConnectionTest, NothingKnownIsRefusedNamingEveryWay) {
  auto c = choose_connection("", "", {}, 0);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ErrorKind::invalid);
  for (const char* way : {"pgdata", "pg-conninfo", "walvault backup -d", "PGHOST"})
    EXPECT_NE(c.error().message.find(way), std::string::npos) << way << ": " << c.error().message;
}

TEST_F(ChooseConnectionTest, AStoppedServerIsNamedUnlessTheCallerSaysWhere) {
  auto c = choose_connection("", m_pgdata, {}, 0);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("PostgreSQL is not running on pgdata '" + m_pgdata + "' (no postmaster.pid)"), std::string::npos)
      << c.error().message;
  auto with_host = choose_connection("", m_pgdata, CallerConnection{0, "host=/tmp port=5432", {}}, 0);
  ASSERT_TRUE(with_host) << with_host.error().message;
  EXPECT_EQ(with_host->dbname, "host=/tmp port=5432");
  EXPECT_FALSE(with_host->run_as) << "root asked: root runs it";
}

// A root walvaultd runs the caller's parameters with the caller's privileges, never root's.
TEST_F(ChooseConnectionTest, CallerParametersRunAsTheCaller) {
  const passwd* pw = ::getpwnam("nobody");
  if (!pw) GTEST_SKIP() << "needs a nobody user";
  const uid_t nobody = pw->pw_uid;
  const gid_t nobody_gid = pw->pw_gid;
  const std::string home = pw->pw_dir;
  write_postmaster_pid("1\nx\n1\n5432\n/run/postgresql\n*\n");
  auto c = choose_connection("", m_pgdata, CallerConnection{nobody, "host=db.example sslmode=require", {}}, 0);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->run_as);
  EXPECT_EQ(c->run_as->uid, nobody);
  EXPECT_EQ(c->run_as->gid, nobody_gid);
  EXPECT_TRUE(has(c->environment, "HOME=" + home));
  auto env_only = choose_connection("", "", CallerConnection{nobody, "", {{"PGHOST", "/tmp"}}}, 0);
  ASSERT_TRUE(env_only && env_only->run_as);
  EXPECT_EQ(env_only->run_as->uid, nobody);
  auto not_root = choose_connection("", "", CallerConnection{nobody, "host=/tmp", {}}, 1000);
  ASSERT_TRUE(not_root);
  EXPECT_FALSE(not_root->run_as) << "a daemon that is not root runs everything as itself";
  auto unknown = choose_connection("", "", CallerConnection{4000000001u, "host=/tmp", {}}, 0);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, ErrorKind::forbidden);
  EXPECT_NE(unknown.error().message.find("uid 4000000001 has no passwd entry"), std::string::npos) << unknown.error().message;
  // walvaultd's own pg-conninfo is walvaultd's business: it runs as walvaultd.
  auto own = choose_connection("host=/run/pg", "", CallerConnection{nobody, "host=/tmp", {}}, 0);
  ASSERT_TRUE(own);
  EXPECT_FALSE(own->run_as);
}

TEST_F(ChooseConnectionTest, AMalformedDashDIsRefused) {
  auto c = choose_connection("", "", CallerConnection{0, "host=/tmp oops", {}}, 0);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ErrorKind::invalid);
  EXPECT_NE(c.error().message.find("not a connection string"), std::string::npos) << c.error().message;
}

TEST_F(ChooseConnectionTest, PostmasterPidMustBeWhatPostgresWrites) {
  write_postmaster_pid("1\nx\n");
  auto short_file = read_postmaster_pid(m_pgdata);
  ASSERT_FALSE(short_file);
  EXPECT_NE(short_file.error().message.find("still starting"), std::string::npos) << short_file.error().message;
  write_postmaster_pid("1\nx\n1\nport\n/run\n");
  auto bad_port = read_postmaster_pid(m_pgdata);
  ASSERT_FALSE(bad_port);
  EXPECT_NE(bad_port.error().message.find("line 4 is not a port"), std::string::npos) << bad_port.error().message;
}

TEST_F(ChooseConnectionTest, SystemIdentifierComesFromPgControl) {
  ASSERT_EQ(::mkdir((m_pgdata + "/global").c_str(), 0700), 0);
  const std::uint64_t id = 7312345678901234567ULL;
  std::vector<std::byte> control(8192);
  std::memcpy(control.data(), &id, sizeof id);
  test::write_bytes_file(m_pgdata + "/global/pg_control", control);
  auto read = read_system_identifier(m_pgdata);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(*read, id);
  auto missing = read_system_identifier(m_dir / "nowhere");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/global/pg_control"), std::string::npos);
}

TEST_F(ChooseConnectionTest, PgdataOfAnotherClusterIsRefused) {
  ASSERT_EQ(::mkdir((m_pgdata + "/global").c_str(), 0700), 0);
  const std::uint64_t id = 1111;
  std::vector<std::byte> control(8192);
  std::memcpy(control.data(), &id, sizeof id);
  test::write_bytes_file(m_pgdata + "/global/pg_control", control);
  auto repository = Repository::open(m_dir / "repo");
  ASSERT_TRUE(repository) << repository.error().message;
  EXPECT_TRUE(check_pgdata_cluster(m_pgdata, **repository)) << "a repository without WAL yet accepts any cluster";
  ASSERT_TRUE((*repository)->adopt_system_identifier(2222, 150000, "000000010000000000000001"));
  auto refused = check_pgdata_cluster(m_pgdata, **repository);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::refused);
  EXPECT_NE(refused.error().message.find("system identifier 1111"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("holds WAL of 2222"), std::string::npos) << refused.error().message;
  ASSERT_TRUE((*repository)->adopt_system_identifier(2222, 150000, "000000010000000000000001"));
}

}  // namespace
}  // namespace walvault
