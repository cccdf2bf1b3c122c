// Fuzz target: an encrypted object read back through the object layer with the key that wrote
// it (the frame decoder: head, key unwrap, every AES-256-GCM frame, the sealed digest), both
// whole and as a stream read in small pieces. Input: "<storage key>\n<object bytes>"; the key
// matters because every frame is bound to the object's name. The seeds were written by
// walvaultd with the fuzzing key below (tests/fuzz/make-seeds.sh), so fuzzing starts past the
// authentication and reaches the decoder; a mutated frame must fail authentication.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "common/core/object_cipher.hpp"
#include "common/core/object_store.hpp"
#include "tests/unit/memory_storage.hpp"

namespace {
// Public and used for fuzzing only: make-seeds.sh writes it as the key file (64 hex digits).
constexpr std::array<std::uint8_t, 32> k_fuzz_key = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                                                      0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                                      0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

std::shared_ptr<const walvault::Keyring> fuzz_keys() {
  auto keyring = walvault::Keyring::make(
      walvault::SecretKey::from_bytes(std::span<const std::uint8_t, 32>(k_fuzz_key), "fuzz key"), {});
  if (!keyring) std::abort();
  return std::make_shared<const walvault::Keyring>(std::move(*keyring));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  if (newline == std::string_view::npos) return 0;
  const std::string key(input.substr(0, newline));
  if (!walvault::is_valid_storage_key(key)) return 0;
  const auto object = std::as_bytes(std::span(data + newline + 1, size - newline - 1));

  static const auto keys = fuzz_keys();
  auto shared = std::make_shared<walvault::test::MemoryStorage::Shared>();
  shared->objects[key].assign(object.begin(), object.end());
  walvault::ObjectStore store(std::make_unique<walvault::test::MemoryStorage>(shared));
  store.set_keys(keys);

  (void)store.read(key);
  if (auto stream = store.open(key); stream && *stream) {
    std::array<std::byte, 4096> piece{};
    for (int reads = 0; reads < 100000; ++reads) {
      auto n = (*stream)->read(piece);
      if (!n || *n == 0) break;
    }
  }
  return 0;
}
