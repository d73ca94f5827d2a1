// Fuzz target for the aws-chunked decoder.
//
// The first input byte picks the payload mode, the trailer checksum and what to do:
//   bit 7 clear: decode the rest as a raw aws-chunked body, once in one piece and once in
//                slices whose sizes come from the second byte; both runs must agree on the
//                output, the status and the decoded length.
//   bit 7 set:   treat the rest as a payload, encode it correctly, decode it in slices,
//                and require the payload back with an OK Finish().
// Any disagreement aborts.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/s3/sigv4/aws_chunked.h"
#include "aws_chunked_encoder.h"

namespace {

using cairn::api::s3::AwsChunkedDecoder;
using cairn::api::s3::AwsChunkedOptions;
using cairn::api::s3::ChecksumAlgorithm;
using cairn::api::s3::PayloadMode;
using cairn::api::s3::SigV4Status;
using cairn::api::s3::testing::ChunkedEncoding;

struct Outcome {
  std::string output;
  SigV4Status status;
  uint64_t decoded = 0;
};

Outcome Decode(const AwsChunkedOptions& options, std::string_view body, uint8_t split_seed) {
  AwsChunkedDecoder decoder(options);
  Outcome outcome;
  uint32_t state = split_seed | 1u;
  while (!body.empty()) {
    size_t take = body.size();
    if (split_seed != 0) {
      state = state * 1103515245u + 12345u;
      take = std::min<size_t>(body.size(), 1 + (state >> 16) % 97);
    }
    outcome.status = decoder.Feed(body.substr(0, take), &outcome.output);
    body.remove_prefix(take);
    if (!outcome.status.ok()) break;
  }
  if (outcome.status.ok()) outcome.status = decoder.Finish();
  outcome.decoded = decoder.decoded_bytes();
  return outcome;
}

ChunkedEncoding EncodingFor(uint8_t selector) {
  static const std::string kKey = cairn::api::s3::DeriveSigningKey(
      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", {"20130524", "us-east-1", "s3"});
  static constexpr PayloadMode kModes[] = {
      PayloadMode::kStreamingSigned, PayloadMode::kStreamingSignedTrailer,
      PayloadMode::kStreamingUnsignedTrailer, PayloadMode::kStreamingUnsignedTrailer};
  static constexpr ChecksumAlgorithm kAlgorithms[] = {
      ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
      ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256};
  ChunkedEncoding e;
  e.mode = kModes[selector & 3];
  if (e.mode != PayloadMode::kStreamingSigned && ((selector >> 2) & 7) < 5) {
    e.trailer = kAlgorithms[(selector >> 2) & 7];
  }
  e.chunk_size = 1 + ((selector >> 5) & 3) * 7;
  e.signing_key = kKey;
  e.amz_date = "20130524T000000Z";
  e.scope = {"20130524", "us-east-1", "s3"};
  e.seed_signature = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint8_t selector = data[0], split_seed = data[1];
  std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  ChunkedEncoding encoding = EncodingFor(selector);
  if ((selector & 0x80) == 0) {
    AwsChunkedOptions options = cairn::api::s3::testing::DecoderOptionsFor(encoding, 0);
    // Half the inputs leave the length open so long bodies get past the length check.
    if ((split_seed & 1) == 0) {
      options.decoded_content_length.reset();
    } else {
      options.decoded_content_length = split_seed;
    }
    options.max_chunk_size = 4096;  // keeps the fuzzer's chunks short
    Outcome whole = Decode(options, rest, 0);
    Outcome split = Decode(options, rest, split_seed | 2);
    if (whole.output != split.output || whole.status.error() != split.status.error() ||
        whole.decoded != split.decoded) {
      abort();
    }
    if (whole.status.ok() && options.decoded_content_length &&
        whole.decoded != *options.decoded_content_length) {
      abort();
    }
    return 0;
  }
  std::string body = cairn::api::s3::testing::EncodeAwsChunked(rest, encoding);
  Outcome outcome =
      Decode(cairn::api::s3::testing::DecoderOptionsFor(encoding, rest.size()), body, split_seed);
  if (!outcome.status.ok() || outcome.output != rest) abort();
  return 0;
}
