#include "common/core/cron.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "common/base/text.hpp"

namespace walvault {

namespace {

namespace chr = std::chrono;

// Inside a field, errors carry only the detail; parse_cron adds which option and field they are about.
template <typename T>
using Detailed = std::expected<T, std::string>;

constexpr std::array<std::string_view, 12> k_month_names = {"jan", "feb", "mar", "apr", "may", "jun",
                                                            "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> k_day_names = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct Field {
  std::string_view name;
  int min;
  int max;
  std::span<const std::string_view> names;  // names[i] stands for first_name_value + i
  int first_name_value;
  std::string_view name_kind;  // "month name" or "day name", for messages
};

constexpr std::array<Field, 5> k_fields = {{
    {"minute", 0, 59, {}, 0, {}},
    {"hour", 0, 23, {}, 0, {}},
    {"day-of-month", 1, 31, {}, 0, {}},
    {"month", 1, 12, k_month_names, 1, "month name"},
    {"day-of-week", 0, 7, k_day_names, 0, "day name"},
}};
constexpr std::size_t k_day_of_week = 4;

// Wide enough for every field (0..59); values are stored at their own index.
using Bits = std::bitset<64>;

bool all_letters(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  return true;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// Digits only, capped so that absurdly long numbers report "out of range" instead of overflowing.
int digits_value(std::string_view text) {
  int value = 0;
  for (char c : text) {
    value = value * 10 + (c - '0');
    if (value > 100000) return value;
  }
  return value;
}

Detailed<int> parse_value(const Field& field, std::string_view text) {
  const std::string range = std::to_string(field.min) + "-" + std::to_string(field.max);
  if (text.empty()) return std::unexpected("missing number (expected " + range + ")");
  if (all_digits(text)) {
    const int value = digits_value(text);
    if (value < field.min || value > field.max)
      return std::unexpected("value " + std::string(text) + " is out of range " + range);
    return value;
  }
  if (!field.names.empty()) {
    for (std::size_t i = 0; i < field.names.size(); ++i)
      if (equals_ignoring_case(text, field.names[i])) return field.first_name_value + static_cast<int>(i);
    return std::unexpected(quoted(text) + " is neither a number in " + range + " nor a " + std::string(field.name_kind) +
                           " (" + std::string(field.names.front()) + ".." + std::string(field.names.back()) + ")");
  }
  return std::unexpected(quoted(text) + " is not a number (expected " + range + ")");
}

// One list entry: `*`, `n`, `a-b`, each optionally followed by `/step`; `n/step` means n-max/step.
Detailed<void> add_entry(const Field& field, std::string_view entry, Bits& bits) {
  if (entry.empty()) return std::unexpected(std::string("empty entry in the list"));
  const std::size_t slash = entry.find('/');
  const std::string_view base = entry.substr(0, slash);
  const bool has_step = slash != std::string_view::npos;
  int step = 1;
  if (has_step) {
    const std::string_view step_text = entry.substr(slash + 1);
    const int span = field.max - field.min + 1;
    if (step_text.empty()) return std::unexpected(std::string("missing step after '/'"));
    if (!all_digits(step_text)) return std::unexpected("step " + quoted(step_text) + " is not a number");
    step = digits_value(step_text);
    // A step wider than the field cannot mean what was meant ("*/90" is not "every 90 minutes").
    if (step < 1 || step > span)
      return std::unexpected("step " + std::string(step_text) + " is out of range 1-" + std::to_string(span));
  }
  int lo = field.min;
  int hi = field.max;
  if (base != "*") {
    const std::size_t dash = base.find('-');
    auto first = parse_value(field, base.substr(0, dash));
    if (!first) return std::unexpected(std::move(first.error()));
    lo = *first;
    if (dash == std::string_view::npos) {
      hi = has_step ? field.max : lo;
    } else {
      const std::string_view end_text = base.substr(dash + 1);
      auto last = parse_value(field, end_text);
      if (!last) return std::unexpected(std::move(last.error()));
      hi = *last;
      // "fri-sun" reads as Friday through Sunday, so a range ending in the name sun ends at 7.
      if (field.name == "day-of-week" && hi == 0 && lo > 0 && all_letters(end_text)) hi = 7;
      if (lo > hi) return std::unexpected("range " + quoted(base) + " is reversed");
    }
  }
  for (int v = lo; v <= hi; v += step) bits.set(static_cast<std::size_t>(v));
  return {};
}

Detailed<Bits> parse_field(const Field& field, std::string_view text) {
  Bits bits;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    auto added = add_entry(field, text.substr(start, comma == std::string_view::npos ? comma : comma - start), bits);
    if (!added) return std::unexpected(std::move(added.error()));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return bits;
}

template <std::size_t N>
void copy_bits(const Bits& from, std::bitset<N>& to) {
  for (std::size_t i = 0; i < N; ++i) to[i] = from[i];
}

std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] != ' ' && text[pos] != '\t') ++pos;
    if (pos > start) fields.push_back(text.substr(start, pos - start));
  }
  return fields;
}

struct Macro {
  std::string_view name;
  std::string_view expansion;
};

