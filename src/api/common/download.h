// The download path both APIs share. An API finds the object, authorizes the caller,
// settles its conditional headers (304, 412) and builds its own response headers; from
// there on a GET or HEAD is the same whatever the API: pick the bytes the Range header
// asks for, then send them.
#pragma once

#include <cstdint>
#include <memory>

#include "core/status.h"
#include "http/blocking_pool.h"
#include "http/exchange.h"
#include "objects/object_service.h"

namespace cairn::api {

// The part of an object a response carries.
struct BodySelection {
  int status = 200;  // 200 (whole object) or 206 (a range)
  uint64_t first = 0;
  uint64_t length = 0;
};

// Applies the request's Range header to an object of `size_bytes`: the whole object
// (200), or one range (206, with its Content-Range appended to `headers`). kOutOfRange
// when the range is well formed but no byte satisfies it: the caller answers 416 with
// "Content-Range: bytes */<size>" in its own error format.
Result<BodySelection> SelectBody(const http::RequestHead& request, uint64_t size_bytes,
                                 http::HeaderList* headers);

// Sends `head` with the selected bytes of the reader's object (status taken from
// `selection`). Bytes held in memory (inline objects) go out in one write together with
// the head and never visit the pool; others stream through a bounded buffer, read and
// verified on `pool`. With `head_only` only the head is sent. Returns an error, with
// nothing sent, when the object is known to be damaged before the head goes out (a chunk
// missing, short, or its first block corrupt): the caller answers it in its own format.
// Once the head is out, a failure can only cut the body short (the connection is closed),
// which the client sees against Content-Length; that returns OK.
http::Awaitable<Status> SendObject(http::Exchange& exchange, http::BlockingPool* pool,
                                   std::shared_ptr<objects::ObjectReader> reader,
                                   http::ResponseHead head, BodySelection selection,
                                   bool head_only);

}  // namespace cairn::api
