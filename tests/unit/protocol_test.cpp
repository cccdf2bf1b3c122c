#include "common/base/protocol.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/base/socket_client.hpp"
#include "tests/unit/test_support.hpp"

namespace walvault {
namespace {

using namespace std::chrono_literals;
using protocol::FrameDecoder;
using protocol::Message;

std::string frame_of(const Message& message) {
  auto frame = protocol::encode_frame(message);
  EXPECT_TRUE(frame) << (frame ? "" : frame.error().message);
  return frame ? *frame : std::string();
}

std::string raw_frame(std::uint32_t length, std::string_view payload) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(length >> 24);
  out[1] = static_cast<char>(length >> 16);
  out[2] = static_cast<char>(length >> 8);
  out[3] = static_cast<char>(length);
  return out + std::string(payload);
}

TEST(Protocol, EncodeParseRoundTripWithFields) {
  Message request{"PUSH 000000010000000000000003", {}};
  request.set("mode", "exact").set("size", "16777216").set("empty", "");
  const std::string frame = frame_of(request);
  const std::string payload = "PUSH 000000010000000000000003\nmode=exact\nsize=16777216\nempty=";
  EXPECT_EQ(frame, raw_frame(static_cast<std::uint32_t>(payload.size()), payload));

  auto parsed = protocol::parse(frame.substr(4));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->line, request.line);
  EXPECT_EQ(parsed->fields, request.fields);
  EXPECT_EQ(parsed->head(), "PUSH");
  EXPECT_EQ(parsed->argument(), "000000010000000000000003");
  EXPECT_EQ(parsed->field("mode"), "exact");
  EXPECT_EQ(parsed->field("empty"), "");
  EXPECT_FALSE(parsed->field("missing"));
}

TEST(Protocol, ExampleFromTheSpec) {
  EXPECT_EQ(frame_of(Message{std::string(protocol::k_greeting), {}}), std::string("\0\0\0\x0a", 4) + "WALVAULT 1");
  Message ok = protocol::ok();
  ok.set("detail", "stored");
  // 16 payload bytes. (docs/protocol.md's example shows [00 00 00 0e] here, which is 14.)
  EXPECT_EQ(frame_of(ok), std::string("\0\0\0\x10", 4) + "OK\ndetail=stored");
  Message push{"PUSH 000000010000000000000003", {}};
  EXPECT_EQ(frame_of(push), std::string("\0\0\0\x1d", 4) + "PUSH 000000010000000000000003");
}

TEST(Protocol, ValuesMayContainEqualsAndSpaces) {
  Message m{"ERR io", {}};
  m.set("message", "unable to sync file 'a=b c': [28] No space left on device");
  auto parsed = protocol::parse(protocol::serialize(m));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->field("message"), "unable to sync file 'a=b c': [28] No space left on device");
  EXPECT_EQ(parsed->head(), "ERR");
  EXPECT_EQ(parsed->argument(), "io");
}

TEST(Protocol, StatusHelpers) {
  EXPECT_EQ(protocol::ok().line, "OK");
  auto nf = protocol::not_found("'x' is not in the archive");
  EXPECT_EQ(nf.line, "NOTFOUND");
  EXPECT_EQ(nf.field("message"), "'x' is not in the archive");
  auto err = protocol::error(Failure{ErrorKind::no_space, "disk full"});
  EXPECT_EQ(err.line, "ERR no-space");
  EXPECT_EQ(err.field("message"), "disk full");
  EXPECT_EQ(protocol::busy("queue full").line, "BUSY");
  // Every category survives the trip through its word.
  for (ErrorKind kind : {ErrorKind::invalid, ErrorKind::forbidden, ErrorKind::refused, ErrorKind::conflict,
                         ErrorKind::not_found, ErrorKind::corrupt, ErrorKind::io, ErrorKind::no_space,
                         ErrorKind::timeout, ErrorKind::busy, ErrorKind::internal})
    EXPECT_EQ(error_kind_from_string(to_string(kind)), kind) << to_string(kind);
  EXPECT_EQ(error_kind_from_string("no-such-word"), ErrorKind::internal);
}

