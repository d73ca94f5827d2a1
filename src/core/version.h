// The release this binary is (cairn --version; a mount's session row; /health).
#pragma once

namespace cairn {

inline constexpr const char* kCairnVersion = "0.1.0";

}  // namespace cairn
