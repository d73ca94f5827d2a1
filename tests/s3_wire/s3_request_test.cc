#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/s3/wire/s3_request.h"

namespace cairn::s3 {
namespace {

const S3AddressingOptions kOptions{{"s3.local", "localhost"}};

http::RequestHead Head(std::string method, std::string target, std::string host = "127.0.0.1:9000",
                       http::HeaderList extra = {}) {
  http::RequestHead head;
  head.method = std::move(method);
  head.target = target;
  size_t question = target.find('?');
  head.path = target.substr(0, question);
  if (question != std::string::npos) head.query = target.substr(question + 1);
  if (!host.empty()) head.headers.emplace_back("host", host);
  for (auto& header : extra) head.headers.push_back(std::move(header));
  return head;
}

S3Result<S3Request> Parse(std::string method, std::string target,
                          std::string host = "127.0.0.1:9000", http::HeaderList extra = {}) {
  return ParseS3Request(
      Head(std::move(method), std::move(target), std::move(host), std::move(extra)), kOptions);
}

struct RouteCase {
  std::string method;
  std::string target;
  http::HeaderList headers;
  S3Operation expected;
  std::string unsupported = {};
};

const http::HeaderList kCopy = {{"x-amz-copy-source", "/src/a.txt"}};

TEST(ParseS3Request, MapsEveryOperation) {
  const std::vector<RouteCase> cases = {
      {"GET", "/", {}, S3Operation::kListBuckets},
      {"PUT", "/photos", {}, S3Operation::kCreateBucket},
      {"PUT", "/photos/", {}, S3Operation::kCreateBucket},
      {"HEAD", "/photos", {}, S3Operation::kHeadBucket},
      {"DELETE", "/photos", {}, S3Operation::kDeleteBucket},
      {"GET", "/photos?location", {}, S3Operation::kGetBucketLocation},
      {"GET", "/photos", {}, S3Operation::kListObjects},
      {"GET", "/photos?prefix=a&marker=b", {}, S3Operation::kListObjects},
      {"GET", "/photos?list-type=2", {}, S3Operation::kListObjectsV2},
      {"PUT", "/photos/a.txt", {}, S3Operation::kPutObject},
      {"PUT", "/photos/a.txt", kCopy, S3Operation::kCopyObject},
      {"GET", "/photos/a.txt", {}, S3Operation::kGetObject},
      {"HEAD", "/photos/a.txt", {}, S3Operation::kHeadObject},
      {"DELETE", "/photos/a.txt", {}, S3Operation::kDeleteObject},
      {"POST", "/photos?delete", {}, S3Operation::kDeleteObjects},
      {"POST", "/photos?delete=", {}, S3Operation::kDeleteObjects},
      {"POST", "/photos/a.txt?uploads", {}, S3Operation::kCreateMultipartUpload},
      {"PUT", "/photos/a.txt?partNumber=3&uploadId=u1", {}, S3Operation::kUploadPart},
      {"PUT", "/photos/a.txt?uploadId=u1&partNumber=3", kCopy, S3Operation::kUploadPartCopy},
      {"POST", "/photos/a.txt?uploadId=u1", {}, S3Operation::kCompleteMultipartUpload},
      {"DELETE", "/photos/a.txt?uploadId=u1", {}, S3Operation::kAbortMultipartUpload},
      {"GET", "/photos/a.txt?uploadId=u1", {}, S3Operation::kListParts},
      {"GET", "/photos?uploads", {}, S3Operation::kListMultipartUploads},
      {"GET", "/photos/a.txt?tagging", {}, S3Operation::kGetObjectTagging},
      {"PUT", "/photos/a.txt?tagging", {}, S3Operation::kPutObjectTagging},
      {"DELETE", "/photos/a.txt?tagging", {}, S3Operation::kDeleteObjectTagging},
      // Known but unsupported subresources are reported, not mistaken for reads.
      {"GET", "/photos?acl", {}, S3Operation::kNotImplemented, "acl"},
      {"PUT", "/photos?versioning", {}, S3Operation::kNotImplemented, "versioning"},
      {"GET", "/photos?versioning", {}, S3Operation::kNotImplemented, "versioning"},
      {"GET", "/photos?policy", {}, S3Operation::kNotImplemented, "policy"},
      {"PUT", "/photos?lifecycle", {}, S3Operation::kNotImplemented, "lifecycle"},
      {"GET", "/photos?cors", {}, S3Operation::kNotImplemented, "cors"},
      {"GET", "/photos?website", {}, S3Operation::kNotImplemented, "website"},
      {"GET", "/photos?versions", {}, S3Operation::kListObjectVersions, ""},
      {"GET", "/photos?website", {}, S3Operation::kNotImplemented, "website"},
      {"GET", "/photos?tagging", {}, S3Operation::kNotImplemented, "tagging"},
      {"GET", "/photos/a.txt?acl", {}, S3Operation::kNotImplemented, "acl"},
      {"PUT", "/photos/a.txt?retention", {}, S3Operation::kNotImplemented, "retention"},
      {"POST", "/photos/a.txt?select&select-type=2", {}, S3Operation::kNotImplemented, "select"},
      {"POST",
       "/photos",
       {{"content-type", "multipart/form-data; boundary=x"}},
       S3Operation::kPostObject},
      {"POST",
       "/photos",
       {{"content-type", "Multipart/Form-Data ;boundary=x"}},
       S3Operation::kPostObject},
      {"OPTIONS", "/photos/a.txt", {}, S3Operation::kNotImplemented, "cors"},
      // Unrelated query parameters (presigned URLs carry X-Amz-*) change nothing.
      {"GET", "/photos/a.txt?X-Amz-Signature=abc&X-Amz-Expires=60", {}, S3Operation::kGetObject},
      {"GET", "/photos/a.txt?versionId=null", {}, S3Operation::kGetObject},
  };
  for (const RouteCase& c : cases) {
    auto parsed = Parse(c.method, c.target, "127.0.0.1:9000", c.headers);
    ASSERT_TRUE(parsed.ok()) << c.method << " " << c.target << ": " << parsed.error().ToString();
    EXPECT_EQ(parsed->operation, c.expected)
        << c.method << " " << c.target << " gave " << S3OperationName(parsed->operation);
    EXPECT_EQ(parsed->unsupported, c.unsupported) << c.method << " " << c.target;
  }
}

struct ErrorCase {
  std::string method;
  std::string target;
  http::HeaderList headers;
  S3ErrorCode expected;
};

TEST(ParseS3Request, RejectsBadRequestsWithTheRightCode) {
  const std::string long_key(1025, 'k');
  const std::vector<ErrorCase> cases = {
      {"PATCH", "/photos", {}, S3ErrorCode::kMethodNotAllowed},
      {"TRACE", "/", {}, S3ErrorCode::kMethodNotAllowed},
      {"PUT", "/", {}, S3ErrorCode::kMethodNotAllowed},
      {"POST", "/photos/a.txt", {}, S3ErrorCode::kMethodNotAllowed},
      {"GET", "/photos?delete", {}, S3ErrorCode::kMethodNotAllowed},
      {"PUT", "/photos?location", {}, S3ErrorCode::kMethodNotAllowed},
      {"PUT", "/photos?uploads", {}, S3ErrorCode::kMethodNotAllowed},
      {"POST", "/photos?uploads", {}, S3ErrorCode::kInvalidRequest},
      // A form upload must be multipart/form-data (S3 answers 412 PreconditionFailed).
      {"POST", "/photos", {}, S3ErrorCode::kPreconditionFailed},
      {"POST",
       "/photos",
       {{"content-type", "application/x-www-form-urlencoded"}},
       S3ErrorCode::kPreconditionFailed},
      {"POST",
       "/photos",
       {{"content-type", "multipart/mixed; boundary=x"}},
       S3ErrorCode::kPreconditionFailed},
      {"GET", "/photos/a.txt?uploads", {}, S3ErrorCode::kMethodNotAllowed},
      {"POST", "/photos/a.txt?tagging", {}, S3ErrorCode::kMethodNotAllowed},
      {"HEAD", "/photos/a.txt?uploadId=u", {}, S3ErrorCode::kMethodNotAllowed},
      {"GET", "/photos?uploadId=u", {}, S3ErrorCode::kInvalidRequest},
      {"GET", "photos", {}, S3ErrorCode::kInvalidURI},
      {"GET", "", {}, S3ErrorCode::kInvalidURI},
      {"GET", "/photos/a%zz", {}, S3ErrorCode::kInvalidURI},
      {"GET", "/photos/a%", {}, S3ErrorCode::kInvalidURI},
      {"GET", "/photos/a%00b", {}, S3ErrorCode::kInvalidURI},
      {"GET", "/photos/%C3", {}, S3ErrorCode::kInvalidURI},
      {"GET", "/photos/a?prefix=%zz", {}, S3ErrorCode::kInvalidURI},
      {"GET", "/photos/" + long_key, {}, S3ErrorCode::kKeyTooLongError},
      {"GET", "/Photos", {}, S3ErrorCode::kInvalidBucketName},
      {"GET", "/ph%2Fotos", {}, S3ErrorCode::kInvalidBucketName},
      {"GET", "/" + std::string(64, 'a'), {}, S3ErrorCode::kInvalidBucketName},
      {"PUT", "/ab", {}, S3ErrorCode::kInvalidBucketName},
      {"PUT", "/my_bucket", {}, S3ErrorCode::kInvalidBucketName},
      {"PUT", "/192.168.1.1", {}, S3ErrorCode::kInvalidBucketName},
      {"PUT", "/a..b", {}, S3ErrorCode::kInvalidBucketName},
      {"PUT", "/bucket-", {}, S3ErrorCode::kInvalidBucketName},
      {"PUT", "/xn--bucket", {}, S3ErrorCode::kInvalidBucketName},
      {"GET", "/photos?max-keys=abc", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?max-keys=-1", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?max-keys=99999999999", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?max-keys=", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?list-type=2&max-keys=1x", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?list-type=3", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?encoding-type=base64", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?list-type=2&fetch-owner=maybe", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?prefix=%FF", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?prefix=a&prefix=b", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos?uploads&max-uploads=x", {}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a?uploadId=u&partNumber=0", {}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a?uploadId=u&partNumber=10001", {}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a?uploadId=u&partNumber=1.5", {}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a?uploadId=u", {}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a?partNumber=1", {}, S3ErrorCode::kInvalidArgument},
      {"POST", "/photos/a?uploadId=", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos/a?uploadId=u&max-parts=x", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos/a?uploadId=u&part-number-marker=-3", {}, S3ErrorCode::kInvalidArgument},
      {"GET", "/photos/a.txt?versionId=3HL4kqtJlcpXroDTDmJ", {}, S3ErrorCode::kNotImplemented},
      {"DELETE", "/photos/a.txt?versionId=v2", {}, S3ErrorCode::kNotImplemented},
      {"PUT", "/photos/a", {{"x-amz-copy-source", "nokey"}}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a", {{"x-amz-copy-source", "/src/"}}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a", {{"x-amz-copy-source", ""}}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a", {{"x-amz-copy-source", "/Bad/k"}}, S3ErrorCode::kInvalidArgument},
      {"PUT", "/photos/a", {{"x-amz-copy-source", "src/k%zz"}}, S3ErrorCode::kInvalidArgument},
      {"PUT",
       "/photos/a",
       {{"x-amz-copy-source", "src/k?versionId=v1"}},
       S3ErrorCode::kNotImplemented},
      {"PUT", "/photos/a", {{"x-amz-copy-source", "src/k?acl"}}, S3ErrorCode::kInvalidArgument},
      {"PUT",
       "/photos/a",
       {{"x-amz-copy-source", "src/" + long_key}},
       S3ErrorCode::kKeyTooLongError},
      {"PUT",
       "/photos/a?uploadId=u&partNumber=1",
       {{"x-amz-copy-source", "src/k"}, {"x-amz-copy-source-range", "bytes=5-2"}},
       S3ErrorCode::kInvalidArgument},
      {"PUT",
       "/photos/a?uploadId=u&partNumber=1",
       {{"x-amz-copy-source", "src/k"}, {"x-amz-copy-source-range", "bytes=5-"}},
       S3ErrorCode::kInvalidArgument},
      {"PUT",
       "/photos/a?uploadId=u&partNumber=1",
       {{"x-amz-copy-source", "src/k"}, {"x-amz-copy-source-range", "items=0-1"}},
       S3ErrorCode::kInvalidArgument},
  };
  for (const ErrorCase& c : cases) {
    auto parsed = Parse(c.method, c.target, "127.0.0.1:9000", c.headers);
    ASSERT_FALSE(parsed.ok()) << c.method << " " << c.target << " gave "
                              << S3OperationName(parsed->operation);
    EXPECT_EQ(parsed.error().code, c.expected)
        << c.method << " " << c.target << ": " << parsed.error().ToString();
    EXPECT_FALSE(parsed.error().message.empty());
  }
}

TEST(ParseS3Request, ErrorsCarryStatusAndResource) {
  auto parsed = Parse("GET", "/photos/a.txt?versionId=v9");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().http_status(), 501);
  EXPECT_EQ(parsed.error().code_name(), "NotImplemented");
  EXPECT_EQ(parsed.error().resource, "/photos/a.txt");
  auto method = Parse("PATCH", "/photos");
  ASSERT_FALSE(method.ok());
  EXPECT_EQ(method.error().http_status(), 405);
}

TEST(ParseS3Request, PathStyleKeys) {
  struct KeyCase {
    std::string target;
    std::string key;
  };
  const std::vector<KeyCase> cases = {
      {"/photos/a.txt", "a.txt"},
      {"/photos/dir/sub/a.txt", "dir/sub/a.txt"},
      {"/photos/my%20file.txt", "my file.txt"},
      {"/photos/a+b", "a+b"},  // '+' in a path is a literal plus
      {"/photos/a%2Bb", "a+b"},
      {"/photos/%C3%A9t%C3%A9", "\xc3\xa9t\xc3\xa9"},
      {"/photos/\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},  // raw UTF-8 also works
      {"/photos/a//b", "a//b"},
      {"/photos//leading", "/leading"},
      {"/photos/trailing/", "trailing/"},
      {"/photos/a%3Fb%23c%25d", "a?b#c%d"},
      {"/photos/a%2Fb", "a/b"},
      {"/photos/..%2F..%2Fetc", "../../etc"},
      {"/photos/" + std::string(1024, 'k'), std::string(1024, 'k')},
  };
  for (const KeyCase& c : cases) {
    auto parsed = Parse("GET", c.target);
    ASSERT_TRUE(parsed.ok()) << c.target << ": " << parsed.error().ToString();
    EXPECT_EQ(parsed->bucket, "photos") << c.target;
    EXPECT_EQ(parsed->key, c.key) << c.target;
    EXPECT_FALSE(parsed->virtual_hosted);
    EXPECT_EQ(parsed->resource, "/photos/" + c.key);
  }
}

TEST(ParseS3Request, VirtualHostedStyle) {
  struct HostCase {
    std::string host;
    std::string target;
    std::string bucket;
    std::string key;
    bool virtual_hosted;
  };
  const std::vector<HostCase> cases = {
      {"photos.s3.local", "/a.txt", "photos", "a.txt", true},
      {"photos.s3.local:9000", "/a.txt", "photos", "a.txt", true},
      {"Photos.S3.Local:9000", "/a.txt", "photos", "a.txt", true},  // DNS is case-insensitive
      {"photos.s3.local.", "/a.txt", "photos", "a.txt", true},
      {"my.dotted.bucket.s3.local", "/x/y", "my.dotted.bucket", "x/y", true},
      {"photos.localhost:9000", "/dir//a+b%20c", "photos", "dir//a+b c", true},
      {"photos.s3.local", "/", "photos", "", true},
      {"photos.s3.local", "//a", "photos", "/a", true},
      {"s3.local:9000", "/photos/a.txt", "photos", "a.txt", false},
      {"localhost:9000", "/photos/a.txt", "photos", "a.txt", false},
      {"127.0.0.1:9000", "/photos/a.txt", "photos", "a.txt", false},
      {"[::1]:9000", "/photos/a.txt", "photos", "a.txt", false},
      {"photos.example.com", "/photos/a.txt", "photos", "a.txt", false},
      {"", "/photos/a.txt", "photos", "a.txt", false},
  };
  for (const HostCase& c : cases) {
    auto parsed = Parse("GET", c.target, c.host);
    ASSERT_TRUE(parsed.ok()) << c.host << c.target << ": " << parsed.error().ToString();
    EXPECT_EQ(parsed->bucket, c.bucket) << c.host << c.target;
    EXPECT_EQ(parsed->key, c.key) << c.host << c.target;
    EXPECT_EQ(parsed->virtual_hosted, c.virtual_hosted) << c.host << c.target;
  }
  auto list = Parse("GET", "/?list-type=2&prefix=p", "photos.s3.local:9000");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->operation, S3Operation::kListObjectsV2);
  auto form =
      Parse("POST", "/", "photos.s3.local", {{"content-type", "multipart/form-data; boundary=b"}});
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(form->operation, S3Operation::kPostObject);
  EXPECT_EQ(form->bucket, "photos");
  EXPECT_TRUE(form->key.empty());
  auto create = Parse("PUT", "/", "new-bucket.s3.local");
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->operation, S3Operation::kCreateBucket);
  EXPECT_EQ(create->bucket, "new-bucket");
  auto bad = Parse("GET", "/", "bad!name.s3.local");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, S3ErrorCode::kInvalidBucketName);
}

TEST(ParseS3Request, LongestVirtualHostBaseWins) {
  S3AddressingOptions options{{"local", "s3.local"}};
  auto parsed = ParseS3Request(Head("GET", "/k", "b.s3.local"), options);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->bucket, "b");
}

