#include "api/s3/post/post_policy.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "api/s3/sigv4/sigv2.h"
#include "core/base64.h"
#include "core/hashing.h"
#include "core/text.h"

namespace cairn::api::s3::post {
namespace {

using nlohmann::json;

constexpr std::string_view kFilenameVariable = "${filename}";

PostError MakeError(int status, std::string code, std::string message) {
  PostError error;
  error.status = status;
  error.code = std::move(code);
  error.message = std::move(message);
  return error;
}

PostError MissingField(std::string_view name) {
  return MakeError(400, "InvalidArgument",
                   "Bucket POST must contain a field named '" + std::string(name) +
                       "'.  If it is specified, please check the order of the fields.");
}

PostError InvalidPolicy(std::string message) {
  return MakeError(400, "InvalidPolicyDocument", "Invalid Policy: " + std::move(message));
}

PostError PolicyDenied(std::string message) {
  return MakeError(403, "AccessDenied", "Invalid according to Policy: " + std::move(message));
}

const std::string* Find(const FormValues& values, std::string_view lower_name) {
  auto it = values.find(std::string(lower_name));
  return it == values.end() ? nullptr : &it->second;
}

bool AllDigits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// "2007-12-01T12:00:00.000Z" (fractional seconds optional) -> ms since the epoch.
std::optional<TimestampMs> ParseExpiration(std::string_view text) {
  if (text.size() < 20 || text.back() != 'Z') return std::nullopt;
  std::string_view date = text.substr(0, 19);
  if (date[4] != '-' || date[7] != '-' || date[10] != 'T' || date[13] != ':' || date[16] != ':') {
    return std::nullopt;
  }
  std::string_view fraction = text.substr(19, text.size() - 20);
  if (!fraction.empty() && (fraction[0] != '.' || !AllDigits(fraction.substr(1)))) {
    return std::nullopt;
  }
  std::string compact;
  for (size_t i : {0, 5, 8}) compact.append(date.substr(i, i == 0 ? 4 : 2));
  compact += 'T';
  for (size_t i : {11, 14, 17}) compact.append(date.substr(i, 2));
  compact += 'Z';
  if (!AllDigits(compact.substr(0, 8)) || !AllDigits(compact.substr(9, 6))) return std::nullopt;
  auto parsed = ParseAmzDate(compact);
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

// A condition's string operand: a JSON string, or an integer written as one.
std::optional<std::string> StringOperand(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return value.dump();
  return std::nullopt;
}

// A content-length-range bound: a non-negative integer (or a string of digits).
std::optional<uint64_t> SizeOperand(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer()) {
    int64_t number = value.get<int64_t>();
    if (number < 0) return std::nullopt;
    return static_cast<uint64_t>(number);
  }
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    uint64_t number = 0;
    if (!AllDigits(text) || text.size() > 19) return std::nullopt;
    std::from_chars(text.data(), text.data() + text.size(), number);
    return number;
  }
  return std::nullopt;
}

std::string ConditionText(std::string_view operation, std::string_view field,
                          std::string_view value) {
  return "[\"" + std::string(operation) + "\", \"$" + std::string(field) + "\", " +
         json(std::string(value)).dump() + "]";
}

}  // namespace

FormValues CollectFormValues(const std::vector<FormField>& fields, std::string_view filename) {
  const std::string base = BaseFilename(filename);
  FormValues values;
  for (const FormField& field : fields) {
    std::string value = field.value;
    for (size_t at = value.find(kFilenameVariable); at != std::string::npos;
         at = value.find(kFilenameVariable, at + base.size())) {
      value.replace(at, kFilenameVariable.size(), base);
    }
    std::string name = ToLowerAscii(field.name);
    auto it = values.find(name);
    if (it == values.end()) {
      values.emplace(std::move(name), std::move(value));
    } else {
      it->second += "," + value;
    }
  }
  return values;
}

