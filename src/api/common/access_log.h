// The access log: one line per request answered by either API, on standard error like
// every other log line, so an operator can see what a client did:
//
//   cairn: s3 request id=17F0A3C2D4E5B6A7 op=GetObject method=GET bucket=photos
//     key=2024/a.jpg status=200 in=0 out=1048576 ms=3.214 key_id=AKIA... peer=10.0.0.7:51234
//   cairn: native request id=... method=POST path=/v1/objects ns=docs tenant=acme
//     key="notes 1.txt" status=201 in=5120 out=412 ms=1.870 key_id=3f9c0a1b2c3d4e5f peer=...
//
// (one line each). Never a secret: no header, no query string (presigned URLs carry their
// signature there), only the public id of the credential. Values a client chose (keys,
// paths, names) are written bare when they hold only plain characters, otherwise quoted
// with '"', '\' and control characters escaped, so no value can end the line or forge a
// field; they are cut at 256 bytes, which "…" marks (a "…" in a value is escaped).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::api {

struct AccessLogEntry {
  std::string_view api;         // "native" or "s3"
  std::string_view request_id;  // the one the response carries
  std::string_view operation;   // S3 operation name; empty: not known (or native)
  std::string_view method;
  std::string_view path;    // native: the request path, without the query
  std::string_view bucket;  // S3 bucket; native: namespace
  std::string_view tenant;  // native only
  std::string_view key;
  int status = 0;
  uint64_t bytes_in = 0;    // request body bytes received
  uint64_t bytes_out = 0;   // response body bytes sent
  double seconds = 0;       // from the request head received to the response sent
  std::string_view key_id;  // S3 access key id or API key id ("jwt" for a JWT); empty: none
  std::string_view peer;    // "address:port" of the client
};

// The line for `entry`, without a trailing newline.
std::string FormatAccessLogLine(const AccessLogEntry& entry);

// Writes the line to standard error in one write. Thread-safe.
void LogAccess(const AccessLogEntry& entry);

// Appends `value` to `out` as the access log writes a client-chosen value: bare or quoted
// and escaped, cut after `max_bytes` bytes (exposed for tests).
void AppendLogValue(std::string* out, std::string_view value, size_t max_bytes = 256);

// A fresh request id: 16 upper-case hex digits, like S3's.
std::string RandomRequestId();

}  // namespace cairn::api