TEST(ParseS3Request, ExistingBucketsFollowCairnNamespaceRules) {
  // Namespaces made through the native API may break S3's stricter creation rules.
  for (const char* target : {"/my_bucket", "/ab", "/a", "/xn--x", "/192.168.1.1"}) {
    auto parsed = Parse("GET", target);
    EXPECT_TRUE(parsed.ok()) << target << ": " << parsed.error().ToString();
  }
}

TEST(ParseS3Request, ListObjectsV1Parameters) {
  auto parsed = Parse("GET",
                      "/photos?prefix=dir%2Fsub+dir%2F&delimiter=%2F&marker=dir%2Fa&max-keys=5"
                      "&encoding-type=url");
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->operation, S3Operation::kListObjects);
  EXPECT_EQ(parsed->prefix, "dir/sub dir/");  // '+' in a query is a space
  EXPECT_EQ(parsed->delimiter, "/");
  EXPECT_EQ(parsed->marker, "dir/a");
  EXPECT_EQ(parsed->max_keys, 5);
  EXPECT_TRUE(parsed->encoding_type_url);
  EXPECT_FALSE(parsed->continuation_token.has_value());
}

TEST(ParseS3Request, ListObjectsV2Parameters) {
  auto parsed = Parse("GET",
                      "/photos?list-type=2&continuation-token=tok%3D%3D&start-after=b&max-keys=0"
                      "&fetch-owner=true&prefix=");
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->operation, S3Operation::kListObjectsV2);
  EXPECT_EQ(parsed->continuation_token, "tok==");
  EXPECT_EQ(parsed->start_after, "b");
  EXPECT_EQ(parsed->max_keys, 0);
  EXPECT_TRUE(parsed->fetch_owner);
  EXPECT_EQ(parsed->prefix, "");  // present but empty
  EXPECT_FALSE(parsed->delimiter.has_value());
  EXPECT_FALSE(parsed->encoding_type_url);
}

