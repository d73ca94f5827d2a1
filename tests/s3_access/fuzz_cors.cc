// Fuzz target for CORS configurations. The input is a PutBucketCors body, optionally
// followed by a NUL byte and "origin\nmethod\nrequest-headers". Whatever Parse accepts is
// rendered and parsed again (same rules), then matched against that request.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/s3/access/cors.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

bool SameRules(const cairn::s3::CorsRule& a, const cairn::s3::CorsRule& b) {
  return a.id == b.id && a.allowed_methods == b.allowed_methods &&
         a.allowed_origins == b.allowed_origins && a.allowed_headers == b.allowed_headers &&
         a.expose_headers == b.expose_headers && a.max_age_seconds == b.max_age_seconds;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view body = input.substr(0, nul);
  std::string_view request = nul == std::string_view::npos ? "" : input.substr(nul + 1);

  using namespace cairn::s3;
  CorsParseError kind = CorsParseError::kNone;
  auto configuration = CorsConfiguration::Parse(body, &kind);
  if (!configuration.ok()) {
    Check(kind != CorsParseError::kNone && !configuration.status().message().empty());
    return 0;
  }
  Check(kind == CorsParseError::kNone);
  Check(!configuration->rules().empty() && configuration->rules().size() <= kMaxCorsRules);

  auto again = CorsConfiguration::Parse(configuration->Render());
  Check(again.ok() && again->rules().size() == configuration->rules().size());
  for (size_t i = 0; i < again->rules().size(); ++i) {
    Check(SameRules(again->rules()[i], configuration->rules()[i]));
  }

  std::string_view origin = request.substr(0, request.find('\n'));
  std::string_view rest =
      origin.size() < request.size() ? request.substr(origin.size() + 1) : std::string_view();
  std::string_view method = rest.substr(0, rest.find('\n'));
  std::string_view headers =
      method.size() < rest.size() ? rest.substr(method.size() + 1) : std::string_view();
  auto preflight = configuration->Preflight(origin, method, headers);
  if (preflight.ok()) {
    Check(!preflight->empty() && preflight->front().first == "Access-Control-Allow-Origin");
    for (const auto& [name, value] : *preflight) {
      Check(value.find('\r') == std::string::npos || name == "Access-Control-Allow-Origin" ||
            name == "Access-Control-Allow-Headers");
    }
  }
  configuration->ResponseHeaders(origin, method, std::nullopt);
  return 0;
}