TEST(Protocol, HeadAndArgumentOfBareVerb) {
  Message ping{"PING", {}};
  EXPECT_EQ(ping.head(), "PING");
  EXPECT_EQ(ping.argument(), "");
}

TEST(Protocol, DecoderTakesFramesInOneAndTwoBytePieces) {
  std::vector<Message> messages;
  messages.push_back(Message{"WALVAULT 1", {}});
  messages.push_back(Message{"GET 00000002.history", {{"mode", "recovery"}}});
  Message big{"ERR corrupt", {}};
  big.set("message", std::string(1000, 'm'));
  big.set("detail", std::string(2900, 'd'));
  messages.push_back(big);
  messages.push_back(Message{"X", {}});  // one-byte payload
  std::string stream;
  for (const auto& m : messages) stream += frame_of(m);

  for (std::size_t piece : std::initializer_list<std::size_t>{1u, 2u, 3u, 7u}) {
    SCOPED_TRACE("pieces of " + std::to_string(piece));
    FrameDecoder decoder;
    std::vector<std::string> payloads;
    for (std::size_t offset = 0; offset < stream.size(); offset += piece) {
      ASSERT_TRUE(decoder.feed(std::string_view(stream).substr(offset, piece)));
      while (auto payload = decoder.next()) payloads.push_back(*payload);
    }
    EXPECT_TRUE(decoder.idle());
    EXPECT_FALSE(decoder.next());
    ASSERT_EQ(payloads.size(), messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) {
      auto parsed = protocol::parse(payloads[i]);
      ASSERT_TRUE(parsed) << parsed.error().message;
      EXPECT_EQ(parsed->line, messages[i].line);
      EXPECT_EQ(parsed->fields, messages[i].fields);
    }
  }
}

TEST(Protocol, DecoderHoldsIncompleteFrame) {
  FrameDecoder decoder;
  const std::string frame = frame_of(Message{"PING", {}});
  ASSERT_TRUE(decoder.feed(frame.substr(0, frame.size() - 1)));
  EXPECT_FALSE(decoder.next());
  EXPECT_FALSE(decoder.idle());
  ASSERT_TRUE(decoder.feed(frame.substr(frame.size() - 1)));
  EXPECT_EQ(decoder.next(), "PING");
  EXPECT_TRUE(decoder.idle());
}

TEST(Protocol, DecoderRejectsZeroAndOversizedLengths) {
  for (std::uint32_t length : {0u, 4097u, 65536u, 0xFFFFFFFFu}) {
    SCOPED_TRACE(length);
    // All at once...
    FrameDecoder decoder;
    auto r = decoder.feed(raw_frame(length, "x"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::invalid);
    EXPECT_NE(r.error().message.find("frame length " + std::to_string(length) + " (allowed 1..4096)"), std::string::npos)
        << r.error().message;
    // ...and byte by byte: the error comes with the fourth byte.
    FrameDecoder slow;
    const std::string header = raw_frame(length, "");
    for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(slow.feed(header.substr(i, 1)));
    EXPECT_FALSE(slow.feed(header.substr(3, 1)));
  }
  // The maximum itself is fine.
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.feed(raw_frame(4096, std::string(4096, 'a'))));
  EXPECT_EQ(decoder.next()->size(), 4096u);
}

TEST(Protocol, DecoderRejectsBadLengthOfALaterFrame) {
  const std::string stream = frame_of(Message{"OK", {}}) + raw_frame(0, "");
  FrameDecoder decoder;
  bool failed = false;
  std::size_t frames = 0;
  for (char c : stream) {
    if (!decoder.feed(std::string_view(&c, 1))) {
      failed = true;
      break;
    }
    while (decoder.next()) ++frames;
  }
  EXPECT_EQ(frames, 1u);
  EXPECT_TRUE(failed) << "a zero-length second frame went unnoticed";
}

