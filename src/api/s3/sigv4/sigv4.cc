#include "api/s3/sigv4/sigv4.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "api/s3/sigv4/checksum.h"
#include "api/s3/sigv4/sigv2.h"
#include "core/hashing.h"
#include "core/text.h"

namespace cairn::api::s3 {
namespace {

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kScopeTerminator = "aws4_request";
constexpr std::string_view kSignatureMismatchMessage =
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.";

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool IsDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<int64_t> ParseSmallNumber(std::string_view text) {
  if (!IsDigits(text) || text.size() > 18) return std::nullopt;
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// Validates a broken-down UTC time by round-tripping it through timegm/gmtime_r, which
// rejects 31 April, 29 February 2023 and friends.
Result<TimestampMs> FromUtcFields(int year, int month, int day, int hour, int minute, int second) {
  if (year < 1970 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
      minute > 59 || second > 59) {
    return InvalidArgumentError("date field out of range");
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  time_t seconds = timegm(&tm);
  std::tm check{};
  gmtime_r(&seconds, &check);
  if (check.tm_mday != day || check.tm_mon != month - 1) {
    return InvalidArgumentError("date does not exist");
  }
  return static_cast<TimestampMs>(seconds) * 1000;
}

int Digits(std::string_view text) {
  int value = 0;
  for (char c : text) value = value * 10 + (c - '0');
  return value;
}

bool ValidScopeDate(std::string_view date) {
  if (date.size() != 8 || !IsDigits(date)) return false;
  return FromUtcFields(Digits(date.substr(0, 4)), Digits(date.substr(4, 2)),
                       Digits(date.substr(6, 2)), 0, 0, 0)
      .ok();
}

bool ValidRegion(std::string_view region) {
  return !region.empty() && region.size() <= 64 &&
         std::all_of(region.begin(), region.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
         });
}

bool ValidService(std::string_view service) {
  return !service.empty() && service.size() <= 64 &&
         std::all_of(service.begin(), service.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                  c == '_';
         });
}

bool ValidAccessKey(std::string_view key) {
  return !key.empty() && key.size() <= 128 && std::all_of(key.begin(), key.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != ',' && c != ';' && c != '=';
  });
}

// RFC 9110 token characters: the only ones a header name can hold.
bool ValidHeaderName(std::string_view name) {
  return !name.empty() && name.size() <= 256 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool Contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::vector<std::string_view> HeaderValues(const SigningRequest& request, std::string_view name) {
  std::vector<std::string_view> values;
  for (const auto& [header, value] : request.headers) {
    if (EqualsIgnoreCaseAscii(header, name)) values.push_back(value);
  }
  return values;
}

SigV4Result<std::optional<std::string>> SingleHeader(const SigningRequest& request,
                                                     std::string_view name) {
  auto values = HeaderValues(request, name);
  if (values.size() > 1) {
    return SigV4Status(SigV4Error::kInvalidArgument,
                       "the " + std::string(name) + " header appears more than once");
  }
  if (values.empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::string(TrimAscii(values[0], kAsciiWhitespace)));
}

SigV4Status CredentialLookupFailure(const Status& status) {
  switch (status.code()) {
    case StatusCode::kNotFound:
      return SigV4Status(SigV4Error::kInvalidAccessKeyId,
                         "The AWS access key Id you provided does not exist in our records.");
    case StatusCode::kUnavailable:
      return SigV4Status(SigV4Error::kServiceUnavailable,
                         "the credential store is unavailable; retry later");
    default:
      return SigV4Status(SigV4Error::kInternalError, "credential lookup failed");
  }
}

// ---- Errors ----------------------------------------------------------------------------

std::string_view SigV4ErrorCode(SigV4Error error) {
  switch (error) {
    case SigV4Error::kNone:
      return "";
    case SigV4Error::kAccessDenied:
      return "AccessDenied";
    case SigV4Error::kAuthorizationHeaderMalformed:
      return "AuthorizationHeaderMalformed";
    case SigV4Error::kAuthorizationQueryParametersError:
      return "AuthorizationQueryParametersError";
    case SigV4Error::kBadDigest:
      return "BadDigest";
    case SigV4Error::kIncompleteBody:
      return "IncompleteBody";
    case SigV4Error::kInternalError:
      return "InternalError";
    case SigV4Error::kInvalidAccessKeyId:
      return "InvalidAccessKeyId";
    case SigV4Error::kInvalidArgument:
      return "InvalidArgument";
    case SigV4Error::kInvalidRequest:
      return "InvalidRequest";
    case SigV4Error::kInvalidURI:
      return "InvalidURI";
    case SigV4Error::kMalformedTrailerError:
      return "MalformedTrailerError";
    case SigV4Error::kMissingContentLength:
      return "MissingContentLength";
    case SigV4Error::kMissingSecurityHeader:
      return "MissingSecurityHeader";
    case SigV4Error::kRequestTimeTooSkewed:
      return "RequestTimeTooSkewed";
    case SigV4Error::kServiceUnavailable:
      return "ServiceUnavailable";
    case SigV4Error::kSignatureDoesNotMatch:
      return "SignatureDoesNotMatch";
    case SigV4Error::kXAmzContentSHA256Mismatch:
      return "XAmzContentSHA256Mismatch";
  }
  return "InternalError";
}

int SigV4ErrorHttpStatus(SigV4Error error) {
  switch (error) {
    case SigV4Error::kNone:
      return 200;
    case SigV4Error::kAccessDenied:
    case SigV4Error::kInvalidAccessKeyId:
    case SigV4Error::kRequestTimeTooSkewed:
    case SigV4Error::kSignatureDoesNotMatch:
      return 403;
    case SigV4Error::kMissingContentLength:
      return 411;
    case SigV4Error::kInternalError:
      return 500;
    case SigV4Error::kServiceUnavailable:
      return 503;
    default:
      return 400;
  }
}

StatusCode SigV4ErrorStatusCode(SigV4Error error) {
  switch (error) {
    case SigV4Error::kNone:
      return StatusCode::kOk;
    case SigV4Error::kInvalidAccessKeyId:
    case SigV4Error::kRequestTimeTooSkewed:
    case SigV4Error::kSignatureDoesNotMatch:
      return StatusCode::kUnauthenticated;
    case SigV4Error::kAccessDenied:
      return StatusCode::kPermissionDenied;
    case SigV4Error::kInternalError:
      return StatusCode::kInternal;
    case SigV4Error::kServiceUnavailable:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInvalidArgument;
  }
}

Status SigV4Status::ToStatus() const {
  if (ok()) return OkStatus();
  return Status(SigV4ErrorStatusCode(error_), std::string(s3_code()) + ": " + message_);
}

// ---- Canonicalization ----------------------------------------------------------------

std::string UriEncode(std::string_view text, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3 / 2);
  for (unsigned char c : text) {
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

Result<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    int hi = i + 2 < text.size() ? HexDigitValue(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? HexDigitValue(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("bad percent escape at offset " + std::to_string(i) + " of " +
                                  QuoteForMessage(text));
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Result<QueryPairs> ParseRawQuery(std::string_view raw) {
  QueryPairs pairs;
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view piece = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    std::string name(piece.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1));
    std::replace(name.begin(), name.end(), '+', ' ');
    std::replace(value.begin(), value.end(), '+', ' ');
    ASSIGN_OR_RETURN(std::string decoded_name, PercentDecode(name));
    ASSIGN_OR_RETURN(std::string decoded_value, PercentDecode(value));
    pairs.emplace_back(std::move(decoded_name), std::move(decoded_value));
  }
  return pairs;
}

std::string EncodeQuery(const QueryPairs& pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out.push_back('&');
    out += UriEncode(name, true);
    out.push_back('=');
    out += UriEncode(value, true);
  }
  return out;
}

Result<std::string> CanonicalUri(std::string_view raw_path) {
  if (raw_path.empty()) return std::string("/");
  std::string out;
  out.reserve(raw_path.size() + 8);
  size_t start = 0;
  while (true) {
    size_t slash = raw_path.find('/', start);
    std::string_view segment = raw_path.substr(start, slash - start);
    auto decoded = PercentDecode(segment);
    if (!decoded.ok()) return InvalidArgumentError("request path: " + decoded.status().message());
    out += UriEncode(*decoded, true);
    if (slash == std::string_view::npos) break;
    out.push_back('/');
    start = slash + 1;
  }
  if (out.front() != '/') out.insert(out.begin(), '/');
  return out;
}

std::string CanonicalQueryString(const QueryPairs& query, bool exclude_signature) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    if (exclude_signature && name == "X-Amz-Signature") continue;
    encoded.emplace_back(UriEncode(name, true), UriEncode(value, true));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::string CanonicalHeaderValue(std::string_view value) {
  value = TrimAscii(value, kAsciiWhitespace);
  std::string out;
  out.reserve(value.size());
  bool in_space = false;
  for (char c : value) {
    if (IsAsciiWhitespace(c)) {
      in_space = true;
      continue;
    }
    if (in_space) out.push_back(' ');
    in_space = false;
    out.push_back(c);
  }
  return out;
}

SigV4Result<std::string> CanonicalHeaders(const SigningRequest& request,
                                          const std::vector<std::string>& signed_headers) {
  std::string out;
  for (const std::string& name : signed_headers) {
    auto values = HeaderValues(request, name);
    if (values.empty()) {
      return SigV4Status(SigV4Error::kSignatureDoesNotMatch,
                         "signed header " + QuoteForMessage(name) + " is not in the request");
    }
    out += name;
    out.push_back(':');
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out.push_back(',');
      out += CanonicalHeaderValue(values[i]);
    }
    out.push_back('\n');
  }
  return out;
}

std::string JoinSignedHeaders(const std::vector<std::string>& signed_headers) {
  std::string out;
  for (const std::string& name : signed_headers) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string CredentialScope::ToString() const {
  return date + "/" + region + "/" + service + "/" + std::string(kScopeTerminator);
}

SigV4Result<std::string> CanonicalRequest(const SigningRequest& request,
                                          const std::vector<std::string>& signed_headers,
                                          std::string_view payload_hash, bool presigned) {
  auto uri = CanonicalUri(request.raw_path);
  if (!uri.ok()) return SigV4Status(SigV4Error::kInvalidURI, uri.status().message());
  auto headers = CanonicalHeaders(request, signed_headers);
  if (!headers.ok()) return headers.status();
  std::string out;
  out.reserve(256 + uri->size() + headers->size());
  out += request.method;
  out.push_back('\n');
  out += *uri;
  out.push_back('\n');
  out += CanonicalQueryString(request.query, presigned);
  out.push_back('\n');
  out += headers.value();
  out.push_back('\n');
  out += JoinSignedHeaders(signed_headers);
  out.push_back('\n');
  out += payload_hash;
  return out;
}

std::string StringToSign(std::string_view amz_date, const CredentialScope& scope,
                         std::string_view canonical_request) {
  std::string out(kSigV4Algorithm);
  out.push_back('\n');
  out += amz_date;
  out.push_back('\n');
  out += scope.ToString();
  out.push_back('\n');
  out += Sha256Of(canonical_request).ToHex();
  return out;
}

std::string DeriveSigningKey(std::string_view secret, const CredentialScope& scope) {
  std::string key = "AWS4";
  key += secret;
  std::string k_date = HmacSha256(key, scope.date);
  std::string k_region = HmacSha256(k_date, scope.region);
  std::string k_service = HmacSha256(k_region, scope.service);
  return HmacSha256(k_service, kScopeTerminator);
}

std::string SignString(std::string_view signing_key, std::string_view string_to_sign) {
  return HexEncode(HmacSha256(signing_key, string_to_sign));
}

struct SigningKeyCache::State {
  size_t capacity;
  mutable std::mutex mu;
  std::unordered_map<std::string, std::string> keys;  // guarded by mu
  std::atomic<uint64_t> hits{0};
};

SigningKeyCache::SigningKeyCache(size_t capacity) : state_(std::make_unique<State>()) {
  state_->capacity = std::max<size_t>(capacity, 1);
}
SigningKeyCache::~SigningKeyCache() = default;

std::string SigningKeyCache::Get(std::string_view secret, const CredentialScope& scope) {
  // The map key holds a hash of the secret, never the secret itself; the fields are
  // length-prefixed so no two scopes can collide.
  Digest secret_hash = Sha256Of(secret);
  std::string cache_key(reinterpret_cast<const char*>(secret_hash.bytes.data()),
                        secret_hash.bytes.size());
  for (const std::string* field : {&scope.date, &scope.region, &scope.service}) {
    cache_key += std::to_string(field->size());
    cache_key.push_back(':');
    cache_key += *field;
  }
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->keys.find(cache_key);
    if (it != state_->keys.end()) {
      state_->hits.fetch_add(1, std::memory_order_relaxed);
      return it->second;
    }
  }
  std::string key = DeriveSigningKey(secret, scope);
  std::lock_guard<std::mutex> lock(state_->mu);
  // Keys roll over daily; starting over when full is simpler than LRU and just as good.
  if (state_->keys.size() >= state_->capacity) state_->keys.clear();
  state_->keys.emplace(std::move(cache_key), key);
  return key;
}

size_t SigningKeyCache::size() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->keys.size();
}

