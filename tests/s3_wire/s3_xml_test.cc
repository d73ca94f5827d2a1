#include <gtest/gtest.h>

#include <functional>
#include <pugixml.hpp>
#include <string>
#include <vector>

#include "api/s3/wire/s3_xml.h"

namespace cairn::s3 {
namespace {

constexpr TimestampMs kTime = 1765449000123;  // 2025-12-11T10:30:00.123Z
constexpr const char* kTimeText = "2025-12-11T10:30:00.123Z";
constexpr const char* kNamespace = "http://s3.amazonaws.com/doc/2006-03-01/";

// Parses a rendered document back; the renderers must always produce well-formed XML.
pugi::xml_node Root(pugi::xml_document& document, const std::string& xml,
                    const char* expected_root) {
  EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0), 0u) << xml;
  pugi::xml_parse_result result = document.load_string(xml.c_str());
  EXPECT_TRUE(result) << result.description() << "\n" << xml;
  pugi::xml_node root = document.document_element();
  EXPECT_STREQ(root.name(), expected_root);
  return root;
}

std::string Text(const pugi::xml_node& node, const char* path) {
  return node.first_element_by_path(path).text().get();
}

TEST(RenderError, HasCodeMessageResourceAndRequestId) {
  S3Error error = MakeS3Error(S3ErrorCode::kNoSuchKey, "no <such> key", "/photos/a&b");
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderError(error, "req-1"), "Error");
  EXPECT_EQ(Text(root, "Code"), "NoSuchKey");
  EXPECT_EQ(Text(root, "Message"), "no <such> key");
  EXPECT_EQ(Text(root, "Resource"), "/photos/a&b");
  EXPECT_EQ(Text(root, "RequestId"), "req-1");
  EXPECT_FALSE(root.attribute("xmlns"));  // S3's <Error> has no namespace
  EXPECT_EQ(error.http_status(), 404);
}

TEST(RenderListAllMyBuckets, OwnerAndBuckets) {
  ListAllMyBucketsResult result{{"tenant-1", "acme"}, {{"alpha", kTime}, {"beta", 0}}, {}, {}};
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderListAllMyBuckets(result), "ListAllMyBucketsResult");
  EXPECT_STREQ(root.attribute("xmlns").value(), kNamespace);
  EXPECT_EQ(Text(root, "Owner/ID"), "tenant-1");
  EXPECT_EQ(Text(root, "Owner/DisplayName"), "acme");
  std::vector<std::pair<std::string, std::string>> buckets;
  for (pugi::xml_node bucket : root.child("Buckets").children("Bucket")) {
    buckets.emplace_back(bucket.child_value("Name"), bucket.child_value("CreationDate"));
  }
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].first, "alpha");
  EXPECT_EQ(buckets[0].second, kTimeText);
  EXPECT_EQ(buckets[1].second, "1970-01-01T00:00:00.000Z");
}

ListObjectsCommon SampleListing() {
  ListObjectsCommon common;
  common.bucket = "photos";
  common.prefix = "dir/";
  common.delimiter = "/";
  common.max_keys = 2;
  common.is_truncated = true;
  common.contents.push_back(
      {"dir/a b+c.txt", kTime, "d41d8cd98f00b204e9800998ecf8427e", 42, "STANDARD", std::nullopt});
  common.contents.push_back(
      {"dir/\xc3\xa9.bin", kTime, "\"abc-2\"", 7, "STANDARD", Owner{"tenant-1", "acme"}});
  common.common_prefixes = {"dir/sub/", "dir/x y/"};
  return common;
}

