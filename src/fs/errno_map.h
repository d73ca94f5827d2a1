// The one place a filesystem Status becomes an errno (for the FUSE edge): its reason
// first, then its code.
#pragma once

#include "core/status.h"

namespace cairn::fs {

// 0 for OK; otherwise a positive errno value.
int ErrnoFor(const Status& status);

}  // namespace cairn::fs
