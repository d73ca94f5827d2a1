// A streaming multipart/form-data parser (RFC 7578, RFC 2046 section 5.1) for S3 POST
// Object, the HTML form upload:
//
//   --<boundary>\r\n
//   Content-Disposition: form-data; name="key"\r\n
//   \r\n
//   photos/${filename}\r\n
//   --<boundary>\r\n
//   Content-Disposition: form-data; name="file"; filename="cat.jpg"\r\n
//   Content-Type: image/jpeg\r\n
//   \r\n
//   <the object's bytes>\r\n
//   --<boundary>--\r\n
//
// Feed it the request body in slices of any size (one byte at a time works). The fields
// before the part named "file" are kept (bounded: see FormLimits); the file part's content
// is handed out as it arrives and never buffered whole; everything after the file part
// (more fields, the closing boundary) is ignored, as S3 ignores it. The parser holds back
// at most the delimiter's length of file bytes, so memory stays bounded whatever the size
// of the file. Pure and socket-free; any error is sticky.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::api::s3::post {

// An error to answer a POST form with: HTTP status, S3 error code and message.
struct PostError {
  int status = 400;
  std::string code;
  std::string message;
};

// Bounds on what the parser keeps. S3 documents 20 KB for all the form's fields and
// boundaries together (everything but the file's content); Cairn allows that much for
// each field and ten times more in all, so any form S3 takes fits, while a connection
// cannot make the server hold more than max_fields_bytes (plus one header line) of fields.
struct FormLimits {
  size_t max_field_bytes = 20 * 1024;       // one field's value
  size_t max_fields_bytes = 256 * 1024;     // everything before the file's content
  size_t max_header_line_bytes = 8 * 1024;  // one part header line
};

struct FormField {
  std::string name;  // as sent (names are compared case-insensitively)
  std::string value;
};

// The part named "file": its headers (its content is streamed, not kept).
struct FilePart {
  std::string name;          // "file", in the case the client used
  std::string filename;      // the filename parameter as sent; empty when absent
  std::string content_type;  // the part's Content-Type header; empty when absent
};

// Whether a Content-Type header value names multipart/form-data (case-insensitive,
// parameters ignored).
bool IsFormDataContentType(std::string_view content_type);
// The boundary parameter of a multipart/form-data Content-Type: 1 to 70 characters
// (RFC 2046), quoted or not. MalformedPOSTRequest when it is missing, empty, longer
// than 70 characters or holds a control character.
std::optional<PostError> ParseFormBoundary(std::string_view content_type, std::string* boundary);

// The file name S3 substitutes for ${filename}: the text after the last '/' or '\'.
std::string BaseFilename(std::string_view filename);

class FormDataParser {
 public:
  explicit FormDataParser(std::string boundary, FormLimits limits = {});

  // Consumes `input`, appending the file part's content that is now certain to be content
  // to `*file_bytes`. Errors: MalformedPOSTRequest for a body that is not well-formed
  // multipart/form-data (a part without Content-Disposition form-data and a name, a
  // header line without CRLF or over the limit, folded header lines, bytes other than
  // CRLF or "--" after a boundary), MaxPostPreDataLengthExceededError for fields over
  // the limits.
  std::optional<PostError> Feed(std::string_view input, std::string* file_bytes);
  // The body ended. MalformedPOSTRequest if it ended inside a part, InvalidArgument if
  // the form had no part named "file"; OK once the file part was complete.
  std::optional<PostError> Finish();

  // The file part's headers were read: fields() is final and its content starts.
  bool file_started() const { return file_started_; }
  // The file part's closing delimiter was read; the rest of the body is ignored.
  bool file_complete() const { return state_ == State::kDone && file_started_; }
  const std::vector<FormField>& fields() const { return fields_; }
  const FilePart& file() const { return file_; }
  // File content bytes handed out so far.
  uint64_t file_size() const { return file_size_; }
  // Input held inside the parser (fields not complete yet, or the file's held-back tail).
  size_t buffered_bytes() const { return buffer_.size(); }

 private:
  enum class State {
    kPreamble,        // before the first boundary (its bytes are discarded)
    kAfterDelimiter,  // a boundary was read: "--" (the end) or CRLF (a part) follows
    kHeaders,         // a part's header lines
    kField,           // a field's value
    kFile,            // the file's content
    kDone,            // the file part ended, or the closing boundary came first
    kFailed,
  };

  std::optional<PostError> Fail(std::string code, std::string message);
  // Works through buffer_ in the states before the file; returns once it needs more input.
  std::optional<PostError> Process(std::string* file_bytes);
  std::optional<PostError> ParsePartHeader(std::string_view line);
  std::optional<PostError> EndPartHeaders();
  // File content: hands out everything but a possible delimiter start.
  void ConsumeFile(std::string_view input, std::string* file_bytes);
  // The same with nothing held back from before.
  void ScanFile(std::string_view input, std::string* file_bytes);

  const std::string delimiter_;  // "\r\n--" + boundary
  const FormLimits limits_;
  State state_ = State::kPreamble;
  std::optional<PostError> error_;
  // Unprocessed input of the states before the file (bounded by the limits), or the held
  // back tail of the file content (shorter than the delimiter).
  std::string buffer_;
  uint64_t pre_file_bytes_ = 0;  // consumed before the file's content (limit check)
  // Where the next search for a delimiter or line end in buffer_ starts: the bytes before
  // it were searched already, so slow senders do not make the search quadratic.
  size_t search_from_ = 0;
  // The part being read.
  bool part_has_disposition_ = false;
  bool part_is_file_ = false;
  std::string part_name_;
  std::string part_filename_;
  std::string part_content_type_;
  bool file_started_ = false;
  std::vector<FormField> fields_;
  FilePart file_;
  uint64_t file_size_ = 0;
};

}  // namespace cairn::api::s3::post
