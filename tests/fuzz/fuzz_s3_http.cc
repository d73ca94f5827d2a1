// libFuzzer target: whole HTTP requests against the S3 API (SigV4 headers and presigned URLs,
// aws-chunked bodies, XML bodies), served in-process by the real server (http_fuzz_harness.h; input
// format in README.md).
#include <cstddef>
#include <cstdint>

#include "http_fuzz_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::RunInput(cairn::fuzz::Api::kS3, data, size);
  return 0;
}