TEST(RenderListBucketResultV1, AllFields) {
  ListBucketResultV1 result{SampleListing(), std::string("dir/0"), std::string("dir/\xc3\xa9.bin")};
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderListBucketResultV1(result), "ListBucketResult");
  EXPECT_STREQ(root.attribute("xmlns").value(), kNamespace);
  EXPECT_EQ(Text(root, "Name"), "photos");
  EXPECT_EQ(Text(root, "Prefix"), "dir/");
  EXPECT_EQ(Text(root, "Marker"), "dir/0");
  EXPECT_EQ(Text(root, "NextMarker"), "dir/\xc3\xa9.bin");
  EXPECT_EQ(Text(root, "MaxKeys"), "2");
  EXPECT_EQ(Text(root, "Delimiter"), "/");
  EXPECT_EQ(Text(root, "IsTruncated"), "true");
  EXPECT_FALSE(root.child("EncodingType"));
  EXPECT_FALSE(root.child("KeyCount"));
  std::vector<pugi::xml_node> contents;
  for (pugi::xml_node node : root.children("Contents")) contents.push_back(node);
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(Text(contents[0], "Key"), "dir/a b+c.txt");
  EXPECT_EQ(Text(contents[0], "LastModified"), kTimeText);
  EXPECT_EQ(Text(contents[0], "ETag"), "\"d41d8cd98f00b204e9800998ecf8427e\"");
  EXPECT_EQ(Text(contents[0], "Size"), "42");
  EXPECT_EQ(Text(contents[0], "StorageClass"), "STANDARD");
  EXPECT_FALSE(contents[0].child("Owner"));
  EXPECT_EQ(Text(contents[1], "ETag"), "\"abc-2\"");  // already quoted: not doubled
  EXPECT_EQ(Text(contents[1], "Owner/ID"), "tenant-1");
  std::vector<std::string> prefixes;
  for (pugi::xml_node node : root.children("CommonPrefixes")) {
    prefixes.push_back(node.child_value("Prefix"));
  }
  EXPECT_EQ(prefixes, (std::vector<std::string>{"dir/sub/", "dir/x y/"}));
}

TEST(RenderListBucketResultV1, EmptyMarkerWhenUnset) {
  ListBucketResultV1 result;
  result.common.bucket = "b";
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderListBucketResultV1(result), "ListBucketResult");
  EXPECT_TRUE(root.child("Marker"));
  EXPECT_EQ(Text(root, "Marker"), "");
  EXPECT_FALSE(root.child("NextMarker"));
  EXPECT_FALSE(root.child("Delimiter"));
  EXPECT_EQ(Text(root, "IsTruncated"), "false");
}

TEST(RenderListBucketResultV2, AllFields) {
  ListBucketResultV2 result{SampleListing(), std::string("tok1"), std::string("tok2"),
                            std::string("dir/0")};
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderListBucketResultV2(result), "ListBucketResult");
  EXPECT_EQ(Text(root, "KeyCount"), "4");  // 2 objects + 2 common prefixes
  EXPECT_EQ(Text(root, "ContinuationToken"), "tok1");
  EXPECT_EQ(Text(root, "NextContinuationToken"), "tok2");
  EXPECT_EQ(Text(root, "StartAfter"), "dir/0");
  EXPECT_FALSE(root.child("Marker"));
  ListBucketResultV2 bare;
  bare.common.bucket = "b";
  pugi::xml_document bare_document;
  pugi::xml_node bare_root =
      Root(bare_document, RenderListBucketResultV2(bare), "ListBucketResult");
  EXPECT_EQ(Text(bare_root, "KeyCount"), "0");
  EXPECT_FALSE(bare_root.child("ContinuationToken"));
  EXPECT_FALSE(bare_root.child("StartAfter"));
}

TEST(RenderListBucketResult, UrlEncodingTypeEncodesKeysPrefixesAndMarkers) {
  ListBucketResultV2 result{SampleListing(), std::string("tok/+="), std::nullopt,
                            std::string("dir/a b")};
  result.common.encoding_type_url = true;
  result.common.delimiter = "|";
  result.common.contents[0].key = "dir/a b+c(1)\x01.txt";
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderListBucketResultV2(result), "ListBucketResult");
  EXPECT_EQ(Text(root, "EncodingType"), "url");
  EXPECT_EQ(Text(root, "Prefix"), "dir/");
  EXPECT_EQ(Text(root, "Delimiter"), "%7C");
  EXPECT_EQ(Text(root, "StartAfter"), "dir/a%20b");
  EXPECT_EQ(Text(root, "ContinuationToken"), "tok/+=");  // opaque: never encoded
  EXPECT_EQ(Text(root, "Contents/Key"), "dir/a%20b%2Bc%281%29%01.txt");
  EXPECT_EQ(Text(root.child("Contents").next_sibling("Contents"), "Key"), "dir/%C3%A9.bin");
  EXPECT_EQ(Text(root, "CommonPrefixes/Prefix"), "dir/sub/");
  EXPECT_EQ(Text(root.child("CommonPrefixes").next_sibling("CommonPrefixes"), "Prefix"),
            "dir/x%20y/");

  ListBucketResultV1 v1{SampleListing(), std::string("m n"), std::string("n~m")};
  v1.common.encoding_type_url = true;
  pugi::xml_document v1_document;
  pugi::xml_node v1_root = Root(v1_document, RenderListBucketResultV1(v1), "ListBucketResult");
  EXPECT_EQ(Text(v1_root, "Marker"), "m%20n");
  EXPECT_EQ(Text(v1_root, "NextMarker"), "n%7Em");
}

