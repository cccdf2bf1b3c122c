// Fuzz target: the socket protocol as walvaultd reads it from any local peer: length-prefixed
// frames fed in arbitrary pieces, and each complete payload parsed as a request.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/base/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)walvault::protocol::parse(input);

  // The first byte chooses the piece size, so frames split at every boundary are exercised.
  if (input.empty()) return 0;
  const std::size_t piece = static_cast<std::uint8_t>(input.front()) % 16 + 1;
  walvault::protocol::FrameDecoder decoder;
  for (std::size_t at = 1; at < input.size(); at += piece) {
    if (!decoder.feed(input.substr(at, piece))) return 0;  // a refused frame ends the connection
    while (auto payload = decoder.next()) (void)walvault::protocol::parse(*payload);
  }
  return 0;
}
