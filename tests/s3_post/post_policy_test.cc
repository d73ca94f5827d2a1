#include "api/s3/post/post_policy.h"
#include "api/s3/sigv4/sigv2.h"

#include <gtest/gtest.h>

#include <string>

#include "core/base64.h"

namespace cairn::api::s3::post {
namespace {

// 2030-01-01T00:00:00Z and a moment before it.
constexpr TimestampMs kExpiry = 1893456000000;
constexpr TimestampMs kNow = kExpiry - 3600 * 1000;

std::string Encode(const std::string& json) { return Base64Encode(json); }

PostPolicy MustParse(const std::string& json) {
  PostPolicy policy;
  std::optional<PostError> error = ParsePostPolicy(Encode(json), &policy);
  EXPECT_FALSE(error) << json << ": " << error->message;
  return policy;
}

std::string PolicyWith(const std::string& conditions) {
  return R"({"expiration": "2030-01-01T00:00:00.000Z", "conditions": [)" + conditions + "]}";
}

TEST(PostForm, CollectsFieldsAsS3EvaluatesThem) {
  std::vector<FormField> fields = {{"Key", "user/${filename}"},
                                   {"x-amz-meta-tag", "Ninja"},
                                   {"X-Amz-Meta-Tag", "Stallman"},
                                   {"Content-Type", "${filename}${filename}"}};
  FormValues values = CollectFormValues(fields, "C:\\docs\\lolcatz.jpg");
  EXPECT_EQ(values.at("key"), "user/lolcatz.jpg");
  EXPECT_EQ(values.at("x-amz-meta-tag"), "Ninja,Stallman");
  EXPECT_EQ(values.at("content-type"), "lolcatz.jpglolcatz.jpg");
  EXPECT_EQ(values.size(), 3u);
  // No file name: the variable becomes empty.
  EXPECT_EQ(CollectFormValues({{"key", "a${filename}b"}}, "").at("key"), "ab");
}

TEST(PostForm, FindsTheObjectKey) {
  std::string key;
  std::optional<PostError> error = FindObjectKey({}, &key);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "InvalidArgument");
  EXPECT_NE(error->message.find("must contain a field named 'key'"), std::string::npos);
  EXPECT_EQ(FindObjectKey({{"key", ""}}, &key)->code, "InvalidArgument");
  EXPECT_EQ(FindObjectKey({{"key", std::string(1025, 'k')}}, &key)->code, "KeyTooLongError");
  EXPECT_EQ(FindObjectKey({{"key", "bad\xff"}}, &key)->code, "InvalidArgument");
  EXPECT_FALSE(FindObjectKey({{"key", std::string(1024, 'k')}}, &key));
  EXPECT_FALSE(FindObjectKey({{"key", "a/b c\\$d"}}, &key));
  EXPECT_EQ(key, "a/b c\\$d");
}

// Vectors computed independently (Python's hmac module) for the secret of AWS's examples.
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kPolicy =
    "eyJleHBpcmF0aW9uIjoiMjAzMC0wMS0wMVQwMDowMDowMFoiLCJjb25kaXRpb25zIjpbeyJidWNrZXQiOiJwaG90b3Mi"
    "fV19";
constexpr std::string_view kV4Signature =
    "35b214e525309a76d2c581d73c4f2e9476097364a45dadb29b12f3ab14e4a891";
constexpr std::string_view kV2Signature = "yakguemy+wsqzf/hQHJ6xy9y3jo=";

FormValues V4Form() {
  return {{"policy", std::string(kPolicy)},
          {"x-amz-algorithm", "AWS4-HMAC-SHA256"},
          {"x-amz-credential", "AKIAIOSFODNN7EXAMPLE/20250102/us-east-1/s3/aws4_request"},
          {"x-amz-date", "20250102T030405Z"},
          {"x-amz-signature", std::string(kV4Signature)}};
}

FormValues V2Form() {
  return {{"policy", std::string(kPolicy)},
          {"awsaccesskeyid", "AKIAIOSFODNN7EXAMPLE"},
          {"signature", std::string(kV2Signature)}};
}

TEST(PostCredentials, VerifiesSignatureVersion4) {
  PostCredentials credentials;
  ASSERT_FALSE(ParsePostCredentials(V4Form(), &credentials));
  EXPECT_EQ(credentials.kind, PostAuthKind::kV4);
  EXPECT_EQ(credentials.access_key, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(credentials.scope.region, "us-east-1");
  EXPECT_EQ(credentials.policy, kPolicy);
  EXPECT_TRUE(PostSignatureMatches(credentials, kSecret, nullptr));
  SigningKeyCache cache;
  EXPECT_TRUE(PostSignatureMatches(credentials, kSecret, &cache));
  EXPECT_TRUE(PostSignatureMatches(credentials, kSecret, &cache));
  EXPECT_FALSE(PostSignatureMatches(credentials, "another secret", nullptr));
  PostCredentials tampered = credentials;
  tampered.policy += "=";
  EXPECT_FALSE(PostSignatureMatches(tampered, kSecret, nullptr));
  tampered = credentials;
  tampered.scope.region = "eu-west-1";
  EXPECT_FALSE(PostSignatureMatches(tampered, kSecret, nullptr));
}

TEST(PostCredentials, VerifiesSignatureVersion2) {
  EXPECT_EQ(HmacSha1Base64(kSecret, kPolicy), kV2Signature);
  PostCredentials credentials;
  ASSERT_FALSE(ParsePostCredentials(V2Form(), &credentials));
  EXPECT_EQ(credentials.kind, PostAuthKind::kV2);
  EXPECT_TRUE(PostSignatureMatches(credentials, kSecret, nullptr));
  std::string reversed(kV2Signature.rbegin(), kV2Signature.rend());
  credentials.signature = reversed;
  EXPECT_FALSE(PostSignatureMatches(credentials, kSecret, nullptr));
}

TEST(PostCredentials, AnonymousWithoutAPolicy) {
  PostCredentials credentials;
  ASSERT_FALSE(ParsePostCredentials({{"key", "k"}, {"acl", "public-read"}}, &credentials));
  EXPECT_EQ(credentials.kind, PostAuthKind::kAnonymous);
  EXPECT_FALSE(PostSignatureMatches(credentials, kSecret, nullptr));
}

TEST(PostCredentials, RefusesIncompleteOrMalformedCredentials) {
  struct Case {
    std::string what;
    FormValues values;
    std::string in_message;
  };
  auto without = [](FormValues values, const std::string& name) {
    values.erase(name);
    return values;
  };
  auto with = [](FormValues values, const std::string& name, const std::string& value) {
    values[name] = value;
    return values;
  };
  const std::vector<Case> cases = {
      {"V2 without signature", without(V2Form(), "signature"), "named 'Signature'"},
      {"V2 without access key", without(V2Form(), "awsaccesskeyid"), "named 'AWSAccessKeyId'"},
      {"signature without policy", without(V2Form(), "policy"), "named 'policy'"},
      {"V4 without algorithm", without(V4Form(), "x-amz-algorithm"), "x-amz-algorithm"},
      {"V4 without credential", without(V4Form(), "x-amz-credential"), "x-amz-credential"},
      {"V4 without date", without(V4Form(), "x-amz-date"), "x-amz-date"},
      {"V4 without signature", without(V4Form(), "x-amz-signature"), "x-amz-signature"},
      {"V4 other algorithm", with(V4Form(), "x-amz-algorithm", "AWS4-HMAC-SHA1"), "algorithm"},
      {"V4 bad credential", with(V4Form(), "x-amz-credential", "AKIA/2025/x"), "credential"},
      {"V4 other service",
       with(V4Form(), "x-amz-credential", "AKIA/20250102/us-east-1/sqs/aws4_request"), "'s3'"},
      {"V4 bad date", with(V4Form(), "x-amz-date", "2025-01-02"), "x-amz-date"},
      {"V4 other day", with(V4Form(), "x-amz-date", "20250103T000000Z"), "day"},
  };
  for (const Case& c : cases) {
    PostCredentials credentials;
    std::optional<PostError> error = ParsePostCredentials(c.values, &credentials);
    ASSERT_TRUE(error) << c.what;
    EXPECT_EQ(error->status, 400) << c.what;
    EXPECT_EQ(error->code, "InvalidArgument") << c.what;
    EXPECT_NE(error->message.find(c.in_message), std::string::npos)
        << c.what << ": " << error->message;
  }
}

TEST(PostPolicyDocument, ParsesConditions) {
  PostPolicy policy = MustParse(PolicyWith(
      R"({"bUcKeT": "photos"}, ["StArTs-WiTh", "$KeY", "user/"], ["eq", "$acl", "private"],
         ["content-length-range", 10, 1048576], ["content-length-range", "0", "2000000"],
         {"success_action_status": 201})"));
  EXPECT_EQ(policy.expiration_ms, kExpiry);
  ASSERT_EQ(policy.conditions.size(), 6u);
  EXPECT_EQ(policy.conditions[0].field, "bucket");
  EXPECT_EQ(policy.conditions[1].kind, PolicyCondition::Kind::kStartsWith);
  EXPECT_EQ(policy.conditions[1].field, "key");
  EXPECT_EQ(policy.conditions[1].text, R"(["starts-with", "$KeY", "user/"])");
  EXPECT_EQ(policy.conditions[5].value, "201");
  EXPECT_EQ(policy.min_size, 10u);
  EXPECT_EQ(policy.max_size, 1048576u);
  // Expiration without fractional seconds, or with any number of digits.
  EXPECT_EQ(MustParse(R"({"expiration": "2030-01-01T00:00:00Z", "conditions": []})").expiration_ms,
            kExpiry);
  EXPECT_EQ(
      MustParse(R"({"expiration": "2030-01-01T00:00:00.123456Z", "conditions": []})").expiration_ms,
      kExpiry);
  // Base64 wrapped over lines, as some encoders write it.
  std::string wrapped = Encode(PolicyWith(R"({"bucket": "photos"})"));
  wrapped.insert(20, "\n");
  PostPolicy parsed;
  EXPECT_FALSE(ParsePostPolicy(wrapped, &parsed));
}

TEST(PostPolicyDocument, RefusesInvalidDocuments) {
  const std::vector<std::string> invalid = {
      "not json",
      "[1, 2]",
      R"({"conditions": []})",
      R"({"EXPIRATION": "2030-01-01T00:00:00Z", "conditions": []})",
      R"({"expiration": "2030-01-01T00:00:00Z"})",
      R"({"expiration": "2030-01-01T00:00:00Z", "CONDITIONS": []})",
      R"({"expiration": "2030-01-01T00:00:00Z", "conditions": {"bucket": "b"}})",
      R"({"expiration": "2030-01-01 00:00:00.123+00:00", "conditions": []})",
      R"({"expiration": "2030-01-01T00:00:00+00:00", "conditions": []})",
      R"({"expiration": "2030-13-01T00:00:00Z", "conditions": []})",
      R"({"expiration": "2030-01-01T00:00:00.Z", "conditions": []})",
      R"({"expiration": 1893456000, "conditions": []})",
      PolicyWith("{}"),
      PolicyWith(R"({"a": "1", "b": "2"})"),
      PolicyWith(R"({"a": ["x"]})"),
      PolicyWith("42"),
      PolicyWith("[]"),
      PolicyWith(R"(["ends-with", "$key", "x"])"),
      PolicyWith(R"(["eq", "$key"])"),
      PolicyWith(R"(["eq", "key", "x"])"),
      PolicyWith(R"(["eq", "$", "x"])"),
      PolicyWith(R"(["starts-with", "$key", "x", "y"])"),
      PolicyWith(R"(["content-length-range", 0])"),
      PolicyWith(R"(["content-length-range", -1, 0])"),
      PolicyWith(R"(["content-length-range", 0, 512.0])"),
      PolicyWith(R"(["content-length-range", "0", "1k"])"),
  };
  for (const std::string& json : invalid) {
    PostPolicy policy;
    std::optional<PostError> error = ParsePostPolicy(Encode(json), &policy);
    ASSERT_TRUE(error) << json;
    EXPECT_EQ(error->status, 400) << json;
    EXPECT_EQ(error->code, "InvalidPolicyDocument") << json;
    EXPECT_EQ(error->message.rfind("Invalid Policy: ", 0), 0u) << error->message;
  }
  PostPolicy policy;
  EXPECT_EQ(ParsePostPolicy("not base64!", &policy)->code, "InvalidPolicyDocument");
  EXPECT_EQ(ParsePostPolicy("", &policy)->code, "InvalidPolicyDocument");
}

std::optional<PostError> Check(const std::string& conditions, const FormValues& values,
                               TimestampMs now = kNow) {
  return CheckPostPolicy(MustParse(PolicyWith(conditions)), values, "photos", now);
}

TEST(PostPolicyDocument, ChecksExpiration) {
  EXPECT_FALSE(Check("", {}, kExpiry - 1));
  std::optional<PostError> expired = Check("", {}, kExpiry);
  ASSERT_TRUE(expired);
  EXPECT_EQ(expired->status, 403);
  EXPECT_EQ(expired->code, "AccessDenied");
  EXPECT_EQ(expired->message, "Invalid according to Policy: Policy expired.");
}

TEST(PostPolicyDocument, ChecksConditions) {
  const FormValues form = {{"key", "user/cat.jpg"},
                           {"acl", "private"},
                           {"content-type", "image/jpeg"},
                           {"x-amz-meta-tag", "Ninja,Stallman"}};
  const std::string covering =
      R"(["starts-with", "$key", "user/"], {"acl": "private"}, ["starts-with", "$Content-Type", "image/"],
         ["eq", "$x-amz-meta-tag", "Ninja,Stallman"])";
  EXPECT_FALSE(Check(covering, form));
  EXPECT_FALSE(Check(covering + R"(, {"bucket": "photos"})", form));
  // The bucket is the one posted to, whatever a "bucket" field says.
  FormValues with_bucket = form;
  with_bucket["bucket"] = "other";
  EXPECT_FALSE(Check(covering + R"(, {"bucket": "photos"})", with_bucket));
  std::optional<PostError> wrong_bucket = Check(covering + R"(, {"bucket": "other"})", form);
  ASSERT_TRUE(wrong_bucket);
  EXPECT_EQ(wrong_bucket->message,
            R"(Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "other"])");

  struct Failing {
    std::string condition;
  };
  for (const std::string& failing : {
           std::string(R"(["starts-with", "$key", "User/"])"),  // values are case-sensitive
           std::string(R"(["eq", "$key", "user/cat"])"),
           std::string(R"({"acl": "public-read"})"),
           std::string(R"(["eq", "$x-amz-meta-missing", "x"])"),
           std::string(R"(["starts-with", "$x-amz-meta-missing", "x"])"),
       }) {
    std::optional<PostError> error = Check(covering + ", " + failing, form);
    ASSERT_TRUE(error) << failing;
    EXPECT_EQ(error->status, 403);
    EXPECT_EQ(error->code, "AccessDenied");
    EXPECT_NE(error->message.find("Policy Condition failed"), std::string::npos) << failing;
  }
  // An empty prefix allows anything, a missing field included.
  EXPECT_FALSE(Check(covering + R"(, ["starts-with", "$x-amz-meta-missing", ""])", form));
  // Field names are case-insensitive.
  EXPECT_FALSE(Check(covering + R"(, ["eq", "$ACL", "private"])", form));
}

TEST(PostPolicyDocument, EveryFieldMustBeNamed) {
  const FormValues form = {{"key", "k"},
                           {"policy", "p"},
                           {"x-amz-signature", "s"},
                           {"signature", "s"},
                           {"awsaccesskeyid", "a"},
                           {"x-ignore-flash", "1"},
                           {"x-amz-checksum-sha256", "c"},
                           {"success_action_status", "201"}};
  std::optional<PostError> error = Check(R"(["eq", "$key", "k"])", form);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "AccessDenied");
  EXPECT_EQ(error->message,
            "Invalid according to Policy: Extra input fields: success_action_status");
  EXPECT_FALSE(
      Check(R"(["eq", "$key", "k"], ["starts-with", "$success_action_status", ""])", form));
  // The V4 fields other than the signature must be named, as AWS documents.
  error = Check(R"(["eq", "$key", "k"])", {{"key", "k"}, {"x-amz-date", "20250102T000000Z"}});
  ASSERT_TRUE(error);
  EXPECT_NE(error->message.find("x-amz-date"), std::string::npos);
  // content-length-range names no field.
  error = Check(R"(["content-length-range", 0, 10])", {{"key", "k"}});
  ASSERT_TRUE(error);
  EXPECT_NE(error->message.find("Extra input fields: key"), std::string::npos);
}

TEST(PostPolicyDocument, ChecksTheFileSize) {
  PostPolicy policy = MustParse(PolicyWith(R"(["content-length-range", 10, 100])"));
  EXPECT_FALSE(CheckFileSize(policy, 5, false));  // may still grow
  EXPECT_EQ(CheckFileSize(policy, 5, true)->code, "EntityTooSmall");
  EXPECT_FALSE(CheckFileSize(policy, 10, true));
  EXPECT_FALSE(CheckFileSize(policy, 100, true));
  std::optional<PostError> large = CheckFileSize(policy, 101, false);
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 400);
  EXPECT_EQ(large->code, "EntityTooLarge");
  // Several ranges all hold.
  policy = MustParse(
      PolicyWith(R"(["content-length-range", 10, 100], ["content-length-range", 50, 200])"));
  EXPECT_EQ(CheckFileSize(policy, 20, true)->code, "EntityTooSmall");
  EXPECT_EQ(CheckFileSize(policy, 150, true)->code, "EntityTooLarge");
  EXPECT_FALSE(CheckFileSize(policy, 75, true));
  // No range: any size; a zero maximum: only empty files.
  EXPECT_FALSE(CheckFileSize(PostPolicy(), uint64_t{1} << 40, true));
  policy = MustParse(PolicyWith(R"(["content-length-range", 0, 0])"));
  EXPECT_FALSE(CheckFileSize(policy, 0, true));
  EXPECT_EQ(CheckFileSize(policy, 1, false)->code, "EntityTooLarge");
}

