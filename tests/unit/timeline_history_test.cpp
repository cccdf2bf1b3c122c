#include "common/core/timeline_history.hpp"

#include <gtest/gtest.h>

#include <string>

namespace walvault {
namespace {

std::string error_of(std::string_view content, std::uint32_t timeline, std::string_view file = "00000003.history") {
  auto result = parse_timeline_history(content, timeline, file);
  EXPECT_FALSE(result) << "accepted: " << content;
  if (result) return "<accepted>";
  EXPECT_EQ(result.error().kind, ErrorKind::refused);
  return result.error().message;
}

TEST(TimelineHistory, ParsesPostgresOutput) {
  // Exactly what PostgreSQL 15 writes after a promotion.
  auto entries = parse_timeline_history("1\t0/3000158\tno recovery target specified\n", 2, "00000002.history");
  ASSERT_TRUE(entries) << entries.error().message;
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].parent, 1u);
  EXPECT_EQ((*entries)[0].switch_lsn, 0x3000158u);
  EXPECT_EQ((*entries)[0].reason, "no recovery target specified");
}

TEST(TimelineHistory, ParsesMultipleLinesWithBlankLinesAndComments) {
  const std::string content =
      "# written by a test\n"
      "1\t0/3000158\tno recovery target specified\n"
      "\n"
      "   \t\n"
      "2\t0/5000000\tat restore point \"before_upgrade\"\n"
      "  # indented comment\n"
      "4\t1/A0\tbefore 2024-01-01 00:00:00+00\n";
  auto entries = parse_timeline_history(content, 5, "00000005.history");
  ASSERT_TRUE(entries) << entries.error().message;
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].parent, 1u);
  EXPECT_EQ((*entries)[1].parent, 2u);
  EXPECT_EQ((*entries)[1].switch_lsn, 0x5000000u);
  EXPECT_EQ((*entries)[1].reason, "at restore point \"before_upgrade\"");
  EXPECT_EQ((*entries)[2].parent, 4u);
  EXPECT_EQ((*entries)[2].switch_lsn, 0x1000000A0ULL);
  EXPECT_EQ((*entries)[2].reason, "before 2024-01-01 00:00:00+00");
}

TEST(TimelineHistory, AcceptsMissingFinalNewlineAndEmptyReason) {
  auto entries = parse_timeline_history("1\t0/3000158", 2, "00000002.history");
  ASSERT_TRUE(entries) << entries.error().message;
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].reason, "");
  EXPECT_EQ((*entries)[0].switch_lsn, 0x3000158u);
}

TEST(TimelineHistory, AcceptsLowerCaseLsnAndSpaces) {
  auto entries = parse_timeline_history("1 0/3a0 reason\n", 2, "00000002.history");
  ASSERT_TRUE(entries) << entries.error().message;
  EXPECT_EQ((*entries)[0].switch_lsn, 0x3A0u);
}

TEST(TimelineHistory, EmptyContentHasNoEntries) {
  auto entries = parse_timeline_history("", 2, "00000002.history");
  ASSERT_TRUE(entries);
  EXPECT_TRUE(entries->empty());
  entries = parse_timeline_history("# only a comment\n\n", 2, "00000002.history");
  ASSERT_TRUE(entries);
  EXPECT_TRUE(entries->empty());
}

TEST(TimelineHistory, MalformedLineNamesFileAndLine) {
  const std::string prefix = "1\t0/3000158\tno recovery target specified\n";
  struct Case {
    std::string second_line;
    std::string cause;
  };
  const Case cases[] = {
      {"garbage\n", "expected a timeline number"},
      {"x2\t0/4000000\treason\n", "expected a timeline number"},
      {"2\n", "expected a switch LSN after the timeline number"},
      {"2x\t0/4000000\n", "expected a switch LSN after the timeline number"},
      {"2\tnot-an-lsn\treason\n", "invalid switch LSN 'not-an-lsn'"},
      {"2\t0/\treason\n", "invalid switch LSN '0/'"},
      {"2\t\n", "invalid switch LSN ''"},
      {"2\t123456789/0\n", "invalid switch LSN '123456789/0'"},
      {"12345678901\t0/4000000\n", "expected a timeline number"},
  };
  for (const auto& c : cases) {
    const std::string message = error_of(prefix + c.second_line, 3);
    EXPECT_NE(message.find("'00000003.history' line 2"), std::string::npos) << message;
    EXPECT_NE(message.find(c.cause), std::string::npos) << "for '" << c.second_line << "': " << message;
  }
}

TEST(TimelineHistory, LineNumbersCountBlankAndCommentLines) {
  const std::string message = error_of("# comment\n\n1\t0/1000000\tok\nbroken\n", 3);
  EXPECT_NE(message.find("line 4"), std::string::npos) << message;
}

TEST(TimelineHistory, RefusesParentNotBelowTimeline) {
  std::string message = error_of("3\t0/3000158\treason\n", 3);
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
  EXPECT_NE(message.find("parent timeline 3 is not below timeline 3"), std::string::npos) << message;

  message = error_of("1\t0/3000158\treason\n7\t0/4000000\treason\n", 3);
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_NE(message.find("parent timeline 7 is not below timeline 3"), std::string::npos) << message;

  message = error_of("0\t0/3000158\treason\n", 3);
  EXPECT_NE(message.find("parent timeline 0"), std::string::npos) << message;

  // A parent larger than any timeline id.
  message = error_of("4294967296\t0/3000158\treason\n", 3);
  EXPECT_NE(message.find("is not below timeline 3"), std::string::npos) << message;
}

TEST(TimelineHistory, RefusesNonIncreasingParents) {
  std::string message = error_of("2\t0/3000158\treason\n1\t0/4000000\treason\n", 3);
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_NE(message.find("increasing"), std::string::npos) << message;

  message = error_of("1\t0/3000158\treason\n1\t0/4000000\treason\n", 3);
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_NE(message.find("increasing"), std::string::npos) << message;
}

TEST(TimelineHistory, RefusesSwitchPointGoingBackwards) {
  const std::string message = error_of("1\t0/5000000\treason\n2\t0/4000000\treason\n", 3);
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_NE(message.find("switch LSN goes backwards"), std::string::npos) << message;
  // Equal switch points are fine (a timeline that lived for no WAL at all).
  EXPECT_TRUE(parse_timeline_history("1\t0/5000000\ta\n2\t0/5000000\tb\n", 3, "00000003.history"));
}

TEST(TimelineHistory, ErrorNamesTheGivenFile) {
  const std::string message = error_of("bogus\n", 9, "0000000A.history");
  EXPECT_NE(message.find("invalid timeline history file '0000000A.history' line 1"), std::string::npos) << message;
}

}  // namespace
}  // namespace walvault
