// Incremental decoder for "Content-Encoding: aws-chunked" request bodies, the framing S3
// clients use for streaming SigV4 uploads:
//
//   signed:    <hex size>;chunk-signature=<sig>\r\n <data> \r\n ... 0;chunk-signature=<sig>\r\n
//              [trailer lines, x-amz-trailer-signature:<sig>\r\n] \r\n
//   unsigned:  <hex size>\r\n <data> \r\n ... 0\r\n [trailer lines] \r\n
//
// Feed it the body in slices of any size (one byte at a time works); it appends the
// decoded payload to an output buffer as soon as the bytes arrive and never buffers more
// than one header or trailer line. Chunk signatures are checked as each chunk completes,
// so payload bytes of a chunk are handed out BEFORE that chunk is verified: the caller
// must treat everything it received as unverified, and must not commit (make the object
// visible) until Finish() returns OK. Any error is sticky.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/s3/sigv4/checksum.h"
#include "api/s3/sigv4/sigv4.h"

namespace cairn::api::s3 {

inline constexpr size_t kMaxAwsChunkSize = 16 * 1024 * 1024;
inline constexpr size_t kMaxAwsChunkLineBytes = 1024;
inline constexpr size_t kMaxAwsChunkTrailerBytes = 4096;

// "AWS4-HMAC-SHA256-PAYLOAD\n" date "\n" scope "\n" previous "\n" hex(sha256("")) "\n"
// data_sha256_hex.
std::string ChunkStringToSign(std::string_view amz_date, const CredentialScope& scope,
                              std::string_view previous_signature,
                              std::string_view data_sha256_hex);
// "AWS4-HMAC-SHA256-TRAILER\n" date "\n" scope "\n" previous "\n"
// hex(sha256(canonical_trailers)), where canonical_trailers is "name:value\n" per trailer.
std::string TrailerStringToSign(std::string_view amz_date, const CredentialScope& scope,
                                std::string_view previous_signature,
                                std::string_view canonical_trailers);

struct AwsChunkedOptions {
  // One of the three streaming modes.
  PayloadMode mode = PayloadMode::kStreamingSigned;
  // Signed modes only: the request's signing key, date, scope and seed signature.
  std::string signing_key;
  std::string amz_date;
  CredentialScope scope;
  std::string seed_signature;
  // The checksum x-amz-trailer declared; the decoder computes it over the payload and
  // compares it with the trailer's value.
  std::optional<ChecksumAlgorithm> trailer_checksum;
  // x-amz-decoded-content-length; the payload must be exactly this long.
  std::optional<uint64_t> decoded_content_length;
  size_t max_chunk_size = kMaxAwsChunkSize;
  size_t max_line_bytes = kMaxAwsChunkLineBytes;
  size_t max_trailer_bytes = kMaxAwsChunkTrailerBytes;
};

// Options for a request VerifyRequest accepted; kInvalidRequest unless its payload mode
// is a streaming one.
SigV4Result<AwsChunkedOptions> AwsChunkedOptionsFor(const VerifiedRequest& request);

class AwsChunkedDecoder {
 public:
  explicit AwsChunkedDecoder(AwsChunkedOptions options);
  ~AwsChunkedDecoder();
  AwsChunkedDecoder(const AwsChunkedDecoder&) = delete;
  AwsChunkedDecoder& operator=(const AwsChunkedDecoder&) = delete;

  // Consumes all of `input`, appending decoded payload bytes to *out. Errors:
  // SignatureDoesNotMatch (a chunk or trailer signature), InvalidRequest (framing, sizes,
  // data after the end), IncompleteBody (final chunk before the declared length),
  // MalformedTrailerError, BadDigest (trailer checksum mismatch), InvalidArgument.
  SigV4Status Feed(std::string_view input, std::string* out);
  // Call at the end of the body. IncompleteBody if the stream stopped before the final
  // chunk and its trailer section; otherwise OK or the sticky error.
  SigV4Status Finish();

  uint64_t decoded_bytes() const;
  // True once the final chunk and the trailer section were read and checked.
  bool complete() const;
  // The declared trailer checksum's Base64 value as received (after a successful end).
  const std::optional<std::string>& trailer_checksum_value() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cairn::api::s3
