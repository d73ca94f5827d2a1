// CORS configuration: parsing (after a pre-scan that keeps pugixml's input to plain,
// self-contained UTF-8 XML), rendering, and the rule matching of S3's CORS evaluation.
#include "api/s3/access/cors.h"

#include <algorithm>
#include <charconv>
#include <pugixml.hpp>

#include "api/s3/wire/s3_xml.h"
#include "core/text.h"
#include "core/types.h"

namespace cairn::s3 {
namespace {

constexpr std::string_view kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";
constexpr std::string_view kVary =
    "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";
constexpr std::string_view kMethods[] = {"GET", "PUT", "HEAD", "POST", "DELETE"};

struct ParseFailure {
  CorsParseError kind;
  std::string message;
};

ParseFailure Malformed(std::string why) {
  return {CorsParseError::kMalformedXML,
          "The XML you provided was not well-formed or did not validate against our published "
          "schema: " +
              std::move(why)};
}

ParseFailure InvalidRequest(std::string message) {
  return {CorsParseError::kInvalidRequest, std::move(message)};
}

bool HasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// RFC 9110 token characters: what a header name may hold.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// The text of a leaf element, trimmed; nullopt if it has child elements.
std::optional<std::string> LeafText(const pugi::xml_node& element) {
  std::string text;
  for (const pugi::xml_node& child : element.children()) {
    switch (child.type()) {
      case pugi::node_pcdata:
      case pugi::node_cdata:
        text += child.value();
        break;
      case pugi::node_comment:
        break;
      default:
        return std::nullopt;
    }
  }
  return std::string(TrimAscii(text, kXmlWhitespace));
}

std::optional<ParseFailure> CheckWildcards(std::string_view element, const std::string& value) {
  if (std::count(value.begin(), value.end(), '*') > 1) {
    return InvalidRequest(std::string(element) + " \"" + value +
                          "\" can not have more than one wildcard.");
  }
  return std::nullopt;
}

std::optional<ParseFailure> ParseRule(const pugi::xml_node& node, size_t index, CorsRule* rule) {
  std::string where = "CORSRule " + std::to_string(index) + ": ";
  bool has_id = false;
  for (const pugi::xml_node& child : node.children()) {
    if (child.type() == pugi::node_comment) continue;
    if (child.type() != pugi::node_element) {
      return Malformed(where + "unexpected text inside CORSRule");
    }
    std::string_view name = child.name();
    auto text = LeafText(child);
    if (!text) return Malformed(where + std::string(name) + " must hold text only");
    const std::string& value = *text;
    if (HasControl(value)) {
      return InvalidRequest(where + std::string(name) + " contains a control character");
    }
    if (name == "ID") {
      if (has_id) return Malformed(where + "more than one ID");
      if (value.size() > kMaxCorsRuleIdLength) {
        return Malformed(where + "ID is longer than " + std::to_string(kMaxCorsRuleIdLength) +
                         " characters");
      }
      has_id = true;
      rule->id = value;
    } else if (name == "AllowedMethod") {
      if (std::find(std::begin(kMethods), std::end(kMethods), value) == std::end(kMethods)) {
        return InvalidRequest(
            "Found unsupported HTTP method in CORS config. Unsupported method is " + value);
      }
      rule->allowed_methods.push_back(value);
    } else if (name == "AllowedOrigin") {
      if (value.empty()) return Malformed(where + "empty AllowedOrigin");
      if (auto failure = CheckWildcards("AllowedOrigin", value)) return failure;
      rule->allowed_origins.push_back(value);
    } else if (name == "AllowedHeader") {
      if (value.empty()) return Malformed(where + "empty AllowedHeader");
      if (auto failure = CheckWildcards("AllowedHeader", value)) return failure;
      rule->allowed_headers.push_back(value);
    } else if (name == "ExposeHeader") {
      if (value.empty()) return Malformed(where + "empty ExposeHeader");
      if (value.find('*') != std::string::npos) {
        return InvalidRequest("ExposeHeader \"" + value +
                              "\" contains wildcard. We currently do not support wildcard "
                              "for ExposeHeader.");
      }
      if (!std::all_of(value.begin(), value.end(), IsTokenChar)) {
        return InvalidRequest("ExposeHeader \"" + value + "\" contains invalid character.");
      }
      rule->expose_headers.push_back(value);
    } else if (name == "MaxAgeSeconds") {
      if (rule->max_age_seconds) return Malformed(where + "more than one MaxAgeSeconds");
      int32_t seconds = -1;
      auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
      if (value.empty() || error != std::errc() || end != value.data() + value.size() ||
          seconds < 0) {
        return Malformed(where + "MaxAgeSeconds \"" + value +
                         "\" is not a non-negative integer (at most 2147483647)");
      }
      rule->max_age_seconds = seconds;
    } else {
      return Malformed(where + "unknown element <" + std::string(name) + ">");
    }
  }
  if (rule->allowed_methods.empty()) return Malformed(where + "no AllowedMethod");
  if (rule->allowed_origins.empty()) return Malformed(where + "no AllowedOrigin");
  return std::nullopt;
}

void AppendElement(std::string* out, std::string_view name, std::string_view value) {
  *out += '<';
  *out += name;
  *out += '>';
  AppendXmlText(out, value, {.escape_apostrophe = true});
  *out += "</";
  *out += name;
  *out += '>';
}

// '*' in `pattern` (at most one) matches any run of characters.
bool WildcardMatch(std::string_view pattern, std::string_view text) {
  size_t star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == text;
  std::string_view prefix = pattern.substr(0, star);
  std::string_view suffix = pattern.substr(star + 1);
  return text.size() >= prefix.size() + suffix.size() && text.substr(0, prefix.size()) == prefix &&
         text.substr(text.size() - suffix.size()) == suffix;
}

// The first of the rule's origins that matches, or nullptr.
const std::string* MatchingOrigin(const CorsRule& rule, std::string_view origin) {
  for (const std::string& pattern : rule.allowed_origins) {
    if (WildcardMatch(pattern, origin)) return &pattern;
  }
  return nullptr;
}

bool HeadersAllowed(const CorsRule& rule, const std::vector<std::string>& request_headers) {
  for (const std::string& header : request_headers) {
    std::string lower = ToLowerAscii(header);
    bool allowed = std::any_of(
        rule.allowed_headers.begin(), rule.allowed_headers.end(),
        [&](const std::string& pattern) { return WildcardMatch(ToLowerAscii(pattern), lower); });
    if (!allowed) return false;
  }
  return true;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

CorsHeaders BuildHeaders(const CorsRule& rule, std::string_view origin,
                         const std::vector<std::string>* allow_headers) {
  const std::string* matched = MatchingOrigin(rule, origin);
  bool any_origin = matched != nullptr && *matched == "*";
  CorsHeaders headers;
  headers.emplace_back("Access-Control-Allow-Origin", any_origin ? "*" : std::string(origin));
  headers.emplace_back("Access-Control-Allow-Methods", Join(rule.allowed_methods));
  if (allow_headers != nullptr && !allow_headers->empty()) {
    headers.emplace_back("Access-Control-Allow-Headers", Join(*allow_headers));
  }
  if (!rule.expose_headers.empty()) {
    headers.emplace_back("Access-Control-Expose-Headers", Join(rule.expose_headers));
  }
  if (rule.max_age_seconds) {
    headers.emplace_back("Access-Control-Max-Age", std::to_string(*rule.max_age_seconds));
  }
  if (!any_origin) headers.emplace_back("Access-Control-Allow-Credentials", "true");
  headers.emplace_back("Vary", std::string(kVary));
  return headers;
}

Status CheckPreflightHeaders(std::optional<std::string_view> origin,
                             std::optional<std::string_view> request_method) {
  if (!origin || origin->empty()) {
    return InvalidArgumentError(std::string(kCorsMissingOriginMessage));
  }
  if (!request_method || request_method->empty()) {
    return InvalidArgumentError(std::string(kCorsMissingMethodMessage));
  }
  return OkStatus();
}

}  // namespace

Result<CorsConfiguration> CorsConfiguration::Parse(std::string_view xml, CorsParseError* error) {
  auto fail = [&](ParseFailure failure) -> Status {
    if (error != nullptr) *error = failure.kind;
    if (failure.kind == CorsParseError::kMaxMessageLengthExceeded) {
      return PayloadTooLargeError(std::move(failure.message));
    }
    return InvalidArgumentError(std::move(failure.message));
  };
  if (error != nullptr) *error = CorsParseError::kNone;
  if (xml.size() > kMaxCorsConfigurationBytes) {
    return fail({CorsParseError::kMaxMessageLengthExceeded,
                 "The CORS configuration is " + std::to_string(xml.size()) +
                     " bytes; the limit is " + std::to_string(kMaxCorsConfigurationBytes)});
  }
  if (auto scan = PreScanXml(xml)) {
    return fail({CorsParseError::kMalformedXML, std::move(scan->message)});
  }

  pugi::xml_document document;
  // parse_fragment keeps text outside the root element as nodes (refused below) instead of
  // dropping it.
  pugi::xml_parse_result parsed = document.load_buffer(
      xml.data(), xml.size(), pugi::parse_default | pugi::parse_fragment, pugi::encoding_utf8);
  if (!parsed) {
    return fail(
        Malformed(std::string(parsed.description()) + " at byte " + std::to_string(parsed.offset)));
  }
  pugi::xml_node root;
  for (const pugi::xml_node& node : document.children()) {
    if (node.type() == pugi::node_element) {
      if (root) return fail(Malformed("more than one root element"));
      root = node;
    } else if (node.type() != pugi::node_comment && node.type() != pugi::node_declaration &&
               node.type() != pugi::node_pi) {
      return fail(Malformed("text outside the root element"));
    }
  }
  if (!root) return fail(Malformed("no root element"));
  if (std::string_view(root.name()) != "CORSConfiguration") {
    return fail(Malformed("the root element is <" + std::string(root.name()) +
                          ">, not <CORSConfiguration>"));
  }

  CorsConfiguration configuration;
  for (const pugi::xml_node& node : root.children()) {
    if (node.type() == pugi::node_comment) continue;
    if (node.type() != pugi::node_element || std::string_view(node.name()) != "CORSRule") {
      return fail(Malformed(node.type() == pugi::node_element
                                ? "unknown element <" + std::string(node.name()) + ">"
                                : std::string("unexpected text in CORSConfiguration")));
    }
    if (configuration.rules_.size() == kMaxCorsRules) {
      return fail(Malformed("more than " + std::to_string(kMaxCorsRules) + " CORSRule elements"));
    }
    CorsRule rule;
    if (auto failure = ParseRule(node, configuration.rules_.size(), &rule)) {
      return fail(std::move(*failure));
    }
    configuration.rules_.push_back(std::move(rule));
  }
  if (configuration.rules_.empty()) return fail(Malformed("no CORSRule"));
  return configuration;
}

std::string CorsConfiguration::Render() const {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CORSConfiguration xmlns=\"";
  out += kS3Namespace;
  out += "\">";
  for (const CorsRule& rule : rules_) {
    out += "<CORSRule>";
    if (!rule.id.empty()) AppendElement(&out, "ID", rule.id);
    for (const std::string& header : rule.allowed_headers) {
      AppendElement(&out, "AllowedHeader", header);
    }
    for (const std::string& method : rule.allowed_methods) {
      AppendElement(&out, "AllowedMethod", method);
    }
    for (const std::string& origin : rule.allowed_origins) {
      AppendElement(&out, "AllowedOrigin", origin);
    }
    for (const std::string& header : rule.expose_headers) {
      AppendElement(&out, "ExposeHeader", header);
    }
    if (rule.max_age_seconds) {
      AppendElement(&out, "MaxAgeSeconds", std::to_string(*rule.max_age_seconds));
    }
    out += "</CORSRule>";
  }
  out += "</CORSConfiguration>";
  return out;
}

const CorsRule* CorsConfiguration::Match(std::string_view origin, std::string_view method,
                                         const std::vector<std::string>& request_headers) const {
  for (const CorsRule& rule : rules_) {
    if (MatchingOrigin(rule, origin) == nullptr) continue;
    if (std::find(rule.allowed_methods.begin(), rule.allowed_methods.end(), method) ==
        rule.allowed_methods.end()) {
      continue;
    }
    if (!HeadersAllowed(rule, request_headers)) continue;
    return &rule;
  }
  return nullptr;
}

Result<CorsHeaders> CorsConfiguration::Preflight(
    std::optional<std::string_view> origin, std::optional<std::string_view> request_method,
    std::optional<std::string_view> request_headers) const {
  RETURN_IF_ERROR(CheckPreflightHeaders(origin, request_method));
  std::vector<std::string> headers;
  if (request_headers) headers = SplitRequestHeaders(*request_headers);
  const CorsRule* rule = Match(*origin, *request_method, headers);
  if (rule == nullptr) return PermissionDeniedError(std::string(kCorsNotAllowedMessage));
  return BuildHeaders(*rule, *origin, &headers);
}

CorsHeaders CorsConfiguration::ResponseHeaders(
    std::string_view origin, std::string_view method,
    std::optional<std::string_view> request_method) const {
  if (origin.empty()) return {};
  std::string_view matched_method =
      request_method && !request_method->empty() ? *request_method : method;
  const CorsRule* rule = Match(origin, matched_method, {});
  if (rule == nullptr) return {};
  return BuildHeaders(*rule, origin, nullptr);
}

Status PreflightWithoutConfiguration(std::optional<std::string_view> origin,
                                     std::optional<std::string_view> request_method) {
  RETURN_IF_ERROR(CheckPreflightHeaders(origin, request_method));
  return PermissionDeniedError(std::string(kCorsNotEnabledMessage));
}

std::vector<std::string> SplitRequestHeaders(std::string_view field) {
  std::vector<std::string> headers;
  while (!field.empty()) {
    size_t comma = field.find(',');
    // SP, HTAB, CR and LF, as before (the same set as XML whitespace).
    std::string_view item = TrimAscii(field.substr(0, comma), kXmlWhitespace);
    if (!item.empty()) headers.push_back(ToLowerAscii(item));
    if (comma == std::string_view::npos) break;
    field.remove_prefix(comma + 1);
  }
  return headers;
}

}  // namespace cairn::s3
