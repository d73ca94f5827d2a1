#include "api/s3/post/form_data.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace cairn::api::s3::post {
namespace {

const std::string kBoundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

std::string Part(const std::string& headers, const std::string& value) {
  return "--" + kBoundary + "\r\n" + headers + "\r\n\r\n" + value + "\r\n";
}

std::string Field(const std::string& name, const std::string& value) {
  return Part("Content-Disposition: form-data; name=\"" + name + "\"", value);
}

std::string FilePartOf(const std::string& content, const std::string& filename = "cat.jpg") {
  return Part("Content-Disposition: form-data; name=\"file\"; filename=\"" + filename +
                  "\"\r\nContent-Type: image/jpeg",
              content);
}

std::string Close() { return "--" + kBoundary + "--\r\n"; }

// A form with these fields, then a file with `content`, then a trailing field.
std::string Form(const std::vector<std::pair<std::string, std::string>>& fields,
                 const std::string& content) {
  std::string body;
  for (const auto& field : fields) body += Field(field.first, field.second);
  return body + FilePartOf(content) + Field("after", "ignored") + Close();
}

struct Parsed {
  std::optional<PostError> error;  // from Feed or Finish
  std::vector<FormField> fields;
  FilePart file;
  std::string content;
  bool complete = false;
};

// Feeds `body` split at the given offsets (ascending), then finishes.
Parsed ParseSplit(const std::string& body, const std::vector<size_t>& splits,
                  FormLimits limits = {}) {
  FormDataParser parser(kBoundary, limits);
  Parsed parsed;
  size_t start = 0;
  std::vector<size_t> ends = splits;
  ends.push_back(body.size());
  for (size_t end : ends) {
    parsed.error = parser.Feed(std::string_view(body).substr(start, end - start), &parsed.content);
    if (parsed.error) return parsed;
    start = end;
  }
  parsed.error = parser.Finish();
  parsed.fields = parser.fields();
  parsed.file = parser.file();
  parsed.complete = parser.file_complete();
  EXPECT_EQ(parser.file_size(), parsed.content.size());
  return parsed;
}

Parsed ParseWhole(const std::string& body, FormLimits limits = {}) {
  return ParseSplit(body, {}, limits);
}

void ExpectSame(const Parsed& a, const Parsed& b, const std::string& context) {
  ASSERT_EQ(a.error.has_value(), b.error.has_value()) << context;
  if (a.error) {
    EXPECT_EQ(a.error->code, b.error->code) << context;
    return;
  }
  ASSERT_EQ(a.fields.size(), b.fields.size()) << context;
  for (size_t i = 0; i < a.fields.size(); ++i) {
    EXPECT_EQ(a.fields[i].name, b.fields[i].name) << context;
    EXPECT_EQ(a.fields[i].value, b.fields[i].value) << context;
  }
  EXPECT_EQ(a.content, b.content) << context;
  EXPECT_EQ(a.file.filename, b.file.filename) << context;
  EXPECT_EQ(a.complete, b.complete) << context;
}

TEST(FormDataParser, ParsesFieldsAndStreamsTheFile) {
  const std::string body = Form(
      {{"key", "photos/${filename}"}, {"Content-Type", "image/jpeg"}, {"x-amz-meta-tag", "a\r\nb"}},
      "JPEG bytes");
  Parsed parsed = ParseWhole(body);
  ASSERT_FALSE(parsed.error) << parsed.error->message;
  ASSERT_EQ(parsed.fields.size(), 3u);
  EXPECT_EQ(parsed.fields[0].name, "key");
  EXPECT_EQ(parsed.fields[0].value, "photos/${filename}");
  EXPECT_EQ(parsed.fields[1].name, "Content-Type");
  EXPECT_EQ(parsed.fields[2].value, "a\r\nb");  // CRLF inside a value is content
  EXPECT_EQ(parsed.file.name, "file");
  EXPECT_EQ(parsed.file.filename, "cat.jpg");
  EXPECT_EQ(parsed.file.content_type, "image/jpeg");
  EXPECT_EQ(parsed.content, "JPEG bytes");
  EXPECT_TRUE(parsed.complete);
}

TEST(FormDataParser, SameResultWhereverTheBodyIsSplit) {
  // File content full of near-delimiters: CRLF, "--", a boundary without its CRLF, a
  // delimiter missing its last character, CR at the very end.
  const std::string tricky = "a\r\n\r\n--\r\n-" + kBoundary + "\r\n--" +
                             kBoundary.substr(0, kBoundary.size() - 1) + "X\r\n--\r";
  const std::string body = Form({{"key", "k"}, {"policy", "eyJ9"}, {"empty", ""}}, tricky);
  const Parsed whole = ParseWhole(body);
  ASSERT_FALSE(whole.error) << whole.error->message;
  EXPECT_EQ(whole.content, tricky);
  ASSERT_EQ(whole.fields.size(), 3u);
  EXPECT_EQ(whole.fields[2].value, "");
  for (size_t i = 0; i <= body.size(); ++i) {
    ExpectSame(whole, ParseSplit(body, {i}), "split at " + std::to_string(i));
  }
  for (size_t i = 0; i <= body.size(); i += 7) {
    for (size_t j = i; j <= body.size(); j += 5) {
      ExpectSame(whole, ParseSplit(body, {i, j}),
                 "split at " + std::to_string(i) + ", " + std::to_string(j));
    }
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < body.size(); ++i) every_byte.push_back(i);
  ExpectSame(whole, ParseSplit(body, every_byte), "one byte at a time");
}

TEST(FormDataParser, FirstBoundaryWithPreambleAndPadding) {
  // A preamble before the first boundary is ignored; so is transport padding after one.
  std::string body = "this is a preamble\r\n--" + kBoundary + "  \t\r\n" +
                     "Content-Disposition: form-data; name=key\r\n\r\nk\r\n" + FilePartOf("x") +
                     Close();
  Parsed parsed = ParseWhole(body);
  ASSERT_FALSE(parsed.error) << parsed.error->message;
  ASSERT_EQ(parsed.fields.size(), 1u);
  EXPECT_EQ(parsed.fields[0].value, "k");  // an unquoted name works too
  EXPECT_EQ(parsed.content, "x");
}

TEST(FormDataParser, HeaderNamesAndParametersAreCaseInsensitive) {
  std::string body = "--" + kBoundary +
                     "\r\ncontent-DISPOSITION:FORM-DATA;NAME=\"Key\" ; FileName=\"k.txt\"\r\n"
                     "X-Other: ignored\r\n\r\nv\r\n" +
                     "--" + kBoundary +
                     "\r\nContent-Disposition: form-data; name=\"FILE\"; "
                     "filename=\"C:\\Users\\me\\cat.jpg\"\r\n\r\ndata\r\n" +
                     Close();
  Parsed parsed = ParseWhole(body);
  ASSERT_FALSE(parsed.error) << parsed.error->message;
  ASSERT_EQ(parsed.fields.size(), 1u);
  EXPECT_EQ(parsed.fields[0].name, "Key");  // a field with a filename is still a field
  EXPECT_EQ(parsed.file.name, "FILE");
  EXPECT_EQ(parsed.file.filename, "C:\\Users\\me\\cat.jpg");  // backslashes kept literally
  EXPECT_EQ(BaseFilename(parsed.file.filename), "cat.jpg");
  EXPECT_EQ(parsed.content, "data");
}

TEST(FormDataParser, IgnoresEverythingAfterTheFile) {
  // More fields, a second file, even garbage and no closing boundary: S3 ignores them.
  std::string body = Field("key", "k") + FilePartOf("first") + FilePartOf("second") +
                     "garbage that is not multipart";
  Parsed parsed = ParseWhole(body);
  ASSERT_FALSE(parsed.error) << parsed.error->message;
  EXPECT_EQ(parsed.content, "first");
  EXPECT_EQ(parsed.fields.size(), 1u);
  EXPECT_TRUE(parsed.complete);
}

TEST(FormDataParser, EmptyFileAndEmptyFilename) {
  std::string body =
      Field("key", "k") + Part("Content-Disposition: form-data; name=\"file\"", "") + Close();
  Parsed parsed = ParseWhole(body);
  ASSERT_FALSE(parsed.error) << parsed.error->message;
  EXPECT_EQ(parsed.content, "");
  EXPECT_EQ(parsed.file.filename, "");
  EXPECT_TRUE(parsed.complete);
}

TEST(FormDataParser, AFormWithoutAFileIsRefused) {
  Parsed parsed = ParseWhole(Field("key", "k") + Close());
  ASSERT_TRUE(parsed.error);
  EXPECT_EQ(parsed.error->code, "InvalidArgument");
  EXPECT_EQ(parsed.error->message, "POST requires exactly one file upload per request.");
}

struct MalformedCase {
  std::string what;
  std::string body;
  std::string code = "MalformedPOSTRequest";
};

TEST(FormDataParser, RefusesMalformedBodies) {
  const std::string dash = "--" + kBoundary;
  const std::vector<MalformedCase> cases = {
      {"empty body", ""},
      {"no boundary at all", "key=value&file=x"},
      {"ends inside the file", Field("key", "k") + dash +
                                   "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                                   "half a file"},
      {"ends inside the headers", dash + "\r\nContent-Disposition: form-da"},
      {"ends inside a field", dash + "\r\nContent-Disposition: form-data; name=key\r\n\r\nk"},
      {"no Content-Disposition", dash + "\r\nContent-Type: text/plain\r\n\r\nv\r\n" + Close()},
      {"not form-data", dash + "\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n"},
      {"no name", dash + "\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nv\r\n"},
      {"two dispositions", dash + "\r\nContent-Disposition: form-data; name=a\r\n"
                                  "Content-Disposition: form-data; name=b\r\n\r\nv\r\n"},
      {"header without colon", dash + "\r\nContent-Disposition form-data\r\n\r\nv\r\n"},
      {"folded header", dash + "\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nv\r\n"},
      {"bare LF after a boundary", dash + "\nContent-Disposition: form-data; name=a\n\nv\n"},
      {"junk after a boundary", dash + "junk\r\nContent-Disposition: form-data; name=a\r\n\r\n"},
      {"NUL in a header", dash + "\r\nContent-Disposition: form-data; name=\"a" +
                              std::string(1, '\0') + "\"\r\n\r\nv\r\n"},
  };
  for (const MalformedCase& c : cases) {
    Parsed parsed = ParseWhole(c.body);
    ASSERT_TRUE(parsed.error) << c.what;
    EXPECT_EQ(parsed.error->code, c.code) << c.what << ": " << parsed.error->message;
    EXPECT_EQ(parsed.error->status, 400) << c.what;
  }
}

TEST(FormDataParser, ErrorsAreSticky) {
  FormDataParser parser(kBoundary);
  std::string out;
  const std::string bad = "--" + kBoundary + "\r\nno colon here\r\n\r\n";
  ASSERT_TRUE(parser.Feed(bad, &out));
  EXPECT_TRUE(parser.Feed(Field("key", "k"), &out));
  EXPECT_TRUE(parser.Finish());
  EXPECT_FALSE(parser.file_started());
}

TEST(FormDataParser, BoundsFieldsAndHeaderLines) {
  FormLimits limits;
  limits.max_field_bytes = 100;
  limits.max_fields_bytes = 1000;
  limits.max_header_line_bytes = 200;

  Parsed fits = ParseWhole(Field("key", std::string(100, 'v')) + FilePartOf("x") + Close(), limits);
  EXPECT_FALSE(fits.error);

  Parsed field = ParseWhole(Field("key", std::string(101, 'v')) + FilePartOf("x"), limits);
  ASSERT_TRUE(field.error);
  EXPECT_EQ(field.error->code, "MaxPostPreDataLengthExceededError");

  // A huge field is refused without waiting for its end (nothing but 'v' ever arrives).
  FormDataParser parser(kBoundary, limits);
  std::string out;
  std::optional<PostError> error =
      parser.Feed("--" + kBoundary + "\r\nContent-Disposition: form-data; name=big\r\n\r\n", &out);
  for (int i = 0; i < 100 && !error; ++i) error = parser.Feed(std::string(10, 'v'), &out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "MaxPostPreDataLengthExceededError");
  EXPECT_LE(parser.buffered_bytes(), 200u);

  std::string many;
  for (int i = 0; i < 40; ++i) many += Field("x-ignore-" + std::to_string(i), "v");
  Parsed total = ParseWhole(many + FilePartOf("x"), limits);
  ASSERT_TRUE(total.error);
  EXPECT_EQ(total.error->code, "MaxPostPreDataLengthExceededError");

  Parsed line = ParseWhole(
      Part("Content-Disposition: form-data; name=\"" + std::string(300, 'n') + "\"", "v"), limits);
  ASSERT_TRUE(line.error);
  EXPECT_EQ(line.error->code, "MalformedPOSTRequest");

  // A line that never ends is refused once it passes the limit.
  FormDataParser endless(kBoundary, limits);
  error = endless.Feed("--" + kBoundary + "\r\nX-Header: ", &out);
  for (int i = 0; i < 100 && !error; ++i) error = endless.Feed(std::string(10, 'h'), &out);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "MalformedPOSTRequest");

  // The file is not a field: it may be far larger than every limit.
  Parsed big =
      ParseWhole(Field("key", "k") + FilePartOf(std::string(50000, 'f')) + Close(), limits);
  ASSERT_FALSE(big.error) << big.error->message;
  EXPECT_EQ(big.content.size(), 50000u);
}

TEST(FormDataParser, StreamsALargeFileWithBoundedMemory) {
  FormDataParser parser(kBoundary);
  std::string out;
  ASSERT_FALSE(parser.Feed(Field("key", "k") + "--" + kBoundary +
                               "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n",
                           &out));
  ASSERT_TRUE(parser.file_started());
  std::mt19937 random(7);
  std::string piece(64 * 1024, '\0');
  uint64_t sent = 0;
  uint64_t received = 0;
  for (int i = 0; i < 160; ++i) {  // 10 MiB
    for (char& c : piece) c = static_cast<char>(random());
    out.clear();
    ASSERT_FALSE(parser.Feed(piece, &out));
    sent += piece.size();
    received += out.size();
    EXPECT_LE(parser.buffered_bytes(), kBoundary.size() + 4);
    EXPECT_LE(out.size(), piece.size() + kBoundary.size() + 4);
  }
  out.clear();
  ASSERT_FALSE(parser.Feed("\r\n" + Close(), &out));
  received += out.size();
  EXPECT_EQ(received, sent);
  EXPECT_EQ(parser.file_size(), sent);
  EXPECT_TRUE(parser.file_complete());
  EXPECT_FALSE(parser.Finish());
}

TEST(FormDataParser, SurvivesRandomInput) {
  std::mt19937 random(11);
  const std::string alphabet = "-\r\n: ;=\"abfiledContent-Disposition" + kBoundary;
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    const int length = static_cast<int>(random() % 400);
    for (int i = 0; i < length; ++i) body += alphabet[random() % alphabet.size()];
    if (round % 2 == 0) body = Field("key", "k") + body;
    FormLimits limits;
    limits.max_field_bytes = 50;
    limits.max_fields_bytes = 300;
    limits.max_header_line_bytes = 60;
    FormDataParser parser(kBoundary, limits);
    std::string out;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t n = 1 + random() % 17;
      (void)parser.Feed(std::string_view(body).substr(pos, n), &out);
      pos += n;
      EXPECT_LE(parser.buffered_bytes(), 300u);
    }
    (void)parser.Finish();
    EXPECT_EQ(parser.file_size(), out.size());
  }
}

