// Test-side aws-chunked encoder (the client half of the framing), shared by the unit
// tests and the aws-chunked fuzz target.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "api/s3/sigv4/aws_chunked.h"
#include "api/s3/sigv4/checksum.h"
#include "api/s3/sigv4/sigv4.h"
#include "core/hashing.h"

namespace cairn::api::s3::testing {

struct ChunkedEncoding {
  PayloadMode mode = PayloadMode::kStreamingSigned;
  size_t chunk_size = 64 * 1024;
  std::optional<ChecksumAlgorithm> trailer;
  // Signed modes.
  std::string signing_key;
  std::string amz_date;
  CredentialScope scope;
  std::string seed_signature;
};

inline std::string HexSize(size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[size % 16]);
    size /= 16;
  } while (size > 0);
  return out;
}

inline std::string EncodeAwsChunked(std::string_view payload, const ChunkedEncoding& e) {
  bool is_signed =
      e.mode == PayloadMode::kStreamingSigned || e.mode == PayloadMode::kStreamingSignedTrailer;
  std::string previous = e.seed_signature;
  std::string out;
  auto add_chunk = [&](std::string_view data) {
    out += HexSize(data.size());
    if (is_signed) {
      previous = SignString(
          e.signing_key, ChunkStringToSign(e.amz_date, e.scope, previous, Sha256Of(data).ToHex()));
      out += ";chunk-signature=" + previous;
    }
    out += "\r\n";
    out += data;
    if (!data.empty()) out += "\r\n";
  };
  size_t chunk_size = std::max<size_t>(e.chunk_size, 1);
  for (size_t offset = 0; offset < payload.size(); offset += chunk_size) {
    add_chunk(payload.substr(offset, chunk_size));
  }
  add_chunk({});
  if (e.trailer) {
    Checksummer checksum(*e.trailer);
    checksum.Update(payload);
    std::string line = std::string(ChecksumHeaderName(*e.trailer)) + ":" + checksum.FinishBase64();
    out += line + "\r\n";
    if (e.mode == PayloadMode::kStreamingSignedTrailer) {
      out += "x-amz-trailer-signature:" +
             SignString(e.signing_key,
                        TrailerStringToSign(e.amz_date, e.scope, previous, line + "\n")) +
             "\r\n";
    }
  }
  out += "\r\n";
  return out;
}

inline AwsChunkedOptions DecoderOptionsFor(const ChunkedEncoding& e, uint64_t payload_size) {
  AwsChunkedOptions options;
  options.mode = e.mode;
  options.signing_key = e.signing_key;
  options.amz_date = e.amz_date;
  options.scope = e.scope;
  options.seed_signature = e.seed_signature;
  options.trailer_checksum = e.trailer;
  options.decoded_content_length = payload_size;
  return options;
}

}  // namespace cairn::api::s3::testing