TEST(Protocol, EncodeRefusesEmptyAndOversizedPayloads) {
  auto empty = protocol::encode_frame(Message{});
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("frame of 0 bytes (allowed 1..4096)"), std::string::npos) << empty.error().message;

  Message big{"PUSH x", {}};
  big.set("detail", std::string(4096, 'x'));
  auto too_big = protocol::encode_frame(big);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().kind, ErrorKind::invalid);
  EXPECT_NE(too_big.error().message.find("frame of " + std::to_string(protocol::serialize(big).size()) + " bytes"),
            std::string::npos)
      << too_big.error().message;

  // Exactly 4096 is the largest frame.
  Message max{"A", {}};
  max.set("k", std::string(4096 - 4, 'v'));  // "A\nk=" + value
  auto ok = protocol::encode_frame(max);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->size(), 4u + 4096u);
}

TEST(Protocol, ValuesWithNewlinesAreSanitised) {
  Message m{"ERR io\nINJECTED", {}};
  m.set("message", "first line\nsecond=line\r\nthird");
  m.set("other", std::string("nul\0byte", 8));
  const std::string payload = protocol::serialize(m);
  EXPECT_EQ(payload, std::string("ERR io INJECTED\nmessage=first line second=line  third\nother=nul byte"));
  auto parsed = protocol::parse(payload);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->fields.size(), 2u);
  EXPECT_EQ(parsed->field("message"), "first line second=line  third");
  EXPECT_FALSE(parsed->field("second"));
}

TEST(Protocol, MessageFieldIsCutTo1024Bytes) {
  Message m{"ERR io", {}};
  m.set("message", std::string(3000, 'e'));
  auto parsed = protocol::parse(protocol::serialize(m));
  ASSERT_TRUE(parsed);
  const std::string text(*parsed->field("message"));
  EXPECT_EQ(text.size(), protocol::k_max_message_text);
  EXPECT_EQ(text, std::string(1021, 'e') + "...");

  // At the limit nothing is cut; other fields are never cut.
  Message exact{"ERR io", {}};
  exact.set("message", std::string(1024, 'e'));
  exact.set("detail", std::string(2000, 'd'));
  parsed = protocol::parse(protocol::serialize(exact));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed->field("message"), std::string(1024, 'e'));
  EXPECT_EQ(parsed->field("detail")->size(), 2000u);

  // A long error still fits in a frame.
  auto frame = protocol::encode_frame(protocol::error(Failure{ErrorKind::io, std::string(10000, 'x')}));
  ASSERT_TRUE(frame) << frame.error().message;
}

