// Whole-path fuzzing of Cairn's HTTP APIs: the real HttpServer, the real native and S3
// handlers, a real SQLite metadata store and chunk store in a temporary directory, all in
// this process and on one thread. Each fuzz input becomes the raw bytes of one or more
// HTTP requests, each sent over a connection of its own (a socketpair the server adopts),
// so every byte goes through Beast's parser and the handlers exactly as a hostile
// client's would. README.md beside this file describes the
// input format.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cairn::fuzz {

enum class Api { kNative, kS3 };

// Runs one input against the server of `api`, starting the server on first use. Aborts
// when the server neither answers nor closes a connection within the hang timeout
// (CAIRN_FUZZ_HANG_SECONDS, default 10), or when it stops accepting connections.
void RunInput(Api api, const uint8_t* data, size_t size);

}  // namespace cairn::fuzz
