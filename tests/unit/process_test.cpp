#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/fd.hpp"
#include "common/base/process.hpp"

namespace walvault {
namespace {

TEST(Process, OutputStatusAndNoInheritedDescriptors) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // A descriptor without close-on-exec (as Asio's sockets are) must not reach the child.
  UniqueFd leaky(::open("/dev/null", O_RDONLY));
  ASSERT_TRUE(leaky);
  const std::string script = "echo out; echo err >&2; read x && echo stdin-not-empty; "
                             "[ -e /proc/self/fd/" + std::to_string(leaky.get()) + " ] && echo leaked; exit 3";
  auto pid = spawn_process({"/bin/sh", "-c", script}, write_end.get(), write_end.get());
  ASSERT_TRUE(pid) << pid.error().message;
  write_end.reset();
  const std::string said = read_to_end(read_end.get(), 1 << 16);
  const int status = wait_process(*pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(said, "out\nerr\n");
}

TEST(Process, ReadToEndKeepsAtMostTheLimitButDrainsAll) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  auto pid = spawn_process({"/bin/sh", "-c", "head -c 300000 /dev/zero"}, write_end.get(), write_end.get());
  ASSERT_TRUE(pid);
  write_end.reset();
  EXPECT_EQ(read_to_end(read_end.get(), 100).size(), 100u);
  EXPECT_EQ(WEXITSTATUS(wait_process(*pid)), 0) << "the writer was not drained";
}

TEST(Process, MissingProgramIsAnError) {
  auto pid = spawn_process({"/nonexistent/program"}, STDOUT_FILENO, STDERR_FILENO);
  // posix_spawn may report it, or the child exits 127: either way it is not a success.
  if (pid) {
    EXPECT_EQ(WEXITSTATUS(wait_process(*pid)), 127);
  }
}

// How a password reaches pg_basebackup: in the environment, replacing an inherited value.
TEST(Process, EnvironmentOverridesReplaceInheritedValues) {
  ::setenv("WALVAULT_TEST_VAR", "inherited", 1);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  auto pid = spawn_process({"/bin/sh", "-c", "echo \"$WALVAULT_TEST_VAR $PGPASSWORD\"; env | grep -c WALVAULT_TEST_VAR="},
                           write_end.get(), write_end.get(), SpawnOptions{{"WALVAULT_TEST_VAR=given", "PGPASSWORD=s3cret"}, {}});
  ASSERT_TRUE(pid) << pid.error().message;
  write_end.reset();
  EXPECT_EQ(read_to_end(read_end.get(), 1 << 16), "given s3cret\n1\n");
  EXPECT_EQ(WEXITSTATUS(wait_process(*pid)), 0);
  ::unsetenv("WALVAULT_TEST_VAR");
}

TEST(Process, RunAsChangesUserAndGroupsAndKeepsTheHygiene) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  UniqueFd leaky(::open("/dev/null", O_RDONLY));
  const std::string script = "echo $(id -u) $(id -g) $(id -G); read x && echo stdin-not-empty; "
                             "[ -e /proc/self/fd/" + std::to_string(leaky.get()) + " ] && echo leaked; exit 4";
  auto pid = spawn_process({"/bin/sh", "-c", script}, write_end.get(), write_end.get(),
                           SpawnOptions{{}, RunAs{65534, 65534, {65534, 4242}}});
  ASSERT_TRUE(pid) << pid.error().message;
  write_end.reset();
  EXPECT_EQ(read_to_end(read_end.get(), 1 << 16), "65534 65534 65534 4242\n");
  const int status = wait_process(*pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 4);

  auto missing = spawn_process({"/nonexistent/program"}, STDOUT_FILENO, STDERR_FILENO, SpawnOptions{{}, RunAs{65534, 65534, {}}});
  ASSERT_FALSE(missing) << "an exec failure after the user switch is reported, not a child exiting 127";
  EXPECT_NE(missing.error().message.find("/nonexistent/program"), std::string::npos) << missing.error().message;
}

TEST(Process, RunProgramCollectsOutputAndStatusAndFindsItsOwnDirectory) {
  auto run = run_program({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_FALSE(run->ok());
  EXPECT_EQ(WEXITSTATUS(run->status), 3);
  EXPECT_EQ(run->output, "out\nerr\n");
  auto ok = run_program({"/bin/true"});
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->ok());
  EXPECT_FALSE(run_program({"/nonexistent/program"}));
  // The unit test binary lives in the build's bin/, as the programs do.
  const std::string dir = executable_directory();
  EXPECT_TRUE(dir.ends_with("/bin")) << dir;
  EXPECT_EQ(::access((dir + "/walvault_unit_tests").c_str(), X_OK), 0) << dir;
}

}  // namespace
}  // namespace walvault
