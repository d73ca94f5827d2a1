// Request documents, parsed with pugixml after a pre-scan that keeps the parser's input to
// plain, self-contained UTF-8 XML (see s3_xml.h for the rules and why).
#include <charconv>
#include <pugixml.hpp>
#include <set>
#include <string>

#include "api/s3/wire/s3_xml.h"
#include "core/text.h"
#include "core/types.h"

namespace cairn::s3 {
namespace {

S3Error Malformed(std::string why) {
  return MakeS3Error(S3ErrorCode::kMalformedXML,
                     "The XML you provided was not well-formed or did not validate against "
                     "our published schema: " +
                         why);
}

// Checks "&...;" at text[at]: one of XML's predefined entities, or a character reference
// to a character XML allows (not NUL, not a surrogate, at most U+10FFFF). Anything else
// would name an entity only a DTD could define.
bool IsAllowedReference(std::string_view text, size_t at) {
  size_t end = text.find(';', at);
  if (end == std::string_view::npos || end - at > 12) return false;
  std::string_view name = text.substr(at + 1, end - at - 1);
  if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") {
    return true;
  }
  if (name.size() < 2 || name[0] != '#') return false;
  std::string_view digits = name.substr(1);
  int base = 10;
  if (digits[0] == 'x') {
    digits.remove_prefix(1);
    base = 16;
  }
  if (digits.empty() || digits.size() > 8) return false;
  for (char c : digits) {
    if (base == 10 ? !(c >= '0' && c <= '9') : HexDigitValue(c) < 0) return false;
  }
  uint32_t code_point = 0;
  auto [ptr, error] =
      std::from_chars(digits.data(), digits.data() + digits.size(), code_point, base);
  if (error != std::errc() || ptr != digits.data() + digits.size()) return false;
  return code_point != 0 && code_point <= 0x10FFFF &&
         !(code_point >= 0xD800 && code_point <= 0xDFFF);
}

std::string_view LocalName(const pugi::xml_node& node) {
  std::string_view name = node.name();
  size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// Parses `body` into `document` and returns its root element, which must be `root_name`.
S3Result<pugi::xml_node> Load(std::string_view body, size_t max_bytes, std::string_view root_name,
                              pugi::xml_document* document) {
  if (body.size() > max_bytes) {
    return MakeS3Error(S3ErrorCode::kMaxMessageLengthExceeded,
                       "the " + std::string(root_name) + " document is " +
                           std::to_string(body.size()) + " bytes; the limit is " +
                           std::to_string(max_bytes));
  }
  if (auto error = PreScanXml(body)) return *error;
  // parse_ws_pcdata keeps whitespace-only text: " " is a valid key. parse_fragment keeps
  // text outside the root as nodes, so the check below can see (and reject) it.
  pugi::xml_parse_result parsed = document->load_buffer(
      body.data(), body.size(), pugi::parse_default | pugi::parse_ws_pcdata | pugi::parse_fragment,
      pugi::encoding_utf8);
  if (!parsed) {
    return Malformed(std::string(parsed.description()) + " at offset " +
                     std::to_string(parsed.offset));
  }
  // pugixml tolerates fragments; a request body is one document with one root element.
  int elements = 0;
  for (pugi::xml_node node : document->children()) {
    if (node.type() == pugi::node_element) {
      ++elements;
    } else if (node.type() == pugi::node_pcdata || node.type() == pugi::node_cdata) {
      if (!TrimAscii(node.value(), kXmlWhitespace).empty()) {
        return Malformed("text outside the root element");
      }
    }
  }
  if (elements != 1) return Malformed("the document must have exactly one root element");
  pugi::xml_node root = document->document_element();
  if (!root || LocalName(root) != root_name) {
    return Malformed("the root element must be " + std::string(root_name));
  }
  return root;
}

std::vector<pugi::xml_node> Children(const pugi::xml_node& parent, std::string_view name) {
  std::vector<pugi::xml_node> out;
  for (pugi::xml_node child : parent.children()) {
    if (child.type() == pugi::node_element && LocalName(child) == name) out.push_back(child);
  }
  return out;
}

// The text of an element: all its text and CDATA children joined. An element inside is
// MalformedXML (a field is never structured).
S3Result<std::string> TextOf(const pugi::xml_node& element) {
  std::string text;
  for (pugi::xml_node child : element.children()) {
    if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
      text += child.value();
    } else if (child.type() == pugi::node_element) {
      return Malformed("<" + std::string(element.name()) + "> must contain only text");
    }
  }
  return text;
}

// The text of the single child `name` of `parent`; nullopt if absent; MalformedXML if
// repeated.
S3Result<std::optional<std::string>> OptionalField(const pugi::xml_node& parent,
                                                   std::string_view name) {
  std::vector<pugi::xml_node> found = Children(parent, name);
  if (found.empty()) return std::optional<std::string>();
  if (found.size() > 1) {
    return Malformed("<" + std::string(name) + "> appears more than once in <" +
                     std::string(parent.name()) + ">");
  }
  S3Result<std::string> text = TextOf(found.front());
  if (!text.ok()) return text.error();
  return std::optional<std::string>(std::move(text).value());
}

S3Result<std::string> RequiredField(const pugi::xml_node& parent, std::string_view name) {
  S3Result<std::optional<std::string>> field = OptionalField(parent, name);
  if (!field.ok()) return field.error();
  if (!field->has_value()) {
    return Malformed("<" + std::string(parent.name()) + "> needs a <" + std::string(name) + ">");
  }
  return std::move(**field);
}

size_t CountCharacters(std::string_view utf8) {
  size_t count = 0;
  for (char c : utf8) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

S3Error InvalidTag(std::string why) {
  return MakeS3Error(S3ErrorCode::kInvalidTag, std::move(why));
}

// One <Part>: PartNumber and ETag required, checksum elements collected.
S3Result<CompletedPart> ParsePart(const pugi::xml_node& node) {
  S3Result<std::string> number_text = RequiredField(node, "PartNumber");
  if (!number_text.ok()) return number_text.error();
  std::string_view digits = TrimAscii(*number_text, kXmlWhitespace);
  int number = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
      number < 1 || number > 10000) {
    return MakeS3Error(
        S3ErrorCode::kInvalidArgument,
        "PartNumber '" + *number_text + "' must be an integer between 1 and 10000, inclusive");
  }
  S3Result<std::string> etag = RequiredField(node, "ETag");
  if (!etag.ok()) return etag.error();
  std::string_view trimmed = TrimAscii(*etag, kXmlWhitespace);
  if (trimmed.size() >= 2 && trimmed.front() == '"' && trimmed.back() == '"') {
    trimmed = trimmed.substr(1, trimmed.size() - 2);
  }
  CompletedPart part{number, std::string(trimmed), {}};
  for (pugi::xml_node child : node.children()) {
    if (child.type() != pugi::node_element) continue;
    std::string_view name = LocalName(child);
    if (name.substr(0, 8) != "Checksum") continue;
    S3Result<std::string> value = TextOf(child);
    if (!value.ok()) return value.error();
    part.checksums.emplace_back(std::string(name), std::string(TrimAscii(*value, kXmlWhitespace)));
  }
  return part;
}

}  // namespace