TEST(UrlEncodeForListing, MatchesS3) {
  EXPECT_EQ(UrlEncodeForListing("test_file(3).png"), "test_file%283%29.png");
  EXPECT_EQ(UrlEncodeForListing("a b+c/d*e-f.g~h"), "a%20b%2Bc/d*e-f.g%7Eh");
  EXPECT_EQ(UrlEncodeForListing("\xc3\xa9\r\n"), "%C3%A9%0D%0A");
  EXPECT_EQ(UrlEncodeForListing(""), "");
}

TEST(RenderListBucketResult, ControlCharactersBecomeCharacterReferences) {
  ListBucketResultV1 result;
  result.common.bucket = "b";
  result.common.contents.push_back({std::string("a\x01"
                                                "b\rc\nd\te<&>\"'"),
                                    kTime, "e", 1, "STANDARD", std::nullopt});
  std::string xml = RenderListBucketResultV1(result);
  EXPECT_NE(xml.find("a&#1;b&#13;c\nd\te&lt;&amp;&gt;&quot;'"), std::string::npos) << xml;
  pugi::xml_document document;
  pugi::xml_node root = Root(document, xml, "ListBucketResult");
  EXPECT_EQ(Text(root, "Contents/Key"),
            "a\x01"
            "b\rc\nd\te<&>\"'");
}

TEST(RenderLocationConstraint, RegionOrEmpty) {
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderLocationConstraint("eu-west-1"), "LocationConstraint");
  EXPECT_STREQ(root.text().get(), "eu-west-1");
  EXPECT_STREQ(root.attribute("xmlns").value(), kNamespace);
  pugi::xml_document empty_document;
  pugi::xml_node empty = Root(empty_document, RenderLocationConstraint(""), "LocationConstraint");
  EXPECT_STREQ(empty.text().get(), "");
}

TEST(RenderMultipart, InitiateAndComplete) {
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderInitiateMultipartUploadResult("b", "k&1", "u-1"),
                             "InitiateMultipartUploadResult");
  EXPECT_EQ(Text(root, "Bucket"), "b");
  EXPECT_EQ(Text(root, "Key"), "k&1");
  EXPECT_EQ(Text(root, "UploadId"), "u-1");

  CompleteMultipartUploadResult complete{
      "http://localhost:9000/b/k", "b", "k", "abc-3", {}, {}, {}};
  pugi::xml_document complete_document;
  pugi::xml_node complete_root =
      Root(complete_document, RenderCompleteMultipartUploadResult(complete),
           "CompleteMultipartUploadResult");
  EXPECT_EQ(Text(complete_root, "Location"), "http://localhost:9000/b/k");
  EXPECT_EQ(Text(complete_root, "Bucket"), "b");
  EXPECT_EQ(Text(complete_root, "Key"), "k");
  EXPECT_EQ(Text(complete_root, "ETag"), "\"abc-3\"");
}

TEST(RenderCopyResults, LastModifiedAndETag) {
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderCopyObjectResult(kTime, "abc"), "CopyObjectResult");
  EXPECT_EQ(Text(root, "LastModified"), kTimeText);
  EXPECT_EQ(Text(root, "ETag"), "\"abc\"");
  pugi::xml_document part_document;
  pugi::xml_node part = Root(part_document, RenderCopyPartResult(kTime, "def"), "CopyPartResult");
  EXPECT_EQ(Text(part, "LastModified"), kTimeText);
  EXPECT_EQ(Text(part, "ETag"), "\"def\"");
}

TEST(RenderDeleteResult, VerboseAndQuiet) {
  DeleteResult result{false, {{"a"}, {"b\x02"}}, {{"c", "AccessDenied", "Access Denied"}}};
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderDeleteResult(result), "DeleteResult");
  std::vector<std::string> deleted;
  for (pugi::xml_node node : root.children("Deleted")) deleted.push_back(node.child_value("Key"));
  EXPECT_EQ(deleted, (std::vector<std::string>{"a", "b\x02"}));
  EXPECT_EQ(Text(root, "Error/Key"), "c");
  EXPECT_EQ(Text(root, "Error/Code"), "AccessDenied");
  EXPECT_EQ(Text(root, "Error/Message"), "Access Denied");

  result.quiet = true;
  pugi::xml_document quiet_document;
  pugi::xml_node quiet = Root(quiet_document, RenderDeleteResult(result), "DeleteResult");
  EXPECT_FALSE(quiet.child("Deleted"));
  EXPECT_TRUE(quiet.child("Error"));
}