TEST(ParseS3Request, ListDefaultsAndCaps) {
  auto defaults = Parse("GET", "/photos?list-type=2");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->max_keys, 1000);
  EXPECT_FALSE(defaults->prefix.has_value());
  EXPECT_FALSE(defaults->fetch_owner);
  auto capped = Parse("GET", "/photos?max-keys=5000");
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->max_keys, 1000);  // S3 lowers, never rejects, a large max-keys
}

TEST(ParseS3Request, MultipartParameters) {
  auto uploads = Parse("GET",
                       "/photos?uploads&prefix=p&delimiter=%2F&key-marker=k&upload-id-marker=u"
                       "&max-uploads=7&encoding-type=url");
  ASSERT_TRUE(uploads.ok()) << uploads.error().ToString();
  EXPECT_EQ(uploads->operation, S3Operation::kListMultipartUploads);
  EXPECT_EQ(uploads->key_marker, "k");
  EXPECT_EQ(uploads->upload_id_marker, "u");
  EXPECT_EQ(uploads->max_uploads, 7);
  EXPECT_EQ(uploads->prefix, "p");
  EXPECT_TRUE(uploads->encoding_type_url);

  auto parts = Parse("GET", "/photos/a?uploadId=abc%2B1&max-parts=2&part-number-marker=4");
  ASSERT_TRUE(parts.ok()) << parts.error().ToString();
  EXPECT_EQ(parts->operation, S3Operation::kListParts);
  EXPECT_EQ(parts->upload_id, "abc+1");
  EXPECT_EQ(parts->max_parts, 2);
  EXPECT_EQ(parts->part_number_marker, 4);

  auto part = Parse("PUT", "/photos/a?partNumber=10000&uploadId=abc");
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->part_number, 10000);
  EXPECT_EQ(part->upload_id, "abc");
  EXPECT_FALSE(part->copy_source.has_value());

  auto get_part = Parse("GET", "/photos/a?partNumber=2");
  ASSERT_TRUE(get_part.ok());
  EXPECT_EQ(get_part->operation, S3Operation::kGetObject);
  EXPECT_EQ(get_part->part_number, 2);
}

