#include "api/s3/post/form_data.h"
#include "core/text.h"

#include <algorithm>

namespace cairn::api::s3::post {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr size_t kMaxBoundaryBytes = 70;  // RFC 2046 section 5.1.1

bool HasControl(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7f) return true;
  }
  return false;
}

// The parameters after the first ';' of a header value ("form-data; name=\"a\"; b=c"),
// names lower-cased, values unquoted. A quoted value ends at the next '"': browsers
// percent-encode quotes in names and keep backslashes literally (Windows paths).
std::vector<std::pair<std::string, std::string>> HeaderParameters(std::string_view value,
                                                                  std::string_view* first) {
  std::vector<std::pair<std::string, std::string>> parameters;
  size_t semicolon = value.find(';');
  *first = TrimAscii(value.substr(0, semicolon), kHttpWhitespace);
  size_t pos = semicolon == std::string_view::npos ? value.size() : semicolon + 1;
  while (pos < value.size()) {
    while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t' || value[pos] == ';')) {
      ++pos;
    }
    if (pos >= value.size()) break;
    size_t name_end = pos;
    while (name_end < value.size() && value[name_end] != '=' && value[name_end] != ';') ++name_end;
    std::string name(TrimAscii(value.substr(pos, name_end - pos), kHttpWhitespace));
    for (char& c : name) c = ToLowerAscii(c);
    std::string parameter_value;
    pos = name_end;
    if (pos < value.size() && value[pos] == '=') {
      ++pos;
      while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t')) ++pos;
      if (pos < value.size() && value[pos] == '"') {
        size_t close = value.find('"', pos + 1);
        if (close == std::string_view::npos) close = value.size();
        parameter_value = std::string(value.substr(pos + 1, close - pos - 1));
        pos = close + 1;
        while (pos < value.size() && value[pos] != ';') ++pos;  // junk after the quote
      } else {
        size_t end = value.find(';', pos);
        if (end == std::string_view::npos) end = value.size();
        parameter_value = std::string(TrimAscii(value.substr(pos, end - pos), kHttpWhitespace));
        pos = end;
      }
    }
    parameters.emplace_back(std::move(name), std::move(parameter_value));
  }
  return parameters;
}

PostError MakeError(std::string code, std::string message) {
  PostError error;
  error.status = 400;
  error.code = std::move(code);
  error.message = std::move(message);
  return error;
}

constexpr std::string_view kMalformed = "MalformedPOSTRequest";
constexpr std::string_view kTooLarge = "MaxPostPreDataLengthExceededError";

}  // namespace

bool IsFormDataContentType(std::string_view content_type) {
  std::string_view media_type =
      TrimAscii(content_type.substr(0, content_type.find(';')), kHttpWhitespace);
  return EqualsIgnoreCaseAscii(media_type, "multipart/form-data");
}

std::optional<PostError> ParseFormBoundary(std::string_view content_type, std::string* boundary) {
  std::string_view media_type;
  auto parameters = HeaderParameters(content_type, &media_type);
  const std::string* found = nullptr;
  for (const auto& parameter : parameters) {
    if (parameter.first == "boundary") {
      found = &parameter.second;
      break;
    }
  }
  if (found == nullptr || found->empty()) {
    return MakeError(std::string(kMalformed),
                     "The body of your POST request is not well-formed multipart/form-data: "
                     "the Content-Type has no boundary parameter");
  }
  if (found->size() > kMaxBoundaryBytes || HasControl(*found) || found->back() == ' ') {
    return MakeError(std::string(kMalformed),
                     "The body of your POST request is not well-formed multipart/form-data: "
                     "the boundary must be 1 to 70 printable characters");
  }
  *boundary = *found;
  return std::nullopt;
}

std::string BaseFilename(std::string_view filename) {
  size_t slash = filename.find_last_of("/\\");
  return std::string(slash == std::string_view::npos ? filename : filename.substr(slash + 1));
}

FormDataParser::FormDataParser(std::string boundary, FormLimits limits)
    : delimiter_("\r\n--" + boundary), limits_(limits) {
  // The first boundary may open the body with no CRLF before it: seen after a virtual CRLF,
  // every boundary is the same delimiter.
  buffer_ = kCrlf;
}

std::optional<PostError> FormDataParser::Fail(std::string code, std::string message) {
  state_ = State::kFailed;
  buffer_.clear();
  buffer_.shrink_to_fit();
  error_ = MakeError(std::move(code), std::move(message));
  return error_;
}

std::optional<PostError> FormDataParser::Feed(std::string_view input, std::string* file_bytes) {
  switch (state_) {
    case State::kFailed:
      return error_;
    case State::kDone:
      return std::nullopt;  // after the file part: ignored
    case State::kFile:
      ConsumeFile(input, file_bytes);
      return std::nullopt;
    default:
      break;
  }
  buffer_.append(input);
  return Process(file_bytes);
}