TEST(RenderListPartsResult, AllFields) {
  ListPartsResult result;
  result.bucket = "b";
  result.key = "k";
  result.upload_id = "u";
  result.initiator = {"tenant-1", "acme"};
  result.part_number_marker = 1;
  result.next_part_number_marker = 3;
  result.max_parts = 2;
  result.is_truncated = true;
  result.parts = {{2, kTime, "e2", 5 << 20, {}, {}},
                  {3, kTime, "e3", 10, "ChecksumCRC32", "AAAAAA=="}};
  pugi::xml_document document;
  pugi::xml_node root = Root(document, RenderListPartsResult(result), "ListPartsResult");
  EXPECT_EQ(Text(root, "Bucket"), "b");
  EXPECT_EQ(Text(root, "Key"), "k");
  EXPECT_EQ(Text(root, "UploadId"), "u");
  EXPECT_EQ(Text(root, "Initiator/ID"), "tenant-1");
  EXPECT_EQ(Text(root, "Owner/DisplayName"), "acme");
  EXPECT_EQ(Text(root, "StorageClass"), "STANDARD");
  EXPECT_EQ(Text(root, "PartNumberMarker"), "1");
  EXPECT_EQ(Text(root, "NextPartNumberMarker"), "3");
  EXPECT_EQ(Text(root, "MaxParts"), "2");
  EXPECT_EQ(Text(root, "IsTruncated"), "true");
  EXPECT_EQ(Text(root, "Part/PartNumber"), "2");
  EXPECT_EQ(Text(root, "Part/LastModified"), kTimeText);
  EXPECT_EQ(Text(root, "Part/ETag"), "\"e2\"");
  EXPECT_EQ(Text(root, "Part/Size"), "5242880");
  EXPECT_EQ(Text(root.child("Part").next_sibling("Part"), "PartNumber"), "3");
  EXPECT_FALSE(root.child("Part").child("ChecksumCRC32"));
  EXPECT_EQ(Text(root.child("Part").next_sibling("Part"), "ChecksumCRC32"), "AAAAAA==");
  EXPECT_FALSE(root.child("ChecksumAlgorithm"));
}

TEST(RenderListMultipartUploadsResult, AllFieldsAndEncoding) {
  ListMultipartUploadsResult result;
  result.bucket = "b";
  result.key_marker = "a b";
  result.upload_id_marker = "u0";
  result.next_key_marker = "k 2";
  result.next_upload_id_marker = "u2";
  result.prefix = "p ";
  result.delimiter = "/";
  result.max_uploads = 2;
  result.is_truncated = true;
  result.encoding_type_url = true;
  result.uploads = {{"k 1", "u1", {"tenant-1", "acme"}, "STANDARD", kTime}};
  result.common_prefixes = {"p /x/"};
  pugi::xml_document document;
  pugi::xml_node root =
      Root(document, RenderListMultipartUploadsResult(result), "ListMultipartUploadsResult");
  EXPECT_EQ(Text(root, "Bucket"), "b");
  EXPECT_EQ(Text(root, "KeyMarker"), "a%20b");
  EXPECT_EQ(Text(root, "UploadIdMarker"), "u0");
  EXPECT_EQ(Text(root, "NextKeyMarker"), "k%202");
  EXPECT_EQ(Text(root, "NextUploadIdMarker"), "u2");
  EXPECT_EQ(Text(root, "Prefix"), "p%20");
  EXPECT_EQ(Text(root, "Delimiter"), "/");
  EXPECT_EQ(Text(root, "MaxUploads"), "2");
  EXPECT_EQ(Text(root, "EncodingType"), "url");
  EXPECT_EQ(Text(root, "IsTruncated"), "true");
  EXPECT_EQ(Text(root, "Upload/Key"), "k%201");
  EXPECT_EQ(Text(root, "Upload/UploadId"), "u1");
  EXPECT_EQ(Text(root, "Upload/Initiator/ID"), "tenant-1");
  EXPECT_EQ(Text(root, "Upload/Owner/ID"), "tenant-1");
  EXPECT_EQ(Text(root, "Upload/StorageClass"), "STANDARD");
  EXPECT_EQ(Text(root, "Upload/Initiated"), kTimeText);
  EXPECT_EQ(Text(root, "CommonPrefixes/Prefix"), "p%20/x/");
}

