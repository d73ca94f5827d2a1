#include "api/common/error_log.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

namespace cairn::api {
namespace {

constexpr std::chrono::seconds kInterval(10);

struct Trail {
  std::chrono::steady_clock::time_point last{};
  unsigned long long suppressed = 0;
};

}  // namespace

void LogServerError(std::string_view api, int status, std::string_view code,
                    std::string_view message) {
  if (status < 500) return;
  static std::mutex mu;
  static std::map<int, Trail> trails;
  const auto now = std::chrono::steady_clock::now();
  unsigned long long suppressed = 0;
  {
    std::lock_guard lock(mu);
    Trail& trail = trails[status];
    if (trail.last != std::chrono::steady_clock::time_point{} && now - trail.last < kInterval) {
      ++trail.suppressed;
      return;
    }
    trail.last = now;
    suppressed = trail.suppressed;
    trail.suppressed = 0;
  }
  std::string line = "cairn: " + std::string(api) + " request failed with " +
                     std::to_string(status) + " " + std::string(code) + ": " + std::string(message);
  if (suppressed > 0) {
    line += " (" + std::to_string(suppressed) + " more " + std::to_string(status) +
            " responses in the last interval not logged)";
  }
  // Messages may quote what a client sent: no control character reaches the log.
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace cairn::api
