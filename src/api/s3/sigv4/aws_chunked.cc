#include "api/s3/sigv4/aws_chunked.h"

#include <algorithm>
#include <map>
#include <utility>

#include "core/base64.h"
#include "core/hashing.h"
#include "core/text.h"

namespace cairn::api::s3 {
namespace {

constexpr std::string_view kChunkSignatureExtension = "chunk-signature";
constexpr std::string_view kTrailerSignatureName = "x-amz-trailer-signature";

bool IsSigned(PayloadMode mode) {
  return mode == PayloadMode::kStreamingSigned || mode == PayloadMode::kStreamingSignedTrailer;
}

bool HasTrailer(PayloadMode mode) {
  return mode == PayloadMode::kStreamingSignedTrailer ||
         mode == PayloadMode::kStreamingUnsignedTrailer;
}

}  // namespace

std::string ChunkStringToSign(std::string_view amz_date, const CredentialScope& scope,
                              std::string_view previous_signature,
                              std::string_view data_sha256_hex) {
  std::string out = "AWS4-HMAC-SHA256-PAYLOAD\n";
  out += amz_date;
  out.push_back('\n');
  out += scope.ToString();
  out.push_back('\n');
  out += previous_signature;
  out.push_back('\n');
  out += kEmptySha256;
  out.push_back('\n');
  out += data_sha256_hex;
  return out;
}

std::string TrailerStringToSign(std::string_view amz_date, const CredentialScope& scope,
                                std::string_view previous_signature,
                                std::string_view canonical_trailers) {
  std::string out = "AWS4-HMAC-SHA256-TRAILER\n";
  out += amz_date;
  out.push_back('\n');
  out += scope.ToString();
  out.push_back('\n');
  out += previous_signature;
  out.push_back('\n');
  out += Sha256Of(canonical_trailers).ToHex();
  return out;
}

SigV4Result<AwsChunkedOptions> AwsChunkedOptionsFor(const VerifiedRequest& request) {
  if (!IsStreaming(request.payload_mode)) {
    return SigV4Status(SigV4Error::kInvalidRequest,
                       "aws-chunked needs a STREAMING-* x-amz-content-sha256, not " +
                           std::string(PayloadModeName(request.payload_mode)));
  }
  AwsChunkedOptions options;
  options.mode = request.payload_mode;
  options.signing_key = request.signing_key;
  options.amz_date = request.amz_date;
  options.scope = request.scope;
  options.seed_signature = request.seed_signature;
  options.decoded_content_length = request.decoded_content_length;
  if (!request.trailers.empty()) {
    options.trailer_checksum = ChecksumAlgorithmFromHeader(request.trailers.front());
  }
  return options;
}

struct AwsChunkedDecoder::State {
  enum class Phase { kChunkHeader, kChunkData, kChunkDataEnd, kTrailer, kDone, kFailed };

  explicit State(AwsChunkedOptions o) : options(std::move(o)) {
    previous_signature = options.seed_signature;
    if (options.trailer_checksum) checksum.emplace(*options.trailer_checksum);
  }

  SigV4Status Fail(SigV4Error error, std::string message) {
    phase = Phase::kFailed;
    failure = SigV4Status(error, std::move(message));
    return failure;
  }

  SigV4Status ProcessChunkHeader(std::string_view line);
  SigV4Status VerifyChunk(std::string_view data_sha256_hex);
  SigV4Status ProcessTrailerLine(std::string_view line);
  SigV4Status FinishTrailers();