std::optional<S3Error> PreScanXml(std::string_view body) {
  if (!IsValidUtf8(body)) return Malformed("the document is not valid UTF-8");
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\0') return Malformed("the document contains a NUL byte");
    if (c == '<' && i + 1 < body.size() && body[i + 1] == '!') {
      std::string_view rest = body.substr(i + 2);
      if (rest.substr(0, 2) != "--" && rest.substr(0, 7) != "[CDATA[") {
        return Malformed("DOCTYPE and other markup declarations are not allowed");
      }
    } else if (c == '&' && !IsAllowedReference(body, i)) {
      return Malformed("only the predefined entities and character references are allowed");
    }
  }
  return std::nullopt;
}

S3Result<std::vector<CompletedPart>> ParseCompleteMultipartUpload(std::string_view body,
                                                                  size_t max_bytes) {
  pugi::xml_document document;
  S3Result<pugi::xml_node> root = Load(body, max_bytes, "CompleteMultipartUpload", &document);
  if (!root.ok()) return root.error();
  std::vector<CompletedPart> parts;
  for (const pugi::xml_node& node : Children(*root, "Part")) {
    S3Result<CompletedPart> part = ParsePart(node);
    if (!part.ok()) return part.error();
    // Equal numbers in a row are allowed (the service keeps the last entry of each).
    if (!parts.empty() && part->part_number < parts.back().part_number) {
      return MakeS3Error(S3ErrorCode::kInvalidPartOrder,
                         "The list of parts was not in ascending order: part " +
                             std::to_string(part->part_number) + " follows part " +
                             std::to_string(parts.back().part_number));
    }
    parts.push_back(std::move(part).value());
  }
  if (parts.empty()) return Malformed("CompleteMultipartUpload lists no parts");
  return parts;
}