constexpr std::array<Macro, 7> k_macros = {{
    {"@hourly", "0 * * * *"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
}};

template <std::size_t N>
int next_set(const std::bitset<N>& bits, int from) {
  for (auto i = static_cast<std::size_t>(from); i < N; ++i)
    if (bits[i]) return static_cast<int>(i);
  return -1;
}

bool day_matches(const CronSchedule& schedule, chr::sys_days day) {
  const chr::year_month_day ymd{day};
  const bool dom = schedule.days_of_month[static_cast<unsigned>(ymd.day())];
  const bool dow = schedule.days_of_week[chr::weekday{day}.c_encoding()];
  // Vixie cron: with both day fields restricted either may match; otherwise the `*` one matches
  // every day and both must hold.
  if (schedule.day_of_month_restricted && schedule.day_of_week_restricted) return dom || dow;
  return dom && dow;
}

}  // namespace

Result<CronSchedule> parse_cron(std::string_view spec) {
  const std::string_view text = trim_blanks(spec);
  if (!text.empty() && text.front() == '@') {
    for (const auto& macro : k_macros) {
      if (!equals_ignoring_case(text, macro.name)) continue;
      auto schedule = parse_cron(macro.expansion);
      if (schedule) schedule->text = std::string(spec);
      return schedule;
    }
    return fail(ErrorKind::invalid, "backup-schedule: unknown macro " + quoted(text) +
                                        " (expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually)");
  }
  const auto fields = split_fields(text);
  if (fields.size() != k_fields.size())
    return fail(ErrorKind::invalid, "backup-schedule: expected 5 fields 'minute hour day-of-month month day-of-week' "
                                    "(e.g. '0 2 * * *'), got " + std::to_string(fields.size()) + " in " + quoted(spec));
  std::array<Bits, 5> bits;
  for (std::size_t i = 0; i < k_fields.size(); ++i) {
    auto parsed = parse_field(k_fields[i], fields[i]);
    if (!parsed)
      return fail(ErrorKind::invalid, "backup-schedule: " + std::string(k_fields[i].name) + " field " + quoted(fields[i]) +
                                          ": " + parsed.error());
    bits[i] = *parsed;
  }
  if (bits[k_day_of_week][7]) bits[k_day_of_week].set(0);  // 7 is Sunday too

  CronSchedule schedule;
  copy_bits(bits[0], schedule.minutes);
  copy_bits(bits[1], schedule.hours);
  copy_bits(bits[2], schedule.days_of_month);
  copy_bits(bits[3], schedule.months);
  copy_bits(bits[k_day_of_week], schedule.days_of_week);
  // As in Vixie cron, a field counts as unrestricted when it starts with `*`, so "*/2" is not
  // restricted (it still limits the days, but combines with the other day field by AND).
  schedule.day_of_month_restricted = fields[2].front() != '*';
  schedule.day_of_week_restricted = fields[k_day_of_week].front() != '*';
  schedule.text = std::string(spec);
  return schedule;
}

std::optional<std::int64_t> next_cron_time(const CronSchedule& schedule, std::int64_t after_us) {
  // Keep the calendar inside years 1..9999 (plus the search window), well within chrono's range.
  constexpr std::int64_t k_min_us = -62135596800LL * 1000000;  // 0001-01-01T00:00:00Z
  constexpr std::int64_t k_max_us = 253402300799LL * 1000000;  // 9999-12-31T23:59:59Z
  if (after_us < k_min_us || after_us > k_max_us) return std::nullopt;
  if (schedule.minutes.none() || schedule.hours.none() || schedule.months.none() || schedule.days_of_month.none() ||
      schedule.days_of_week.none())
    return std::nullopt;

  const chr::sys_time<chr::microseconds> after{chr::microseconds{after_us}};
  const chr::sys_time<chr::minutes> start = chr::floor<chr::minutes>(after) + chr::minutes{1};
  const chr::sys_days start_day = chr::floor<chr::days>(start);
  chr::year_month_day end_ymd = chr::year_month_day{start_day} + chr::years{5};
  if (!end_ymd.ok()) end_ymd = end_ymd.year() / end_ymd.month() / chr::last;  // from Feb 29
  const chr::sys_days end_day{end_ymd};
  const chr::sys_time<chr::minutes> limit = end_day + (start - start_day);

  chr::sys_days day = start_day;
  const int start_minute_of_day = static_cast<int>((start - start_day).count());
  int hour = start_minute_of_day / 60;
  int minute = start_minute_of_day % 60;
  // Skip whole months, then whole days, then whole hours: at most a few thousand steps for 5 years.
  while (day <= end_day) {
    const chr::year_month_day ymd{day};
    if (!schedule.months[static_cast<unsigned>(ymd.month())]) {
      day = chr::sys_days{chr::year_month_day{ymd.year() / ymd.month() / 1} + chr::months{1}};
      hour = minute = 0;
      continue;
    }
    if (!day_matches(schedule, day)) {
      day += chr::days{1};
      hour = minute = 0;
      continue;
    }
    const int h = next_set(schedule.hours, hour);
    if (h < 0) {
      day += chr::days{1};
      hour = minute = 0;
      continue;
    }
    if (h != hour) minute = 0;
    const int m = next_set(schedule.minutes, minute);
    if (m < 0) {
      hour = h + 1;
      minute = 0;
      if (hour == 24) {
        day += chr::days{1};
        hour = 0;
      }
      continue;
    }
    const chr::sys_time<chr::minutes> fire = day + chr::hours{h} + chr::minutes{m};
    if (fire > limit) return std::nullopt;
    return chr::duration_cast<chr::microseconds>(fire.time_since_epoch()).count();
  }
  return std::nullopt;
}

}  // namespace walvault