uint64_t SigningKeyCache::hits() const { return state_->hits.load(std::memory_order_relaxed); }

// ---- Time ------------------------------------------------------------------------------

std::string FormatAmzDate(TimestampMs ms) {
  time_t seconds = static_cast<time_t>(ms / 1000);
  if (ms < 0 && ms % 1000 != 0) --seconds;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

Result<TimestampMs> ParseAmzDate(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z' || !IsDigits(text.substr(0, 8)) ||
      !IsDigits(text.substr(9, 6))) {
    return InvalidArgumentError("date " + QuoteForMessage(text) +
                                " is not in the form YYYYMMDDTHHMMSSZ");
  }
  auto ms = FromUtcFields(Digits(text.substr(0, 4)), Digits(text.substr(4, 2)),
                          Digits(text.substr(6, 2)), Digits(text.substr(9, 2)),
                          Digits(text.substr(11, 2)), Digits(text.substr(13, 2)));
  if (!ms.ok())
    return InvalidArgumentError("date " + QuoteForMessage(text) + " is not a valid time");
  return ms;
}

Result<TimestampMs> ParseHttpDate(std::string_view text) {
  static constexpr std::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto bad = [&] {
    return InvalidArgumentError("date " + QuoteForMessage(text) +
                                " is not an HTTP date like 'Fri, 24 May 2013 00:00:00 GMT'");
  };
  // "Fri, 24 May 2013 00:00:00 GMT"; RFC 2822's "+0000"/"-0000" zone (which Python's
  // email.utils.formatdate, and so botocore, writes) means the same.
  std::string_view zone = text.size() > 25 ? text.substr(25) : std::string_view();
  if (zone != " GMT" && zone != " +0000" && zone != " -0000") return bad();
  if (text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' || text[16] != ' ' ||
      text[19] != ':' || text[22] != ':') {
    return bad();
  }
  if (std::find(std::begin(kDays), std::end(kDays), text.substr(0, 3)) == std::end(kDays)) {
    return bad();
  }
  auto month = std::find(std::begin(kMonths), std::end(kMonths), text.substr(8, 3));
  if (month == std::end(kMonths)) return bad();
  std::string_view day = text.substr(5, 2), year = text.substr(12, 4), hour = text.substr(17, 2),
                   minute = text.substr(20, 2), second = text.substr(23, 2);
  for (std::string_view field : {day, year, hour, minute, second}) {
    if (!IsDigits(field)) return bad();
  }
  auto ms = FromUtcFields(Digits(year), static_cast<int>(month - std::begin(kMonths)) + 1,
                          Digits(day), Digits(hour), Digits(minute), Digits(second));
  if (!ms.ok()) return bad();
  return ms;
}