S3Result<DeleteRequest> ParseDelete(std::string_view body, size_t max_bytes) {
  pugi::xml_document document;
  S3Result<pugi::xml_node> root = Load(body, max_bytes, "Delete", &document);
  if (!root.ok()) return root.error();
  DeleteRequest request;
  S3Result<std::optional<std::string>> quiet = OptionalField(*root, "Quiet");
  if (!quiet.ok()) return quiet.error();
  if (quiet->has_value()) {
    std::string_view value = TrimAscii(**quiet, kXmlWhitespace);
    if (value == "true" || value == "True" || value == "TRUE") {
      request.quiet = true;
    } else if (value != "false" && value != "False" && value != "FALSE") {
      return Malformed("<Quiet> must be true or false, not '" + **quiet + "'");
    }
  }
  std::vector<pugi::xml_node> objects = Children(*root, "Object");
  if (objects.empty()) return Malformed("<Delete> lists no <Object>");
  if (objects.size() > kMaxDeleteObjects) {
    return Malformed("<Delete> lists " + std::to_string(objects.size()) +
                     " objects; the limit is 1000");
  }
  for (const pugi::xml_node& node : objects) {
    S3Result<std::string> key = RequiredField(node, "Key");
    if (!key.ok()) return key.error();
    S3Result<std::optional<std::string>> version = OptionalField(node, "VersionId");
    if (!version.ok()) return version.error();
    request.objects.push_back({std::move(key).value(), std::move(version).value()});
  }
  return request;
}

S3Result<std::vector<Tag>> ParseTagging(std::string_view body, size_t max_bytes, size_t max_tags) {
  pugi::xml_document document;
  S3Result<pugi::xml_node> root = Load(body, max_bytes, "Tagging", &document);
  if (!root.ok()) return root.error();
  std::vector<pugi::xml_node> tag_sets = Children(*root, "TagSet");
  if (tag_sets.size() != 1) return Malformed("<Tagging> needs exactly one <TagSet>");
  std::vector<pugi::xml_node> nodes = Children(tag_sets.front(), "Tag");
  if (nodes.size() > max_tags) {
    return InvalidTag(std::string(max_tags == kMaxObjectTags ? "Object" : "Bucket") +
                      " tags cannot be greater than " + std::to_string(max_tags) +
                      "; the request has " + std::to_string(nodes.size()));
  }
  std::vector<Tag> tags;
  std::set<std::string> seen;
  for (const pugi::xml_node& node : nodes) {
    S3Result<std::string> key = RequiredField(node, "Key");
    if (!key.ok()) return key.error();
    S3Result<std::string> value = RequiredField(node, "Value");
    if (!value.ok()) return value.error();
    if (key->empty()) return InvalidTag("a tag key must not be empty");
    if (CountCharacters(*key) > kMaxTagKeyCharacters) {
      return InvalidTag("tag key '" + *key + "' is longer than 128 characters");
    }
    if (CountCharacters(*value) > kMaxTagValueCharacters) {
      return InvalidTag("the value of tag '" + *key + "' is longer than 256 characters");
    }
    if (key->rfind("aws:", 0) == 0) {
      return InvalidTag("tag key '" + *key + "' uses the reserved aws: prefix");
    }
    if (!seen.insert(*key).second) {
      return InvalidTag("Cannot provide multiple Tags with the same key: '" + *key + "'");
    }
    tags.push_back({std::move(key).value(), std::move(value).value()});
  }
  return tags;
}