std::optional<PostError> FindObjectKey(const FormValues& values, std::string* key) {
  const std::string* found = Find(values, "key");
  if (found == nullptr) return MissingField("key");
  if (found->empty()) {
    return MakeError(400, "InvalidArgument", "User key must have a length greater than 0.");
  }
  if (found->size() > kMaxKeyBytes) {
    return MakeError(
        400, "KeyTooLongError",
        "Your key is too long: " + std::to_string(found->size()) + " bytes; the limit is 1024");
  }
  Status valid = ValidateKey(*found);
  if (!valid.ok()) {
    return MakeError(400, "InvalidArgument", "the key is not valid: " + valid.message());
  }
  *key = *found;
  return std::nullopt;
}

std::optional<PostError> ParsePostCredentials(const FormValues& values, PostCredentials* out) {
  *out = PostCredentials();
  const std::string* policy = Find(values, "policy");
  const std::string* algorithm = Find(values, "x-amz-algorithm");
  const std::string* credential = Find(values, "x-amz-credential");
  const std::string* date = Find(values, "x-amz-date");
  const std::string* v4_signature = Find(values, "x-amz-signature");
  const std::string* access_key = Find(values, "awsaccesskeyid");
  const std::string* v2_signature = Find(values, "signature");
  if (policy == nullptr) {
    if (v4_signature != nullptr || credential != nullptr || access_key != nullptr ||
        v2_signature != nullptr) {
      return MissingField("policy");
    }
    return std::nullopt;  // anonymous
  }
  out->policy = *policy;
  if (algorithm != nullptr || credential != nullptr || v4_signature != nullptr) {
    if (algorithm == nullptr) return MissingField("x-amz-algorithm");
    if (*algorithm != kSigV4Algorithm) {
      return MakeError(
          400, "InvalidArgument",
          "x-amz-algorithm must be AWS4-HMAC-SHA256, not '" + algorithm->substr(0, 64) + "'");
    }
    if (credential == nullptr) return MissingField("x-amz-credential");
    if (date == nullptr) return MissingField("x-amz-date");
    if (v4_signature == nullptr) return MissingField("x-amz-signature");
    auto parsed = ParseCredential(*credential, SigV4Error::kInvalidArgument);
    if (!parsed.ok()) {
      return MakeError(400, "InvalidArgument",
                       "x-amz-credential is malformed: " + parsed.status().message());
    }
    if (parsed->scope.service != "s3") {
      return MakeError(400, "InvalidArgument",
                       "x-amz-credential must name the service 's3', not '" +
                           parsed->scope.service.substr(0, 64) + "'");
    }
    auto when = ParseAmzDate(*date);
    if (!when.ok()) {
      return MakeError(400, "InvalidArgument",
                       "x-amz-date is malformed: " + when.status().message());
    }
    if (date->substr(0, 8) != parsed->scope.date) {
      return MakeError(400, "InvalidArgument",
                       "the date of x-amz-credential (" + parsed->scope.date +
                           ") is not the day of x-amz-date (" + *date + ")");
    }
    out->kind = PostAuthKind::kV4;
    out->access_key = parsed->access_key;
    out->scope = parsed->scope;
    out->amz_date = *date;
    out->signature = *v4_signature;
    return std::nullopt;
  }
  if (access_key == nullptr) return MissingField("AWSAccessKeyId");
  if (v2_signature == nullptr) return MissingField("Signature");
  out->kind = PostAuthKind::kV2;
  out->access_key = *access_key;
  out->signature = *v2_signature;
  return std::nullopt;
}

bool PostSignatureMatches(const PostCredentials& credentials, std::string_view secret,
                          SigningKeyCache* cache) {
  switch (credentials.kind) {
    case PostAuthKind::kV4: {
      const std::string key = cache != nullptr ? cache->Get(secret, credentials.scope)
                                               : DeriveSigningKey(secret, credentials.scope);
      return ConstantTimeEquals(SignString(key, credentials.policy), credentials.signature);
    }
    case PostAuthKind::kV2:
      return ConstantTimeEquals(HmacSha1Base64(secret, credentials.policy), credentials.signature);
    case PostAuthKind::kAnonymous:
      break;
  }
  return false;
}