TEST(Protocol, ParseRejectsNulAndMalformedFields) {
  auto nul = protocol::parse(std::string("OK\0", 3));
  ASSERT_FALSE(nul);
  EXPECT_EQ(nul.error().kind, ErrorKind::invalid);
  EXPECT_NE(nul.error().message.find("NUL"), std::string::npos);

  auto nul_in_field = protocol::parse(std::string("OK\nk=a\0b", 8));
  ASSERT_FALSE(nul_in_field);

  for (const char* payload : {"OK\nnoequals", "OK\nBAD=upper", "OK\n=value", "OK\nk y=v", "OK\nk_y=v", "OK\nk=v\nbad"}) {
    auto parsed = protocol::parse(payload);
    ASSERT_FALSE(parsed) << payload;
    EXPECT_EQ(parsed.error().kind, ErrorKind::invalid);
    EXPECT_NE(parsed.error().message.find("protocol error: malformed field '"), std::string::npos)
        << parsed.error().message;
  }
  auto bad = protocol::parse("OK\nnoequals");
  EXPECT_NE(bad.error().message.find("'noequals'"), std::string::npos) << bad.error().message;

  for (const char* payload : {"", "\n", "\nk=v"}) {
    auto parsed = protocol::parse(payload);
    ASSERT_FALSE(parsed) << payload;
    EXPECT_NE(parsed.error().message.find("empty first line"), std::string::npos);
  }
  // A trailing newline and empty lines between fields are allowed by the grammar's [ "\n" ].
  auto trailing = protocol::parse("OK\nsize=5\n");
  ASSERT_TRUE(trailing);
  EXPECT_EQ(trailing->field("size"), "5");
  EXPECT_EQ(trailing->fields.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Socket level: a scripted peer on a real AF_UNIX socket.

class ScriptedPeer {
 public:
  explicit ScriptedPeer(const std::string& path) : m_path(path) {
    m_listener = test_socket();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::bind(m_listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(m_listener.get(), 8) != 0)
      throw std::runtime_error("cannot listen on " + path + ": " + std::strerror(errno));
  }

  // Accepts one connection (waiting at most `timeout`).
  UniqueFd accept_one(std::chrono::milliseconds timeout = 5s) {
    pollfd pfd{m_listener.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) return UniqueFd();
    return UniqueFd(::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }

  static UniqueFd test_socket() { return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

  // Writes `bytes` in pieces of `piece` bytes with a pause between pieces.
  static bool trickle(int fd, std::string_view bytes, std::size_t piece, std::chrono::milliseconds pause) {
    for (std::size_t offset = 0; offset < bytes.size(); offset += piece) {
      const std::size_t n = std::min(piece, bytes.size() - offset);
      if (::send(fd, bytes.data() + offset, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n)) return false;
      std::this_thread::sleep_for(pause);
    }
    return true;
  }

  struct Received {
    std::string payload;
    std::vector<int> fds;
  };
  // Reads one request frame with recvmsg, collecting SCM_RIGHTS descriptors.
  static Received receive_request(int fd) {
    Received out;
    FrameDecoder decoder;
    for (;;) {
      char data[8192];
      iovec iov{data, sizeof data};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
      if (n <= 0) return out;
      for (auto& passed : passed_descriptors(msg)) out.fds.push_back(passed.release());
      if (!decoder.feed({data, static_cast<std::size_t>(n)})) return out;
      if (auto payload = decoder.next()) {
        out.payload = *payload;
        return out;
      }
    }
  }

 private:
  std::string m_path;
  UniqueFd m_listener;
};

TEST(SocketClient, GreetingAndResponseArrivingByteByByte) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "walvault.sock";
  ScriptedPeer peer(path);
  test::write_text_file(dir / "segment", "WAL bytes");
  UniqueFd file(::open((dir / "segment").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file);
  struct stat original {};
  ASSERT_EQ(::fstat(file.get(), &original), 0);

  struct Seen {
    std::string request;
    std::size_t fds = 0;
    ino_t inode = 0;
    dev_t device = 0;
    std::string content;
  };
  auto server = std::async(std::launch::async, [&]() -> Seen {
    Seen seen;
    UniqueFd conn = peer.accept_one();
    if (!conn) return seen;
    ScriptedPeer::trickle(conn.get(), frame_of(Message{"WALVAULT 1", {}}), 1, 2ms);
    auto request = ScriptedPeer::receive_request(conn.get());
    seen.request = request.payload;
    seen.fds = request.fds.size();
    if (!request.fds.empty()) {
      UniqueFd passed(request.fds[0]);
      for (std::size_t i = 1; i < request.fds.size(); ++i) ::close(request.fds[i]);
      struct stat st {};
      if (::fstat(passed.get(), &st) == 0) {
        seen.inode = st.st_ino;
        seen.device = st.st_dev;
      }
      char buf[64];
      const ssize_t n = ::pread(passed.get(), buf, sizeof buf, 0);
      if (n > 0) seen.content.assign(buf, static_cast<std::size_t>(n));
    }
    Message response = protocol::ok();
    response.set("detail", "stored");
    ScriptedPeer::trickle(conn.get(), frame_of(response), 2, 1ms);
    return seen;
  });

  auto client = SocketClient::connect(path, 2s, 5s);
  ASSERT_TRUE(client) << client.error().message;
  Message request{"PUSH 000000010000000000000003", {}};
  ASSERT_TRUE(client->send(request, file.get()));
  auto response = client->receive(5s);
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->line, "OK");
  EXPECT_EQ(response->field("detail"), "stored");

  const Seen seen = server.get();
  EXPECT_EQ(seen.request, "PUSH 000000010000000000000003");
  EXPECT_EQ(seen.fds, 1u);
  EXPECT_EQ(seen.inode, original.st_ino);
  EXPECT_EQ(seen.device, original.st_dev);
  EXPECT_EQ(seen.content, "WAL bytes");
}

TEST(SocketClient, RequestWithoutDescriptorCarriesNone) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "walvault.sock";
  ScriptedPeer peer(path);
  auto server = std::async(std::launch::async, [&]() -> std::pair<std::string, std::size_t> {
    UniqueFd conn = peer.accept_one();
    if (!conn) return {};
    ScriptedPeer::trickle(conn.get(), frame_of(Message{"WALVAULT 1", {}}), 64, 0ms);
    auto request = ScriptedPeer::receive_request(conn.get());
    for (int fd : request.fds) ::close(fd);
    ScriptedPeer::trickle(conn.get(), frame_of(protocol::ok()), 64, 0ms);
    return {request.payload, request.fds.size()};
  });
  ClientOptions options;
  options.socket_path = path;
  options.connect_timeout = 2s;
  options.timeout = 5s;
  auto response = exchange(options, Message{"PING", {}});
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->line, "OK");
  auto [payload, fds] = server.get();
  EXPECT_EQ(payload, "PING");
  EXPECT_EQ(fds, 0u);
}

TEST(SocketClient, ExchangeRetriesBusy) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "walvault.sock";
  ScriptedPeer peer(path);
  auto server = std::async(std::launch::async, [&]() -> int {
    int connections = 0;
    for (const char* status : {"BUSY", "BUSY", "OK"}) {
      UniqueFd conn = peer.accept_one();
      if (!conn) return connections;
      ++connections;
      ScriptedPeer::trickle(conn.get(), frame_of(Message{"WALVAULT 1", {}}), 64, 0ms);
      ScriptedPeer::receive_request(conn.get());
      Message response{status, {}};
      if (std::string_view(status) == "BUSY") response.set("message", "queue full");
      ScriptedPeer::trickle(conn.get(), frame_of(response), 64, 0ms);
    }
    return connections;
  });
  ClientOptions options;
  options.socket_path = path;
  options.timeout = 10s;
  auto response = exchange(options, Message{"PING", {}});
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->line, "OK");
  EXPECT_EQ(server.get(), 3);
}