S3Result<std::optional<std::string>> ParseCreateBucketConfiguration(std::string_view body,
                                                                    size_t max_bytes) {
  if (TrimAscii(body, kXmlWhitespace).empty()) return std::optional<std::string>();
  pugi::xml_document document;
  S3Result<pugi::xml_node> root = Load(body, max_bytes, "CreateBucketConfiguration", &document);
  if (!root.ok()) return root.error();
  S3Result<std::optional<std::string>> location = OptionalField(*root, "LocationConstraint");
  if (!location.ok()) return location.error();
  if (!location->has_value()) return std::optional<std::string>();
  std::string_view region = TrimAscii(**location, kXmlWhitespace);
  if (region.empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::string(region));
}

namespace {

S3Error MalformedAcl(std::string why) {
  return MakeS3Error(S3ErrorCode::kMalformedACLError,
                     "The XML you provided was not well-formed or did not validate against our "
                     "published schema: " +
                         why);
}

std::optional<uint8_t> PermissionBits(std::string_view name) {
  if (name == "READ") return kAclRead;
  if (name == "WRITE") return kAclWrite;
  if (name == "READ_ACP") return kAclReadAcp;
  if (name == "WRITE_ACP") return kAclWriteAcp;
  if (name == "FULL_CONTROL") return kAclFullControl;
  return std::nullopt;
}

// The xsi:type of a <Grantee>, whatever prefix the document bound the XSI namespace to.
std::string GranteeType(const pugi::xml_node& grantee) {
  for (pugi::xml_attribute attribute : grantee.attributes()) {
    std::string_view name = attribute.name();
    size_t colon = name.find(':');
    if (colon != std::string_view::npos && name.substr(colon + 1) == "type" &&
        name.substr(0, colon) != "xmlns") {
      return attribute.value();
    }
  }
  return "";
}

S3Result<bool> ParseBool(const pugi::xml_node& parent, std::string_view name) {
  S3Result<std::optional<std::string>> text = OptionalField(parent, name);
  if (!text.ok()) return text.error();
  if (!text->has_value()) return false;
  std::string_view value = TrimAscii(**text, kXmlWhitespace);
  if (value == "true" || value == "TRUE" || value == "True") return true;
  if (value == "false" || value == "FALSE" || value == "False") return false;
  return Malformed("<" + std::string(name) + "> must be true or false, not '" +
                   std::string(value.substr(0, 16)) + "'");
}

}  // namespace

