#include <gtest/gtest.h>

#include <string>

#include "common/base/text.hpp"

namespace walvault {
namespace {

TEST(TextTest, ValidUtf8AcceptsTextAndRefusesWhatJsonCannotCarry) {
  for (const std::string good : {"", "plain ascii", "café ☕", "\xF0\x9F\x98\x80 emoji", "\xF4\x8F\xBF\xBF"})
    EXPECT_TRUE(valid_utf8(good)) << good;
  for (const std::string bad : {"caf\xE9", "\xC3", "\xE2\x98", "\x80", "\xC0\xAF" /* overlong '/' */, "\xED\xA0\x80" /* surrogate */,
                                "\xF4\x90\x80\x80" /* above U+10FFFF */, "\xF8\x88\x80\x80\x80", "ok\xFF"})
    EXPECT_FALSE(valid_utf8(bad)) << bad;
}

}  // namespace
}  // namespace walvault