TEST(RenderTagging, RoundTripsThroughTheParser) {
  std::vector<Tag> tags = {{"project", "cairn"}, {"a&b", "<x>"}, {"empty", ""}};
  std::string xml = RenderTagging(tags);
  pugi::xml_document document;
  pugi::xml_node root = Root(document, xml, "Tagging");
  EXPECT_EQ(Text(root, "TagSet/Tag/Key"), "project");
  EXPECT_EQ(Text(root, "TagSet/Tag/Value"), "cairn");
  auto parsed = ParseTagging(xml, kDefaultMaxXmlBodyBytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(*parsed, tags);
}

// ---- Parsers ----

constexpr size_t kLimit = kDefaultMaxXmlBodyBytes;

TEST(ParseCompleteMultipartUpload, GoodDocument) {
  auto parts = ParseCompleteMultipartUpload(
      R"(<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><PartNumber>1</PartNumber><ETag>"etag1"</ETag>
        <ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
  <Part><ETag>etag3</ETag><PartNumber> 3 </PartNumber></Part>
  <Part><PartNumber>10000</PartNumber><ETag>&quot;e&quot;</ETag><Unknown>x</Unknown></Part>
</CompleteMultipartUpload>)",
      kLimit);
  ASSERT_TRUE(parts.ok()) << parts.error().ToString();
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].part_number, 1);
  EXPECT_EQ((*parts)[0].etag, "etag1");
  ASSERT_EQ((*parts)[0].checksums.size(), 1u);
  EXPECT_EQ((*parts)[0].checksums[0].first, "ChecksumCRC32");
  EXPECT_EQ((*parts)[0].checksums[0].second, "AAAAAA==");
  EXPECT_EQ((*parts)[1].part_number, 3);
  EXPECT_EQ((*parts)[1].etag, "etag3");
  EXPECT_EQ((*parts)[2].part_number, 10000);
  EXPECT_EQ((*parts)[2].etag, "e");
}

struct BadDocument {
  std::string body;
  S3ErrorCode expected;
};

void ExpectAllRejected(const std::vector<BadDocument>& cases,
                       const std::function<S3ErrorCode(const std::string&)>& parse) {
  for (const BadDocument& c : cases) {
    EXPECT_EQ(parse(c.body), c.expected) << c.body;
  }
}

// Returns the error code, or kInternalError when the document was (wrongly) accepted.
template <typename T>
S3ErrorCode CodeOf(const S3Result<T>& result) {
  return result.ok() ? S3ErrorCode::kInternalError : result.error().code;
}

// Malformed in ways every parser must reject, whatever the root element.
std::vector<BadDocument> CommonBadDocuments(const std::string& root) {
  return {
      {"", S3ErrorCode::kMalformedXML},
      {"not xml", S3ErrorCode::kMalformedXML},
      {"<" + root + ">", S3ErrorCode::kMalformedXML},
      {"<Other/>", S3ErrorCode::kMalformedXML},
      {"<" + root + "/>junk", S3ErrorCode::kMalformedXML},
      {"<" + root + "/><" + root + "/>", S3ErrorCode::kMalformedXML},
      {"<" + root + "></" + root + "><x/>", S3ErrorCode::kMalformedXML},
      {"<!DOCTYPE " + root + " [<!ENTITY e \"x\">]><" + root + ">&e;</" + root + ">",
       S3ErrorCode::kMalformedXML},
      {"<" + root + ">&e;</" + root + ">", S3ErrorCode::kMalformedXML},
      {"<" + root + ">&#0;</" + root + ">", S3ErrorCode::kMalformedXML},
      {"<" + root + ">&#xD800;</" + root + ">", S3ErrorCode::kMalformedXML},
      {"<" + root + ">\xff</" + root + ">", S3ErrorCode::kMalformedXML},
      {std::string("<") + root + ">\0</" + root + ">", S3ErrorCode::kMalformedXML},
  };
}