// ---- Parsing ---------------------------------------------------------------------------

SigV4Result<Credential> ParseCredential(std::string_view text, SigV4Error error) {
  // Split from the right: the scope has exactly four parts; the rest is the key id.
  std::string_view parts[4];
  std::string_view rest = text;
  for (int i = 3; i >= 0; --i) {
    size_t slash = rest.rfind('/');
    if (slash == std::string_view::npos) {
      return SigV4Status(error, "credential " + QuoteForMessage(text) +
                                    " is not <access key>/<YYYYMMDD>/<region>/<service>/"
                                    "aws4_request");
    }
    parts[i] = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  Credential credential;
  if (!ValidAccessKey(rest)) {
    return SigV4Status(error, "credential has an empty or malformed access key id");
  }
  if (!ValidScopeDate(parts[0])) {
    return SigV4Status(error,
                       "credential date " + QuoteForMessage(parts[0]) + " is not a YYYYMMDD date");
  }
  if (!ValidRegion(parts[1])) {
    return SigV4Status(error, "credential region " + QuoteForMessage(parts[1]) + " is malformed");
  }
  if (!ValidService(parts[2])) {
    return SigV4Status(error, "credential service " + QuoteForMessage(parts[2]) + " is malformed");
  }
  if (parts[3] != kScopeTerminator) {
    return SigV4Status(
        error, "credential scope must end with aws4_request, not " + QuoteForMessage(parts[3]));
  }
  credential.access_key = std::string(rest);
  credential.scope = {std::string(parts[0]), std::string(parts[1]), std::string(parts[2])};
  return credential;
}

SigV4Result<std::vector<std::string>> ParseSignedHeaders(std::string_view text, SigV4Error error) {
  std::vector<std::string> names;
  if (text.empty()) return SigV4Status(error, "SignedHeaders is empty");
  size_t start = 0;
  while (true) {
    size_t semi = text.find(';', start);
    std::string_view name = text.substr(start, semi - start);
    if (!ValidHeaderName(name)) {
      return SigV4Status(error, "SignedHeaders entry " + QuoteForMessage(name) +
                                    " is not a lower-case header name");
    }
    if (!names.empty() && !(names.back() < name)) {
      return SigV4Status(error, "SignedHeaders must be sorted and unique; " +
                                    QuoteForMessage(name) + " follows " +
                                    QuoteForMessage(names.back()));
    }
    names.emplace_back(name);
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  return names;
}

SigV4Result<ParsedAuthorization> ParseAuthorization(std::string_view header) {
  constexpr SigV4Error kMalformed = SigV4Error::kAuthorizationHeaderMalformed;
  header = TrimAscii(header, kAsciiWhitespace);
  size_t space = header.find(' ');
  std::string_view algorithm = header.substr(0, space);
  if (algorithm != kSigV4Algorithm) {
    return SigV4Status(kMalformed, "unsupported authorization algorithm " +
                                       QuoteForMessage(algorithm) + "; expected AWS4-HMAC-SHA256");
  }
  if (space == std::string_view::npos) {
    return SigV4Status(kMalformed,
                       "Authorization header has no Credential, SignedHeaders "
                       "or Signature");
  }
  std::string_view rest = header.substr(space + 1);
  std::optional<std::string_view> credential, signed_headers, signature;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view field = TrimAscii(rest.substr(0, comma), kAsciiWhitespace);
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) {
      return SigV4Status(kMalformed, "Authorization field " + QuoteForMessage(field.substr(0, 32)) +
                                         " is not name=value");
    }
    std::string_view name = field.substr(0, eq), value = field.substr(eq + 1);
    std::optional<std::string_view>* slot = nullptr;
    if (name == "Credential") {
      slot = &credential;
    } else if (name == "SignedHeaders") {
      slot = &signed_headers;
    } else if (name == "Signature") {
      slot = &signature;
    } else {
      return SigV4Status(kMalformed, "unknown Authorization field " + QuoteForMessage(name));
    }
    if (slot->has_value()) {
      return SigV4Status(kMalformed,
                         "Authorization field " + std::string(name) + " appears more than once");
    }
    *slot = value;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!credential || !signed_headers || !signature) {
    std::string missing = !credential       ? "Credential"
                          : !signed_headers ? "SignedHeaders"
                                            : "Signature";
    return SigV4Status(kMalformed, "Authorization header is missing " + missing);
  }
  ParsedAuthorization parsed;
  auto parsed_credential = ParseCredential(*credential, kMalformed);
  if (!parsed_credential.ok()) return parsed_credential.status();
  parsed.credential = std::move(parsed_credential).value();
  auto parsed_headers = ParseSignedHeaders(*signed_headers, kMalformed);
  if (!parsed_headers.ok()) return parsed_headers.status();
  parsed.signed_headers = std::move(parsed_headers).value();
  if (!IsLowerHex(*signature, 64)) {
    return SigV4Status(kMalformed, "Signature must be 64 lower-case hex characters (got " +
                                       std::to_string(signature->size()) + " characters)");
  }
  parsed.signature = std::string(*signature);
  return parsed;
}

