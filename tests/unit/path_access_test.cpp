// Who can reach walvaultd's socket, judged from permission bits the way the kernel judges
// them: walvaultd's start-up check and the clients' "Permission denied" explanation.
#include "common/base/path_access.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

constexpr uid_t k_user = 54321;   // no passwd entry needed: the identity is given
constexpr gid_t k_group = 54322;
constexpr gid_t k_other_group = 54323;

class PathAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown test files";
    m_run = m_dir / "run";
    ASSERT_EQ(::chmod(m_dir.path().c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(m_run.c_str(), 0750), 0);
    ASSERT_EQ(::chown(m_run.c_str(), 0, k_group), 0);
    m_socket = m_run + "/walvault.sock";
    test::write_bytes_file(m_socket, {});  // the bits are what matters, not the file type
    ASSERT_EQ(::chmod(m_socket.c_str(), 0660), 0);
    ASSERT_EQ(::chown(m_socket.c_str(), 0, k_group), 0);
    m_user.uid = k_user;
    m_user.groups = {k_group};
  }

  std::string problem_of(const UserIdentity& who) {
    auto problem = socket_access_problem(who, m_socket);
    return problem ? *problem : "";
  }

  test::TempDir m_dir{"walvault-access"};
  std::string m_run, m_socket;
  UserIdentity m_user;
};

TEST_F(PathAccessTest, AMemberOfTheSocketsGroupMayConnect) {
  EXPECT_EQ(problem_of(m_user), "");
  UserIdentity root;
  EXPECT_EQ(problem_of(root), "") << "root passes";
}

TEST_F(PathAccessTest, TheSocketsGroupMustGrantWrite) {
  ASSERT_EQ(::chown(m_socket.c_str(), 0, k_other_group), 0);
  ASSERT_EQ(::chown(m_run.c_str(), 0, k_other_group), 0);
  ASSERT_EQ(::chmod(m_run.c_str(), 0755), 0);
  const std::string problem = problem_of(m_user);
  EXPECT_EQ(problem.rfind("no write permission on socket '" + m_socket + "' (root:", 0), 0u) << problem;
  EXPECT_NE(problem.find(" 0660)"), std::string::npos) << problem;
  ASSERT_EQ(::chmod(m_socket.c_str(), 0662), 0);
  EXPECT_EQ(problem_of(m_user), "") << "other bits let everyone in";
}

TEST_F(PathAccessTest, EveryDirectoryAboveMustBeSearchable) {
  ASSERT_EQ(::chmod(m_run.c_str(), 0700), 0);
  std::string problem = problem_of(m_user);
  EXPECT_EQ(problem.rfind("no search (x) permission on directory '" + m_run + "' (root:", 0), 0u) << problem;
  EXPECT_NE(problem.find(" 0700)"), std::string::npos) << problem;
  ASSERT_EQ(::chmod(m_run.c_str(), 0750), 0);
  ASSERT_EQ(::chmod(m_dir.path().c_str(), 0700), 0);
  problem = problem_of(m_user);
  EXPECT_EQ(problem.rfind("no search (x) permission on directory '" + m_dir.path() + "'", 0), 0u) << problem;
}

// The kernel picks one class: an owner whose owner bits deny is denied, whatever the group says.
TEST_F(PathAccessTest, TheOwnerClassWinsOverTheGroupClass) {
  ASSERT_EQ(::chown(m_socket.c_str(), k_user, k_group), 0);
  ASSERT_EQ(::chmod(m_socket.c_str(), 0060), 0);
  EXPECT_NE(problem_of(m_user).find("no write permission on socket"), std::string::npos);
}

TEST_F(PathAccessTest, ASocketNotCreatedYetIsJudgedByItsDirectories) {
  ASSERT_EQ(::unlink(m_socket.c_str()), 0);
  EXPECT_EQ(problem_of(m_user), "");
  UserIdentity outsider;
  outsider.uid = k_user;
  outsider.groups = {k_other_group};
  EXPECT_NE(problem_of(outsider).find("no search (x) permission on directory '" + m_run + "'"), std::string::npos);
}

TEST(PathAccess, DescribesUsersAndOwners) {
  UserIdentity root = identity_of_uid(0);
  EXPECT_EQ(describe_user(root), "root (uid 0)");
  ASSERT_FALSE(root.groups.empty());
  EXPECT_EQ(root.groups.front(), 0u);
  UserIdentity unknown = identity_of_uid(4000000001u);
  EXPECT_EQ(describe_user(unknown), "uid 4000000001");
  EXPECT_TRUE(unknown.groups.empty());
  struct stat st {};
  st.st_uid = 0;
  st.st_gid = 4000000002u;
  st.st_mode = S_IFSOCK | 0660;
  EXPECT_EQ(describe_owner_and_mode(st), "root:4000000002 0660");
}

}  // namespace
}  // namespace walvault