TEST(PostResponse, SuccessStatus) {
  EXPECT_EQ(SuccessStatus({}), 204);
  EXPECT_EQ(SuccessStatus({{"success_action_status", "200"}}), 200);
  EXPECT_EQ(SuccessStatus({{"success_action_status", "201"}}), 201);
  EXPECT_EQ(SuccessStatus({{"success_action_status", "204"}}), 204);
  EXPECT_EQ(SuccessStatus({{"success_action_status", "404"}}), 204);
  EXPECT_EQ(SuccessStatus({{"success_action_status", "201 "}}), 204);
}

TEST(PostResponse, SuccessRedirect) {
  EXPECT_FALSE(SuccessRedirect({}, "b", "k", "e"));
  EXPECT_EQ(SuccessRedirect({{"success_action_redirect", "http://example.com/done"}}, "photos",
                            "a b/c.txt", "0123abcd"),
            "http://example.com/done?bucket=photos&key=a%20b%2Fc.txt&etag=%220123abcd%22");
  EXPECT_EQ(SuccessRedirect({{"success_action_redirect", "HTTPS://example.com/d?x=1#top"}}, "b",
                            "k", "e"),
            "HTTPS://example.com/d?x=1&bucket=b&key=k&etag=%22e%22#top");
  EXPECT_EQ(SuccessRedirect({{"redirect", "http://example.com/"}}, "b", "k", "e"),
            "http://example.com/?bucket=b&key=k&etag=%22e%22");
  // What S3 cannot interpret is ignored.
  EXPECT_FALSE(SuccessRedirect({{"success_action_redirect", "/relative"}}, "b", "k", "e"));
  EXPECT_FALSE(
      SuccessRedirect({{"success_action_redirect", "javascript:alert(1)"}}, "b", "k", "e"));
  EXPECT_FALSE(
      SuccessRedirect({{"success_action_redirect", "http://a/\r\nSet-Cookie: x"}}, "b", "k", "e"));
}

TEST(PostResponse, RendersThe201Document) {
  EXPECT_EQ(RenderPostResponse("/photos/a%26b", "photos", "a&b", "e1"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>/photos/a%26b"
            "</Location><Bucket>photos</Bucket><Key>a&amp;b</Key><ETag>&quot;e1&quot;</ETag>"
            "</PostResponse>");
}

}  // namespace
}  // namespace cairn::api::s3::post
