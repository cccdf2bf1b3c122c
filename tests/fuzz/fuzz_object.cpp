// Fuzz target: a stored object as read back from the repository (a local directory or S3):
// its header, and the whole object decoded and proved (codec, sizes, SHA-256).
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/core/object_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  (void)walvault::decode_object_header(bytes, "fuzz object");
  (void)walvault::open_object(bytes, "fuzz object");
  return 0;
}