TEST(ParseS3Request, CopySource) {
  struct CopyCase {
    std::string header;
    std::string bucket;
    std::string key;
  };
  const std::vector<CopyCase> cases = {
      {"/src/a.txt", "src", "a.txt"},
      {"src/a.txt", "src", "a.txt"},
      {"src/dir/my%20file+1.txt", "src", "dir/my file+1.txt"},
      {"/src/%C3%A9%3F.txt?versionId=null", "src", "\xc3\xa9?.txt"},
      {"src/a//b", "src", "a//b"},
  };
  for (const CopyCase& c : cases) {
    auto parsed = Parse("PUT", "/dst/b.txt", "127.0.0.1", {{"x-amz-copy-source", c.header}});
    ASSERT_TRUE(parsed.ok()) << c.header << ": " << parsed.error().ToString();
    EXPECT_EQ(parsed->operation, S3Operation::kCopyObject);
    ASSERT_TRUE(parsed->copy_source.has_value());
    EXPECT_EQ(parsed->copy_source->bucket, c.bucket) << c.header;
    EXPECT_EQ(parsed->copy_source->key, c.key) << c.header;
    EXPECT_FALSE(parsed->copy_source_range.has_value());
  }
}

TEST(ParseS3Request, CopyHeadersMatterOnlyForCopies) {
  auto get = Parse("GET", "/photos/a", "127.0.0.1", {{"x-amz-copy-source", "garbage"}});
  ASSERT_TRUE(get.ok()) << get.error().ToString();
  EXPECT_EQ(get->operation, S3Operation::kGetObject);
  EXPECT_FALSE(get->copy_source.has_value());
  // CopyObject has no source range; the header is ignored there, as S3 does.
  auto copy = Parse("PUT", "/photos/a", "127.0.0.1",
                    {{"x-amz-copy-source", "src/k"}, {"x-amz-copy-source-range", "bytes=9-1"}});
  ASSERT_TRUE(copy.ok()) << copy.error().ToString();
  EXPECT_FALSE(copy->copy_source_range.has_value());
}