TEST(ParseCompleteMultipartUpload, BadDocuments) {
  const std::string part1 = "<Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>";
  const std::string part2 = "<Part><PartNumber>2</PartNumber><ETag>b</ETag></Part>";
  auto wrap = [](const std::string& inner) {
    return "<CompleteMultipartUpload>" + inner + "</CompleteMultipartUpload>";
  };
  std::vector<BadDocument> cases = CommonBadDocuments("CompleteMultipartUpload");
  cases.push_back({wrap(""), S3ErrorCode::kMalformedXML});
  cases.push_back({wrap(part2 + part1), S3ErrorCode::kInvalidPartOrder});
  cases.push_back({wrap(part1 + part2 + part1), S3ErrorCode::kInvalidPartOrder});
  cases.push_back({wrap("<Part><ETag>a</ETag></Part>"), S3ErrorCode::kMalformedXML});
  cases.push_back({wrap("<Part><PartNumber>1</PartNumber></Part>"), S3ErrorCode::kMalformedXML});
  cases.push_back({wrap("<Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber>"
                        "<ETag>a</ETag></Part>"),
                   S3ErrorCode::kMalformedXML});
  cases.push_back({wrap("<Part><PartNumber><b>1</b></PartNumber><ETag>a</ETag></Part>"),
                   S3ErrorCode::kMalformedXML});
  for (const char* number : {"0", "10001", "-1", "x", "", "1.0", "99999999999"}) {
    cases.push_back(
        {wrap(std::string("<Part><PartNumber>") + number + "</PartNumber><ETag>a</ETag></Part>"),
         S3ErrorCode::kInvalidArgument});
  }
  cases.push_back({wrap(std::string(kLimit, ' ')), S3ErrorCode::kMaxMessageLengthExceeded});
  ExpectAllRejected(cases, [](const std::string& body) {
    return CodeOf(ParseCompleteMultipartUpload(body, kLimit));
  });
}

TEST(ParseDelete, GoodDocument) {
  auto request = ParseDelete(
      "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
      "<Object><Key>a.txt</Key></Object>"
      "<Object><Key>dir/ b&amp;c&#13;</Key><VersionId>null</VersionId></Object>"
      "<Object><Key> </Key><ETag>ignored</ETag></Object>"
      "<Object><Key><![CDATA[<raw>]]></Key></Object>"
      "</Delete>",
      kLimit);
  ASSERT_TRUE(request.ok()) << request.error().ToString();
  EXPECT_TRUE(request->quiet);
  ASSERT_EQ(request->objects.size(), 4u);
  EXPECT_EQ(request->objects[0].key, "a.txt");
  EXPECT_FALSE(request->objects[0].version_id.has_value());
  EXPECT_EQ(request->objects[1].key, "dir/ b&c\r");
  EXPECT_EQ(request->objects[1].version_id, "null");
  EXPECT_EQ(request->objects[2].key, " ");  // whitespace keys survive
  EXPECT_EQ(request->objects[3].key, "<raw>");

  auto verbose = ParseDelete("<Delete><Object><Key>k</Key></Object></Delete>", kLimit);
  ASSERT_TRUE(verbose.ok());
  EXPECT_FALSE(verbose->quiet);
}

TEST(ParseDelete, ThousandObjectsIsTheLimit) {
  std::string objects;
  for (int i = 0; i < 1000; ++i)
    objects += "<Object><Key>k" + std::to_string(i) + "</Key></Object>";
  auto ok = ParseDelete("<Delete>" + objects + "</Delete>", kLimit);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->objects.size(), 1000u);
  auto too_many =
      ParseDelete("<Delete>" + objects + "<Object><Key>x</Key></Object></Delete>", kLimit);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().code, S3ErrorCode::kMalformedXML);
}

TEST(ParseDelete, BadDocuments) {
  std::vector<BadDocument> cases = CommonBadDocuments("Delete");
  cases.push_back({"<Delete></Delete>", S3ErrorCode::kMalformedXML});
  cases.push_back({"<Delete><Quiet>true</Quiet></Delete>", S3ErrorCode::kMalformedXML});
  cases.push_back({"<Delete><Object></Object></Delete>", S3ErrorCode::kMalformedXML});
  cases.push_back(
      {"<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>", S3ErrorCode::kMalformedXML});
  cases.push_back({"<Delete><Quiet>yes</Quiet><Object><Key>a</Key></Object></Delete>",
                   S3ErrorCode::kMalformedXML});
  cases.push_back({"<Delete><Object><Key>a</Key></Object>", S3ErrorCode::kMalformedXML});
  ExpectAllRejected(cases,
                    [](const std::string& body) { return CodeOf(ParseDelete(body, kLimit)); });
  auto small_limit = ParseDelete("<Delete><Object><Key>a</Key></Object></Delete>", 10);
  ASSERT_FALSE(small_limit.ok());
  EXPECT_EQ(small_limit.error().code, S3ErrorCode::kMaxMessageLengthExceeded);
}

