// libFuzzer target: whole HTTP requests against the native API (port 8080's routes: /v1/objects,
// by-key, usage, health, metrics), served in-process by the real server (http_fuzz_harness.h; input
// format in README.md).
#include <cstddef>
#include <cstdint>

#include "http_fuzz_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::fuzz::RunInput(cairn::fuzz::Api::kNative, data, size);
  return 0;
}
