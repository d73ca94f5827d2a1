// Fuzz target for the SigV4 and SigV2 parsers and the verifier.
//
// The input is split on '\n' into: an Authorization header value, a raw request path, a
// raw query string, an x-amz-date value and an x-amz-content-sha256 value. Each parser
// sees its part; parts that parse must survive a round trip, and the whole request goes
// through VerifyRequest with a fixed key (an "AWS ..." header or AWSAccessKeyId/Signature
// parameters take the SigV2 path). Any broken invariant aborts.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "api/s3/sigv4/sigv2.h"
#include "api/s3/sigv4/sigv4.h"

namespace {

namespace s3 = cairn::api::s3;

std::vector<std::string_view> SplitLines(std::string_view text, size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    size_t newline = text.find('\n');
    if (newline == std::string_view::npos) break;
    parts.push_back(text.substr(0, newline));
    text.remove_prefix(newline + 1);
  }
  parts.push_back(text);
  parts.resize(max_parts);
  return parts;
}

void CheckAuthorizationRoundTrip(std::string_view header) {
  auto parsed = s3::ParseAuthorization(header);
  if (!parsed.ok()) {
    if (parsed.status().message().find(std::string(header)) != std::string::npos &&
        header.size() > 80) {
      abort();  // messages must not echo long inputs (they may hold signatures)
    }
    return;
  }
  std::string again = "AWS4-HMAC-SHA256 Credential=" + parsed->credential.access_key + "/" +
                      parsed->credential.scope.ToString() +
                      ",SignedHeaders=" + s3::JoinSignedHeaders(parsed->signed_headers) +
                      ",Signature=" + parsed->signature;
  auto reparsed = s3::ParseAuthorization(again);
  if (!reparsed.ok() || reparsed->credential.access_key != parsed->credential.access_key ||
      !(reparsed->credential.scope == parsed->credential.scope) ||
      reparsed->signed_headers != parsed->signed_headers ||
      reparsed->signature != parsed->signature) {
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parts = SplitLines(input, 5);
  CheckAuthorizationRoundTrip(parts[0]);
  auto v2 = s3::ParseAuthorizationV2(parts[0]);
  if (v2.ok() && (v2->access_key.empty() || v2->signature.empty())) abort();

  auto uri = s3::CanonicalUri(parts[1]);
  if (uri.ok()) {
    auto again = s3::CanonicalUri(*uri);
    if (!again.ok() || *again != *uri) abort();  // canonical form is a fixed point
  }
  auto query = s3::ParseRawQuery(parts[2]);
  if (query.ok()) {
    auto again = s3::ParseRawQuery(s3::EncodeQuery(*query));
    if (!again.ok() || *again != *query) abort();
    s3::ParsePresignedQuery(*query).status().IgnoreError();
    s3::ParsePresignedQueryV2(*query).status().IgnoreError();
  }
  auto amz_date = s3::ParseAmzDate(parts[3]);
  if (amz_date.ok() && s3::FormatAmzDate(*amz_date) != parts[3]) abort();
  s3::ParseHttpDate(parts[3]).status().IgnoreError();
  s3::ParsePayloadMode(parts[4]).status().IgnoreError();

  s3::SigningRequest request;
  request.method = "GET";
  request.raw_path = std::string(parts[1]);
  if (query.ok()) request.query = *query;
  request.headers = {{"host", "examplebucket.s3.amazonaws.com"},
                     {"authorization", std::string(parts[0])},
                     {"x-amz-date", std::string(parts[3])},
                     {"x-amz-content-sha256", std::string(parts[4])}};
  if (parts[0].empty()) request.headers.erase(request.headers.begin() + 1);
  request.now_ms = amz_date.ok() ? *amz_date : 1369353600000;  // 2013-05-24
  auto lookup = [](std::string_view key) -> cairn::Result<std::string> {
    if (key == "AKIAIOSFODNN7EXAMPLE")
      return std::string("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    return cairn::NotFoundError("unknown key");
  };
  auto verified = s3::VerifyRequest(request, lookup);
  // The secret must never reach an error message (unless the client sent it itself, since
  // messages may quote a bounded piece of the client's own input).
  if (!verified.ok() && verified.status().message().find("wJalrXUtnFEMI") != std::string::npos &&
      input.find("wJalrXUtnFEMI") == std::string_view::npos) {
    abort();
  }
  return 0;
}