SigV4Result<PresignedParameters> ParsePresignedQuery(const QueryPairs& query) {
  constexpr SigV4Error kQueryError = SigV4Error::kAuthorizationQueryParametersError;
  static constexpr std::string_view kNames[] = {
      "X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",          "X-Amz-Expires",
      "X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Security-Token"};
  std::optional<std::string_view> values[std::size(kNames)];
  for (const auto& [name, value] : query) {
    for (size_t i = 0; i < std::size(kNames); ++i) {
      if (name != kNames[i]) continue;
      if (values[i].has_value()) {
        return SigV4Status(kQueryError, std::string(kNames[i]) + " appears more than once");
      }
      values[i] = value;
    }
  }
  for (size_t i = 0; i + 1 < std::size(kNames); ++i) {
    if (!values[i].has_value()) {
      return SigV4Status(kQueryError,
                         "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                         "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                         "and X-Amz-Expires parameters; " +
                             std::string(kNames[i]) + " is missing");
    }
  }
  if (*values[0] != kSigV4Algorithm) {
    return SigV4Status(kQueryError, "X-Amz-Algorithm only supports AWS4-HMAC-SHA256, not " +
                                        QuoteForMessage(*values[0]));
  }
  PresignedParameters params;
  auto credential = ParseCredential(*values[1], kQueryError);
  if (!credential.ok()) return credential.status();
  params.credential = std::move(credential).value();
  auto date = ParseAmzDate(*values[2]);
  if (!date.ok()) return SigV4Status(kQueryError, "X-Amz-Date: " + date.status().message());
  params.amz_date = std::string(*values[2]);
  params.date_ms = *date;
  auto expires = ParseSmallNumber(*values[3]);
  if (!expires || *expires < 1 || *expires > kMaxPresignExpiresSeconds) {
    return SigV4Status(kQueryError,
                       "X-Amz-Expires must be a number of seconds from 1 to "
                       "604800, not " +
                           QuoteForMessage(*values[3]));
  }
  params.expires_seconds = *expires;
  auto signed_headers = ParseSignedHeaders(*values[4], kQueryError);
  if (!signed_headers.ok()) return signed_headers.status();
  params.signed_headers = std::move(signed_headers).value();
  if (!IsLowerHex(*values[5], 64)) {
    return SigV4Status(kQueryError, "X-Amz-Signature must be 64 lower-case hex characters (got " +
                                        std::to_string(values[5]->size()) + " characters)");
  }
  params.signature = std::string(*values[5]);
  if (values[6].has_value()) params.security_token = std::string(*values[6]);
  return params;
}

