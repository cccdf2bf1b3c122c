#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace walvault {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest sha256(std::span<const std::byte> data);
std::string to_hex(std::span<const std::uint8_t> bytes);

// Incremental form, for content that arrives in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::byte> data);
  Sha256Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace walvault
