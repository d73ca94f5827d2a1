// The commit step both APIs share for an upload whose body has been read.
#pragma once

#include <memory>

#include "core/status.h"
#include "http/blocking_pool.h"
#include "http/exchange.h"
#include "objects/object_service.h"

namespace cairn::api {

// Commits `upload`. One still in memory (a small object) goes to the metadata store's
// asynchronous group commit when the store has one: the request's coroutine is resumed
// on its own event loop once the object is durable, and no worker thread waits for the
// fsync. Otherwise (large objects, engines without it, a full queue) Commit runs on
// `pool`. Either way nothing is reported before the commit is durable.
http::Awaitable<Result<meta::CommitResult>> CommitUpload(http::BlockingPool* pool,
                                                         std::shared_ptr<objects::Upload> upload);

}  // namespace cairn::api