  AwsChunkedOptions options;
  Phase phase = Phase::kChunkHeader;
  SigV4Status failure;
  std::string line;              // the current header or trailer line, without CRLF
  uint64_t chunk_remaining = 0;  // data bytes left in the current chunk
  int crlf_seen = 0;             // bytes of the CRLF after a chunk's data
  uint64_t chunk_index = 0;
  uint64_t decoded = 0;
  std::string provided_signature;  // of the current chunk
  std::string previous_signature;
  Sha256Hasher chunk_hash;
  std::optional<Checksummer> checksum;
  size_t trailer_bytes = 0;
  std::map<std::string, std::string> trailers;  // name -> value, excluding the signature
  std::optional<std::string> trailer_signature;
  std::optional<std::string> trailer_checksum_value;
};

SigV4Status AwsChunkedDecoder::State::VerifyChunk(std::string_view data_sha256_hex) {
  if (!IsSigned(options.mode)) return SigV4Status();
  std::string expected = SignString(
      options.signing_key,
      ChunkStringToSign(options.amz_date, options.scope, previous_signature, data_sha256_hex));
  if (!ConstantTimeEquals(expected, provided_signature)) {
    return Fail(SigV4Error::kSignatureDoesNotMatch, "the signature of aws-chunked chunk " +
                                                        std::to_string(chunk_index) +
                                                        " does not match its data");
  }
  previous_signature = std::move(expected);
  return SigV4Status();
}

SigV4Status AwsChunkedDecoder::State::ProcessChunkHeader(std::string_view header) {
  ++chunk_index;
  const std::string where = "aws-chunked chunk " + std::to_string(chunk_index);
  size_t digits = 0;
  uint64_t size = 0;
  while (digits < header.size() && HexDigitValue(header[digits]) >= 0) {
    if (digits >= 16) return Fail(SigV4Error::kInvalidRequest, where + ": chunk size too long");
    size = size * 16 + static_cast<uint64_t>(HexDigitValue(header[digits]));
    ++digits;
  }
  if (digits == 0) {
    return Fail(SigV4Error::kInvalidRequest, where + ": header does not start with a hex size");
  }
  if (size > options.max_chunk_size) {
    return Fail(SigV4Error::kInvalidRequest, where + ": size " + std::to_string(size) +
                                                 " exceeds the limit of " +
                                                 std::to_string(options.max_chunk_size) + " bytes");
  }
  std::string_view extensions = header.substr(digits);
  if (!extensions.empty() && extensions.front() != ';') {
    return Fail(SigV4Error::kInvalidRequest, where + ": unexpected character after the size");
  }
  std::optional<std::string_view> signature;
  while (!extensions.empty()) {
    extensions.remove_prefix(1);  // ';'
    size_t next = extensions.find(';');
    std::string_view extension = extensions.substr(0, next);
    extensions = next == std::string_view::npos ? std::string_view() : extensions.substr(next);
    size_t eq = extension.find('=');
    std::string_view name = TrimAscii(extension.substr(0, eq), kHttpWhitespace);
    if (name.empty()) return Fail(SigV4Error::kInvalidRequest, where + ": empty chunk extension");
    if (name == kChunkSignatureExtension) {
      if (signature) {
        return Fail(SigV4Error::kInvalidRequest, where + ": chunk-signature appears twice");
      }
      signature = eq == std::string_view::npos
                      ? std::string_view()
                      : TrimAscii(extension.substr(eq + 1), kHttpWhitespace);
    }
    // Any other extension carries nothing S3 defines; it is ignored.
  }
  if (IsSigned(options.mode)) {
    if (!signature) {
      return Fail(SigV4Error::kSignatureDoesNotMatch, where + ": chunk-signature is missing");
    }
    if (!IsLowerHex(*signature, 64)) {
      return Fail(SigV4Error::kSignatureDoesNotMatch,
                  where + ": chunk-signature is not 64 lower-case hex characters");
    }
    provided_signature = std::string(*signature);
  }
  if (size == 0) {
    if (options.decoded_content_length && decoded != *options.decoded_content_length) {
      return Fail(SigV4Error::kIncompleteBody, "the aws-chunked payload is " +
                                                   std::to_string(decoded) +
                                                   " bytes but x-amz-decoded-content-length is " +
                                                   std::to_string(*options.decoded_content_length));
    }
    SigV4Status verified = VerifyChunk(kEmptySha256);
    if (!verified.ok()) return verified;
    phase = Phase::kTrailer;
    return SigV4Status();
  }
  if (options.decoded_content_length && size > *options.decoded_content_length - decoded) {
    return Fail(SigV4Error::kInvalidRequest,
                where + ": the payload is longer than x-amz-decoded-content-length (" +
                    std::to_string(*options.decoded_content_length) + ")");
  }
  chunk_remaining = size;
  phase = Phase::kChunkData;
  return SigV4Status();
}

SigV4Status AwsChunkedDecoder::State::ProcessTrailerLine(std::string_view trailer_line) {
  trailer_bytes += trailer_line.size() + 2;
  if (trailer_bytes > options.max_trailer_bytes) {
    return Fail(SigV4Error::kMalformedTrailerError, "the aws-chunked trailer section exceeds " +
                                                        std::to_string(options.max_trailer_bytes) +
                                                        " bytes");
  }
  if (trailer_line.empty()) return FinishTrailers();
  if (trailer_signature) {
    return Fail(SigV4Error::kMalformedTrailerError,
                "a trailer follows x-amz-trailer-signature, which must be last");
  }
  size_t colon = trailer_line.find(':');
  if (colon == std::string_view::npos) {
    return Fail(SigV4Error::kMalformedTrailerError, "a trailer line is not name:value");
  }
  std::string name = ToLowerAscii(TrimAscii(trailer_line.substr(0, colon), kHttpWhitespace));
  std::string value(TrimAscii(trailer_line.substr(colon + 1), kHttpWhitespace));
  if (name == kTrailerSignatureName) {
    if (options.mode != PayloadMode::kStreamingSignedTrailer) {
      return Fail(SigV4Error::kMalformedTrailerError,
                  "x-amz-trailer-signature sent without a signed-trailer payload mode");
    }
    if (!IsLowerHex(value, 64)) {
      return Fail(SigV4Error::kSignatureDoesNotMatch,
                  "x-amz-trailer-signature is not 64 lower-case hex characters");
    }
    trailer_signature = std::move(value);
    return SigV4Status();
  }
  if (!options.trailer_checksum || name != ChecksumHeaderName(*options.trailer_checksum)) {
    std::string shown = name.size() > 64 ? name.substr(0, 64) + "..." : name;
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    return Fail(SigV4Error::kMalformedTrailerError,
                "trailer '" + shown + "' was not declared in x-amz-trailer");
  }
  if (trailers.count(name) > 0) {
    return Fail(SigV4Error::kMalformedTrailerError, "trailer " + name + " appears twice");
  }
  trailers.emplace(std::move(name), std::move(value));
  return SigV4Status();
}

SigV4Status AwsChunkedDecoder::State::FinishTrailers() {
  if (options.mode == PayloadMode::kStreamingSignedTrailer &&
      (!trailers.empty() || trailer_signature)) {
    if (!trailer_signature) {
      return Fail(SigV4Error::kSignatureDoesNotMatch, "x-amz-trailer-signature is missing");
    }
    std::string canonical;
    for (const auto& [name, value] : trailers) canonical += name + ":" + value + "\n";
    std::string expected = SignString(
        options.signing_key,
        TrailerStringToSign(options.amz_date, options.scope, previous_signature, canonical));
    if (!ConstantTimeEquals(expected, *trailer_signature)) {
      return Fail(SigV4Error::kSignatureDoesNotMatch,
                  "x-amz-trailer-signature does not match the trailers");
    }
  }
  if (options.trailer_checksum) {
    ChecksumAlgorithm algorithm = *options.trailer_checksum;
    auto it = trailers.find(std::string(ChecksumHeaderName(algorithm)));
    if (it == trailers.end()) {
      return Fail(
          SigV4Error::kMalformedTrailerError,
          "the declared trailer " + std::string(ChecksumHeaderName(algorithm)) + " was not sent");
    }
    auto raw = Base64Decode(it->second);
    if (!raw.ok() || raw->size() != ChecksumSize(algorithm)) {
      return Fail(SigV4Error::kInvalidRequest, "Value for " +
                                                   std::string(ChecksumHeaderName(algorithm)) +
                                                   " trailing header is invalid.");
    }
    if (checksum->FinishBase64() != it->second) {
      return Fail(SigV4Error::kBadDigest, "The " + std::string(ChecksumAlgorithmName(algorithm)) +
                                              " you specified did not match the calculated "
                                              "checksum.");
    }
    trailer_checksum_value = it->second;
  }
  phase = Phase::kDone;
  return SigV4Status();
}

AwsChunkedDecoder::AwsChunkedDecoder(AwsChunkedOptions options)
    : state_(std::make_unique<State>(std::move(options))) {
  State& s = *state_;
  if (!IsStreaming(s.options.mode)) {
    s.Fail(SigV4Error::kInvalidRequest, "aws-chunked needs a STREAMING-* payload mode")
        .IgnoreError();
  } else if (s.options.trailer_checksum && !HasTrailer(s.options.mode)) {
    s.Fail(SigV4Error::kInvalidRequest, "a trailer checksum needs a *-TRAILER payload mode")
        .IgnoreError();
  } else if (IsSigned(s.options.mode) &&
             (s.options.signing_key.empty() || !IsLowerHex(s.options.seed_signature, 64))) {
    s.Fail(SigV4Error::kInternalError, "aws-chunked decoder has no signing context").IgnoreError();
  }
}

AwsChunkedDecoder::~AwsChunkedDecoder() = default;

SigV4Status AwsChunkedDecoder::Feed(std::string_view input, std::string* out) {
  State& s = *state_;
  using Phase = State::Phase;
  while (!input.empty()) {
    switch (s.phase) {
      case Phase::kFailed:
        return s.failure;
      case Phase::kDone:
        return s.Fail(SigV4Error::kInvalidRequest, "data follows the end of the aws-chunked body");
      case Phase::kChunkHeader:
      case Phase::kTrailer: {
        size_t newline = input.find('\n');
        size_t take = newline == std::string_view::npos ? input.size() : newline;
        size_t limit =
            s.phase == Phase::kChunkHeader ? s.options.max_line_bytes : s.options.max_trailer_bytes;
        if (s.line.size() + take > limit) {
          return s.Fail(
              s.phase == Phase::kChunkHeader ? SigV4Error::kInvalidRequest
                                             : SigV4Error::kMalformedTrailerError,
              s.phase == Phase::kChunkHeader
                  ? "an aws-chunked chunk header is longer than " + std::to_string(limit) + " bytes"
                  : "an aws-chunked trailer line is longer than " + std::to_string(limit) +
                        " bytes");
        }
        s.line.append(input.substr(0, take));
        if (newline == std::string_view::npos) return SigV4Status();
        input.remove_prefix(take + 1);
        if (s.line.empty() || s.line.back() != '\r') {
          return s.Fail(SigV4Error::kInvalidRequest, "an aws-chunked line does not end in CRLF");
        }
        s.line.pop_back();
        if (s.line.find('\r') != std::string::npos) {
          return s.Fail(SigV4Error::kInvalidRequest, "a stray CR in an aws-chunked line");
        }
        std::string line = std::move(s.line);
        s.line.clear();
        SigV4Status status = s.phase == Phase::kChunkHeader ? s.ProcessChunkHeader(line)
                                                            : s.ProcessTrailerLine(line);
        if (!status.ok()) return status;
        break;
      }
      case Phase::kChunkData: {
        size_t take = static_cast<size_t>(
            std::min<uint64_t>(s.chunk_remaining, static_cast<uint64_t>(input.size())));
        std::string_view data = input.substr(0, take);
        if (IsSigned(s.options.mode)) s.chunk_hash.Update(data);
        if (s.checksum) s.checksum->Update(data);
        out->append(data);
        s.decoded += take;
        s.chunk_remaining -= take;
        input.remove_prefix(take);
        if (s.chunk_remaining == 0) {
          s.phase = Phase::kChunkDataEnd;
          s.crlf_seen = 0;
        }
        break;
      }
      case Phase::kChunkDataEnd: {
        char expected = s.crlf_seen == 0 ? '\r' : '\n';
        if (input.front() != expected) {
          return s.Fail(SigV4Error::kInvalidRequest,
                        "aws-chunked chunk " + std::to_string(s.chunk_index) +
                            " is longer than its declared size (no CRLF after the data)");
        }
        input.remove_prefix(1);
        if (++s.crlf_seen == 2) {
          if (IsSigned(s.options.mode)) {
            SigV4Status status = s.VerifyChunk(s.chunk_hash.Finish().ToHex());
            if (!status.ok()) return status;
          }
          s.phase = Phase::kChunkHeader;
        }
        break;
      }
    }
  }
  return s.phase == Phase::kFailed ? s.failure : SigV4Status();
}

SigV4Status AwsChunkedDecoder::Finish() {
  State& s = *state_;
  using Phase = State::Phase;
  switch (s.phase) {
    case Phase::kFailed:
      return s.failure;
    case Phase::kDone:
      return SigV4Status();
    case Phase::kTrailer:
      // Some clients end a body without trailers right after the final chunk's CRLF; the
      // final chunk is already verified, so nothing is lost by accepting that.
      if (s.line.empty() && s.trailer_bytes == 0 && !s.options.trailer_checksum) {
        s.phase = Phase::kDone;
        return SigV4Status();
      }
      break;
    default:
      break;
  }
  return s.Fail(SigV4Error::kIncompleteBody,
                "the aws-chunked body ended after " + std::to_string(s.decoded) +
                    " payload bytes, before its final chunk and trailers");
}

uint64_t AwsChunkedDecoder::decoded_bytes() const { return state_->decoded; }

bool AwsChunkedDecoder::complete() const { return state_->phase == State::Phase::kDone; }

const std::optional<std::string>& AwsChunkedDecoder::trailer_checksum_value() const {
  return state_->trailer_checksum_value;
}

}  // namespace cairn::api::s3