TEST(SocketClient, ConnectToMissingSocketFailsAfterTheConnectTimeout) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "missing.sock";
  const auto started = std::chrono::steady_clock::now();
  auto client = SocketClient::connect(path, 300ms, 5s);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().kind, ErrorKind::io);
  EXPECT_NE(client.error().message.find("'" + path + "'"), std::string::npos) << client.error().message;
  EXPECT_NE(client.error().message.find("[2] No such file or directory"), std::string::npos) << client.error().message;
  EXPECT_GE(elapsed, 100ms);  // it did retry
  EXPECT_LT(elapsed, 1500ms);
}

TEST(SocketClient, ConnectWaitsForADaemonThatComesUp) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "late.sock";
  auto server = std::async(std::launch::async, [&]() -> bool {
    std::this_thread::sleep_for(150ms);
    ScriptedPeer peer(path);
    UniqueFd conn = peer.accept_one();
    if (!conn) return false;
    return ScriptedPeer::trickle(conn.get(), frame_of(Message{"WALVAULT 1", {}}), 64, 0ms);
  });
  auto client = SocketClient::connect(path, 3s, 5s);
  EXPECT_TRUE(client) << client.error().message;
  EXPECT_TRUE(server.get());
}

TEST(SocketClient, SilentServerTimesOut) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "walvault.sock";
  ScriptedPeer peer(path);
  std::promise<void> done;
  auto finished = done.get_future();
  auto server = std::async(std::launch::async, [&] {
    UniqueFd conn = peer.accept_one();
    if (!conn) return;
    ScriptedPeer::trickle(conn.get(), frame_of(Message{"WALVAULT 1", {}}), 64, 0ms);
    finished.wait_for(10s);  // hold the connection open, never answer
  });
  auto client = SocketClient::connect(path, 2s, 5s);
  ASSERT_TRUE(client) << client.error().message;
  ASSERT_TRUE(client->send(Message{"PING", {}}));
  const auto started = std::chrono::steady_clock::now();
  auto response = client->receive(300ms);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  done.set_value();
  server.get();
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, ErrorKind::timeout);
  EXPECT_NE(response.error().message.find("no answer from walvaultd at '" + path + "'"), std::string::npos)
      << response.error().message;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(SocketClient, SilentServerDuringGreetingTimesOut) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "walvault.sock";
  ScriptedPeer peer(path);  // listens but never accepts: the kernel completes the connect
  auto client = SocketClient::connect(path, 1s, 200ms);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().kind, ErrorKind::timeout);
}