std::optional<PostError> FormDataParser::Process(std::string* file_bytes) {
  size_t pos = 0;
  // Consumes buffer_[pos, end): counted against the limit on everything before the file.
  auto consume = [this, &pos](size_t end) {
    pre_file_bytes_ += end - pos;
    pos = end;
    search_from_ = pos;
  };
  std::optional<PostError> failed;
  while (!failed) {
    if (pre_file_bytes_ > limits_.max_fields_bytes) {
      return Fail(std::string(kTooLarge),
                  "Your POST request fields preceding the upload file were too large (more "
                  "than " +
                      std::to_string(limits_.max_fields_bytes) + " bytes)");
    }
    const size_t start = std::max(pos, search_from_);
    if (state_ == State::kPreamble || state_ == State::kField) {
      size_t found = buffer_.find(delimiter_, start);
      if (found == std::string::npos) {
        const size_t pending = buffer_.size() - pos;
        if (state_ == State::kField && pending > limits_.max_field_bytes + delimiter_.size()) {
          return Fail(std::string(kTooLarge),
                      "Your POST request fields preceding the upload file were too large (the "
                      "field '" +
                          part_name_.substr(0, 64) + "' is longer than " +
                          std::to_string(limits_.max_field_bytes) + " bytes)");
        }
        if (state_ == State::kPreamble && pending >= delimiter_.size()) {
          consume(buffer_.size() - (delimiter_.size() - 1));  // discarded
        }
        search_from_ =
            std::max(pos, buffer_.size() - std::min(buffer_.size(), delimiter_.size() - 1));
        break;
      }
      if (state_ == State::kField) {
        if (found - pos > limits_.max_field_bytes) {
          return Fail(std::string(kTooLarge),
                      "Your POST request fields preceding the upload file were too large (the "
                      "field '" +
                          part_name_.substr(0, 64) + "' is longer than " +
                          std::to_string(limits_.max_field_bytes) + " bytes)");
        }
        FormField field;
        field.name = part_name_;
        field.value = buffer_.substr(pos, found - pos);
        fields_.push_back(std::move(field));
      }
      consume(found + delimiter_.size());
      state_ = State::kAfterDelimiter;
    } else if (state_ == State::kAfterDelimiter) {
      if (buffer_.size() - pos < 2) break;
      if (buffer_.compare(pos, 2, "--") == 0) {
        // The closing boundary before any file part: the form is over.
        consume(pos + 2);
        state_ = State::kDone;
        break;
      }
      // Transport padding (spaces and tabs) may follow a boundary, then CRLF.
      size_t end = pos;
      while (end < buffer_.size() && (buffer_[end] == ' ' || buffer_[end] == '\t')) ++end;
      if (end - pos > limits_.max_header_line_bytes) {
        return Fail(std::string(kMalformed),
                    "The body of your POST request is not well-formed multipart/form-data: "
                    "too much padding after a boundary");
      }
      if (buffer_.size() - end < 2) break;
      if (buffer_.compare(end, 2, kCrlf) != 0) {
        return Fail(std::string(kMalformed),
                    "The body of your POST request is not well-formed multipart/form-data: a "
                    "boundary is not followed by CRLF");
      }
      consume(end + 2);
      state_ = State::kHeaders;
      part_has_disposition_ = false;
      part_is_file_ = false;
      part_name_.clear();
      part_filename_.clear();
      part_content_type_.clear();
    } else if (state_ == State::kHeaders) {
      size_t found = buffer_.find(kCrlf, start);
      if (found == std::string::npos) {
        if (buffer_.size() - pos > limits_.max_header_line_bytes) {
          return Fail(std::string(kMalformed),
                      "The body of your POST request is not well-formed multipart/form-data: a "
                      "part header line is longer than " +
                          std::to_string(limits_.max_header_line_bytes) + " bytes");
        }
        search_from_ = std::max(pos, buffer_.size() - std::min<size_t>(buffer_.size(), 1));
        break;
      }
      if (found - pos > limits_.max_header_line_bytes) {
        return Fail(std::string(kMalformed),
                    "The body of your POST request is not well-formed multipart/form-data: a "
                    "part header line is longer than " +
                        std::to_string(limits_.max_header_line_bytes) + " bytes");
      }
      std::string line = buffer_.substr(pos, found - pos);
      consume(found + 2);
      if (!line.empty()) {
        failed = ParsePartHeader(line);
        continue;
      }
      failed = EndPartHeaders();
      if (failed) break;
      if (state_ == State::kFile) {
        if (pre_file_bytes_ > limits_.max_fields_bytes) {
          return Fail(std::string(kTooLarge),
                      "Your POST request fields preceding the upload file were too large (more "
                      "than " +
                          std::to_string(limits_.max_fields_bytes) + " bytes)");
        }
        // What follows in the buffer is file content.
        std::string rest = buffer_.substr(pos);
        buffer_.clear();
        search_from_ = 0;
        ConsumeFile(rest, file_bytes);
        return std::nullopt;
      }
    } else {
      break;  // kDone
    }
  }
  if (failed) return Fail(failed->code, failed->message);
  if (state_ == State::kDone) {
    buffer_.clear();
    buffer_.shrink_to_fit();
    search_from_ = 0;
    return std::nullopt;
  }
  buffer_.erase(0, pos);
  search_from_ -= std::min(search_from_, pos);
  return std::nullopt;
}

