#include "common/core/crc32c.hpp"

#include <array>
#include <cstring>

#include "common/base/byte_order.hpp"

namespace walvault {

namespace {

constexpr std::array<std::array<std::uint32_t, 256>, 8> make_crc32c_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> tables{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1U) ? (crc >> 1) ^ 0x82F63B78U : crc >> 1;
    tables[0][i] = crc;
  }
  for (std::size_t i = 0; i < 256; ++i)
    for (std::size_t slice = 1; slice < 8; ++slice)
      tables[slice][i] = (tables[slice - 1][i] >> 8) ^ tables[0][tables[slice - 1][i] & 0xFFU];
  return tables;
}
constexpr auto k_crc32c_tables = make_crc32c_tables();

}  // namespace

std::uint32_t crc32c_update_portable(std::uint32_t crc, std::span<const std::byte> data) {
  const auto& t = k_crc32c_tables;
  std::size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    const std::uint32_t low = crc ^ load_le<std::uint32_t>(data, i);
    const std::uint32_t high = load_le<std::uint32_t>(data, i + 4);
    crc = t[7][low & 0xFFU] ^ t[6][(low >> 8) & 0xFFU] ^ t[5][(low >> 16) & 0xFFU] ^ t[4][low >> 24] ^
          t[3][high & 0xFFU] ^ t[2][(high >> 8) & 0xFFU] ^ t[1][(high >> 16) & 0xFFU] ^ t[0][high >> 24];
  }
  for (; i < data.size(); ++i) crc = t[0][(crc ^ std::to_integer<std::uint8_t>(data[i])) & 0xFFU] ^ (crc >> 8);
  return crc;
}

namespace {

#if defined(__x86_64__)
// SSE4.2's crc32 instruction computes CRC-32C (Castagnoli) directly, as PostgreSQL's
// pg_comp_crc32c_sse42 does: about 20 times the table version, which matters because every
// pushed segment is walked (and its records' CRCs checked) before it is acknowledged.
// x86 is little-endian: one unaligned load (load_le's byte loop is not always fused into one).
inline std::uint64_t word_at(const std::byte* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42_serial(std::uint32_t crc, const std::byte* data, std::size_t size) {
  std::size_t i = 0;
  std::uint64_t wide = crc;
  for (; i + 8 <= size; i += 8) wide = __builtin_ia32_crc32di(wide, word_at(data + i));
  crc = static_cast<std::uint32_t>(wide);
  for (; i < size; ++i) crc = __builtin_ia32_crc32qi(crc, std::to_integer<std::uint8_t>(data[i]));
  return crc;
}

// The crc32 instruction has a latency of 3 cycles and a throughput of 1, so one dependent
// chain uses a third of it. Large buffers (a 16 MiB segment checked again before it is served
// from the prefetch spool) run three chains over three consecutive blocks and join them: the
// state after block A then B is shift(state after A) ^ crc(B from state 0), where shift is the
// effect of k_lane zero bytes, a linear map precomputed as four byte tables.
constexpr std::size_t k_lane = 4096;

struct LaneShift {
  std::array<std::array<std::uint32_t, 256>, 4> table{};
  std::uint32_t operator()(std::uint32_t crc) const {
    return table[0][crc & 0xFFU] ^ table[1][(crc >> 8) & 0xFFU] ^ table[2][(crc >> 16) & 0xFFU] ^ table[3][crc >> 24];
  }
};

__attribute__((target("sse4.2"))) LaneShift make_lane_shift() {
  static const std::array<std::byte, k_lane> zeros{};
  std::array<std::uint32_t, 32> bit{};
  for (int b = 0; b < 32; ++b) bit[b] = crc32c_sse42_serial(1U << b, zeros.data(), zeros.size());
  LaneShift shift;
  for (int byte = 0; byte < 4; ++byte)
    for (std::uint32_t v = 0; v < 256; ++v) {
      std::uint32_t out = 0;
      for (int b = 0; b < 8; ++b)
        if (v & (1U << b)) out ^= bit[byte * 8 + b];
      shift.table[byte][v] = out;
    }
  return shift;
}

__attribute__((target("sse4.2"))) std::uint32_t crc32c_update_sse42(std::uint32_t crc, std::span<const std::byte> data) {
  const std::byte* p = data.data();
  std::size_t size = data.size();
  if (size >= 3 * k_lane) {
    static const LaneShift shift = make_lane_shift();
    while (size >= 3 * k_lane) {
      std::uint64_t a = crc, b = 0, c = 0;
      for (std::size_t i = 0; i < k_lane; i += 8) {
        a = __builtin_ia32_crc32di(a, word_at(p + i));
        b = __builtin_ia32_crc32di(b, word_at(p + k_lane + i));
        c = __builtin_ia32_crc32di(c, word_at(p + 2 * k_lane + i));
      }
      crc = shift(shift(static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b)) ^ static_cast<std::uint32_t>(c);
      p += 3 * k_lane;
      size -= 3 * k_lane;
    }
  }
  return crc32c_sse42_serial(crc, p, size);
}

bool have_sse42() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#endif

}  // namespace

std::uint32_t crc32c_update(std::uint32_t crc, std::span<const std::byte> data) {
#if defined(__x86_64__)
  if (have_sse42()) return crc32c_update_sse42(crc, data);
#endif
  return crc32c_update_portable(crc, data);
}

std::uint32_t crc32c(std::span<const std::byte> data) { return crc32c_update(0xFFFFFFFFU, data) ^ 0xFFFFFFFFU; }

}  // namespace walvault
