// Tests for the aws-chunked decoder.
//
// Vector sources: AWS S3 API Reference, "Signature Calculations for the Authorization
// Header: Transferring Payload in Multiple Chunks" (PUT examplebucket/chunkObject.txt:
// 64 KiB + 1 KiB of 'a', seed signature 4f232c43...) and "Signature calculations for
// trailing headers" (the same payload with a CRC32C trailer, seed signature 106e2a8a...).
// Everything else round-trips through the encoder in aws_chunked_encoder.h.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "api/s3/sigv4/aws_chunked.h"
#include "aws_chunked_encoder.h"
#include "core/base64.h"

namespace cairn::api::s3 {
namespace {

using testing::ChunkedEncoding;
using testing::DecoderOptionsFor;
using testing::EncodeAwsChunked;

constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr TimestampMs kExampleTime = 1369353600000;  // 2013-05-24T00:00:00Z

const CredentialScope kScope{"20130524", "us-east-1", "s3"};

struct Decoded {
  std::string output;
  SigV4Status status;
};

// Feeds `body` in slices chosen by `rng` (whole when rng is null), then Finish().
Decoded DecodeAll(const AwsChunkedOptions& options, std::string_view body,
                  std::mt19937* rng = nullptr, size_t max_slice = 100) {
  AwsChunkedDecoder decoder(options);
  Decoded result;
  while (!body.empty()) {
    size_t take = body.size();
    if (rng != nullptr) take = std::min(body.size(), 1 + (*rng)() % max_slice);
    result.status = decoder.Feed(body.substr(0, take), &result.output);
    body.remove_prefix(take);
    if (!result.status.ok()) return result;
  }
  result.status = decoder.Finish();
  if (result.status.ok()) {
    EXPECT_TRUE(decoder.complete());
  }
  return result;
}

ChunkedEncoding SignedEncoding(PayloadMode mode, std::string seed) {
  ChunkedEncoding e;
  e.mode = mode;
  e.signing_key = DeriveSigningKey(kSecret, kScope);
  e.amz_date = "20130524T000000Z";
  e.scope = kScope;
  e.seed_signature = std::move(seed);
  return e;
}

constexpr std::string_view kExampleSeed =
    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

std::string AwsExampleBody() {
  return "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
         "\r\n" +
         std::string(65536, 'a') +
         "\r\n400;chunk-signature="
         "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n" +
         std::string(1024, 'a') +
         "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
         "\r\n\r\n";
}

SigningRequest AwsExampleRequest() {
  SigningRequest request;
  request.method = "PUT";
  request.raw_path = "/examplebucket/chunkObject.txt";
  request.headers = {{"content-encoding", "aws-chunked"},
                     {"content-length", "66824"},
                     {"host", "s3.amazonaws.com"},
                     {"x-amz-content-sha256", std::string(kStreamingSignedPayload)},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-decoded-content-length", "66560"},
                     {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  request.now_ms = kExampleTime;
  return request;
}

TEST(AwsChunkedTest, AwsDocumentationExample) {
  SigningRequest request = AwsExampleRequest();
  auto signed_request =
      SignRequest(request, {"AKIAIOSFODNN7EXAMPLE", std::string(kSecret), "us-east-1", "s3"});
  ASSERT_TRUE(signed_request.ok());
  EXPECT_EQ(signed_request->signature, kExampleSeed);
  EXPECT_EQ(signed_request->authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
            "x-amz-decoded-content-length;x-amz-storage-class, Signature=" +
                std::string(kExampleSeed));
  request.headers.emplace_back("authorization", signed_request->authorization);

  auto verified = VerifyRequest(
      request, [](std::string_view) -> Result<std::string> { return std::string(kSecret); });
  ASSERT_TRUE(verified.ok()) << verified.status().message();
  EXPECT_EQ(verified->seed_signature, kExampleSeed);
  auto options = AwsChunkedOptionsFor(*verified);
  ASSERT_TRUE(options.ok());

  std::string body = AwsExampleBody();
  ASSERT_EQ(body.size(), 66824u);
  ChunkedEncoding e = SignedEncoding(PayloadMode::kStreamingSigned, std::string(kExampleSeed));
  EXPECT_EQ(EncodeAwsChunked(std::string(66560, 'a'), e), body);

  Decoded whole = DecodeAll(*options, body);
  ASSERT_TRUE(whole.status.ok()) << whole.status.message();
  EXPECT_EQ(whole.output, std::string(66560, 'a'));
  std::mt19937 rng(1);
  Decoded pieces = DecodeAll(*options, body, &rng, 5000);
  ASSERT_TRUE(pieces.status.ok()) << pieces.status.message();
  EXPECT_EQ(pieces.output, whole.output);
  Decoded bytewise = DecodeAll(*options, body, &rng, 1);
  ASSERT_TRUE(bytewise.status.ok()) << bytewise.status.message();
  EXPECT_EQ(bytewise.output, whole.output);
}

TEST(AwsChunkedTest, AwsTrailerDocumentationExample) {
  ChunkedEncoding e =
      SignedEncoding(PayloadMode::kStreamingSignedTrailer,
                     "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e");
  e.trailer = ChecksumAlgorithm::kCrc32c;
  std::string body =
      "10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
      "\r\n" +
      std::string(65536, 'a') +
      "\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
      "\r\n" +
      std::string(1024, 'a') +
      "\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
      "\r\nx-amz-checksum-crc32c:sOO8/Q==\r\n"
      "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
      "\r\n\r\n";
  EXPECT_EQ(EncodeAwsChunked(std::string(66560, 'a'), e), body);
  AwsChunkedDecoder decoder(DecoderOptionsFor(e, 66560));
  std::string out;
  ASSERT_TRUE(decoder.Feed(body, &out).ok());
  ASSERT_TRUE(decoder.Finish().ok());
  EXPECT_EQ(out, std::string(66560, 'a'));
  EXPECT_EQ(decoder.trailer_checksum_value(), "sOO8/Q==");
}

TEST(AwsChunkedTest, RoundTripsEveryModeAndSplit) {
  std::mt19937 rng(20240101);
  const PayloadMode kModes[] = {PayloadMode::kStreamingSigned, PayloadMode::kStreamingSignedTrailer,
                                PayloadMode::kStreamingUnsignedTrailer};
  for (PayloadMode mode : kModes) {
    for (int trailer = -1; trailer < 5; ++trailer) {
      if (trailer >= 0 && mode == PayloadMode::kStreamingSigned) continue;
      for (size_t size : {0u, 1u, 100u, 8192u, 70001u}) {
        for (size_t chunk : {1u, 7u, 8192u, 65536u}) {
          if (size / chunk > 2000) continue;
          ChunkedEncoding e = SignedEncoding(mode, std::string(kExampleSeed));
          e.chunk_size = chunk;
          if (trailer >= 0) e.trailer = kAllChecksumAlgorithms[trailer];
          std::string payload(size, '\0');
          for (char& c : payload) c = static_cast<char>(rng());
          std::string body = EncodeAwsChunked(payload, e);
          Decoded decoded = DecodeAll(DecoderOptionsFor(e, size), body, &rng, 1 + rng() % 300);
          ASSERT_TRUE(decoded.status.ok())
              << PayloadModeName(mode) << " trailer " << trailer << " size " << size << " chunk "
              << chunk << ": " << decoded.status.message();
          ASSERT_EQ(decoded.output, payload);
        }
      }
    }
  }
}

TEST(AwsChunkedTest, CorruptedDataByteFailsTheChunkSignature) {
  ChunkedEncoding e = SignedEncoding(PayloadMode::kStreamingSigned, std::string(kExampleSeed));
  e.chunk_size = 1000;
  std::string payload(2500, 'x');
  std::string body = EncodeAwsChunked(payload, e);
  size_t offset = body.find("\r\n") + 2 + 1500 % 1000;  // a byte of the first chunk's data
  body[offset] ^= 1;
  AwsChunkedDecoder decoder(DecoderOptionsFor(e, payload.size()));
  std::string out;
  SigV4Status status = decoder.Feed(body, &out);
  EXPECT_EQ(status.error(), SigV4Error::kSignatureDoesNotMatch);
  EXPECT_EQ(status.http_status(), 403);
  EXPECT_LE(out.size(), 1000u);  // nothing past the bad chunk
  // Errors are sticky.
  EXPECT_EQ(decoder.Feed("more", &out).error(), SigV4Error::kSignatureDoesNotMatch);
  EXPECT_EQ(decoder.Finish().error(), SigV4Error::kSignatureDoesNotMatch);
}

TEST(AwsChunkedTest, ReorderedChunksFail) {
  ChunkedEncoding e = SignedEncoding(PayloadMode::kStreamingSigned, std::string(kExampleSeed));
  e.chunk_size = 4;
  std::string body = EncodeAwsChunked("aaaabbbb", e);
  // Each chunk is "4;chunk-signature=<64>\r\n" + 4 data bytes + "\r\n".
  const size_t n = body.find("\r\n") + 2 + 4 + 2;
  std::string swapped = body.substr(n, n) + body.substr(0, n) + body.substr(2 * n);
  EXPECT_EQ(DecodeAll(DecoderOptionsFor(e, 8), swapped).status.error(),
            SigV4Error::kSignatureDoesNotMatch);
}

TEST(AwsChunkedTest, TamperedTrailerChecksumIsBadDigest) {
  ChunkedEncoding e = SignedEncoding(PayloadMode::kStreamingUnsignedTrailer, "");
  e.trailer = ChecksumAlgorithm::kCrc32;
  e.chunk_size = 10;
  std::string payload = "hello, aws-chunked world";
  std::string body = EncodeAwsChunked(payload, e);
  std::string good_value = Base64Encode(std::string("\x12\x34\x56\x78", 4));
  size_t at = body.find("x-amz-checksum-crc32:") + 21;
  std::string tampered = body.substr(0, at) + good_value + body.substr(at + 8);
  Decoded decoded = DecodeAll(DecoderOptionsFor(e, payload.size()), tampered);
  EXPECT_EQ(decoded.status.error(), SigV4Error::kBadDigest);
  EXPECT_EQ(decoded.status.message(),
            "The CRC32 you specified did not match the calculated checksum.");

  // One flipped payload byte in unsigned mode is caught by the checksum.
  std::string flipped = body;
  flipped[body.find("\r\n") + 2] ^= 1;
  EXPECT_EQ(DecodeAll(DecoderOptionsFor(e, payload.size()), flipped).status.error(),
            SigV4Error::kBadDigest);

  // A value that is not a CRC32 at all.
  std::string garbage = body.substr(0, at) + "!!!!!!!!" + body.substr(at + 8);
  EXPECT_EQ(DecodeAll(DecoderOptionsFor(e, payload.size()), garbage).status.error(),
            SigV4Error::kInvalidRequest);

  // With a signed trailer the trailer signature catches the change first.
  ChunkedEncoding signed_e =
      SignedEncoding(PayloadMode::kStreamingSignedTrailer, std::string(kExampleSeed));
  signed_e.trailer = ChecksumAlgorithm::kCrc32;
  std::string signed_body = EncodeAwsChunked(payload, signed_e);
  at = signed_body.find("x-amz-checksum-crc32:") + 21;
  signed_body = signed_body.substr(0, at) + good_value + signed_body.substr(at + 8);
  EXPECT_EQ(DecodeAll(DecoderOptionsFor(signed_e, payload.size()), signed_body).status.error(),
            SigV4Error::kSignatureDoesNotMatch);
}

TEST(AwsChunkedTest, TruncatedStreamsNeverSucceed) {
  for (PayloadMode mode : {PayloadMode::kStreamingSigned, PayloadMode::kStreamingSignedTrailer,
                           PayloadMode::kStreamingUnsignedTrailer}) {
    ChunkedEncoding e = SignedEncoding(mode, std::string(kExampleSeed));
    if (mode != PayloadMode::kStreamingSigned) e.trailer = ChecksumAlgorithm::kSha256;
    e.chunk_size = 5;
    std::string payload = "0123456789abc";
    std::string body = EncodeAwsChunked(payload, e);
    for (size_t length = 0; length < body.size(); ++length) {
      Decoded decoded = DecodeAll(DecoderOptionsFor(e, payload.size()), body.substr(0, length));
      // The one tolerated truncation: no trailers declared, and only the final CRLF lost.
      bool tolerated = mode == PayloadMode::kStreamingSigned && length == body.size() - 2;
      EXPECT_EQ(decoded.status.ok(), tolerated) << PayloadModeName(mode) << " " << length;
      if (!tolerated) {
        EXPECT_EQ(decoded.status.error(), SigV4Error::kIncompleteBody) << length;
      }
    }
  }
}

AwsChunkedOptions UnsignedOptions(std::optional<uint64_t> length) {
  AwsChunkedOptions options;
  options.mode = PayloadMode::kStreamingUnsignedTrailer;
  options.decoded_content_length = length;
  return options;
}

TEST(AwsChunkedTest, LimitsAndFraming) {
  // A header line past the limit, even without a newline yet.
  AwsChunkedDecoder long_line(UnsignedOptions(std::nullopt));
  std::string out;
  EXPECT_EQ(long_line.Feed("5;" + std::string(2000, 'x'), &out).error(),
            SigV4Error::kInvalidRequest);
  // Chunks above 16 MiB.
  EXPECT_EQ(DecodeAll(UnsignedOptions(std::nullopt), "1000001\r\n").status.error(),
            SigV4Error::kInvalidRequest);
  EXPECT_EQ(DecodeAll(UnsignedOptions(std::nullopt), "ffffffffffffffffff\r\n").status.error(),
            SigV4Error::kInvalidRequest);
  // Bad framing.
  for (std::string_view bad : {"\r\n", "x\r\n", "5 \r\nhello\r\n", "5\nhello\r\n",
                               "5\r\nhelloX\r\n", "5\r\nhello\n\r", "-5\r\n", "5\r\r\nhello\r\n"}) {
    EXPECT_EQ(DecodeAll(UnsignedOptions(std::nullopt), bad).status.error(),
              SigV4Error::kInvalidRequest)
        << bad;
  }
  // Data after the end.
  EXPECT_EQ(DecodeAll(UnsignedOptions(std::nullopt), "0\r\n\r\nextra").status.error(),
            SigV4Error::kInvalidRequest);
  // Chunk extensions carry nothing in unsigned mode and are skipped.
  Decoded extensions =
      DecodeAll(UnsignedOptions(5), "5;name=value;flag\r\nhello\r\n0;chunk-signature=x\r\n\r\n");
  ASSERT_TRUE(extensions.status.ok()) << extensions.status.message();
  EXPECT_EQ(extensions.output, "hello");
  // x-amz-decoded-content-length must match exactly.
  EXPECT_EQ(DecodeAll(UnsignedOptions(4), "5\r\nhello\r\n0\r\n\r\n").status.error(),
            SigV4Error::kInvalidRequest);
  EXPECT_EQ(DecodeAll(UnsignedOptions(6), "5\r\nhello\r\n0\r\n\r\n").status.error(),
            SigV4Error::kIncompleteBody);
  // Trailers that were not declared, or that are too large.
  EXPECT_EQ(
      DecodeAll(UnsignedOptions(0), "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n").status.error(),
      SigV4Error::kMalformedTrailerError);
  AwsChunkedOptions crc = UnsignedOptions(0);
  crc.trailer_checksum = ChecksumAlgorithm::kCrc32;
  EXPECT_TRUE(DecodeAll(crc, "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n").status.ok());
  EXPECT_EQ(DecodeAll(crc, "0\r\n\r\n").status.error(), SigV4Error::kMalformedTrailerError);
  EXPECT_EQ(DecodeAll(crc,
                      "0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA=="
                      "\r\n\r\n")
                .status.error(),
            SigV4Error::kMalformedTrailerError);
  std::string many_trailers = "0\r\n";
  for (int i = 0; i < 200; ++i) many_trailers += "x-amz-checksum-crc32:AAAAAA==\r\n";
  EXPECT_EQ(DecodeAll(crc, many_trailers).status.error(), SigV4Error::kMalformedTrailerError);
  EXPECT_EQ(DecodeAll(crc, "0\r\nx-amz-checksum-crc32:" + std::string(5000, 'A')).status.error(),
            SigV4Error::kMalformedTrailerError);
  EXPECT_EQ(DecodeAll(crc, "0\r\nx-amz-trailer-signature:" + std::string(64, 'a') + "\r\n\r\n")
                .status.error(),
            SigV4Error::kMalformedTrailerError);
}

TEST(AwsChunkedTest, SignedModeNeedsChunkSignatures) {
  ChunkedEncoding e = SignedEncoding(PayloadMode::kStreamingSigned, std::string(kExampleSeed));
  AwsChunkedOptions options = DecoderOptionsFor(e, 5);
  EXPECT_EQ(DecodeAll(options, "5\r\nhello\r\n").status.error(),
            SigV4Error::kSignatureDoesNotMatch);
  EXPECT_EQ(DecodeAll(options, "5;chunk-signature=ABC\r\nhello\r\n").status.error(),
            SigV4Error::kSignatureDoesNotMatch);
  EXPECT_EQ(DecodeAll(options, "5;chunk-signature=" + std::string(64, 'a') + "\r\nhello\r\n")
                .status.error(),
            SigV4Error::kSignatureDoesNotMatch);
  // A different seed (another request's signature) breaks the chain.
  std::string body = EncodeAwsChunked("hello", e);
  options.seed_signature = std::string(64, '0');
  EXPECT_EQ(DecodeAll(options, body).status.error(), SigV4Error::kSignatureDoesNotMatch);
}

TEST(AwsChunkedTest, OptionsForVerifiedRequests) {
  VerifiedRequest request;
  request.payload_mode = PayloadMode::kSha256;
  EXPECT_EQ(AwsChunkedOptionsFor(request).error(), SigV4Error::kInvalidRequest);
  request.payload_mode = PayloadMode::kStreamingUnsignedTrailer;
  request.trailers = {"x-amz-checksum-sha1"};
  request.decoded_content_length = 3;
  auto options = AwsChunkedOptionsFor(request);
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->trailer_checksum, ChecksumAlgorithm::kSha1);
  EXPECT_EQ(options->decoded_content_length, 3u);
  // A decoder without a usable signing context refuses to start.
  AwsChunkedOptions unsigned_mode;
  unsigned_mode.mode = PayloadMode::kStreamingSigned;
  EXPECT_EQ(DecodeAll(unsigned_mode, "0\r\n\r\n").status.error(), SigV4Error::kInternalError);
}

}  // namespace
}  // namespace cairn::api::s3
