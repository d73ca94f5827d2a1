// Fuzz target for the S3 XML parsers. The first byte picks the parser; the rest is the
// document. Whatever a parser accepts is rendered back where a renderer exists and parsed
// again, which must give the same result.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/s3/wire/s3_xml.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

constexpr size_t kLimit = 64 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace cairn::s3;
  switch (data[0] % 4) {
    case 0: {
      auto parts = ParseCompleteMultipartUpload(body, kLimit);
      if (parts.ok()) {
        Check(!parts->empty());
        for (size_t i = 1; i < parts->size(); ++i) {
          Check((*parts)[i - 1].part_number < (*parts)[i].part_number);
        }
      }
      break;
    }
    case 1: {
      auto request = ParseDelete(body, kLimit);
      if (request.ok()) Check(!request->objects.empty() && request->objects.size() <= 1000);
      break;
    }
    case 2: {
      auto tags = ParseTagging(body, kLimit);
      if (tags.ok()) {
        Check(tags->size() <= kMaxObjectTags);
        auto again = ParseTagging(RenderTagging(*tags), kLimit);
        Check(again.ok() && *again == *tags);
      }
      break;
    }
    default: {
      auto location = ParseCreateBucketConfiguration(body, kLimit);
      (void)location.ok();
      break;
    }
  }
  return 0;
}
