// Fuzz target for the POST form parser. The input's first line is the Content-Type (its
// boundary), its first byte after that picks the slice size, and the rest is the body,
// fed in slices of that size. Every outcome must be a form or a PostError; the checks
// below hold for any input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/s3/post/form_data.h"
#include "api/s3/post/post_policy.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace post = cairn::api::s3::post;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string_view content_type = input.substr(0, newline);
  input = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  std::string boundary;
  if (post::ParseFormBoundary(content_type, &boundary)) return 0;
  Check(!boundary.empty() && boundary.size() <= 70);
  size_t slice = 1;
  if (!input.empty()) {
    slice = 1 + static_cast<unsigned char>(input[0]);
    input.remove_prefix(1);
  }
  post::FormLimits limits;
  limits.max_field_bytes = 256;
  limits.max_fields_bytes = 2048;
  limits.max_header_line_bytes = 128;
  post::FormDataParser parser(boundary, limits);
  std::string file;
  for (size_t pos = 0; pos < input.size(); pos += slice) {
    std::optional<post::PostError> error = parser.Feed(input.substr(pos, slice), &file);
    Check(parser.buffered_bytes() <= 2048 + 2 * slice + 256);
    if (error) {
      Check(error->status == 400 && !error->code.empty());
      break;
    }
  }
  std::optional<post::PostError> finished = parser.Finish();
  Check(parser.file_size() == file.size());
  Check(finished.has_value() != parser.file_complete());
  size_t field_bytes = 0;
  for (const post::FormField& field : parser.fields()) {
    Check(!field.name.empty() && field.value.size() <= limits.max_field_bytes);
    field_bytes += field.value.size();
  }
  Check(field_bytes <= limits.max_fields_bytes + limits.max_field_bytes);
  post::FormValues values = post::CollectFormValues(parser.fields(), parser.file().filename);
  post::PostCredentials credentials;
  (void)post::ParsePostCredentials(values, &credentials);
  if (auto found = values.find("policy"); found != values.end()) {
    post::PostPolicy policy;
    if (!post::ParsePostPolicy(found->second, &policy)) {
      (void)post::CheckPostPolicy(policy, values, "bucket", 0);
    }
  }
  return 0;
}