TEST(SocketClient, PeerClosingBeforeAnsweringIsAnError) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "walvault.sock";
  ScriptedPeer peer(path);
  auto server = std::async(std::launch::async, [&] {
    UniqueFd conn = peer.accept_one();
    if (conn) ScriptedPeer::trickle(conn.get(), frame_of(Message{"WALVAULT 1", {}}).substr(0, 6), 64, 0ms);
  });
  auto client = SocketClient::connect(path, 2s, 5s);
  server.get();
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().kind, ErrorKind::io);
  EXPECT_NE(client.error().message.find("closed the connection before answering"), std::string::npos)
      << client.error().message;
}

TEST(SocketClient, OtherProtocolVersionAndForbiddenGreeting) {
  test::TempDir dir("walvault-sock");
  const std::string path = dir / "walvault.sock";
  ScriptedPeer peer(path);
  auto server = std::async(std::launch::async, [&] {
    UniqueFd first = peer.accept_one();
    if (first) ScriptedPeer::trickle(first.get(), frame_of(Message{"WALVAULT 2", {}}), 64, 0ms);
    UniqueFd second = peer.accept_one();
    Message forbidden{"ERR forbidden", {}};
    forbidden.set("message", "uid 1234 is not allowed to connect");
    if (second) ScriptedPeer::trickle(second.get(), frame_of(forbidden), 64, 0ms);
    std::this_thread::sleep_for(100ms);
  });
  auto newer = SocketClient::connect(path, 2s, 5s);
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message.find("speaks 'WALVAULT 2', this client speaks 'WALVAULT 1'"), std::string::npos)
      << newer.error().message;
  auto refused = SocketClient::connect(path, 2s, 5s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::forbidden);
  EXPECT_EQ(refused.error().message, "uid 1234 is not allowed to connect");
  server.get();
}

TEST(SocketClient, SocketPathTooLongIsRefused) {
  const std::string path = "/tmp/" + std::string(120, 's');
  auto client = SocketClient::connect(path, 100ms, 100ms);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().kind, ErrorKind::invalid);
  EXPECT_NE(client.error().message.find("is longer than 107 bytes"), std::string::npos) << client.error().message;
}

}  // namespace
}  // namespace walvault