namespace {

std::optional<PostError> ParseCondition(const json& item, PolicyCondition* condition) {
  if (item.is_object()) {
    if (item.size() != 1) {
      return InvalidPolicy(
          "Invalid Simple-Condition: Simple-Conditions must have exactly one property "
          "specified.");
    }
    auto entry = item.begin();
    std::optional<std::string> value = StringOperand(entry.value());
    if (!value) {
      return InvalidPolicy("Invalid Simple-Condition: the value of '" + entry.key().substr(0, 64) +
                           "' must be a string.");
    }
    condition->kind = PolicyCondition::Kind::kEq;
    condition->field = ToLowerAscii(entry.key());
    condition->value = *value;
    condition->text = ConditionText("eq", entry.key(), *value);
    return std::nullopt;
  }
  if (!item.is_array()) {
    return InvalidPolicy("Invalid Condition: a condition must be an object or a list.");
  }
  if (item.empty() || !item[0].is_string()) {
    return InvalidPolicy("Invalid Condition: a condition list must start with its operation.");
  }
  const std::string operation = ToLowerAscii(item[0].get<std::string>());
  if (operation == "content-length-range") {
    std::optional<uint64_t> min, max;
    if (item.size() == 3) {
      min = SizeOperand(item[1]);
      max = SizeOperand(item[2]);
    }
    if (!min || !max) {
      return InvalidPolicy(
          "Invalid content-length-range: it needs two integers, 0 <= minimum and maximum.");
    }
    condition->kind = PolicyCondition::Kind::kContentLengthRange;
    condition->min = *min;
    condition->max = *max;
    condition->text =
        "[\"content-length-range\", " + std::to_string(*min) + ", " + std::to_string(*max) + "]";
    return std::nullopt;
  }
  if (operation != "eq" && operation != "starts-with") {
    return InvalidPolicy("Invalid Condition: unknown operation '" +
                         item[0].get<std::string>().substr(0, 64) + "'.");
  }
  if (item.size() != 3 || !item[1].is_string()) {
    return InvalidPolicy("Invalid Condition: '" + operation +
                         "' needs exactly a field name and a value.");
  }
  const std::string field = item[1].get<std::string>();
  std::optional<std::string> value = StringOperand(item[2]);
  if (field.size() < 2 || field[0] != '$' || !value) {
    return InvalidPolicy("Invalid Condition: '" + operation +
                         "' needs a field name starting with '$' and a string value.");
  }
  condition->kind =
      operation == "eq" ? PolicyCondition::Kind::kEq : PolicyCondition::Kind::kStartsWith;
  condition->field = ToLowerAscii(std::string_view(field).substr(1));
  condition->value = *value;
  condition->text = ConditionText(operation, std::string_view(field).substr(1), *value);
  return std::nullopt;
}

}  // namespace

std::optional<PostError> ParsePostPolicy(std::string_view base64_policy, PostPolicy* policy) {
  *policy = PostPolicy();
  // Some encoders wrap Base64 lines; the signature covers the field as sent either way.
  std::string compact;
  for (char c : base64_policy) {
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') compact.push_back(c);
  }
  auto decoded = Base64Decode(compact);
  if (!decoded.ok()) return InvalidPolicy("the policy is not valid Base64.");
  json document = json::parse(*decoded, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) return InvalidPolicy("Invalid JSON.");
  auto expiration = document.find("expiration");
  if (expiration == document.end()) return InvalidPolicy("Policy missing expiration.");
  std::optional<TimestampMs> expires;
  if (expiration->is_string()) expires = ParseExpiration(expiration->get<std::string>());
  if (!expires) {
    std::string shown =
        expiration->is_string() ? expiration->get<std::string>() : expiration->dump();
    return InvalidPolicy("Invalid 'expiration' value: '" + shown.substr(0, 64) + "'");
  }
  policy->expiration_ms = *expires;
  auto conditions = document.find("conditions");
  if (conditions == document.end()) return InvalidPolicy("Policy missing conditions.");
  if (!conditions->is_array()) return InvalidPolicy("Invalid 'conditions' value: must be a List.");
  for (const json& item : *conditions) {
    PolicyCondition condition;
    if (auto error = ParseCondition(item, &condition)) return error;
    if (condition.kind == PolicyCondition::Kind::kContentLengthRange) {
      policy->min_size = std::max(policy->min_size.value_or(0), condition.min);
      policy->max_size = std::min(policy->max_size.value_or(condition.max), condition.max);
    }
    policy->conditions.push_back(std::move(condition));
  }
  return std::nullopt;
}