// ---- Verification ----------------------------------------------------------------------

SigV4Result<AuthKind> DetectAuthKind(const SigningRequest& request) {
  auto authorization = HeaderValues(request, "authorization");
  bool presigned = false, v2_query = false;
  for (const auto& [name, value] : request.query) {
    if (name == "X-Amz-Algorithm" || name == "X-Amz-Credential" || name == "X-Amz-Signature") {
      presigned = true;
    }
    if (name == "AWSAccessKeyId" || name == "Signature") v2_query = true;
  }
  if (!authorization.empty() && (presigned || v2_query)) {
    return SigV4Status(SigV4Error::kInvalidArgument,
                       "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                       "parameter, Signature query string parameter or the Authorization "
                       "header should be specified");
  }
  if (authorization.size() > 1) {
    return SigV4Status(SigV4Error::kAuthorizationHeaderMalformed,
                       "the Authorization header appears more than once");
  }
  if (!authorization.empty()) {
    std::string_view value = TrimAscii(authorization[0], kAsciiWhitespace);
    if (value.substr(0, 4) == "AWS ") return AuthKind::kHeaderV2;
    return AuthKind::kHeader;
  }
  if (presigned) return AuthKind::kPresigned;
  if (v2_query) return AuthKind::kPresignedV2;
  return AuthKind::kAnonymous;
}

std::string_view PayloadModeName(PayloadMode mode) {
  switch (mode) {
    case PayloadMode::kSha256:
      return "sha256";
    case PayloadMode::kUnsigned:
      return kUnsignedPayload;
    case PayloadMode::kStreamingSigned:
      return kStreamingSignedPayload;
    case PayloadMode::kStreamingUnsignedTrailer:
      return kStreamingUnsignedPayloadTrailer;
    case PayloadMode::kStreamingSignedTrailer:
      return kStreamingSignedPayloadTrailer;
  }
  return "unknown";
}

bool IsStreaming(PayloadMode mode) {
  return mode == PayloadMode::kStreamingSigned || mode == PayloadMode::kStreamingSignedTrailer ||
         mode == PayloadMode::kStreamingUnsignedTrailer;
}