TEST(ParseS3Request, CopySourceRangeForUploadPartCopy) {
  auto parsed = Parse("PUT", "/dst/b?partNumber=2&uploadId=u", "127.0.0.1",
                      {{"x-amz-copy-source", "src/a"}, {"x-amz-copy-source-range", "bytes=0-99"}});
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->operation, S3Operation::kUploadPartCopy);
  ASSERT_TRUE(parsed->copy_source_range.has_value());
  EXPECT_EQ(parsed->copy_source_range->first, 0u);
  EXPECT_EQ(parsed->copy_source_range->last, 99u);
  auto whole =
      Parse("PUT", "/dst/b?partNumber=2&uploadId=u", "127.0.0.1", {{"x-amz-copy-source", "src/a"}});
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->copy_source_range.has_value());
}

TEST(IsValidS3BucketName, FollowsTheNamingRules) {
  for (const char* good :
       {"abc", "my-bucket", "my.bucket.name", "a1b2c3", "1bucket", "192.168.1.1a", "aaa-bbb.ccc"}) {
    EXPECT_TRUE(IsValidS3BucketName(good)) << good;
  }
  const std::string too_long(64, 'a');
  for (std::string bad :
       {std::string("ab"), too_long, std::string("Bucket"), std::string("my_bucket"),
        std::string("-bucket"), std::string("bucket-"), std::string(".bucket"), std::string("a..b"),
        std::string("10.0.0.1"), std::string("xn--abc"), std::string("sthree-abc"),
        std::string("abc-s3alias"), std::string("abc--ol-s3"), std::string("a b c")}) {
    EXPECT_FALSE(IsValidS3BucketName(bad)) << bad;
  }
  EXPECT_TRUE(IsValidS3BucketName(std::string(63, 'a')));
}

