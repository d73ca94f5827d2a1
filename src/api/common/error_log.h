// The log trail of failures that are the server's own (5xx): a disk full, a database that
// cannot commit, damaged data. Each is worth a line, but a full disk fails every write and
// would flood the log; so a line per status at most once per interval, with the count of
// the ones left out since.
#pragma once

#include <string_view>

namespace cairn::api {

// Thread-safe. `api` is "native" or "s3".
void LogServerError(std::string_view api, int status, std::string_view code,
                    std::string_view message);

}  // namespace cairn::api
