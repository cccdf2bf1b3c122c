#pragma once
// Small text helpers shared by the parsers (config file, cron schedules, backup ids).
#include <string_view>

namespace walvault {

// Without leading and trailing spaces, tabs and carriage returns.
inline std::string_view trim_blanks(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

// Non-empty and only 0-9.
inline bool all_digits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace walvault