std::optional<PostError> FormDataParser::ParsePartHeader(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    return MakeError(std::string(kMalformed),
                     "The body of your POST request is not well-formed multipart/form-data: "
                     "folded part header lines are not accepted");
  }
  if (HasControl(line)) {
    return MakeError(std::string(kMalformed),
                     "The body of your POST request is not well-formed multipart/form-data: a "
                     "part header holds a control character");
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos ||
      TrimAscii(line.substr(0, colon), kHttpWhitespace).empty()) {
    return MakeError(std::string(kMalformed),
                     "The body of your POST request is not well-formed multipart/form-data: a "
                     "part header line has no name");
  }
  std::string_view name = TrimAscii(line.substr(0, colon), kHttpWhitespace);
  std::string_view value = TrimAscii(line.substr(colon + 1), kHttpWhitespace);
  if (EqualsIgnoreCaseAscii(name, "content-disposition")) {
    if (part_has_disposition_) {
      return MakeError(std::string(kMalformed),
                       "The body of your POST request is not well-formed multipart/form-data: "
                       "a part has two Content-Disposition headers");
    }
    std::string_view disposition;
    auto parameters = HeaderParameters(value, &disposition);
    if (!EqualsIgnoreCaseAscii(disposition, "form-data")) {
      return MakeError(std::string(kMalformed),
                       "The body of your POST request is not well-formed multipart/form-data: "
                       "a part's Content-Disposition is not form-data");
    }
    part_has_disposition_ = true;
    for (auto& parameter : parameters) {
      if (parameter.first == "name") {
        part_name_ = std::move(parameter.second);
      } else if (parameter.first == "filename") {
        part_filename_ = std::move(parameter.second);
      }
    }
  } else if (EqualsIgnoreCaseAscii(name, "content-type")) {
    part_content_type_ = std::string(value);
  }
  return std::nullopt;
}

std::optional<PostError> FormDataParser::EndPartHeaders() {
  if (!part_has_disposition_ || part_name_.empty()) {
    return MakeError(std::string(kMalformed),
                     "The body of your POST request is not well-formed multipart/form-data: a "
                     "part has no Content-Disposition: form-data header with a name");
  }
  if (EqualsIgnoreCaseAscii(part_name_, "file")) {
    file_.name = part_name_;
    file_.filename = part_filename_;
    file_.content_type = part_content_type_;
    file_started_ = true;
    state_ = State::kFile;
  } else {
    state_ = State::kField;
  }
  return std::nullopt;
}

void FormDataParser::ConsumeFile(std::string_view input, std::string* file_bytes) {
  if (!buffer_.empty()) {
    if (input.size() < delimiter_.size()) {
      std::string data = std::move(buffer_);
      buffer_.clear();
      data.append(input);
      ScanFile(data, file_bytes);
      return;
    }
    // A delimiter that starts in the held-back bytes ends within the first
    // delimiter-size - 1 bytes of the input.
    std::string joined = buffer_;
    joined.append(input.substr(0, delimiter_.size() - 1));
    size_t found = joined.find(delimiter_);
    if (found != std::string::npos && found < buffer_.size()) {
      file_bytes->append(buffer_, 0, found);
      file_size_ += found;
      buffer_.clear();
      state_ = State::kDone;
      return;
    }
    file_bytes->append(buffer_);
    file_size_ += buffer_.size();
    buffer_.clear();
  }
  ScanFile(input, file_bytes);
}

void FormDataParser::ScanFile(std::string_view input, std::string* file_bytes) {
  size_t found = input.find(delimiter_);
  if (found != std::string_view::npos) {
    file_bytes->append(input.substr(0, found));
    file_size_ += found;
    buffer_.clear();
    buffer_.shrink_to_fit();
    state_ = State::kDone;
    return;
  }
  const size_t keep = std::min(input.size(), delimiter_.size() - 1);
  file_bytes->append(input.substr(0, input.size() - keep));
  file_size_ += input.size() - keep;
  buffer_.assign(input.substr(input.size() - keep));
}

std::optional<PostError> FormDataParser::Finish() {
  if (state_ == State::kFailed) return error_;
  if (file_complete()) return std::nullopt;
  if (state_ == State::kDone) {
    return Fail("InvalidArgument", "POST requires exactly one file upload per request.");
  }
  if (file_started_) {
    return Fail(std::string(kMalformed),
                "The body of your POST request is not well-formed multipart/form-data: it "
                "ended inside the file part");
  }
  return Fail(std::string(kMalformed),
              "The body of your POST request is not well-formed multipart/form-data: it ended "
              "before its closing boundary");
}

}  // namespace cairn::api::s3::post