SigV4Result<PayloadMode> ParsePayloadMode(std::string_view value) {
  if (IsLowerHex(value, 64)) return PayloadMode::kSha256;
  for (PayloadMode mode :
       {PayloadMode::kUnsigned, PayloadMode::kStreamingSigned,
        PayloadMode::kStreamingUnsignedTrailer, PayloadMode::kStreamingSignedTrailer}) {
    if (value == PayloadModeName(mode)) return mode;
  }
  return SigV4Status(SigV4Error::kInvalidArgument,
                     "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], "
                     "STREAMING-UNSIGNED-PAYLOAD-TRAILER or a lower-case hex SHA-256, not " +
                         QuoteForMessage(value));
}

namespace {

// Fills the payload fields of `verified` from x-amz-content-sha256, x-amz-trailer and
// x-amz-decoded-content-length.
SigV4Status ReadPayloadHeaders(const SigningRequest& request, VerifiedRequest& verified) {
  auto decoded_length = SingleHeader(request, "x-amz-decoded-content-length");
  if (!decoded_length.ok()) return decoded_length.status();
  if (decoded_length.value().has_value()) {
    auto length = ParseSmallNumber(**decoded_length);
    if (!length) {
      return SigV4Status(
          SigV4Error::kInvalidArgument,
          "x-amz-decoded-content-length " + QuoteForMessage(**decoded_length) + " is not a number");
    }
    verified.decoded_content_length = static_cast<uint64_t>(*length);
  }
  if (IsStreaming(verified.payload_mode) && !verified.decoded_content_length) {
    return SigV4Status(SigV4Error::kMissingContentLength,
                       "an aws-chunked upload needs the x-amz-decoded-content-length header");
  }
  auto trailer = SingleHeader(request, "x-amz-trailer");
  if (!trailer.ok()) return trailer.status();
  if (!trailer.value().has_value()) return SigV4Status();
  bool trailer_mode = verified.payload_mode == PayloadMode::kStreamingSignedTrailer ||
                      verified.payload_mode == PayloadMode::kStreamingUnsignedTrailer;
  if (!trailer_mode) {
    return SigV4Status(SigV4Error::kInvalidRequest,
                       "x-amz-trailer needs x-amz-content-sha256 "
                       "STREAMING-UNSIGNED-PAYLOAD-TRAILER or "
                       "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
  }
  std::string_view list = **trailer;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string name = ToLowerAscii(TrimAscii(list.substr(0, comma), kAsciiWhitespace));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name.empty()) continue;
    if (!ChecksumAlgorithmFromHeader(name)) {
      return SigV4Status(SigV4Error::kInvalidRequest,
                         "x-amz-trailer names " + QuoteForMessage(name) +
                             "; only one x-amz-checksum-* trailer is supported");
    }
    verified.trailers.push_back(std::move(name));
  }
  if (verified.trailers.size() > 1) {
    return SigV4Status(SigV4Error::kInvalidRequest,
                       "x-amz-trailer may name only one x-amz-checksum-* trailer");
  }
  return SigV4Status();
}

SigV4Status CheckScope(const CredentialScope& scope, std::string_view amz_date,
                       const VerifyOptions& options, SigV4Error error) {
  if (scope.service != options.service) {
    return SigV4Status(error, "credential scope service " + QuoteForMessage(scope.service) +
                                  " is wrong; expecting " + QuoteForMessage(options.service));
  }
  if (!options.region.empty() && scope.region != options.region) {
    return SigV4Status(error, "the region " + QuoteForMessage(scope.region) +
                                  " is wrong; expecting " + QuoteForMessage(options.region));
  }
  if (scope.date != amz_date.substr(0, 8)) {
    return SigV4Status(error, "credential date " + QuoteForMessage(scope.date) +
                                  " is not the date of the request time " +
                                  QuoteForMessage(amz_date));
  }
  return SigV4Status();
}

}  // namespace