bool IsExemptFromPolicy(std::string_view lower_name) {
  return lower_name == "policy" || lower_name == "x-amz-signature" || lower_name == "signature" ||
         lower_name == "awsaccesskeyid" || lower_name == "file" ||
         lower_name.rfind("x-ignore-", 0) == 0 || lower_name.rfind("x-amz-checksum-", 0) == 0;
}

std::optional<PostError> CheckPostPolicy(const PostPolicy& policy, const FormValues& values,
                                         std::string_view bucket, TimestampMs now_ms) {
  if (policy.expiration_ms <= now_ms) return PolicyDenied("Policy expired.");
  std::set<std::string> named;
  for (const PolicyCondition& condition : policy.conditions) {
    if (condition.kind == PolicyCondition::Kind::kContentLengthRange) continue;
    named.insert(condition.field);
    std::string value;
    if (condition.field == "bucket") {
      value = std::string(bucket);
    } else if (const std::string* found = Find(values, condition.field)) {
      value = *found;
    }
    const bool holds = condition.kind == PolicyCondition::Kind::kEq
                           ? value == condition.value
                           : value.compare(0, condition.value.size(), condition.value) == 0;
    if (!holds) return PolicyDenied("Policy Condition failed: " + condition.text);
  }
  for (const auto& entry : values) {
    if (IsExemptFromPolicy(entry.first) || named.count(entry.first) > 0) continue;
    return PolicyDenied("Extra input fields: " + entry.first.substr(0, 128));
  }
  return std::nullopt;
}

std::optional<PostError> CheckFileSize(const PostPolicy& policy, uint64_t size, bool complete) {
  if (policy.max_size && size > *policy.max_size) {
    return MakeError(400, "EntityTooLarge",
                     "Your proposed upload exceeds the maximum allowed size (" +
                         std::to_string(*policy.max_size) +
                         " bytes by the policy's "
                         "content-length-range)");
  }
  if (complete && policy.min_size && size < *policy.min_size) {
    return MakeError(400, "EntityTooSmall",
                     "Your proposed upload is smaller than the minimum allowed size (" +
                         std::to_string(*policy.min_size) +
                         " bytes by the policy's "
                         "content-length-range)");
  }
  return std::nullopt;
}

int SuccessStatus(const FormValues& values) {
  const std::string* status = Find(values, "success_action_status");
  if (status != nullptr && (*status == "200" || *status == "201")) return std::stoi(*status);
  return 204;
}

std::optional<std::string> SuccessRedirect(const FormValues& values, std::string_view bucket,
                                           std::string_view key, std::string_view etag) {
  const std::string* url = Find(values, "success_action_redirect");
  if (url == nullptr || url->empty()) url = Find(values, "redirect");
  if (url == nullptr) return std::nullopt;
  const std::string lower = ToLowerAscii(url->substr(0, 8));
  if (lower.rfind("http://", 0) != 0 && lower.rfind("https://", 0) != 0) return std::nullopt;
  for (char c : *url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x21 || byte == 0x7f) return std::nullopt;  // not sendable as a header
  }
  std::string location = *url;
  std::string fragment;
  if (size_t hash = location.find('#'); hash != std::string::npos) {
    fragment = location.substr(hash);
    location.resize(hash);
  }
  location += location.find('?') == std::string::npos ? '?' : '&';
  location += "bucket=" + UriEncode(bucket, true) + "&key=" + UriEncode(key, true) +
              "&etag=" + UriEncode("\"" + std::string(etag) + "\"", true);
  return location + fragment;
}

std::string RenderPostResponse(std::string_view location, std::string_view bucket,
                               std::string_view key, std::string_view etag) {
  auto escape = [](std::string_view text) {
    return EscapeXmlText(text, {.control = XmlTextOptions::Control::kReference});
  };
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>" + escape(location) +
         "</Location><Bucket>" + escape(bucket) + "</Bucket><Key>" + escape(key) + "</Key><ETag>" +
         escape("\"" + std::string(etag) + "\"") + "</ETag></PostResponse>";
}

}  // namespace cairn::api::s3::post