TEST(S3BucketNameProblem, NamesTheRuleTheNameBreaks) {
  EXPECT_FALSE(S3BucketNameProblem("my-bucket.1").has_value());
  const std::pair<const char*, const char*> cases[] = {
      {"ab", "3 to 63 characters"},
      {"my_bucket", "only lowercase letters a-z, digits 0-9, '.' and '-'"},
      {"Bucket", "only lowercase letters a-z, digits 0-9, '.' and '-'"},
      {"-bucket", "start and end with a lowercase letter or a digit"},
      {"a..b", "two adjacent '.'"},
      {"10.0.0.1", "IP address"},
      {"xn--abc", "reserved prefix 'xn--'"},
      {"abc--ol-s3", "reserved suffix '--ol-s3'"},
  };
  for (const auto& [name, rule] : cases) {
    std::optional<std::string> problem = S3BucketNameProblem(name);
    ASSERT_TRUE(problem.has_value()) << name;
    EXPECT_NE(problem->find(rule), std::string::npos) << name << ": " << *problem;
    EXPECT_EQ(problem->find("'_'"), std::string::npos) << name << ": " << *problem;
  }
}

TEST(S3OperationName, NamesEveryOperation) {
  EXPECT_EQ(S3OperationName(S3Operation::kListObjectsV2), "ListObjectsV2");
  EXPECT_EQ(S3OperationName(S3Operation::kUploadPartCopy), "UploadPartCopy");
}

}  // namespace
}  // namespace cairn::s3
