#pragma once
// Timestamps as walvault reads and prints them. Internally: microseconds since the Unix epoch,
// UTC. Input: RFC 3339 (2026-11-24T09:30:00Z, +02:00 offsets, fractions) and PostgreSQL's
// 'YYYY-MM-DD HH:MM:SS[.ffffff][+TZ]' with a numeric offset or UTC/GMT/Z (no offset means UTC).
// Output: RFC 3339 in UTC.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace walvault {

// PostgreSQL's TimestampTz counts microseconds from 2000-01-01 00:00:00 UTC.
inline constexpr std::int64_t k_postgres_epoch_offset_us = 946684800LL * 1000000;
inline std::int64_t unix_us_from_postgres(std::int64_t pg_us) { return pg_us + k_postgres_epoch_offset_us; }

std::optional<std::int64_t> parse_timestamp(std::string_view text);
std::string format_timestamp(std::int64_t unix_us);  // 2026-11-24T09:30:00.123456Z (fraction only when non-zero)
std::int64_t now_unix_us();
// Monotonic microseconds (steady clock): for deadlines and ages, never for what is shown.
std::int64_t now_steady_us();

// "30m", "48h", "7d", "90s", "1h30m"; nullopt on anything else.
std::optional<std::int64_t> parse_duration_us(std::string_view text);
std::string format_duration(std::int64_t us);  // "3h 12m", "45s"

}  // namespace walvault