S3Result<AclGrants> ParseAccessControlPolicy(std::string_view body, size_t max_bytes,
                                             std::string_view owner_id) {
  pugi::xml_document document;
  S3Result<pugi::xml_node> root = Load(body, max_bytes, "AccessControlPolicy", &document);
  if (!root.ok()) return S3Error(MalformedAcl(root.error().message));
  std::vector<pugi::xml_node> owners = Children(*root, "Owner");
  if (owners.size() > 1) return MalformedAcl("more than one <Owner>");
  if (owners.size() == 1) {
    S3Result<std::optional<std::string>> id = OptionalField(owners.front(), "ID");
    if (!id.ok()) return MalformedAcl(id.error().message);
    if (id->has_value() && TrimAscii(**id, kXmlWhitespace) != owner_id) {
      return MakeS3Error(S3ErrorCode::kAccessDenied,
                         "the ACL's <Owner> is not the bucket's owner; ownership cannot change");
    }
  }
  std::vector<pugi::xml_node> lists = Children(*root, "AccessControlList");
  if (lists.size() > 1) return MalformedAcl("more than one <AccessControlList>");
  AclGrants grants;
  grants.owner = 0;
  if (lists.empty()) return grants;
  std::vector<pugi::xml_node> grant_nodes = Children(lists.front(), "Grant");
  if (grant_nodes.size() > 100) return MalformedAcl("an ACL has at most 100 grants");
  for (const pugi::xml_node& grant : grant_nodes) {
    S3Result<std::string> permission_text = RequiredField(grant, "Permission");
    if (!permission_text.ok()) return MalformedAcl(permission_text.error().message);
    std::optional<uint8_t> permission = PermissionBits(TrimAscii(*permission_text, kXmlWhitespace));
    if (!permission) {
      return MalformedAcl("unknown permission '" + permission_text->substr(0, 32) + "'");
    }
    std::vector<pugi::xml_node> grantees = Children(grant, "Grantee");
    if (grantees.size() != 1) return MalformedAcl("a <Grant> needs exactly one <Grantee>");
    const pugi::xml_node& grantee = grantees.front();
    const std::string type = GranteeType(grantee);
    S3Result<std::optional<std::string>> id = OptionalField(grantee, "ID");
    S3Result<std::optional<std::string>> uri = OptionalField(grantee, "URI");
    S3Result<std::optional<std::string>> email = OptionalField(grantee, "EmailAddress");
    if (!id.ok() || !uri.ok() || !email.ok()) return MalformedAcl("a repeated grantee field");
    if (type == "CanonicalUser" && id->has_value()) {
      if (TrimAscii(**id, kXmlWhitespace) != owner_id) {
        return MakeS3Error(S3ErrorCode::kNotImplemented,
                           "Cairn does not implement ACL grants to other accounts ('" +
                               (**id).substr(0, 64) +
                               "'); grant to the AllUsers or AuthenticatedUsers group, or use "
                               "a bucket policy");
      }
      grants.owner |= *permission;
    } else if (type == "Group" && uri->has_value()) {
      std::string_view group = TrimAscii(**uri, kXmlWhitespace);
      if (group == "http://acs.amazonaws.com/groups/global/AllUsers") {
        grants.all_users |= *permission;
      } else if (group == "http://acs.amazonaws.com/groups/global/AuthenticatedUsers") {
        grants.authenticated_users |= *permission;
      } else if (group == "http://acs.amazonaws.com/groups/s3/LogDelivery") {
        return MakeS3Error(S3ErrorCode::kNotImplemented,
                           "Cairn does not implement server access logging (LogDelivery group)");
      } else {
        return MalformedAcl("unknown group '" + std::string(group.substr(0, 80)) + "'");
      }
    } else if (type == "AmazonCustomerByEmail" && email->has_value()) {
      return MakeS3Error(S3ErrorCode::kUnresolvableGrantByEmailAddress,
                         "The e-mail address you provided does not match any account on record "
                         "(Cairn accounts have no e-mail addresses)");
    } else {
      return MalformedAcl("a <Grantee> of type '" + type.substr(0, 32) +
                          "' needs its ID, URI or EmailAddress");
    }
  }
  return grants;
}

S3Result<PublicAccessBlock> ParsePublicAccessBlock(std::string_view body, size_t max_bytes) {
  pugi::xml_document document;
  S3Result<pugi::xml_node> root =
      Load(body, max_bytes, "PublicAccessBlockConfiguration", &document);
  if (!root.ok()) return root.error();
  PublicAccessBlock block;
  bool* fields[] = {&block.block_public_acls, &block.ignore_public_acls, &block.block_public_policy,
                    &block.restrict_public_buckets};
  const char* names[] = {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                         "RestrictPublicBuckets"};
  for (size_t i = 0; i < 4; ++i) {
    S3Result<bool> value = ParseBool(*root, names[i]);
    if (!value.ok()) return value.error();
    *fields[i] = *value;
  }
  return block;
}

S3Result<std::string> ParseOwnershipControls(std::string_view body, size_t max_bytes) {
  pugi::xml_document document;
  S3Result<pugi::xml_node> root = Load(body, max_bytes, "OwnershipControls", &document);
  if (!root.ok()) return root.error();
  std::vector<pugi::xml_node> rules = Children(*root, "Rule");
  if (rules.size() != 1) return Malformed("<OwnershipControls> needs exactly one <Rule>");
  S3Result<std::string> ownership = RequiredField(rules.front(), "ObjectOwnership");
  if (!ownership.ok()) return ownership.error();
  std::string_view value = TrimAscii(*ownership, kXmlWhitespace);
  if (value != "BucketOwnerEnforced" && value != "BucketOwnerPreferred" &&
      value != "ObjectWriter") {
    return Malformed("unknown ObjectOwnership '" + std::string(value.substr(0, 32)) + "'");
  }
  return std::string(value);
}

}  // namespace cairn::s3
