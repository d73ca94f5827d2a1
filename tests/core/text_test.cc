// The ASCII text helpers of core/text.h.
#include "core/text.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn {
namespace {

TEST(TrimAsciiTest, TrimsOnlyTheGivenSetAtTheEnds) {
  EXPECT_EQ(TrimAscii(" \t a b \t ", kHttpWhitespace), "a b");
  EXPECT_EQ(TrimAscii("\r\n a \n", kHttpWhitespace), "\r\n a \n");
  EXPECT_EQ(TrimAscii("\r\n a \n", kXmlWhitespace), "a");
  EXPECT_EQ(TrimAscii("\v\f a \r", kXmlWhitespace), "\v\f a");
  EXPECT_EQ(TrimAscii("\v\f a \r", kAsciiWhitespace), "a");
  EXPECT_EQ(TrimAscii("", kAsciiWhitespace), "");
  EXPECT_EQ(TrimAscii(" \t\n", kAsciiWhitespace), "");
  EXPECT_EQ(TrimAscii("x", kAsciiWhitespace), "x");
}

TEST(QuoteForMessageTest, BoundsAndHidesUnprintableBytes) {
  EXPECT_EQ(QuoteForMessage("abc"), "'abc'");
  EXPECT_EQ(QuoteForMessage(std::string_view("a\r\n\0\x7f\xc3\xa9", 7)),
            "'a" + std::string(6, '?') + "'");
  EXPECT_EQ(QuoteForMessage(std::string(70, 'x')), "'" + std::string(64, 'x') + "...'");
}

TEST(SplitCommaListTest, TrimsItemsAndKeepsEmptyOnes) {
  EXPECT_EQ(SplitCommaList(" a ,\tb,,c "), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(SplitCommaList(""), (std::vector<std::string>{""}));
}

TEST(EscapeXmlTextTest, EscapesMarkupAndCarriageReturn) {
  EXPECT_EQ(EscapeXmlText("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c'");
  EXPECT_EQ(EscapeXmlText("'", {.escape_apostrophe = true}), "&apos;");
  // TAB and LF survive parsing as they are; a literal CR would come back as LF.
  EXPECT_EQ(EscapeXmlText("a\tb\nc\rd"), "a\tb\nc&#13;d");
  EXPECT_EQ(EscapeXmlText("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(EscapeXmlTextTest, ControlBytesReplacedOrReferenced) {
  const std::string text(
      "a\x01"
      "b\x1f"
      "c\x00"
      "d",
      7);
  EXPECT_EQ(EscapeXmlText(text), "a?b?c?d");
  EXPECT_EQ(EscapeXmlText(text, {.control = XmlTextOptions::Control::kReference}),
            "a&#1;b&#31;c&#0;d");
}

TEST(EscapeXmlTextTest, AppendsToWhatIsThere) {
  std::string out = "<a>";
  AppendXmlText(&out, "&");
  EXPECT_EQ(out, "<a>&amp;");
}

}  // namespace
}  // namespace cairn