TEST(FormBoundary, ParsesTheContentType) {
  std::string boundary;
  EXPECT_FALSE(ParseFormBoundary("multipart/form-data; boundary=abc", &boundary));
  EXPECT_EQ(boundary, "abc");
  EXPECT_FALSE(
      ParseFormBoundary("Multipart/Form-Data;BOUNDARY=\"a b:c\"; charset=utf-8", &boundary));
  EXPECT_EQ(boundary, "a b:c");
  EXPECT_FALSE(ParseFormBoundary("multipart/form-data; charset=x; boundary=" + std::string(70, 'b'),
                                 &boundary));
  EXPECT_EQ(boundary.size(), 70u);
  for (const std::string& bad :
       {std::string("multipart/form-data"), std::string("multipart/form-data; boundary="),
        std::string("multipart/form-data; boundary=\"\""),
        "multipart/form-data; boundary=" + std::string(71, 'b'),
        std::string("multipart/form-data; boundary=\"a\tb\x01\""),
        std::string("multipart/form-data; boundary=\"ends with space \"")}) {
    std::optional<PostError> error = ParseFormBoundary(bad, &boundary);
    ASSERT_TRUE(error) << bad;
    EXPECT_EQ(error->code, "MalformedPOSTRequest") << bad;
  }
  EXPECT_TRUE(IsFormDataContentType(" MULTIPART/form-data ; boundary=x"));
  EXPECT_FALSE(IsFormDataContentType("multipart/form-datax"));
  EXPECT_FALSE(IsFormDataContentType("application/x-www-form-urlencoded"));
}

TEST(FormBoundary, BaseFilename) {
  EXPECT_EQ(BaseFilename("cat.jpg"), "cat.jpg");
  EXPECT_EQ(BaseFilename("/home/me/cat.jpg"), "cat.jpg");
  EXPECT_EQ(BaseFilename("C:\\Program Files\\directory1\\file.txt"), "file.txt");
  EXPECT_EQ(BaseFilename("dir/"), "");
  EXPECT_EQ(BaseFilename(""), "");
}

}  // namespace
}  // namespace cairn::api::s3::post
