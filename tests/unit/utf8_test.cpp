// util/utf8: the strict UTF-8 rules (RFC 3629) at every boundary, and the U+FFFD repair.
#include "runq/util/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace runq::util;

TEST(Utf8, SequenceLengths) {
  EXPECT_EQ(utf8_sequence_length("a", 0), 1u);
  EXPECT_EQ(utf8_sequence_length(std::string(1, '\0'), 0), 1u);
  EXPECT_EQ(utf8_sequence_length("\xC2\x80", 0), 2u);          // U+0080
  EXPECT_EQ(utf8_sequence_length("\xDF\xBF", 0), 2u);          // U+07FF
  EXPECT_EQ(utf8_sequence_length("\xE0\xA0\x80", 0), 3u);      // U+0800
  EXPECT_EQ(utf8_sequence_length("\xED\x9F\xBF", 0), 3u);      // U+D7FF
  EXPECT_EQ(utf8_sequence_length("\xEE\x80\x80", 0), 3u);      // U+E000
  EXPECT_EQ(utf8_sequence_length("\xEF\xBF\xBF", 0), 3u);      // U+FFFF
  EXPECT_EQ(utf8_sequence_length("\xF0\x90\x80\x80", 0), 4u);  // U+10000
  EXPECT_EQ(utf8_sequence_length("\xF4\x8F\xBF\xBF", 0), 4u);  // U+10FFFF
  EXPECT_EQ(utf8_sequence_length("a\xC3\xA9", 1), 2u);         // at an offset
  EXPECT_EQ(utf8_sequence_length("a", 1), 0u);                 // past the end
}

TEST(Utf8, InvalidSequences) {
  for (const char* bad : {
           "\x80",              // a lone continuation byte
           "\xBF",              //
           "\xC0\x80",          // overlong NUL
           "\xC1\xBF",          // overlong U+007F
           "\xE0\x9F\xBF",      // overlong U+07FF
           "\xF0\x8F\xBF\xBF",  // overlong U+FFFF
           "\xED\xA0\x80",      // surrogate U+D800
           "\xED\xBF\xBF",      // surrogate U+DFFF
           "\xF4\x90\x80\x80",  // U+110000
           "\xF5\x80\x80\x80",  // lead byte beyond U+10FFFF
           "\xF8\x88\x80\x80",  // 5-byte form
           "\xFF",              //
           "\xC3",              // truncated
           "\xE2\x82",          //
           "\xF0\x9F\x98",      //
           "\xC3\x28",          // continuation byte missing
           "\xE2\x28\xA1",      //
       }) {
    EXPECT_EQ(utf8_sequence_length(bad, 0), 0u) << testing::PrintToString(std::string(bad));
    EXPECT_FALSE(is_valid_utf8(bad)) << testing::PrintToString(std::string(bad));
  }
}

TEST(Utf8, WholeStrings) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_TRUE(is_valid_utf8(std::string("nul\0inside", 10)));
  EXPECT_FALSE(is_valid_utf8("ok then \xC3"));
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80\xED\xB0\x80"));  // a CESU-8 surrogate pair
}

TEST(Utf8, LengthCountsCodePoints) {
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("caf\xC3\xA9"), 4u);
  EXPECT_EQ(utf8_length("\xE2\x82\xAC\xF0\x9F\x98\x80"), 2u);
}

TEST(Utf8, ToValidReplacesEachBadByte) {
  EXPECT_EQ(to_valid_utf8("fine \xC3\xA9"), "fine \xC3\xA9");
  EXPECT_EQ(to_valid_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  // Every byte of a bad sequence is replaced on its own (as command output always was).
  EXPECT_EQ(to_valid_utf8("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80ok"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDok");
  // A valid sequence right after a bad byte is kept.
  EXPECT_EQ(to_valid_utf8("\x80\xC3\xA9"), "\xEF\xBF\xBD\xC3\xA9");
  EXPECT_TRUE(is_valid_utf8(to_valid_utf8("\xF4\x90\x80\x80\xF8 tail")));
}
