// Tests for SigV4 canonicalization, parsing, verification and signing.
//
// Vector sources:
//  - AWS S3 API Reference, "Signature Calculations for the Authorization Header:
//    Transferring Payload in a Single Chunk" examples (GET object with Range, PUT object
//    test$file.text, GET bucket lifecycle, GET bucket list objects) and "Authenticating
//    Requests: Using Query Parameters" (presigned GET of test.txt), all with
//    AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY at 20130524T000000Z.
//    The GET, lifecycle, list and presigned signatures were also reproduced with botocore.
//  - botocore 1.29.27 (Debian python3-botocore) at a frozen 2013-05-24T00:00:00Z for the
//    extra cases marked "botocore"; tests/s3_sigv4/gen_vectors.py regenerates them.

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "api/s3/sigv4/sigv4.h"
#include "core/hashing.h"

namespace cairn::api::s3 {
namespace {

constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr TimestampMs kExampleTime = 1369353600000;  // 2013-05-24T00:00:00Z
constexpr std::string_view kHost = "examplebucket.s3.amazonaws.com";

SigningCredentials ExampleCredentials() {
  return {std::string(kAccessKey), std::string(kSecret), "us-east-1", "s3"};
}

Result<std::string> ExampleLookup(std::string_view key) {
  if (key == kAccessKey) return std::string(kSecret);
  return NotFoundError("no such key");
}

std::string ExpectedAuthorization(std::string_view signed_headers, std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
         "SignedHeaders=" +
         std::string(signed_headers) + ", Signature=" + std::string(signature);
}

SigningRequest GetObjectExample() {
  SigningRequest r;
  r.method = "GET";
  r.raw_path = "/test.txt";
  r.headers = {{"host", std::string(kHost)},
               {"range", "bytes=0-9"},
               {"x-amz-content-sha256", std::string(kEmptySha256)},
               {"x-amz-date", "20130524T000000Z"}};
  r.now_ms = kExampleTime;
  return r;
}

// Signs `request`, adds the Authorization header and checks the signature.
SigningRequest SignAndCheck(SigningRequest request, std::string_view signed_headers,
                            std::string_view signature) {
  auto signed_request = SignRequest(request, ExampleCredentials());
  EXPECT_TRUE(signed_request.ok()) << signed_request.status().ToString();
  if (!signed_request.ok()) return request;
  EXPECT_EQ(signed_request->authorization, ExpectedAuthorization(signed_headers, signature));
  request.headers.emplace_back("authorization", signed_request->authorization);
  return request;
}

void ExpectVerifies(const SigningRequest& request) {
  auto verified = VerifyRequest(request, ExampleLookup);
  ASSERT_TRUE(verified.ok()) << verified.status().s3_code() << ": " << verified.status().message();
  EXPECT_EQ(verified->access_key, kAccessKey);
  EXPECT_EQ(verified->scope, (CredentialScope{"20130524", "us-east-1", "s3"}));
  EXPECT_EQ(verified->amz_date, "20130524T000000Z");
}

void ExpectError(const SigningRequest& request, SigV4Error error) {
  auto verified = VerifyRequest(request, ExampleLookup);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error(), error)
      << verified.status().s3_code() << ": " << verified.status().message();
}

// ---- The AWS documentation examples ---------------------------------------------------

TEST(AwsExamplesTest, GetObjectWithRange) {
  SigningRequest request = GetObjectExample();
  auto canonical = CanonicalRequest(
      request, {"host", "range", "x-amz-content-sha256", "x-amz-date"}, kEmptySha256, false);
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(canonical.value(),
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            "\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign("20130524T000000Z", {"20130524", "us-east-1", "s3"}, *canonical),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  request = SignAndCheck(request, "host;range;x-amz-content-sha256;x-amz-date",
                         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  ExpectVerifies(request);
  auto verified = VerifyRequest(request, ExampleLookup);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->kind, AuthKind::kHeader);
  EXPECT_EQ(verified->payload_mode, PayloadMode::kSha256);
  EXPECT_EQ(verified->seed_signature,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(verified->signing_key.size(), 32u);
  EXPECT_TRUE(CheckPayloadSha256(*verified, Sha256Of("")).ok());
  auto mismatch = CheckPayloadSha256(*verified, Sha256Of("x"));
  EXPECT_EQ(mismatch.error(), SigV4Error::kXAmzContentSHA256Mismatch);
}

TEST(AwsExamplesTest, PutObject) {
  SigningRequest request;
  request.method = "PUT";
  request.raw_path = "/test%24file.text";
  request.headers = {{"date", "Fri, 24 May 2013 00:00:00 GMT"},
                     {"host", std::string(kHost)},
                     {"x-amz-content-sha256", Sha256Of("Welcome to Amazon S3.").ToHex()},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  request.now_ms = kExampleTime;
  EXPECT_EQ(Sha256Of("Welcome to Amazon S3.").ToHex(),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  request = SignAndCheck(request, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                         "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  ExpectVerifies(request);
  // A raw '$' in the path canonicalizes to the same %24.
  request.raw_path = "/test$file.text";
  ExpectVerifies(request);
}

TEST(AwsExamplesTest, GetBucketLifecycle) {
  SigningRequest request;
  request.method = "GET";
  request.raw_path = "/";
  request.query = *ParseRawQuery("lifecycle");
  request.headers = {{"host", std::string(kHost)},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-content-sha256", std::string(kEmptySha256)}};
  request.now_ms = kExampleTime;
  request = SignAndCheck(request, "host;x-amz-content-sha256;x-amz-date",
                         "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  ExpectVerifies(request);
}

TEST(AwsExamplesTest, ListObjects) {
  SigningRequest request;
  request.method = "GET";
  request.raw_path = "/";
  request.query = *ParseRawQuery("max-keys=2&prefix=J");
  request.headers = {{"host", std::string(kHost)},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-content-sha256", std::string(kEmptySha256)}};
  request.now_ms = kExampleTime;
  request = SignAndCheck(request, "host;x-amz-content-sha256;x-amz-date",
                         "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  ExpectVerifies(request);
  // Query order on the wire does not matter.
  request.query = *ParseRawQuery("prefix=J&max-keys=2");
  ExpectVerifies(request);
}

TEST(AwsExamplesTest, PresignedGetObject) {
  SigningRequest request;
  request.method = "GET";
  request.raw_path = "/test.txt";
  request.headers = {{"host", std::string(kHost)}};
  request.now_ms = kExampleTime;
  auto query = Presign(request, ExampleCredentials(), 86400);
  ASSERT_TRUE(query.ok()) << query.status().ToString();
  EXPECT_EQ(EncodeQuery(*query),
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
            "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
            "X-Amz-SignedHeaders=host&X-Amz-Signature="
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  // The server sees the URL an hour later.
  request.query = *ParseRawQuery(EncodeQuery(*query));
  request.now_ms = kExampleTime + 3600 * 1000;
  auto verified = VerifyRequest(request, ExampleLookup);
  ASSERT_TRUE(verified.ok()) << verified.status().message();
  EXPECT_EQ(verified->kind, AuthKind::kPresigned);
  EXPECT_EQ(verified->payload_mode, PayloadMode::kUnsigned);
  EXPECT_EQ(verified->expires_at_ms, kExampleTime + 86400 * 1000);

  request.now_ms = kExampleTime + 86401 * 1000;
  auto expired = VerifyRequest(request, ExampleLookup);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error(), SigV4Error::kAccessDenied);
  EXPECT_EQ(expired.status().message(), "Request has expired");
  EXPECT_EQ(expired.status().http_status(), 403);

  request.now_ms = kExampleTime - 16 * 60 * 1000;
  ExpectError(request, SigV4Error::kAccessDenied);  // not valid yet

  request.now_ms = kExampleTime;
  SigningRequest tampered = request;
  tampered.raw_path = "/other.txt";
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.query.emplace_back("extra", "1");
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  for (auto& [name, value] : tampered.query) {
    if (name == "X-Amz-Expires") value = "604800";
  }
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
}

// ---- botocore cross-checks ------------------------------------------------------------

TEST(BotocoreVectorsTest, DateHeaderWithoutXAmzDate) {
  SigningRequest request;
  request.method = "PUT";
  request.raw_path = "/test%24file.text";
  request.headers = {{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                     {"date", "Fri, 24 May 2013 00:00:00 -0000"},
                     {"x-amz-content-sha256", Sha256Of("Welcome to Amazon S3.").ToHex()},
                     {"host", std::string(kHost)}};
  request.now_ms = kExampleTime + 60 * 1000;
  request = SignAndCheck(request, "date;host;x-amz-content-sha256;x-amz-storage-class",
                         "537a8c565f27da249b46cd0a32fad1134b73cc392327172d2b3958c4d26c34ca");
  ExpectVerifies(request);
}

TEST(BotocoreVectorsTest, EncodedPathAndWhitespaceInHeaderValue) {
  SigningRequest request;
  request.method = "GET";
  request.raw_path = "/dir%20one/a%2Bb~c%21%27%28%29.txt";
  request.headers = {{"x-amz-meta-note", "  two   spaces\tand tab  "},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-content-sha256", std::string(kEmptySha256)},
                     {"host", std::string(kHost)}};
  request.now_ms = kExampleTime;
  request = SignAndCheck(request, "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note",
                         "0132326ab0d8c5d6fb475f0dc4e73e36dc258abec0a498cc3d05d92abbcbb875");
  ExpectVerifies(request);
  // Another client's spelling of the same key canonicalizes identically.
  request.raw_path = "/dir%20one/a%2bb%7Ec!'().txt";
  ExpectVerifies(request);
}

TEST(BotocoreVectorsTest, QueryNeedingEncoding) {
  SigningRequest request;
  request.method = "GET";
  request.raw_path = "/";
  auto query = ParseRawQuery("list-type=2&prefix=a%2Fb%20c&delimiter=%2F&start-after=%E2%82%AC");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ((*query)[1].second, "a/b c");
  request.query = *query;
  request.headers = {{"host", std::string(kHost)},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-content-sha256", std::string(kEmptySha256)}};
  request.now_ms = kExampleTime;
  request = SignAndCheck(request, "host;x-amz-content-sha256;x-amz-date",
                         "a0fdcbfe62ef48855e892ee259758f55f1190c2aa325096d80350c8f957653ee");
  ExpectVerifies(request);
}

// ---- Canonicalization -------------------------------------------------------------------

TEST(CanonicalTest, UriEncode) {
  EXPECT_EQ(UriEncode("AZaz09-._~", true), "AZaz09-._~");
  EXPECT_EQ(UriEncode("a b/c+d*e", true), "a%20b%2Fc%2Bd%2Ae");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b/c");
  EXPECT_EQ(UriEncode("\xe2\x82\xac", true), "%E2%82%AC");
  EXPECT_EQ(UriEncode(std::string("\0", 1), true), "%00");
}

TEST(CanonicalTest, CanonicalUriDoesNotNormalize) {
  EXPECT_EQ(*CanonicalUri(""), "/");
  EXPECT_EQ(*CanonicalUri("/"), "/");
  EXPECT_EQ(*CanonicalUri("/a/./b/../c"), "/a/./b/../c");
  EXPECT_EQ(*CanonicalUri("//double//slash/"), "//double//slash/");
  EXPECT_EQ(*CanonicalUri("/bucket/a%2Fb"), "/bucket/a%2Fb");  // an encoded slash stays one
  EXPECT_EQ(*CanonicalUri("/bucket/%7e%41"), "/bucket/~A");
  EXPECT_EQ(*CanonicalUri("/bucket/a%2520b"), "/bucket/a%2520b");  // decoded once only
  EXPECT_EQ(*CanonicalUri("/k/a+b"), "/k/a%2Bb");
  EXPECT_EQ(*CanonicalUri("relative"), "/relative");
  EXPECT_FALSE(CanonicalUri("/bad%zz").ok());
  EXPECT_FALSE(CanonicalUri("/bad%4").ok());
  EXPECT_FALSE(CanonicalUri("/bad%").ok());
}

TEST(CanonicalTest, QueryString) {
  std::vector<std::pair<std::string, std::string>> query = {
      {"b", "2"}, {"a", "2"}, {"a", "1"}, {"a-b", ""}, {"a b", "x y"}, {"X-Amz-Signature", "s"}};
  EXPECT_EQ(CanonicalQueryString(query, false), "X-Amz-Signature=s&a=1&a=2&a%20b=x%20y&a-b=&b=2");
  EXPECT_EQ(CanonicalQueryString(query, true), "a=1&a=2&a%20b=x%20y&a-b=&b=2");
  EXPECT_EQ(CanonicalQueryString({}, false), "");
}

TEST(CanonicalTest, ParseRawQuery) {
  auto query = ParseRawQuery("a=1&&b&c=x+y%2Bz&d=");
  ASSERT_TRUE(query.ok());
  std::vector<std::pair<std::string, std::string>> expected = {
      {"a", "1"}, {"b", ""}, {"c", "x y+z"}, {"d", ""}};
  EXPECT_EQ(*query, expected);
  EXPECT_FALSE(ParseRawQuery("a=%G0").ok());
  EXPECT_EQ(ParseRawQuery("")->size(), 0u);
}

TEST(CanonicalTest, HeaderValuesAndRepeatedHeaders) {
  EXPECT_EQ(CanonicalHeaderValue("  a   b \t c  "), "a b c");
  EXPECT_EQ(CanonicalHeaderValue(""), "");
  SigningRequest request;
  request.headers = {{"x-amz-meta-a", " one "}, {"host", "h"}, {"x-amz-meta-a", "two  three"}};
  auto headers = CanonicalHeaders(request, {"host", "x-amz-meta-a"});
  ASSERT_TRUE(headers.ok());
  EXPECT_EQ(headers.value(), "host:h\nx-amz-meta-a:one,two three\n");
  auto missing = CanonicalHeaders(request, {"host", "range"});
  EXPECT_EQ(missing.error(), SigV4Error::kSignatureDoesNotMatch);
}

TEST(CanonicalTest, SigningKeyCache) {
  SigningKeyCache cache(2);
  CredentialScope scope{"20130524", "us-east-1", "s3"};
  std::string direct = DeriveSigningKey(kSecret, scope);
  EXPECT_EQ(cache.Get(kSecret, scope), direct);
  EXPECT_EQ(cache.Get(kSecret, scope), direct);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_NE(cache.Get("other", scope), direct);
  EXPECT_EQ(cache.Get(kSecret, {"20130525", "us-east-1", "s3"}),
            DeriveSigningKey(kSecret, {"20130525", "us-east-1", "s3"}));
  EXPECT_LE(cache.size(), 2u);

  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        CredentialScope s{"2013052" + std::to_string((i + t) % 8), "us-east-1", "s3"};
        if (cache.Get(kSecret, s) != DeriveSigningKey(kSecret, s)) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(TimeTest, AmzAndHttpDates) {
  EXPECT_EQ(FormatAmzDate(kExampleTime), "20130524T000000Z");
  EXPECT_EQ(*ParseAmzDate("20130524T000000Z"), kExampleTime);
  EXPECT_EQ(*ParseAmzDate("20240229T235959Z"), *ParseAmzDate("20240301T000000Z") - 1000);
  for (std::string_view bad :
       {"20130524T000000", "20130524t000000Z", "2013-05-24T00:00:00Z", "20230229T000000Z",
        "20130524T240000Z", "20130524T000160Z", "20131324T000000Z", ""}) {
    EXPECT_FALSE(ParseAmzDate(bad).ok()) << bad;
  }
  EXPECT_EQ(*ParseHttpDate("Fri, 24 May 2013 00:00:00 GMT"), kExampleTime);
  EXPECT_EQ(*ParseHttpDate("Fri, 24 May 2013 00:00:00 +0000"), kExampleTime);
  for (std::string_view bad : {"Fri, 24 May 2013 00:00:00 UTC", "Friday, 24-May-13 00:00:00 GMT",
                               "Fri, 31 Jun 2013 00:00:00 GMT", "Fri, 24 Mai 2013 00:00:00 GMT"}) {
    EXPECT_FALSE(ParseHttpDate(bad).ok()) << bad;
  }
}

// ---- Parsing -----------------------------------------------------------------------------

constexpr std::string_view kSig =
    "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";

std::string Authorization(std::string_view credential, std::string_view signed_headers,
                          std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=" + std::string(credential) +
         ", SignedHeaders=" + std::string(signed_headers) + ", Signature=" + std::string(signature);
}

TEST(ParseAuthorizationTest, AcceptsTheDocumentedForm) {
  auto parsed = ParseAuthorization(Authorization(
      "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request", "host;range;x-amz-date", kSig));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->credential.access_key, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(parsed->credential.scope, (CredentialScope{"20130524", "us-east-1", "s3"}));
  EXPECT_EQ(parsed->signed_headers, (std::vector<std::string>{"host", "range", "x-amz-date"}));
  EXPECT_EQ(parsed->signature, kSig);
  // No spaces after the commas, and another field order.
  EXPECT_TRUE(ParseAuthorization("AWS4-HMAC-SHA256 Signature=" + std::string(kSig) +
                                 ",Credential=AK/20130524/us-east-1/s3/aws4_request,"
                                 "SignedHeaders=host")
                  .ok());
}

TEST(ParseAuthorizationTest, RejectsMalformedHeaders) {
  const std::string kCredential = "AK/20130524/us-east-1/s3/aws4_request";
  const std::string kBad[] = {
      "",
      "AWS4-HMAC-SHA256",
      "AWS4-HMAC-SHA1 Credential=" + kCredential +
          ", SignedHeaders=host, Signature=" + std::string(kSig),
      "AWS4-HMAC-SHA256 Credential=" + kCredential + ", SignedHeaders=host",
      "AWS4-HMAC-SHA256 Credential=" + kCredential + ", Signature=" + std::string(kSig),
      "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + std::string(kSig),
      Authorization(kCredential, "host", kSig) + ", Signature=" + std::string(kSig),
      Authorization(kCredential, "host", kSig) + ", Extra=1",
      Authorization(kCredential, "host", kSig) + ",",
      Authorization("AK/20130524/us-east-1/s3/aws4_requesT", "host", kSig),
      Authorization("AK/20130524/us-east-1/s3", "host", kSig),
      Authorization("/20130524/us-east-1/s3/aws4_request", "host", kSig),
      Authorization("AK/20130532/us-east-1/s3/aws4_request", "host", kSig),
      Authorization("AK/2013052/us-east-1/s3/aws4_request", "host", kSig),
      Authorization("AK/20130524/US-EAST-1/s3/aws4_request", "host", kSig),
      Authorization("AK/20130524//s3/aws4_request", "host", kSig),
      Authorization(kCredential, "", kSig),
      Authorization(kCredential, "range;host", kSig),
      Authorization(kCredential, "host;host", kSig),
      Authorization(kCredential, "Host", kSig),
      Authorization(kCredential, "host;;range", kSig),
      Authorization(kCredential, "host", kSig.substr(1)),
      Authorization(kCredential, "host", std::string(kSig) + "0"),
      Authorization(kCredential, "host",
                    "FE5F80F77D5FA3BECA038A248FF027D0445342FE2855DDC963176630326F1024"),
      Authorization(kCredential, "host", std::string(63, 'a') + "g"),
      "AWS4-HMAC-SHA256 Credential " + kCredential +
          ", SignedHeaders=host, Signature=" + std::string(kSig),
  };
  for (const std::string& header : kBad) {
    auto parsed = ParseAuthorization(header);
    ASSERT_FALSE(parsed.ok()) << header;
    EXPECT_EQ(parsed.error(), SigV4Error::kAuthorizationHeaderMalformed) << header;
    EXPECT_EQ(parsed.status().http_status(), 400);
    EXPECT_EQ(parsed.status().message().find(kSig), std::string::npos) << header;
    EXPECT_EQ(parsed.status().ToStatus().code(), StatusCode::kInvalidArgument);
  }
}

TEST(ParsePresignedQueryTest, RejectsMalformedParameters) {
  auto base = *ParseRawQuery(
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2F"
      "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&"
      "X-Amz-Signature=" +
      std::string(kSig));
  ASSERT_TRUE(ParsePresignedQuery(base).ok());
  auto with = [&](std::string_view name, std::string_view value) {
    auto query = base;
    for (auto& [n, v] : query) {
      if (n == name) v = std::string(value);
    }
    return ParsePresignedQuery(query);
  };
  for (std::string_view expires : {"0", "604801", "-1", "1e3", "", "99999999999999999999"}) {
    EXPECT_EQ(with("X-Amz-Expires", expires).error(),
              SigV4Error::kAuthorizationQueryParametersError)
        << expires;
  }
  EXPECT_TRUE(with("X-Amz-Expires", "604800").ok());
  EXPECT_TRUE(with("X-Amz-Expires", "1").ok());
  EXPECT_FALSE(with("X-Amz-Algorithm", "AWS4-HMAC-SHA1").ok());
  EXPECT_FALSE(with("X-Amz-Date", "20130524").ok());
  EXPECT_FALSE(with("X-Amz-Signature", "abc").ok());
  EXPECT_FALSE(with("X-Amz-SignedHeaders", "x;host").ok());
  EXPECT_FALSE(with("X-Amz-Credential", "AK/20130524/us-east-1/s3/aws5_request").ok());
  auto duplicate = base;
  duplicate.emplace_back("X-Amz-Date", "20130524T000000Z");
  EXPECT_EQ(ParsePresignedQuery(duplicate).error(), SigV4Error::kAuthorizationQueryParametersError);
  for (size_t i = 0; i < base.size(); ++i) {
    auto missing = base;
    missing.erase(missing.begin() + static_cast<std::ptrdiff_t>(i));
    EXPECT_EQ(ParsePresignedQuery(missing).error(), SigV4Error::kAuthorizationQueryParametersError);
  }
}

TEST(PayloadModeTest, Classifies) {
  EXPECT_EQ(ParsePayloadMode(kEmptySha256).value(), PayloadMode::kSha256);
  EXPECT_EQ(ParsePayloadMode("UNSIGNED-PAYLOAD").value(), PayloadMode::kUnsigned);
  EXPECT_EQ(ParsePayloadMode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD").value(),
            PayloadMode::kStreamingSigned);
  EXPECT_EQ(ParsePayloadMode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER").value(),
            PayloadMode::kStreamingSignedTrailer);
  EXPECT_EQ(ParsePayloadMode("STREAMING-UNSIGNED-PAYLOAD-TRAILER").value(),
            PayloadMode::kStreamingUnsignedTrailer);
  for (std::string_view bad :
       {"", "unsigned-payload", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}) {
    EXPECT_EQ(ParsePayloadMode(bad).error(), SigV4Error::kInvalidArgument) << bad;
  }
}

// ---- Verifier failures --------------------------------------------------------------------

SigningRequest SignedGetObject() {
  return SignAndCheck(GetObjectExample(), "host;range;x-amz-content-sha256;x-amz-date",
                      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(VerifyTest, WrongSecretUnknownKeyAndBrokenStore) {
  SigningRequest request = SignedGetObject();
  auto wrong_secret = VerifyRequest(request, [](std::string_view) -> Result<std::string> {
    return std::string("not the secret");
  });
  ASSERT_FALSE(wrong_secret.ok());
  EXPECT_EQ(wrong_secret.error(), SigV4Error::kSignatureDoesNotMatch);
  EXPECT_EQ(wrong_secret.status().message().find("f0e8bdb8"), std::string::npos);
  EXPECT_EQ(wrong_secret.status().ToStatus().code(), StatusCode::kUnauthenticated);

  auto unknown = VerifyRequest(
      request, [](std::string_view) -> Result<std::string> { return NotFoundError("no"); });
  EXPECT_EQ(unknown.error(), SigV4Error::kInvalidAccessKeyId);
  auto down = VerifyRequest(
      request, [](std::string_view) -> Result<std::string> { return UnavailableError("db"); });
  EXPECT_EQ(down.error(), SigV4Error::kServiceUnavailable);
  EXPECT_EQ(down.status().http_status(), 503);
}

TEST(VerifyTest, TamperedRequestFails) {
  SigningRequest request = SignedGetObject();
  SigningRequest tampered = request;
  tampered.headers[1].second = "bytes=0-10";
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.method = "PUT";
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.raw_path = "/test.txt2";
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.query.emplace_back("versionId", "1");
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.headers.erase(tampered.headers.begin() + 1);  // a signed header is gone
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.raw_path = "/bad%G1";
  ExpectError(tampered, SigV4Error::kInvalidURI);
  // Unsigned extra headers do not matter.
  tampered = request;
  tampered.headers.emplace_back("user-agent", "test");
  ExpectVerifies(tampered);
}

TEST(VerifyTest, ClockSkew) {
  SigningRequest request = SignedGetObject();
  request.now_ms = kExampleTime + 14 * 60 * 1000;
  ExpectVerifies(request);
  request.now_ms = kExampleTime - 14 * 60 * 1000;
  ExpectVerifies(request);
  request.now_ms = kExampleTime + 16 * 60 * 1000;
  ExpectError(request, SigV4Error::kRequestTimeTooSkewed);
  request.now_ms = kExampleTime - 16 * 60 * 1000;
  ExpectError(request, SigV4Error::kRequestTimeTooSkewed);
}

TEST(VerifyTest, HeaderRequirements) {
  SigningRequest request = GetObjectExample();
  request.headers = {{"host", std::string(kHost)}, {"x-amz-date", "20130524T000000Z"}};
  request.headers.emplace_back(
      "authorization", Authorization("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
                                     "host;x-amz-date", kSig));
  ExpectError(request, SigV4Error::kMissingSecurityHeader);
  request.headers.emplace_back("x-amz-content-sha256", std::string(kEmptySha256));
  ExpectError(request, SigV4Error::kAuthorizationHeaderMalformed);  // not signed

  request = GetObjectExample();
  request.headers.emplace_back(
      "authorization", Authorization("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
                                     "range;x-amz-content-sha256;x-amz-date", kSig));
  ExpectError(request, SigV4Error::kAuthorizationHeaderMalformed);  // host not signed

  request = GetObjectExample();
  request.headers.emplace_back(
      "authorization", Authorization("AKIAIOSFODNN7EXAMPLE/20130523/us-east-1/s3/aws4_request",
                                     "host;range;x-amz-content-sha256;x-amz-date", kSig));
  ExpectError(request, SigV4Error::kAuthorizationHeaderMalformed);  // scope date

  request = GetObjectExample();
  request.headers.emplace_back(
      "authorization", Authorization("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request",
                                     "host;range;x-amz-content-sha256;x-amz-date", kSig));
  ExpectError(request, SigV4Error::kAuthorizationHeaderMalformed);  // service

  request = SignedGetObject();
  VerifyOptions options;
  options.region = "eu-west-1";
  EXPECT_EQ(VerifyRequest(request, ExampleLookup, options).error(),
            SigV4Error::kAuthorizationHeaderMalformed);
  options.region = "us-east-1";
  EXPECT_TRUE(VerifyRequest(request, ExampleLookup, options).ok());

  request = SignedGetObject();
  request.headers[3].second = "garbage";  // x-amz-date
  ExpectError(request, SigV4Error::kAccessDenied);
  request.headers.erase(request.headers.begin() + 3);
  ExpectError(request, SigV4Error::kAccessDenied);  // no date at all
}

TEST(VerifyTest, AuthKinds) {
  SigningRequest anonymous = GetObjectExample();
  EXPECT_EQ(DetectAuthKind(anonymous).value(), AuthKind::kAnonymous);
  ExpectError(anonymous, SigV4Error::kAccessDenied);

  SigningRequest both = SignedGetObject();
  both.query.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  ExpectError(both, SigV4Error::kInvalidArgument);

  // Signature Version 2 goes to its own verifier (sigv2_test.cc).
  SigningRequest v2 = GetObjectExample();
  v2.headers.emplace_back("authorization", "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=");
  EXPECT_EQ(DetectAuthKind(v2).value(), AuthKind::kHeaderV2);
  ExpectError(v2, SigV4Error::kSignatureDoesNotMatch);  // it signs another request
  SigningRequest v2_query = GetObjectExample();
  v2_query.query = {{"AWSAccessKeyId", "AK"}, {"Signature", "x"}, {"Expires", "1"}};
  EXPECT_EQ(DetectAuthKind(v2_query).value(), AuthKind::kPresignedV2);
  ExpectError(v2_query, SigV4Error::kAccessDenied);  // expired in 1970
  v2_query.headers.emplace_back("authorization", "AWS AK:x");
  ExpectError(v2_query, SigV4Error::kInvalidArgument);

  SigningRequest twice = SignedGetObject();
  twice.headers.push_back(twice.headers.back());
  ExpectError(twice, SigV4Error::kAuthorizationHeaderMalformed);
}

SigningRequest StreamingPut(std::string_view content_sha256,
                            std::vector<std::pair<std::string, std::string>> extra) {
  SigningRequest request;
  request.method = "PUT";
  request.raw_path = "/examplebucket/chunkObject.txt";
  request.headers = {{"host", "s3.amazonaws.com"},
                     {"x-amz-date", "20130524T000000Z"},
                     {"x-amz-content-sha256", std::string(content_sha256)},
                     {"content-encoding", "aws-chunked"}};
  for (auto& header : extra) request.headers.push_back(std::move(header));
  request.now_ms = kExampleTime;
  auto signed_request = SignRequest(request, ExampleCredentials());
  EXPECT_TRUE(signed_request.ok());
  request.headers.emplace_back("authorization", signed_request->authorization);
  return request;
}

TEST(VerifyTest, StreamingHeaders) {
  auto no_length = StreamingPut(kStreamingSignedPayload, {});
  ExpectError(no_length, SigV4Error::kMissingContentLength);

  auto bad_length =
      StreamingPut(kStreamingSignedPayload, {{"x-amz-decoded-content-length", "12x"}});
  ExpectError(bad_length, SigV4Error::kInvalidArgument);

  auto ok = StreamingPut(
      kStreamingUnsignedPayloadTrailer,
      {{"x-amz-decoded-content-length", "66560"}, {"x-amz-trailer", "X-Amz-Checksum-CRC32C"}});
  auto verified = VerifyRequest(ok, ExampleLookup);
  ASSERT_TRUE(verified.ok()) << verified.status().message();
  EXPECT_EQ(verified->payload_mode, PayloadMode::kStreamingUnsignedTrailer);
  EXPECT_EQ(verified->decoded_content_length, 66560u);
  EXPECT_EQ(verified->trailers, std::vector<std::string>{"x-amz-checksum-crc32c"});

  auto two = StreamingPut(kStreamingUnsignedPayloadTrailer,
                          {{"x-amz-decoded-content-length", "1"},
                           {"x-amz-trailer", "x-amz-checksum-crc32c,x-amz-checksum-sha1"}});
  ExpectError(two, SigV4Error::kInvalidRequest);
  auto unknown =
      StreamingPut(kStreamingUnsignedPayloadTrailer,
                   {{"x-amz-decoded-content-length", "1"}, {"x-amz-trailer", "x-amz-meta-foo"}});
  ExpectError(unknown, SigV4Error::kInvalidRequest);
  auto trailer_without_mode = StreamingPut(
      kStreamingSignedPayload,
      {{"x-amz-decoded-content-length", "1"}, {"x-amz-trailer", "x-amz-checksum-crc32"}});
  ExpectError(trailer_without_mode, SigV4Error::kInvalidRequest);
}

TEST(SigV4StatusTest, CodesAndStatuses) {
  EXPECT_EQ(SigV4ErrorCode(SigV4Error::kXAmzContentSHA256Mismatch), "XAmzContentSHA256Mismatch");
  EXPECT_EQ(SigV4ErrorCode(SigV4Error::kRequestTimeTooSkewed), "RequestTimeTooSkewed");
  EXPECT_EQ(SigV4ErrorHttpStatus(SigV4Error::kSignatureDoesNotMatch), 403);
  EXPECT_EQ(SigV4ErrorHttpStatus(SigV4Error::kBadDigest), 400);
  EXPECT_EQ(SigV4ErrorHttpStatus(SigV4Error::kMissingContentLength), 411);
  SigV4Status status(SigV4Error::kAccessDenied, "Request has expired");
  EXPECT_EQ(status.ToStatus().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(status.ToStatus().message(), "AccessDenied: Request has expired");
  EXPECT_TRUE(SigV4Status().ToStatus().ok());
}

}  // namespace
}  // namespace cairn::api::s3