SigV4Result<VerifiedRequest> VerifyRequest(const SigningRequest& request,
                                           const SecretLookup& lookup,
                                           const VerifyOptions& options) {
  auto kind = DetectAuthKind(request);
  if (!kind.ok()) return kind.status();
  if (IsSigV2(kind.value())) return VerifyRequestV2(request, kind.value(), lookup, options);
  VerifiedRequest verified;
  verified.kind = kind.value();
  std::string provided_signature;
  switch (verified.kind) {
    case AuthKind::kAnonymous:
      return SigV4Status(SigV4Error::kAccessDenied,
                         "the request has neither an Authorization header nor presigned "
                         "query parameters");
    case AuthKind::kHeader: {
      auto parsed = ParseAuthorization(HeaderValues(request, "authorization")[0]);
      if (!parsed.ok()) return parsed.status();
      auto amz_date = SingleHeader(request, "x-amz-date");
      if (!amz_date.ok()) return amz_date.status();
      if (amz_date.value().has_value()) {
        auto time = ParseAmzDate(**amz_date);
        if (!time.ok()) {
          return SigV4Status(SigV4Error::kAccessDenied,
                             "AWS authentication requires a valid Date or x-amz-date header: " +
                                 time.status().message());
        }
        verified.amz_date = **amz_date;
        verified.request_time_ms = *time;
      } else {
        auto date = SingleHeader(request, "date");
        if (!date.ok()) return date.status();
        if (!date.value().has_value()) {
          return SigV4Status(SigV4Error::kAccessDenied,
                             "AWS authentication requires a valid Date or x-amz-date header");
        }
        auto time = ParseHttpDate(**date);
        if (!time.ok()) {
          return SigV4Status(SigV4Error::kAccessDenied,
                             "AWS authentication requires a valid Date or x-amz-date header: " +
                                 time.status().message());
        }
        verified.request_time_ms = *time;
        verified.amz_date = FormatAmzDate(*time);
      }
      SigV4Status scope_status = CheckScope(parsed->credential.scope, verified.amz_date, options,
                                            SigV4Error::kAuthorizationHeaderMalformed);
      if (!scope_status.ok()) return scope_status;
      int64_t skew = request.now_ms - verified.request_time_ms;
      if (skew > options.max_skew_ms || -skew > options.max_skew_ms) {
        return SigV4Status(
            SigV4Error::kRequestTimeTooSkewed,
            "The difference between the request time " + QuoteForMessage(verified.amz_date) +
                " and the current time is too large (" + std::to_string(skew / 1000) + " s)");
      }
      if (!Contains(parsed->signed_headers, "host")) {
        return SigV4Status(SigV4Error::kAuthorizationHeaderMalformed,
                           "SignedHeaders must include host");
      }
      auto content_sha256 = SingleHeader(request, "x-amz-content-sha256");
      if (!content_sha256.ok()) return content_sha256.status();
      if (!content_sha256.value().has_value()) {
        return SigV4Status(SigV4Error::kMissingSecurityHeader,
                           "Missing required header for this request: x-amz-content-sha256");
      }
      if (!Contains(parsed->signed_headers, "x-amz-content-sha256")) {
        return SigV4Status(SigV4Error::kAuthorizationHeaderMalformed,
                           "SignedHeaders must include x-amz-content-sha256");
      }
      auto mode = ParsePayloadMode(**content_sha256);
      if (!mode.ok()) return mode.status();
      verified.payload_mode = mode.value();
      verified.payload_sha256 = **content_sha256;
      auto token = SingleHeader(request, "x-amz-security-token");
      if (!token.ok()) return token.status();
      verified.security_token = token.value();
      verified.access_key = parsed->credential.access_key;
      verified.scope = parsed->credential.scope;
      verified.signed_headers = parsed->signed_headers;
      provided_signature = parsed->signature;
      break;
    }
    case AuthKind::kPresigned: {
      auto params = ParsePresignedQuery(request.query);
      if (!params.ok()) return params.status();
      verified.amz_date = params->amz_date;
      verified.request_time_ms = params->date_ms;
      SigV4Status scope_status = CheckScope(params->credential.scope, verified.amz_date, options,
                                            SigV4Error::kAuthorizationQueryParametersError);
      if (!scope_status.ok()) return scope_status;
      if (request.now_ms + options.max_skew_ms < params->date_ms) {
        return SigV4Status(SigV4Error::kAccessDenied, "Request is not valid yet");
      }
      verified.expires_at_ms = params->date_ms + params->expires_seconds * 1000;
      if (request.now_ms > *verified.expires_at_ms) {
        return SigV4Status(SigV4Error::kAccessDenied, "Request has expired");
      }
      if (!Contains(params->signed_headers, "host")) {
        return SigV4Status(SigV4Error::kAuthorizationQueryParametersError,
                           "X-Amz-SignedHeaders must include host");
      }
      // Presigned URLs always sign UNSIGNED-PAYLOAD: the URL is made before the body.
      verified.payload_mode = PayloadMode::kUnsigned;
      verified.payload_sha256 = std::string(kUnsignedPayload);
      verified.security_token = params->security_token;
      verified.access_key = params->credential.access_key;
      verified.scope = params->credential.scope;
      verified.signed_headers = params->signed_headers;
      provided_signature = params->signature;
      break;
    }
    case AuthKind::kHeaderV2:
    case AuthKind::kPresignedV2:
      return SigV4Status(SigV4Error::kInternalError, "a V2 request reached the V4 verifier");
  }
  SigV4Status payload_status = ReadPayloadHeaders(request, verified);
  if (!payload_status.ok()) return payload_status;

  auto secret = lookup(verified.access_key);
  if (!secret.ok()) return CredentialLookupFailure(secret.status());
  verified.signing_key = options.key_cache != nullptr
                             ? options.key_cache->Get(*secret, verified.scope)
                             : DeriveSigningKey(*secret, verified.scope);
  auto canonical = CanonicalRequest(request, verified.signed_headers, verified.payload_sha256,
                                    verified.kind == AuthKind::kPresigned);
  if (!canonical.ok()) return canonical.status();
  std::string expected =
      SignString(verified.signing_key, StringToSign(verified.amz_date, verified.scope, *canonical));
  if (!ConstantTimeEquals(expected, provided_signature)) {
    return SigV4Status(SigV4Error::kSignatureDoesNotMatch, std::string(kSignatureMismatchMessage));
  }
  verified.seed_signature = std::move(expected);
  return verified;
}

