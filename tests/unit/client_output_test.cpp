#include "common/core/client_output.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/base/fd.hpp"

namespace walvault {
namespace {

struct Pipe {
  UniqueFd read_end, write_end;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
    ::fcntl(write_end.get(), F_SETPIPE_SZ, 4096);
  }
};

TEST(ClientOutputTest, AClientThatNeverReadsTimesOutInsteadOfBlocking) {
  Pipe pipe;
  const std::string document(256 * 1024, 'x');
  const auto start = std::chrono::steady_clock::now();
  auto r = write_client_output(pipe.write_end.get(), as_bytes(document), std::chrono::milliseconds(200), "the test pipe");
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::timeout);
  EXPECT_NE(r.error().message.find("the test pipe took nothing"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("stopped reading"), std::string::npos) << r.error().message;
  EXPECT_LT(waited, std::chrono::seconds(5));
  // The descriptor is blocking again, as the client left it.
  EXPECT_EQ(::fcntl(pipe.write_end.get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST(ClientOutputTest, ASlowReaderGetsTheWholeDocument) {
  Pipe pipe;
  std::string document;
  for (int i = 0; i < 20000; ++i) document += std::to_string(i) + "\n";
  std::string received;
  std::thread reader([&] {
    char buf[1000];
    for (;;) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      const ssize_t n = ::read(pipe.read_end.get(), buf, sizeof buf);
      if (n <= 0) break;
      received.append(buf, static_cast<std::size_t>(n));
    }
  });
  auto r = write_client_output(pipe.write_end.get(), as_bytes(document), std::chrono::milliseconds(2000), "the test pipe");
  pipe.write_end.reset();
  reader.join();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(received, document);
}

TEST(ClientOutputTest, AReaderThatWentAwayIsAnErrorNotAHang) {
  Pipe pipe;
  pipe.read_end.reset();
  const std::string document(64 * 1024, 'x');
  auto* previous = ::signal(SIGPIPE, SIG_IGN);  // as walvaultd does: EPIPE, not death
  auto r = write_client_output(pipe.write_end.get(), as_bytes(document), std::chrono::milliseconds(2000), "the test pipe");
  ::signal(SIGPIPE, previous);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("the test pipe"), std::string::npos) << r.error().message;
}

TEST(ClientOutputTest, AProgressLineToAFullPipeIsDroppedAtOnce) {
  Pipe pipe;
  const std::string filler(4096, 'f');
  ASSERT_TRUE(write_client_output(pipe.write_end.get(), as_bytes(filler), std::chrono::milliseconds(200), "the test pipe"));
  const auto start = std::chrono::steady_clock::now();
  write_progress(pipe.write_end.get(), "\rverified 16/32 objects");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  char buf[8192];
  EXPECT_EQ(::read(pipe.read_end.get(), buf, sizeof buf), 4096);  // only the filler
  write_progress(pipe.write_end.get(), "line\n");
  EXPECT_EQ(::read(pipe.read_end.get(), buf, sizeof buf), 5);
}

TEST(ClientOutputTest, ADocumentIsDeliveredAndBothDescriptorsClosed) {
  Pipe document_pipe, progress_pipe;
  Request request;
  request.message = protocol::Message{"LIST", {}};
  request.fd = std::move(document_pipe.write_end);
  request.progress_fd = std::move(progress_pipe.write_end);
  const auto response = respond_with_document(request, "hello\n", protocol::ok());
  EXPECT_EQ(response.line, protocol::ok().line);
  EXPECT_FALSE(request.fd);
  EXPECT_FALSE(request.progress_fd);
  char buf[16];
  EXPECT_EQ(::read(document_pipe.read_end.get(), buf, sizeof buf), 6);
  EXPECT_EQ(::read(document_pipe.read_end.get(), buf, sizeof buf), 0);  // the end: the daemon closed its copy
}

}  // namespace
}  // namespace walvault
