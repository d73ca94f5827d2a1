// Response documents. A small string writer rather than pugixml's serializer: pugixml
// writes a carriage return in text literally, and XML end-of-line handling would turn it
// into a line feed at the client, changing the key. Writing directly also keeps a
// 1000-entry listing to one pass with no DOM.
#include <functional>
#include <string>

#include "api/s3/wire/s3_xml.h"
#include "core/text.h"

namespace cairn::s3 {
namespace {

constexpr std::string_view kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

class XmlWriter {
 public:
  XmlWriter() : out_("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") {}

  // The document element, with S3's namespace unless `with_namespace` is false.
  void OpenRoot(std::string_view name, bool with_namespace = true) {
    out_ += '<';
    out_ += name;
    if (with_namespace) {
      out_ += " xmlns=\"";
      out_ += kS3Namespace;
      out_ += '"';
    }
    out_ += '>';
  }
  void Open(std::string_view name) {
    out_ += '<';
    out_ += name;
    out_ += '>';
  }
  void Close(std::string_view name) {
    out_ += "</";
    out_ += name;
    out_ += '>';
  }
  void Text(std::string_view text) { Escape(text); }
  // Markup written as given (attributes the helpers above cannot express).
  void Raw(std::string_view markup) { out_ += markup; }
  void Element(std::string_view name, std::string_view text) {
    Open(name);
    Escape(text);
    Close(name);
  }
  void Element(std::string_view name, uint64_t number) { Element(name, std::to_string(number)); }
  void Element(std::string_view name, int number) { Element(name, std::to_string(number)); }
  void BoolElement(std::string_view name, bool value) {
    Element(name, value ? std::string_view("true") : std::string_view("false"));
  }
  std::string Finish() && { return std::move(out_); }

 private:
  // Tab and line feed survive XML parsing as they are; every other control byte is written
  // as a character reference (see s3_xml.h).
  void Escape(std::string_view text) {
    AppendXmlText(&out_, text, {.control = XmlTextOptions::Control::kReference});
  }

