#pragma once
// Framing and messages of the walvault wire protocol (docs/protocol.md).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/error.hpp"

namespace walvault::protocol {

inline constexpr std::uint32_t k_version = 1;
inline constexpr std::size_t k_max_frame_payload = 4096;
inline constexpr std::size_t k_max_message_text = 1024;
inline constexpr std::string_view k_greeting = "WALVAULT 1";
inline constexpr std::string_view k_default_socket = "/run/walvault/walvault.sock";
// The libpq variables `walvault backup` forwards from its caller's environment as BACKUP
// fields of the same names (docs/protocol.md).
inline constexpr const char* k_backup_caller_variables[] = {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE"};

// One frame's payload: the first line (verb or status, space-separated tokens) and fields.
struct Message {
  std::string line;
  std::vector<std::pair<std::string, std::string>> fields;

  std::optional<std::string_view> field(std::string_view key) const;
  Message& set(std::string key, std::string value);
  // First token of the line, and the rest after one space.
  std::string_view head() const;
  std::string_view argument() const;
};

// Payload text of a message; values are sanitised (newlines and NULs become spaces) and a
// `message` field is cut to k_max_message_text.
std::string serialize(const Message& message);
Result<Message> parse(std::string_view payload);
// 4-byte big-endian length + payload. The payload must be 1..k_max_frame_payload bytes.
Result<std::string> encode_frame(const Message& message);

// Incremental decoder: feed any pieces (down to single bytes); a frame comes out once complete.
class FrameDecoder {
 public:
  // Appends bytes. Fails on a frame length of 0 or above the maximum.
  Result<void> feed(std::string_view bytes);
  // The next complete payload, if any.
  std::optional<std::string> next();
  bool idle() const { return m_buffer.empty(); }

 private:
  std::string m_buffer;
};

// Response status helpers.
Message ok();
Message not_found(std::string text);
Message error(const Failure& failure);
Message busy(std::string text);

}  // namespace walvault::protocol