SigV4Status CheckPayloadSha256(const VerifiedRequest& request, const Digest& actual) {
  if (request.payload_mode != PayloadMode::kSha256) return SigV4Status();
  if (!ConstantTimeEquals(actual.ToHex(), request.payload_sha256)) {
    return SigV4Status(SigV4Error::kXAmzContentSHA256Mismatch,
                       "The provided 'x-amz-content-sha256' header does not match what was "
                       "computed.");
  }
  return SigV4Status();
}

// ---- Signing ---------------------------------------------------------------------------

namespace {

std::vector<std::string> SortedHeaderNames(const SigningRequest& request) {
  std::vector<std::string> names;
  for (const auto& [name, value] : request.headers) names.push_back(ToLowerAscii(name));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

Status CheckCredentials(const SigningCredentials& credentials) {
  if (!ValidAccessKey(credentials.access_key)) {
    return InvalidArgumentError("signing: malformed access key id");
  }
  if (!ValidRegion(credentials.region) || !ValidService(credentials.service)) {
    return InvalidArgumentError("signing: malformed region or service");
  }
  return OkStatus();
}

}  // namespace

Result<SignedRequest> SignRequest(const SigningRequest& request,
                                  const SigningCredentials& credentials) {
  RETURN_IF_ERROR(CheckCredentials(credentials));
  SignedRequest signed_request;
  std::optional<std::string> amz_date;
  for (const auto& [name, value] : request.headers) {
    if (EqualsIgnoreCaseAscii(name, "x-amz-date")) {
      amz_date = std::string(TrimAscii(value, kAsciiWhitespace));
    }
  }
  if (amz_date) {
    RETURN_IF_ERROR(ParseAmzDate(*amz_date).status());
    signed_request.amz_date = *amz_date;
  } else {
    for (const auto& [name, value] : request.headers) {
      if (EqualsIgnoreCaseAscii(name, "date")) {
        amz_date = std::string(TrimAscii(value, kAsciiWhitespace));
      }
    }
    if (!amz_date) return InvalidArgumentError("signing: the request has no x-amz-date or date");
    ASSIGN_OR_RETURN(TimestampMs time, ParseHttpDate(*amz_date));
    signed_request.amz_date = FormatAmzDate(time);
  }
  std::optional<std::string> payload_hash;
  for (const auto& [name, value] : request.headers) {
    if (EqualsIgnoreCaseAscii(name, "x-amz-content-sha256")) {
      payload_hash = std::string(TrimAscii(value, kAsciiWhitespace));
    }
  }
  if (!payload_hash)
    return InvalidArgumentError("signing: the request has no x-amz-content-sha256");
  std::vector<std::string> names = SortedHeaderNames(request);
  signed_request.scope = {signed_request.amz_date.substr(0, 8), credentials.region,
                          credentials.service};
  auto canonical = CanonicalRequest(request, names, *payload_hash, false);
  if (!canonical.ok()) return InvalidArgumentError("signing: " + canonical.status().message());
  signed_request.signing_key = DeriveSigningKey(credentials.secret_key, signed_request.scope);
  signed_request.signature =
      SignString(signed_request.signing_key,
                 StringToSign(signed_request.amz_date, signed_request.scope, *canonical));
  signed_request.authorization =
      std::string(kSigV4Algorithm) + " Credential=" + credentials.access_key + "/" +
      signed_request.scope.ToString() + ", SignedHeaders=" + JoinSignedHeaders(names) +
      ", Signature=" + signed_request.signature;
  return signed_request;
}

Result<QueryPairs> Presign(const SigningRequest& request, const SigningCredentials& credentials,
                           int64_t expires_seconds) {
  RETURN_IF_ERROR(CheckCredentials(credentials));
  if (expires_seconds < 1 || expires_seconds > kMaxPresignExpiresSeconds) {
    return InvalidArgumentError("presign: expiry must be 1..604800 seconds");
  }
  std::vector<std::string> names = SortedHeaderNames(request);
  if (!Contains(names, "host")) return InvalidArgumentError("presign: the request has no host");
  std::string amz_date = FormatAmzDate(request.now_ms);
  CredentialScope scope{amz_date.substr(0, 8), credentials.region, credentials.service};
  SigningRequest presigned = request;
  presigned.query.emplace_back("X-Amz-Algorithm", std::string(kSigV4Algorithm));
  presigned.query.emplace_back("X-Amz-Credential", credentials.access_key + "/" + scope.ToString());
  presigned.query.emplace_back("X-Amz-Date", amz_date);
  presigned.query.emplace_back("X-Amz-Expires", std::to_string(expires_seconds));
  presigned.query.emplace_back("X-Amz-SignedHeaders", JoinSignedHeaders(names));
  auto canonical = CanonicalRequest(presigned, names, kUnsignedPayload, true);
  if (!canonical.ok()) return InvalidArgumentError("presign: " + canonical.status().message());
  std::string signature = SignString(DeriveSigningKey(credentials.secret_key, scope),
                                     StringToSign(amz_date, scope, *canonical));
  presigned.query.emplace_back("X-Amz-Signature", std::move(signature));
  return std::move(presigned.query);
}

}  // namespace cairn::api::s3