std::string TaggingDocument(const std::vector<Tag>& tags) {
  std::string xml = "<Tagging><TagSet>";
  for (const Tag& tag : tags) {
    xml += "<Tag><Key>" + tag.key + "</Key><Value>" + tag.value + "</Value></Tag>";
  }
  return xml + "</TagSet></Tagging>";
}

TEST(ParseTagging, GoodDocuments) {
  std::vector<Tag> ten;
  for (int i = 0; i < 10; ++i) ten.push_back({"k" + std::to_string(i), "v"});
  auto parsed = ParseTagging(TaggingDocument(ten), kLimit);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(*parsed, ten);
  // Limits count characters, not bytes: 128 two-byte characters are fine.
  std::string long_key;
  for (int i = 0; i < 128; ++i) long_key += "\xc3\xa9";
  auto unicode = ParseTagging(TaggingDocument({{long_key, std::string(256, 'v')}}), kLimit);
  ASSERT_TRUE(unicode.ok()) << unicode.error().ToString();
  auto empty = ParseTagging("<Tagging><TagSet/></Tagging>", kLimit);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto empty_value = ParseTagging(
      "<Tagging><TagSet><Tag><Key>k</Key><Value/></Tag></TagSet>"
      "</Tagging>",
      kLimit);
  ASSERT_TRUE(empty_value.ok());
  EXPECT_EQ((*empty_value)[0].value, "");
}

TEST(ParseTagging, BadDocuments) {
  std::vector<Tag> eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back({"k" + std::to_string(i), "v"});
  std::vector<BadDocument> cases = CommonBadDocuments("Tagging");
  cases.push_back({TaggingDocument(eleven), S3ErrorCode::kInvalidTag});
  cases.push_back({TaggingDocument({{std::string(129, 'k'), "v"}}), S3ErrorCode::kInvalidTag});
  cases.push_back({TaggingDocument({{"k", std::string(257, 'v')}}), S3ErrorCode::kInvalidTag});
  cases.push_back({TaggingDocument({{"k", "1"}, {"k", "2"}}), S3ErrorCode::kInvalidTag});
  cases.push_back({TaggingDocument({{"", "v"}}), S3ErrorCode::kInvalidTag});
  cases.push_back({TaggingDocument({{"aws:owner", "v"}}), S3ErrorCode::kInvalidTag});
  cases.push_back({"<Tagging></Tagging>", S3ErrorCode::kMalformedXML});
  cases.push_back({"<Tagging><TagSet/><TagSet/></Tagging>", S3ErrorCode::kMalformedXML});
  cases.push_back(
      {"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>", S3ErrorCode::kMalformedXML});
  cases.push_back({"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>",
                   S3ErrorCode::kMalformedXML});
  ExpectAllRejected(cases,
                    [](const std::string& body) { return CodeOf(ParseTagging(body, kLimit)); });
}

TEST(ParseCreateBucketConfiguration, GoodAndBad) {
  auto empty = ParseCreateBucketConfiguration("", kLimit);
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  auto region = ParseCreateBucketConfiguration(
      "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>",
      kLimit);
  ASSERT_TRUE(region.ok()) << region.error().ToString();
  EXPECT_EQ(region->value_or(""), "eu-west-1");
  auto no_region = ParseCreateBucketConfiguration("<CreateBucketConfiguration/>", kLimit);
  ASSERT_TRUE(no_region.ok());
  EXPECT_FALSE(no_region->has_value());
  std::vector<BadDocument> cases = CommonBadDocuments("CreateBucketConfiguration");
  cases.erase(cases.begin());  // an empty body is fine here
  cases.push_back(
      {"<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint>"
       "<LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>",
       S3ErrorCode::kMalformedXML});
  ExpectAllRejected(cases, [](const std::string& body) {
    return CodeOf(ParseCreateBucketConfiguration(body, kLimit));
  });
}

}  // namespace
}  // namespace cairn::s3
