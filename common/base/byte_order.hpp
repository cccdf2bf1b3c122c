#pragma once
// Little-endian fields, as PostgreSQL writes WAL on every platform walvault runs on and as
// walvault's object header is defined.
#include <cstddef>
#include <cstdint>
#include <span>

namespace walvault {

template <typename T>
T load_le(std::span<const std::byte> bytes, std::size_t offset) {
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    value = static_cast<T>(value | static_cast<T>(std::to_integer<std::uint8_t>(bytes[offset + i])) << (8 * i));
  return value;
}

template <typename T>
void store_le(std::span<std::byte> bytes, std::size_t offset, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) bytes[offset + i] = static_cast<std::byte>((value >> (8 * i)) & 0xFF);
}

}  // namespace walvault
