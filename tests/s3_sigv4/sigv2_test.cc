// Tests for Signature Version 2: the string to sign, the verifier and the signer.
//
// Vector sources:
//  - AWS Amazon S3 Developer Guide, "Signing and authenticating REST requests", the
//    authentication examples and the query-string example, with AKIAIOSFODNN7EXAMPLE /
//    wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY. The page now names the bucket
//    "awsexamplebucket1" but its signatures were computed with the earlier "johnsmith"
//    (they match only that name), so the vectors use johnsmith.
//  - RFC 2202 test case 2 for HMAC-SHA1.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/s3/sigv4/sigv2.h"
#include "api/s3/sigv4/sigv4.h"

namespace cairn::api::s3 {
namespace {

constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

Result<std::string> ExampleLookup(std::string_view key) {
  if (key == kAccessKey) return std::string(kSecret);
  return NotFoundError("no such key");
}

SigningCredentials ExampleCredentials() {
  return {std::string(kAccessKey), std::string(kSecret), "us-east-1", "s3"};
}

TimestampMs At(std::string_view http_date) {
  auto ms = ParseHttpDate(http_date);
  EXPECT_TRUE(ms.ok()) << http_date;
  return ms.ok() ? *ms : 0;
}

std::string Authorization(std::string_view signature) {
  return "AWS " + std::string(kAccessKey) + ":" + std::string(signature);
}

SigV4Result<VerifiedRequest> Verify(const SigningRequest& request) {
  return VerifyRequest(request, ExampleLookup);
}

void ExpectVerifies(const SigningRequest& request) {
  auto verified = Verify(request);
  ASSERT_TRUE(verified.ok()) << verified.status().s3_code() << ": " << verified.status().message()
                             << "\nstring to sign:\n"
                             << StringToSignV2(request, SigV2Form::kHeader, "<date>");
  EXPECT_EQ(verified->access_key, kAccessKey);
  EXPECT_EQ(verified->payload_mode, PayloadMode::kUnsigned);
  EXPECT_TRUE(verified->signing_key.empty());
  EXPECT_TRUE(verified->seed_signature.empty());
}

void ExpectError(const SigningRequest& request, SigV4Error error) {
  auto verified = Verify(request);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error(), error)
      << verified.status().s3_code() << ": " << verified.status().message();
}

// "GET /photos/puppy.jpg", virtual-hosted on johnsmith.s3.amazonaws.com.
SigningRequest GetObjectExample() {
  SigningRequest r;
  r.method = "GET";
  r.raw_path = "/photos/puppy.jpg";
  r.virtual_host_bucket = "johnsmith";
  r.headers = {{"host", "johnsmith.s3.amazonaws.com"},
               {"date", "Tue, 27 Mar 2007 19:36:42 +0000"},
               {"authorization", Authorization("bWq2s1WEIj+Ydj0vQ697zp+IXMU=")}};
  r.now_ms = At("Tue, 27 Mar 2007 19:36:42 +0000");
  return r;
}

// ---- Primitives -------------------------------------------------------------------------

TEST(SigV2Test, HmacSha1Base64) {
  EXPECT_EQ(HmacSha1Base64("Jefe", "what do ya want for nothing?"), "7/zfauXrL6LSdBbV8YTfnCWafHk=");
  EXPECT_EQ(HmacSha1Base64(kSecret,
                           "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n"
                           "/johnsmith/photos/puppy.jpg"),
            "bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
}

// ---- The AWS documentation examples -----------------------------------------------------

TEST(SigV2AwsExamplesTest, ObjectGet) {
  SigningRequest request = GetObjectExample();
  EXPECT_EQ(StringToSignV2(request, SigV2Form::kHeader, "Tue, 27 Mar 2007 19:36:42 +0000"),
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg");
  ExpectVerifies(request);
  auto verified = Verify(request);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->kind, AuthKind::kHeaderV2);
  EXPECT_TRUE(!IsPresigned(verified->kind) && IsSigV2(verified->kind));
  EXPECT_FALSE(IsSigV2(AuthKind::kHeader) || IsSigV2(AuthKind::kPresigned));
  EXPECT_TRUE(IsPresigned(AuthKind::kPresigned));
  EXPECT_EQ(verified->request_time_ms, request.now_ms);
  EXPECT_FALSE(verified->expires_at_ms.has_value());
  EXPECT_EQ(SignRequestV2(request, ExampleCredentials()).value(),
            Authorization("bWq2s1WEIj+Ydj0vQ697zp+IXMU="));
}

TEST(SigV2AwsExamplesTest, ObjectPut) {
  SigningRequest r;
  r.method = "PUT";
  r.raw_path = "/photos/puppy.jpg";
  r.virtual_host_bucket = "johnsmith";
  r.headers = {{"content-type", "image/jpeg"},
               {"content-length", "94328"},
               {"host", "johnsmith.s3.amazonaws.com"},
               {"date", "Tue, 27 Mar 2007 21:15:45 +0000"},
               {"authorization", Authorization("MyyxeRY7whkBe+bq8fHCL/2kKUg=")}};
  r.now_ms = At("Tue, 27 Mar 2007 21:15:45 +0000");
  EXPECT_EQ(StringToSignV2(r, SigV2Form::kHeader, "Tue, 27 Mar 2007 21:15:45 +0000"),
            "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg");
  ExpectVerifies(r);
  SigningRequest other_type = r;
  other_type.headers[0].second = "image/png";
  ExpectError(other_type, SigV4Error::kSignatureDoesNotMatch);
}

TEST(SigV2AwsExamplesTest, ListKeepsTrailingSlashAndDropsQuery) {
  SigningRequest r;
  r.method = "GET";
  r.raw_path = "/";
  r.virtual_host_bucket = "johnsmith";
  r.query = {{"prefix", "photos"}, {"max-keys", "50"}, {"marker", "puppy"}};
  r.headers = {{"user-agent", "Mozilla/5.0"},
               {"host", "johnsmith.s3.amazonaws.com"},
               {"date", "Tue, 27 Mar 2007 19:42:41 +0000"},
               {"authorization", Authorization("htDYFYduRNen8P9ZfE/s9SuKy0U=")}};
  r.now_ms = At("Tue, 27 Mar 2007 19:42:41 +0000");
  EXPECT_EQ(CanonicalizedResourceV2(r), "/johnsmith/");
  ExpectVerifies(r);
}

TEST(SigV2AwsExamplesTest, FetchAcl) {
  SigningRequest r;
  r.method = "GET";
  r.raw_path = "/";
  r.virtual_host_bucket = "johnsmith";
  r.query = {{"acl", ""}};
  r.headers = {{"host", "johnsmith.s3.amazonaws.com"},
               {"date", "Tue, 27 Mar 2007 19:44:46 +0000"},
               {"authorization", Authorization("c2WLPFtWHVgbEmeEG93a4cG37dM=")}};
  r.now_ms = At("Tue, 27 Mar 2007 19:44:46 +0000");
  EXPECT_EQ(CanonicalizedResourceV2(r), "/johnsmith/?acl");
  ExpectVerifies(r);
  SigningRequest no_acl = r;
  no_acl.query.clear();
  ExpectError(no_acl, SigV4Error::kSignatureDoesNotMatch);
}

// Path style, with x-amz-date next to Date. The example signs the x-amz-date value on the
// Date line and leaves x-amz-date out of the x-amz-* lines.
TEST(SigV2AwsExamplesTest, DeleteWithAmzDate) {
  SigningRequest r;
  r.method = "DELETE";
  r.raw_path = "/johnsmith/photos/puppy.jpg";
  r.headers = {{"user-agent", "dotnet"},
               {"host", "s3.amazonaws.com"},
               {"date", "Tue, 27 Mar 2007 21:20:27 +0000"},
               {"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"},
               {"authorization", Authorization("lx3byBScXR6KzyMaifNkardMwNk=")}};
  r.now_ms = At("Tue, 27 Mar 2007 21:20:26 +0000");
  EXPECT_EQ(StringToSignV2(r, SigV2Form::kHeader, "Tue, 27 Mar 2007 21:20:26 +0000", true),
            "DELETE\n\n\nTue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg");
  ExpectVerifies(r);
  auto verified = Verify(r);
  ASSERT_TRUE(verified.ok());
  // The time is x-amz-date's, not Date's.
  EXPECT_EQ(verified->request_time_ms, At("Tue, 27 Mar 2007 21:20:26 +0000"));
}

// CNAME-style virtual hosting, x-amz-* headers in mixed case, repeated and padded.
TEST(SigV2AwsExamplesTest, UploadWithMetadata) {
  SigningRequest r;
  r.method = "PUT";
  r.raw_path = "/db-backup.dat.gz";
  r.virtual_host_bucket = "static.johnsmith.net";
  r.headers = {{"User-Agent", "curl/7.15.5"},
               {"Host", "static.johnsmith.net:8080"},
               {"Date", "Tue, 27 Mar 2007 21:06:08 +0000"},
               {"x-amz-acl", "public-read"},
               {"content-type", "application/x-download"},
               {"Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="},
               {"X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"},
               {"X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"},
               {"X-Amz-Meta-FileChecksum", "0x02661779"},
               {"X-Amz-Meta-ChecksumAlgorithm", "crc32"},
               {"Content-Disposition", "attachment; filename=database.dat"},
               {"Content-Encoding", "gzip"},
               {"Content-Length", "5913339"},
               {"Authorization", Authorization("ilyl83RwaSoYIEdixDQcA4OnAnc=")}};
  r.now_ms = At("Tue, 27 Mar 2007 21:06:08 +0000");
  EXPECT_EQ(StringToSignV2(r, SigV2Form::kHeader, "Tue, 27 Mar 2007 21:06:08 +0000"),
            "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\n"
            "Tue, 27 Mar 2007 21:06:08 +0000\n"
            "x-amz-acl:public-read\n"
            "x-amz-meta-checksumalgorithm:crc32\n"
            "x-amz-meta-filechecksum:0x02661779\n"
            "x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n"
            "/static.johnsmith.net/db-backup.dat.gz");
  ExpectVerifies(r);
  SigningRequest tampered = r;
  tampered.headers[9].second = "md5";  // x-amz-meta-checksumalgorithm
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = r;
  tampered.headers[5].second = "5gJE4saaMU4BqNR0kLY+lw==";  // Content-MD5
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  // Content-Disposition and Content-Encoding are not signed.
  tampered = r;
  tampered.headers[10].second = "inline";
  ExpectVerifies(tampered);
}

TEST(SigV2AwsExamplesTest, ListAllMyBuckets) {
  SigningRequest r;
  r.method = "GET";
  r.raw_path = "/";
  r.headers = {{"host", "s3.amazonaws.com"},
               {"date", "Wed, 28 Mar 2007 01:29:59 +0000"},
               {"authorization", Authorization("qGdzdERIC03wnaRNKh6OqZehG9s=")}};
  r.now_ms = At("Wed, 28 Mar 2007 01:29:59 +0000");
  ExpectVerifies(r);
  r.raw_path = "";  // an empty path is "/"
  ExpectVerifies(r);
}

// The path is signed exactly as sent, escapes and their case included.
TEST(SigV2AwsExamplesTest, UnicodeKeysAreSignedAsSent) {
  SigningRequest r;
  r.method = "GET";
  r.raw_path = "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re";
  r.headers = {{"host", "s3.amazonaws.com"},
               {"date", "Wed, 28 Mar 2007 01:49:49 +0000"},
               {"authorization", Authorization("DNEZGsoieTZ92F3bUfSPQcbGmlM=")}};
  r.now_ms = At("Wed, 28 Mar 2007 01:49:49 +0000");
  EXPECT_EQ(CanonicalizedResourceV2(r), "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re");
  ExpectVerifies(r);
  r.raw_path = "/dictionary/fran%C3%A7ais/pr%C3%A9f%C3%A8re";
  ExpectError(r, SigV4Error::kSignatureDoesNotMatch);
}

SigningRequest PresignedExample() {
  SigningRequest r;
  r.method = "GET";
  r.raw_path = "/photos/puppy.jpg";
  r.virtual_host_bucket = "johnsmith";
  r.query = {{"AWSAccessKeyId", std::string(kAccessKey)},
             {"Signature", "NpgCjnDzrM+WFzoENXmpNDUsSn8="},
             {"Expires", "1175139620"}};
  r.headers = {{"host", "johnsmith.s3.amazonaws.com"}};
  r.now_ms = 1175139620000 - 3600 * 1000;
  return r;
}

TEST(SigV2AwsExamplesTest, QueryStringAuthentication) {
  SigningRequest request = PresignedExample();
  EXPECT_EQ(StringToSignV2(request, SigV2Form::kQuery, "1175139620"),
            "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg");
  EXPECT_EQ(DetectAuthKind(request).value(), AuthKind::kPresignedV2);
  auto verified = Verify(request);
  ASSERT_TRUE(verified.ok()) << verified.status().message();
  EXPECT_EQ(verified->kind, AuthKind::kPresignedV2);
  EXPECT_TRUE(IsPresigned(verified->kind) && IsSigV2(verified->kind));
  EXPECT_EQ(verified->access_key, kAccessKey);
  EXPECT_EQ(verified->expires_at_ms, 1175139620000);
  EXPECT_EQ(verified->payload_mode, PayloadMode::kUnsigned);

  SigningRequest unsigned_url = request;
  unsigned_url.query.resize(0);
  auto presigned = PresignV2(unsigned_url, ExampleCredentials(), 1175139620);
  ASSERT_TRUE(presigned.ok());
  EXPECT_EQ(presigned->back(),
            (std::pair<std::string, std::string>("Signature", "NpgCjnDzrM+WFzoENXmpNDUsSn8=")));

  // Query authentication ignores the request's dates, however wrong.
  request.headers.emplace_back("date", "Tue, 07 Jul 1950 21:53:04 GMT");
  request.headers.emplace_back("x-amz-date", "garbage");
  EXPECT_TRUE(Verify(request).ok());
}

// ---- Canonicalization -------------------------------------------------------------------

TEST(SigV2CanonicalTest, SubresourcesSortedWithDecodedValues) {
  SigningRequest r;
  r.method = "GET";
  r.raw_path = "/bucket/key";
  r.query = {{"versionId", "v1"},
             {"uploadId", "u/1 2"},
             {"prefix", "p"},
             {"partNumber", "3"},
             {"response-content-type", "text/plain; charset=utf-8"},
             {"acl", ""},
             {"max-keys", "5"},
             {"X-Amz-Foo", "bar"}};
  EXPECT_EQ(CanonicalizedResourceV2(r),
            "/bucket/key?acl&partNumber=3&response-content-type=text/plain; charset=utf-8"
            "&uploadId=u/1 2&versionId=v1");
  for (std::string_view name : {"acl",
                                "cors",
                                "delete",
                                "lifecycle",
                                "location",
                                "logging",
                                "notification",
                                "partNumber",
                                "policy",
                                "requestPayment",
                                "tagging",
                                "torrent",
                                "uploadId",
                                "uploads",
                                "versionId",
                                "versioning",
                                "versions",
                                "website",
                                "response-cache-control",
                                "response-content-disposition",
                                "response-content-encoding",
                                "response-content-language",
                                "response-content-type",
                                "response-expires"}) {
    EXPECT_TRUE(IsSignedSubresourceV2(name)) << name;
  }
  for (std::string_view name : {"prefix", "marker", "max-keys", "list-type", "delimiter",
                                "AWSAccessKeyId", "Signature", "Expires", "ACL", "versionid"}) {
    EXPECT_FALSE(IsSignedSubresourceV2(name)) << name;
  }
  // The multi-object delete; the virtual-hosted bucket comes first.
  r.query = {{"delete", ""}};
  r.raw_path = "/";
  r.virtual_host_bucket = "photos";
  EXPECT_EQ(CanonicalizedResourceV2(r), "/photos/?delete");
}

TEST(SigV2CanonicalTest, AmzHeaderFolding) {
  SigningRequest r;
  r.headers = {{"X-Amz-Meta-B", "  two  words  "},
               {"x-amz-meta-a", "first"},
               {"Content-Type", "text/plain"},
               {"X-AMZ-META-A", "second"},
               {"x-amz-meta-folded", "line one\r\n   line two"},
               {"x-amzfoo", "not an amz header"},
               {"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"}};
  EXPECT_EQ(CanonicalizedAmzHeadersV2(r, SigV2Form::kHeader),
            "x-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n"
            "x-amz-meta-a:first,second\n"
            "x-amz-meta-b:two  words\n"
            "x-amz-meta-folded:line one line two\n");
  EXPECT_EQ(CanonicalizedAmzHeadersV2(r, SigV2Form::kHeader, true),
            "x-amz-meta-a:first,second\n"
            "x-amz-meta-b:two  words\n"
            "x-amz-meta-folded:line one line two\n");
  // Presigned URLs: x-amz-* query parameters count too, over headers of the same name;
  // x-amz-date never does.
  r.headers = {{"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"}, {"x-amz-meta-a", "h"}};
  r.query = {{"x-amz-acl", "private"}, {"X-Amz-Meta-A", "q"}, {"prefix", "p"}};
  EXPECT_EQ(CanonicalizedAmzHeadersV2(r, SigV2Form::kQuery), "x-amz-acl:private\nx-amz-meta-a:q\n");
  EXPECT_EQ(CanonicalizedAmzHeadersV2(r, SigV2Form::kHeader),
            "x-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\nx-amz-meta-a:h\n");
}

// ---- Dates ------------------------------------------------------------------------------

SigningRequest Signed(SigningRequest request, std::string_view string_to_sign) {
  request.headers.emplace_back("authorization",
                               Authorization(HmacSha1Base64(kSecret, string_to_sign)));
  return request;
}

SigningRequest PutWithDates(std::optional<std::string> date, std::optional<std::string> amz_date) {
  SigningRequest r;
  r.method = "PUT";
  r.raw_path = "/bucket/key";
  r.headers = {{"host", "127.0.0.1:9000"}, {"content-type", "text/plain"}};
  if (date) r.headers.emplace_back("date", *date);
  if (amz_date) r.headers.emplace_back("x-amz-date", *amz_date);
  r.headers.emplace_back("x-amz-meta-color", "blue");
  r.now_ms = At("Tue, 27 Mar 2007 21:20:26 GMT");
  return r;
}

TEST(SigV2DateTest, AmzDateForms) {
  const std::string date = "Tue, 27 Mar 2007 21:20:27 GMT";
  const std::string amz_date = "Tue, 27 Mar 2007 21:20:26 +0000";
  const std::string amz_lines = "x-amz-date:" + amz_date + "\nx-amz-meta-color:blue\n";
  // The AWS text: an empty Date line (s3cmd sends no Date at all).
  ExpectVerifies(Signed(PutWithDates(std::nullopt, amz_date),
                        "PUT\n\ntext/plain\n\n" + amz_lines + "/bucket/key"));
  ExpectVerifies(
      Signed(PutWithDates(date, amz_date), "PUT\n\ntext/plain\n\n" + amz_lines + "/bucket/key"));
  // botocore: the Date header's value on the Date line, x-amz-date among the x-amz-* lines.
  ExpectVerifies(Signed(PutWithDates(date, amz_date),
                        "PUT\n\ntext/plain\n" + date + "\n" + amz_lines + "/bucket/key"));
  // The AWS example: x-amz-date's value on the Date line, and not among the x-amz-* lines.
  ExpectVerifies(Signed(PutWithDates(date, amz_date),
                        "PUT\n\ntext/plain\n" + amz_date + "\nx-amz-meta-color:blue\n/bucket/key"));
  // Nothing else: the x-amz-date value with x-amz-date also signed among the lines, or the
  // Date value without x-amz-date.
  ExpectError(Signed(PutWithDates(date, amz_date),
                     "PUT\n\ntext/plain\n" + amz_date + "\n" + amz_lines + "/bucket/key"),
              SigV4Error::kSignatureDoesNotMatch);
  ExpectError(Signed(PutWithDates(date, amz_date),
                     "PUT\n\ntext/plain\n" + date + "\nx-amz-meta-color:blue\n/bucket/key"),
              SigV4Error::kSignatureDoesNotMatch);
  // Without x-amz-date the Date header is the Date line; the ISO 8601 form parses too.
  ExpectVerifies(Signed(PutWithDates(date, std::nullopt),
                        "PUT\n\ntext/plain\n" + date + "\nx-amz-meta-color:blue\n/bucket/key"));
  ExpectVerifies(Signed(PutWithDates(std::nullopt, "20070327T212026Z"),
                        "PUT\n\ntext/plain\n\nx-amz-date:20070327T212026Z\n"
                        "x-amz-meta-color:blue\n/bucket/key"));
}

TEST(SigV2DateTest, DateErrors) {
  const std::string good = "Tue, 27 Mar 2007 21:20:26 GMT";
  auto signed_put = [](std::optional<std::string> date, std::optional<std::string> amz_date) {
    SigningRequest r = PutWithDates(date, amz_date);
    auto authorization = SignRequestV2(r, ExampleCredentials());  // fails without a date
    r.headers.emplace_back("authorization", authorization.ok()
                                                ? *authorization
                                                : Authorization("AAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    return r;
  };
  ExpectVerifies(signed_put(good, std::nullopt));
  ExpectVerifies(signed_put(std::nullopt, good));
  // Neither header.
  ExpectError(signed_put(std::nullopt, std::nullopt), SigV4Error::kAccessDenied);
  // Unparseable, empty, before the epoch: AccessDenied, whatever Date says.
  for (std::string bad : {"Bad Date", "", "Tue, 07 Jul 1950 21:53:04 GMT", "Tue, 27 Mar 2007",
                          "Tue, 27 Mar 2007 21:20:26 PST", "Tue, 31 Apr 2007 21:20:26 GMT"}) {
    ExpectError(signed_put(std::nullopt, bad), SigV4Error::kAccessDenied);
    ExpectError(signed_put(good, bad), SigV4Error::kAccessDenied);
    ExpectError(signed_put(bad, std::nullopt), SigV4Error::kAccessDenied);
  }
  // x-amz-date wins over Date: a good x-amz-date makes a bad Date harmless.
  ExpectVerifies(signed_put("Bad Date", good));
  // More than 15 minutes either way.
  for (std::string far : {"Tue, 27 Mar 2007 21:05:25 GMT", "Tue, 27 Mar 2007 21:35:27 GMT",
                          "Wed, 07 Jul 2010 21:53:04 GMT", "Tue, 07 Jul 9999 21:53:04 GMT"}) {
    ExpectError(signed_put(std::nullopt, far), SigV4Error::kRequestTimeTooSkewed);
    ExpectError(signed_put(far, std::nullopt), SigV4Error::kRequestTimeTooSkewed);
  }
  ExpectVerifies(signed_put(std::nullopt, "Tue, 27 Mar 2007 21:06:27 GMT"));
  ExpectVerifies(signed_put(std::nullopt, "Tue, 27 Mar 2007 21:34:25 GMT"));
  // A repeated x-amz-date is refused.
  SigningRequest twice = signed_put(std::nullopt, good);
  twice.headers.emplace_back("x-amz-date", good);
  ExpectError(twice, SigV4Error::kInvalidArgument);
}

// ---- Header errors ----------------------------------------------------------------------

TEST(SigV2VerifyTest, MalformedAuthorization) {
  for (std::string_view bad : {"AWS HAHAHA", "AWS :c2WLPFtWHVgbEmeEG93a4cG37dM=",
                               "AWS AKIAIOSFODNN7EXAMPLE:", "AWS AK ID:sig", "AWS AK:two words"}) {
    SigningRequest r = GetObjectExample();
    r.headers.back().second = std::string(bad);
    ExpectError(r, SigV4Error::kInvalidArgument);
    auto verified = Verify(r);
    EXPECT_EQ(verified.status().http_status(), 400);
  }
  EXPECT_EQ(ParseAuthorizationV2("AWS AK:sig=").value().access_key, "AK");
  EXPECT_EQ(ParseAuthorizationV2("  AWS   AK:sig=  ").value().signature, "sig=");
  // "AWS" without a space is not V2: the V4 parser names the unknown algorithm.
  SigningRequest r = GetObjectExample();
  r.headers.back().second = "AWS";
  ExpectError(r, SigV4Error::kAuthorizationHeaderMalformed);
}

TEST(SigV2VerifyTest, WrongSignatureUnknownKeyAndBrokenStore) {
  SigningRequest request = GetObjectExample();
  request.headers.back().second = Authorization("bWq2s1WEIj+Ydj0vQ697zp+IXMV=");
  ExpectError(request, SigV4Error::kSignatureDoesNotMatch);
  EXPECT_EQ(Verify(request).status().http_status(), 403);
  request.headers.back().second = Authorization("not-base64-at-all!");
  ExpectError(request, SigV4Error::kSignatureDoesNotMatch);

  request = GetObjectExample();
  auto wrong_secret = VerifyRequest(request, [](std::string_view) -> Result<std::string> {
    return std::string("not the secret");
  });
  EXPECT_EQ(wrong_secret.error(), SigV4Error::kSignatureDoesNotMatch);
  EXPECT_EQ(wrong_secret.status().message().find("bWq2s1WE"), std::string::npos);

  request.headers.back().second = "AWS AKIAIGR7ZNNBHC5BKSUB:FWeDfwojDSdS2Ztmpfeubhd9isU=";
  ExpectError(request, SigV4Error::kInvalidAccessKeyId);
  EXPECT_EQ(Verify(request).status().http_status(), 403);
  auto down = VerifyRequest(GetObjectExample(), [](std::string_view) -> Result<std::string> {
    return UnavailableError("db");
  });
  EXPECT_EQ(down.error(), SigV4Error::kServiceUnavailable);
}

TEST(SigV2VerifyTest, TamperedRequestFails) {
  SigningRequest request = GetObjectExample();
  SigningRequest tampered = request;
  tampered.method = "HEAD";
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.raw_path = "/photos/kitten.jpg";
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.virtual_host_bucket = "otherbucket";
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.query.emplace_back("versionId", "1");
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.headers.emplace_back("x-amz-meta-added", "1");
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  tampered = request;
  tampered.headers.emplace_back("content-type", "text/html");
  ExpectError(tampered, SigV4Error::kSignatureDoesNotMatch);
  // V2 does not sign other headers or query parameters that are not sub-resources.
  tampered = request;
  tampered.headers.emplace_back("range", "bytes=0-9");
  tampered.query.emplace_back("prefix", "x");
  ExpectVerifies(tampered);
}

TEST(SigV2VerifyTest, AwsChunkedIsRefused) {
  const std::vector<std::pair<std::string, std::string>> chunked_headers[] = {
      {{"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}},
      {{"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}},
      {{"x-amz-decoded-content-length", "3"}},
      {{"x-amz-trailer", "x-amz-checksum-crc32"}},
      {{"content-encoding", "gzip, aws-chunked"}},
  };
  for (const auto& extra : chunked_headers) {
    SigningRequest r = PutWithDates("Tue, 27 Mar 2007 21:20:26 GMT", std::nullopt);
    r.headers.insert(r.headers.end(), extra.begin(), extra.end());
    r.headers.emplace_back("authorization", SignRequestV2(r, ExampleCredentials()).value());
    ExpectError(r, SigV4Error::kInvalidRequest);
  }
  // A plain x-amz-content-sha256 is signed like any x-amz-* header and otherwise ignored.
  SigningRequest r = PutWithDates("Tue, 27 Mar 2007 21:20:26 GMT", std::nullopt);
  r.headers.emplace_back("x-amz-content-sha256", std::string(kEmptySha256));
  r.headers.emplace_back("authorization", SignRequestV2(r, ExampleCredentials()).value());
  ExpectVerifies(r);
}

TEST(SigV2VerifyTest, SecurityTokenIsPassedThrough) {
  SigningRequest r = PutWithDates("Tue, 27 Mar 2007 21:20:26 GMT", std::nullopt);
  r.headers.emplace_back("x-amz-security-token", "token");
  r.headers.emplace_back("authorization", SignRequestV2(r, ExampleCredentials()).value());
  auto verified = Verify(r);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->security_token, "token");
}

// ---- Query-string authentication --------------------------------------------------------

TEST(SigV2PresignedTest, Errors) {
  SigningRequest request = PresignedExample();
  // Expired: a second after Expires; still good at Expires.
  request.now_ms = 1175139620000;
  EXPECT_TRUE(Verify(request).ok());
  request.now_ms = 1175139621000;
  ExpectError(request, SigV4Error::kAccessDenied);
  EXPECT_EQ(Verify(request).status().message(), "Request has expired");
  // More than 7 days (and the allowed skew) ahead.
  request.now_ms = (1175139620 - 7 * 86400) * int64_t{1000};
  EXPECT_TRUE(Verify(request).ok());
  request.now_ms = (1175139620 - 7 * 86400 - 16 * 60) * int64_t{1000};
  ExpectError(request, SigV4Error::kAccessDenied);

  for (std::string_view expires : {"soon", "", "-1", "1175139620.5", "99999999999999999999"}) {
    SigningRequest bad = PresignedExample();
    bad.query[2].second = std::string(expires);
    ExpectError(bad, SigV4Error::kAccessDenied);
    EXPECT_EQ(Verify(bad).status().http_status(), 403) << expires;
  }
  for (size_t missing = 0; missing < 3; ++missing) {
    SigningRequest bad = PresignedExample();
    bad.query.erase(bad.query.begin() + static_cast<std::ptrdiff_t>(missing));
    EXPECT_EQ(DetectAuthKind(bad).value(), AuthKind::kPresignedV2);
    ExpectError(bad, SigV4Error::kAccessDenied);
  }
  SigningRequest twice = PresignedExample();
  twice.query.emplace_back("Expires", "1175139620");
  ExpectError(twice, SigV4Error::kInvalidArgument);

  SigningRequest wrong = PresignedExample();
  wrong.query[1].second = "NpgCjnDzrM+WFzoENXmpNDUsSn9=";
  ExpectError(wrong, SigV4Error::kSignatureDoesNotMatch);
  wrong = PresignedExample();
  wrong.query[2].second = "1175139621";  // a later expiry is not signed
  ExpectError(wrong, SigV4Error::kSignatureDoesNotMatch);
  wrong = PresignedExample();
  wrong.query[0].second = "AKIDUNKNOWN";
  ExpectError(wrong, SigV4Error::kInvalidAccessKeyId);

  // An unescaped '+' in the Signature arrives as a space.
  SigningRequest plus = PresignedExample();
  plus.query[1].second = "NpgCjnDzrM WFzoENXmpNDUsSn8=";
  EXPECT_TRUE(Verify(plus).ok());

  // Not with an Authorization header as well.
  SigningRequest both = PresignedExample();
  both.headers.emplace_back("authorization", Authorization("NpgCjnDzrM+WFzoENXmpNDUsSn8="));
  ExpectError(both, SigV4Error::kInvalidArgument);
}

// What botocore's presigner does: signed x-amz-* headers and Content-Type move into the
// query string.
TEST(SigV2PresignedTest, HeadersCarriedInTheQuery) {
  SigningRequest r;
  r.method = "PUT";
  r.raw_path = "/bucket/key";
  r.headers = {{"host", "127.0.0.1:9000"},
               {"content-type", "text/plain"},
               {"x-amz-acl", "private"},
               {"x-amz-meta-color", "blue"}};
  r.now_ms = 1700000000000;
  const std::string expected =
      "PUT\n\ntext/plain\n1700003600\nx-amz-acl:private\nx-amz-meta-color:blue\n/bucket/key";
  EXPECT_EQ(StringToSignV2(r, SigV2Form::kQuery, "1700003600"), expected);
  auto presigned = PresignV2(r, ExampleCredentials(), 1700003600);
  ASSERT_TRUE(presigned.ok());
  SigningRequest sent = r;
  sent.query = *presigned;
  EXPECT_TRUE(Verify(sent).ok());

  // The same values as query parameters instead of headers.
  SigningRequest moved = sent;
  moved.headers = {{"host", "127.0.0.1:9000"}};
  moved.query.insert(
      moved.query.begin(),
      {{"content-type", "text/plain"}, {"x-amz-acl", "private"}, {"x-amz-meta-color", "blue"}});
  EXPECT_EQ(StringToSignV2(moved, SigV2Form::kQuery, "1700003600"), expected);
  EXPECT_TRUE(Verify(moved).ok());
  // Headers that repeat them with other values are ignored: the URL is what was signed.
  SigningRequest repeated = moved;
  repeated.headers.emplace_back("x-amz-meta-color", "red");
  repeated.headers.emplace_back("content-type", "text/html");
  EXPECT_TRUE(Verify(repeated).ok());
  moved.query[1].second = "public-read";
  EXPECT_EQ(Verify(moved).error(), SigV4Error::kSignatureDoesNotMatch);
  // A Content-Type header other than the signed one does not pass.
  SigningRequest retyped = sent;
  retyped.headers[1].second = "text/html";
  EXPECT_EQ(Verify(retyped).error(), SigV4Error::kSignatureDoesNotMatch);
}

}  // namespace
}  // namespace cairn::api::s3
