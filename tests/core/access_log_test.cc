// The access log line: its fields, and values a client chose that must neither end the
// line, forge a field, nor grow without bound.
#include "api/common/access_log.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn {
namespace {

using api::AccessLogEntry;
using api::AppendLogValue;
using api::FormatAccessLogLine;

std::string Value(std::string_view value, size_t max_bytes = 256) {
  std::string out;
  AppendLogValue(&out, value, max_bytes);
  return out;
}

TEST(AccessLog, S3LineHasEveryField) {
  AccessLogEntry entry;
  entry.api = "s3";
  entry.request_id = "0123456789ABCDEF";
  entry.operation = "GetObject";
  entry.method = "GET";
  entry.bucket = "photos";
  entry.key = "2024/a.jpg";
  entry.status = 200;
  entry.bytes_out = 1048576;
  entry.seconds = 0.0032141;
  entry.key_id = "AKIAEXAMPLE";
  entry.peer = "127.0.0.1:5555";
  EXPECT_EQ(FormatAccessLogLine(entry),
            "cairn: s3 request id=0123456789ABCDEF op=GetObject method=GET bucket=photos "
            "key=2024/a.jpg status=200 in=0 out=1048576 ms=3.214 key_id=AKIAEXAMPLE "
            "peer=127.0.0.1:5555");
}

TEST(AccessLog, NativeLineMarksWhatIsNotKnown) {
  AccessLogEntry entry;
  entry.api = "native";
  entry.request_id = "00000000000000AA";
  entry.method = "GET";
  entry.path = "/health";
  entry.status = 200;
  entry.bytes_out = 16;
  EXPECT_EQ(FormatAccessLogLine(entry),
            "cairn: native request id=00000000000000AA method=GET path=/health ns=- tenant=- "
            "key=- status=200 in=0 out=16 ms=0.000 key_id=- peer=-");
}

TEST(AccessLog, PlainValuesAreBare) {
  EXPECT_EQ(Value("a/b-c_d.e~f%20g:h@i+j"), "a/b-c_d.e~f%20g:h@i+j");
  // Quoted whenever a value could be mistaken for a separator or an absent field.
  EXPECT_EQ(Value("a b"), "\"a b\"");
  EXPECT_EQ(Value("a=b"), "\"a=b\"");
  EXPECT_EQ(Value("-"), "\"-\"");
  EXPECT_EQ(Value(""), "\"\"");
}

TEST(AccessLog, ControlCharactersAndQuotesCannotForgeALineOrAField) {
  const std::string forged = "k\ncairn: s3 request id=X status=200\" key_id=\"admin\r\t\x01\x7f\\";
  const std::string value = Value(forged);
  EXPECT_EQ(value,
            "\"k\\ncairn: s3 request id=X status=200\\\" key_id=\\\"admin\\r\\t\\x01\\x7f\\\\\"");
  for (char c : value) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
  // One quoted value: the only unescaped quotes are the first and the last character.
  for (size_t i = 1; i + 1 < value.size(); ++i) {
    if (value[i] == '"') {
      EXPECT_EQ(value[i - 1], '\\') << i;
    }
  }
}

TEST(AccessLog, UnicodeIsKeptButLineBreakingAndReorderingCharactersAreEscaped) {
  EXPECT_EQ(Value("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  EXPECT_EQ(Value("a\xC2\x85"
                  "b"),
            "\"a\\u0085b\"");  // NEL
  EXPECT_EQ(Value("a\xE2\x80\xA8"
                  "b"),
            "\"a\\u2028b\"");  // line separator
  EXPECT_EQ(Value("a\xE2\x80\xAE"
                  "b"),
            "\"a\\u202eb\"");                         // right-to-left override
  EXPECT_EQ(Value("a\xE2\x80\xA6"), "\"a\\u2026\"");  // the cut marker itself
  EXPECT_EQ(Value("a\xFF\xC3"
                  "b"),
            "\"a\\xff\\xc3b\"");                            // not UTF-8
  EXPECT_EQ(Value("\xED\xA0\x80"), "\"\\xed\\xa0\\x80\"");  // a surrogate
}

TEST(AccessLog, LongValuesAreCutAndMarked) {
  const std::string value = Value(std::string(1000, 'k'));
  EXPECT_EQ(value, "\"" + std::string(256, 'k') + "\xE2\x80\xA6\"");
  // Never inside a UTF-8 sequence: 255 bytes, then a 2-byte character across the cut.
  const std::string split = Value(std::string(255, 'k') + "\xC3\xA9" + "tail");
  EXPECT_EQ(split, "\"" + std::string(255, 'k') + "\xE2\x80\xA6\"");
  // Escaping cannot make a line unbounded: at most 4 characters per byte.
  EXPECT_LE(Value(std::string(5000, '\n')).size(), 256u * 4 + 5);
}

TEST(AccessLog, RequestIdsAre16HexDigits) {
  const std::string a = api::RandomRequestId(), b = api::RandomRequestId();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a.find_first_not_of("0123456789ABCDEF"), std::string::npos);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace cairn