  std::string out_;
};

std::string Quoted(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return std::string(etag);
  return "\"" + std::string(etag) + "\"";
}

// The listing fields S3 encodes under encoding-type=url pass through here.
std::string MaybeEncode(std::string_view text, bool encode) {
  return encode ? UrlEncodeForListing(text) : std::string(text);
}

void WriteOwner(XmlWriter& writer, std::string_view element, const Owner& owner) {
  writer.Open(element);
  writer.Element("ID", owner.id);
  writer.Element("DisplayName", owner.display_name);
  writer.Close(element);
}

// The listed objects: <Contents> entries, or for ListObjectVersions <Version> entries
// (each the one, latest, "null" version of its key).
void WriteContents(XmlWriter& writer, const ListObjectsCommon& common, bool as_versions) {
  const std::string_view element = as_versions ? "Version" : "Contents";
  for (const ObjectEntry& entry : common.contents) {
    writer.Open(element);
    writer.Element("Key", MaybeEncode(entry.key, common.encoding_type_url));
    if (as_versions) {
      writer.Element("VersionId", "null");
      writer.BoolElement("IsLatest", true);
    }
    writer.Element("LastModified", FormatTimestamp(entry.last_modified));
    writer.Element("ETag", Quoted(entry.etag));
    writer.Element("Size", entry.size);
    if (entry.owner) WriteOwner(writer, "Owner", *entry.owner);
    writer.Element("StorageClass", entry.storage_class);
    writer.Close(element);
  }
}

void WriteCommonPrefixes(XmlWriter& writer, const std::vector<std::string>& prefixes, bool encode) {
  for (const std::string& prefix : prefixes) {
    writer.Open("CommonPrefixes");
    writer.Element("Prefix", MaybeEncode(prefix, encode));
    writer.Close("CommonPrefixes");
  }
}

// ListObjects (V1) returns Prefix as given even with encoding-type=url (SDKs decode only
// V1's Marker, NextMarker and Delimiter); V2 and ListObjectVersions encode it.
void WriteListHeader(XmlWriter& writer, const ListObjectsCommon& common,
                     bool encode_prefix = true) {
  writer.Element("Name", common.bucket);
  writer.Element("Prefix", MaybeEncode(common.prefix, encode_prefix && common.encoding_type_url));
}

void WriteListTrailer(XmlWriter& writer, const ListObjectsCommon& common,
                      bool as_versions = false) {
  writer.Element("MaxKeys", common.max_keys);
  if (common.delimiter) {
    writer.Element("Delimiter", MaybeEncode(*common.delimiter, common.encoding_type_url));
  }
  if (common.encoding_type_url) writer.Element("EncodingType", "url");
  writer.BoolElement("IsTruncated", common.is_truncated);
  WriteContents(writer, common, as_versions);
  WriteCommonPrefixes(writer, common.common_prefixes, common.encoding_type_url);
}

}  // namespace

std::string UrlEncodeForListing(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    bool literal = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_' || c == '.' || c == '*' || c == '/';
    if (literal) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out;
}

std::string RenderError(const S3Error& error, std::string_view request_id) {
  XmlWriter writer;
  writer.OpenRoot("Error", /*with_namespace=*/false);
  writer.Element("Code", error.code_name());
  writer.Element("Message", error.message);
  if (!error.resource.empty()) writer.Element("Resource", error.resource);
  writer.Element("RequestId", request_id);
  writer.Close("Error");
  return std::move(writer).Finish();
}

std::string RenderListAllMyBuckets(const ListAllMyBucketsResult& result) {
  XmlWriter writer;
  writer.OpenRoot("ListAllMyBucketsResult");
  WriteOwner(writer, "Owner", result.owner);
  writer.Open("Buckets");
  for (const BucketEntry& bucket : result.buckets) {
    writer.Open("Bucket");
    writer.Element("Name", bucket.name);
    writer.Element("CreationDate", FormatTimestamp(bucket.creation_date));
    writer.Close("Bucket");
  }
  writer.Close("Buckets");
  if (result.continuation_token) writer.Element("ContinuationToken", *result.continuation_token);
  if (result.prefix) writer.Element("Prefix", *result.prefix);
  writer.Close("ListAllMyBucketsResult");
  return std::move(writer).Finish();
}

std::string RenderListBucketResultV1(const ListBucketResultV1& result) {
  const ListObjectsCommon& common = result.common;
  XmlWriter writer;
  writer.OpenRoot("ListBucketResult");
  WriteListHeader(writer, common, /*encode_prefix=*/false);
  writer.Element("Marker", MaybeEncode(result.marker.value_or(""), common.encoding_type_url));
  if (result.next_marker) {
    writer.Element("NextMarker", MaybeEncode(*result.next_marker, common.encoding_type_url));
  }
  WriteListTrailer(writer, common);
  writer.Close("ListBucketResult");
  return std::move(writer).Finish();
}

std::string RenderListBucketResultV2(const ListBucketResultV2& result) {
  const ListObjectsCommon& common = result.common;
  XmlWriter writer;
  writer.OpenRoot("ListBucketResult");
  WriteListHeader(writer, common);
  // Continuation tokens are opaque server values and never URL-encoded; StartAfter is a key.
  if (result.continuation_token) {
    writer.Element("ContinuationToken", *result.continuation_token);
  }
  if (result.next_continuation_token) {
    writer.Element("NextContinuationToken", *result.next_continuation_token);
  }
  if (result.start_after) {
    writer.Element("StartAfter", MaybeEncode(*result.start_after, common.encoding_type_url));
  }
  writer.Element("KeyCount",
                 static_cast<uint64_t>(common.contents.size() + common.common_prefixes.size()));
  WriteListTrailer(writer, common);
  writer.Close("ListBucketResult");
  return std::move(writer).Finish();
}

std::string RenderListVersionsResult(const ListVersionsResult& result) {
  const ListObjectsCommon& common = result.common;
  const bool encode = common.encoding_type_url;
  XmlWriter writer;
  writer.OpenRoot("ListVersionsResult");
  WriteListHeader(writer, common);
  writer.Element("KeyMarker", MaybeEncode(result.key_marker.value_or(""), encode));
  writer.Element("VersionIdMarker", result.version_id_marker.value_or(""));
  if (result.next_key_marker) {
    writer.Element("NextKeyMarker", MaybeEncode(*result.next_key_marker, encode));
    writer.Element("NextVersionIdMarker", "null");
  }
  WriteListTrailer(writer, common, /*as_versions=*/true);
  writer.Close("ListVersionsResult");
  return std::move(writer).Finish();
}

std::string RenderLocationConstraint(std::string_view region) {
  XmlWriter writer;
  writer.OpenRoot("LocationConstraint");
  writer.Text(region);
  writer.Close("LocationConstraint");
  return std::move(writer).Finish();
}

std::string RenderInitiateMultipartUploadResult(std::string_view bucket, std::string_view key,
                                                std::string_view upload_id) {
  XmlWriter writer;
  writer.OpenRoot("InitiateMultipartUploadResult");
  writer.Element("Bucket", bucket);
  writer.Element("Key", key);
  writer.Element("UploadId", upload_id);
  writer.Close("InitiateMultipartUploadResult");
  return std::move(writer).Finish();
}

std::string RenderCompleteMultipartUploadResult(const CompleteMultipartUploadResult& result) {
  XmlWriter writer;
  writer.OpenRoot("CompleteMultipartUploadResult");
  writer.Element("Location", result.location);
  writer.Element("Bucket", result.bucket);
  writer.Element("Key", result.key);
  writer.Element("ETag", Quoted(result.etag));
  if (!result.checksum_element.empty()) {
    writer.Element(result.checksum_element, result.checksum_value);
    writer.Element("ChecksumType", result.checksum_type);
  }
  writer.Close("CompleteMultipartUploadResult");
  return std::move(writer).Finish();
}

namespace {
std::string RenderCopyResult(std::string_view root, TimestampMs last_modified,
                             std::string_view etag) {
  XmlWriter writer;
  writer.OpenRoot(root);
  writer.Element("LastModified", FormatTimestamp(last_modified));
  writer.Element("ETag", Quoted(etag));
  writer.Close(root);
  return std::move(writer).Finish();
}
}  // namespace

std::string RenderCopyObjectResult(TimestampMs last_modified, std::string_view etag) {
  return RenderCopyResult("CopyObjectResult", last_modified, etag);
}

std::string RenderCopyPartResult(TimestampMs last_modified, std::string_view etag) {
  return RenderCopyResult("CopyPartResult", last_modified, etag);
}

std::string RenderDeleteResult(const DeleteResult& result) {
  XmlWriter writer;
  writer.OpenRoot("DeleteResult");
  if (!result.quiet) {
    for (const DeletedEntry& deleted : result.deleted) {
      writer.Open("Deleted");
      writer.Element("Key", deleted.key);
      writer.Close("Deleted");
    }
  }
  for (const DeleteErrorEntry& error : result.errors) {
    writer.Open("Error");
    writer.Element("Key", error.key);
    writer.Element("Code", error.code);
    writer.Element("Message", error.message);
    writer.Close("Error");
  }
  writer.Close("DeleteResult");
  return std::move(writer).Finish();
}

std::string RenderListPartsResult(const ListPartsResult& result) {
  XmlWriter writer;
  writer.OpenRoot("ListPartsResult");
  writer.Element("Bucket", result.bucket);
  writer.Element("Key", result.key);
  writer.Element("UploadId", result.upload_id);
  WriteOwner(writer, "Initiator", result.initiator);
  WriteOwner(writer, "Owner", result.initiator);
  writer.Element("StorageClass", result.storage_class);
  writer.Element("PartNumberMarker", result.part_number_marker);
  writer.Element("NextPartNumberMarker", result.next_part_number_marker);
  writer.Element("MaxParts", result.max_parts);
  writer.BoolElement("IsTruncated", result.is_truncated);
  if (!result.checksum_algorithm.empty()) {
    writer.Element("ChecksumAlgorithm", result.checksum_algorithm);
    writer.Element("ChecksumType", result.checksum_type);
  }
  for (const PartEntry& part : result.parts) {
    writer.Open("Part");
    writer.Element("PartNumber", part.part_number);
    writer.Element("LastModified", FormatTimestamp(part.last_modified));
    writer.Element("ETag", Quoted(part.etag));
    writer.Element("Size", part.size);
    if (!part.checksum_element.empty()) writer.Element(part.checksum_element, part.checksum_value);
    writer.Close("Part");
  }
  writer.Close("ListPartsResult");
  return std::move(writer).Finish();
}

std::string RenderListMultipartUploadsResult(const ListMultipartUploadsResult& result) {
  const bool encode = result.encoding_type_url;
  XmlWriter writer;
  writer.OpenRoot("ListMultipartUploadsResult");
  writer.Element("Bucket", result.bucket);
  writer.Element("KeyMarker", MaybeEncode(result.key_marker, encode));
  writer.Element("UploadIdMarker", result.upload_id_marker);
  writer.Element("NextKeyMarker", MaybeEncode(result.next_key_marker, encode));
  writer.Element("NextUploadIdMarker", result.next_upload_id_marker);
  writer.Element("Prefix", MaybeEncode(result.prefix, encode));
  if (result.delimiter) writer.Element("Delimiter", MaybeEncode(*result.delimiter, encode));
  writer.Element("MaxUploads", result.max_uploads);
  if (encode) writer.Element("EncodingType", "url");
  writer.BoolElement("IsTruncated", result.is_truncated);
  for (const UploadEntry& upload : result.uploads) {
    writer.Open("Upload");
    writer.Element("Key", MaybeEncode(upload.key, encode));
    writer.Element("UploadId", upload.upload_id);
    WriteOwner(writer, "Initiator", upload.initiator);
    WriteOwner(writer, "Owner", upload.initiator);
    writer.Element("StorageClass", upload.storage_class);
    writer.Element("Initiated", FormatTimestamp(upload.initiated));
    writer.Close("Upload");
  }
  WriteCommonPrefixes(writer, result.common_prefixes, encode);
  writer.Close("ListMultipartUploadsResult");
  return std::move(writer).Finish();
}

std::string RenderTagging(const std::vector<Tag>& tags) {
  XmlWriter writer;
  writer.OpenRoot("Tagging");
  writer.Open("TagSet");
  for (const Tag& tag : tags) {
    writer.Open("Tag");
    writer.Element("Key", tag.key);
    writer.Element("Value", tag.value);
    writer.Close("Tag");
  }
  writer.Close("TagSet");
  writer.Close("Tagging");
  return std::move(writer).Finish();
}

namespace {

constexpr std::string_view kAllUsersUri = "http://acs.amazonaws.com/groups/global/AllUsers";
constexpr std::string_view kAuthenticatedUsersUri =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

// One <Grant> per permission, as S3 lists them (FULL_CONTROL alone when all are held).
void WriteGrants(XmlWriter& writer, uint8_t permissions, const std::string& grantee_open,
                 const std::function<void(XmlWriter&)>& grantee_body) {
  static constexpr std::pair<uint8_t, std::string_view> kPermissions[] = {
      {kAclRead, "READ"},
      {kAclWrite, "WRITE"},
      {kAclReadAcp, "READ_ACP"},
      {kAclWriteAcp, "WRITE_ACP"}};
  auto grant = [&](std::string_view permission) {
    writer.Open("Grant");
    writer.Raw(grantee_open);
    grantee_body(writer);
    writer.Close("Grantee");
    writer.Element("Permission", permission);
    writer.Close("Grant");
  };
  if ((permissions & kAclFullControl) == kAclFullControl) {
    grant("FULL_CONTROL");
    return;
  }
  for (const auto& [bit, name] : kPermissions) {
    if (permissions & bit) grant(name);
  }
}

}  // namespace

std::string RenderAccessControlPolicy(const AclGrants& grants, const Owner& owner) {
  XmlWriter writer;
  writer.OpenRoot("AccessControlPolicy");
  WriteOwner(writer, "Owner", owner);
  writer.Open("AccessControlList");
  const std::string xsi =
      "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"";
  // Group grants first, then the owner's (the order Ceph's RGW lists them in).
  WriteGrants(writer, grants.all_users, xsi + "Group\">",
              [](XmlWriter& w) { w.Element("URI", kAllUsersUri); });
  WriteGrants(writer, grants.authenticated_users, xsi + "Group\">",
              [](XmlWriter& w) { w.Element("URI", kAuthenticatedUsersUri); });
  WriteGrants(writer, grants.owner, xsi + "CanonicalUser\">", [&](XmlWriter& w) {
    w.Element("ID", owner.id);
    w.Element("DisplayName", owner.display_name);
  });
  writer.Close("AccessControlList");
  writer.Close("AccessControlPolicy");
  return std::move(writer).Finish();
}

std::string RenderPublicAccessBlock(const PublicAccessBlock& block) {
  XmlWriter writer;
  writer.OpenRoot("PublicAccessBlockConfiguration");
  writer.BoolElement("BlockPublicAcls", block.block_public_acls);
  writer.BoolElement("IgnorePublicAcls", block.ignore_public_acls);
  writer.BoolElement("BlockPublicPolicy", block.block_public_policy);
  writer.BoolElement("RestrictPublicBuckets", block.restrict_public_buckets);
  writer.Close("PublicAccessBlockConfiguration");
  return std::move(writer).Finish();
}

std::string RenderOwnershipControls(std::string_view ownership) {
  XmlWriter writer;
  writer.OpenRoot("OwnershipControls");
  writer.Open("Rule");
  writer.Element("ObjectOwnership", ownership);
  writer.Close("Rule");
  writer.Close("OwnershipControls");
  return std::move(writer).Finish();
}

}  // namespace cairn::s3
