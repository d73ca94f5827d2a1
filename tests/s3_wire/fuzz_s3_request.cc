// Fuzz target for ParseS3Request. The input is split on '\n' into: method, Host header,
// request-target (split into path and query at the first '?'), then "name: value" header
// lines. Every outcome must be a value or an S3Error; the checks below hold for any input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/s3/wire/s3_request.h"
#include "core/types.h"

namespace {

std::string_view NextLine(std::string_view* input) {
  size_t newline = input->find('\n');
  std::string_view line = input->substr(0, newline);
  *input = newline == std::string_view::npos ? std::string_view() : input->substr(newline + 1);
  return line;
}

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  cairn::http::RequestHead head;
  head.method = std::string(NextLine(&input));
  head.headers.emplace_back("host", std::string(NextLine(&input)));
  head.target = std::string(NextLine(&input));
  size_t question = head.target.find('?');
  head.path = head.target.substr(0, question);
  if (question != std::string::npos) head.query = head.target.substr(question + 1);
  while (!input.empty()) {
    std::string_view line = NextLine(&input);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    head.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  cairn::s3::S3AddressingOptions options{{"s3.local", "localhost"}};
  auto parsed = cairn::s3::ParseS3Request(head, options);
  if (!parsed.ok()) {
    Check(!parsed.error().code_name().empty());
    Check(parsed.error().http_status() >= 400);
    return 0;
  }
  const cairn::s3::S3Request& request = *parsed;
  if (!request.key.empty()) Check(cairn::ValidateKey(request.key).ok());
  if (request.operation == cairn::s3::S3Operation::kCreateBucket) {
    Check(cairn::s3::IsValidS3BucketName(request.bucket));
  }
  Check(request.max_keys >= 0 && request.max_keys <= 1000);
  Check(request.part_number >= 0 && request.part_number <= 10000);
  if (request.copy_source) Check(cairn::ValidateKey(request.copy_source->key).ok());
  if (request.copy_source_range) {
    Check(request.copy_source_range->first <= request.copy_source_range->last);
  }
  return 0;
}
