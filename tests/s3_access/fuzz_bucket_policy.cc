// Fuzz target for bucket policies. The input is a policy document for bucket "photos",
// optionally followed by a NUL byte and a request value: every condition key of the
// request context then has that value, and it is also the object key requested. Whatever
// Parse accepts is evaluated and checked for IsPublic; nothing may crash or hang.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/s3/access/policy.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view document = input.substr(0, nul);
  std::string value(nul == std::string_view::npos ? "" : input.substr(nul + 1));

  using namespace cairn::s3;
  auto policy = BucketPolicy::Parse(document, "photos");
  if (!policy.ok()) {
    Check(!policy.status().message().empty());
    return 0;
  }
  Check(!policy->statements().empty());
  for (const PolicyStatement& statement : policy->statements()) {
    Check(!statement.principals.empty() && !statement.actions.empty() &&
          !statement.resources.empty());
    Check(!statement.not_principal || statement.effect == PolicyEffect::kDeny);
  }
  policy->IsPublic();

  for (const char* action : {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}) {
    for (bool anonymous : {true, false}) {
      PolicyRequest request;
      request.action = action;
      request.resource = "arn:aws:s3:::photos/" + value;
      if (!anonymous) request.account = value;
      request.user = value;
      if (!value.empty()) {
        request.conditions = [&value](std::string_view) { return std::vector<std::string>{value}; };
      }
      policy->Evaluate(request);
    }
  }
  return 0;
}
