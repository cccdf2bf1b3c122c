#pragma once
// CRC-32C, the checksum of every WAL record: the SSE4.2 instruction where the CPU has it,
// else slicing-by-8 tables.
#include <cstddef>
#include <cstdint>
#include <span>

namespace walvault {

// CRC-32C (Castagnoli), as PostgreSQL's pg_crc32c: `crc` starts at 0xFFFFFFFF and the
// result is finished by XOR with 0xFFFFFFFF.
std::uint32_t crc32c_update(std::uint32_t crc, std::span<const std::byte> data);
std::uint32_t crc32c(std::span<const std::byte> data);
// The table-driven version crc32c_update() uses where the CPU has no CRC-32C instruction.
std::uint32_t crc32c_update_portable(std::uint32_t crc, std::span<const std::byte> data);

}  // namespace walvault
