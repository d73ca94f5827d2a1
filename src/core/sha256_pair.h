// Two SHA-256 digests over one byte stream: `whole` covers every byte, `part` covers the
// bytes since the last FinishPart (an upload's content hash and its chunks' addresses).
//
// Why one class: on CPUs with the SHA extensions both states advance in one pass over the
// data, sharing the loads and the message schedule and overlapping the two dependency
// chains, which costs about 1.3 times one SHA-256 instead of 2 times. That holds while
// both streams sit at the same offset within a 64-byte block (parts that are multiples of
// 64 bytes long); otherwise, and without the extensions, each digest is computed on its
// own (OpenSSL). The digests are the same either way.
//
// Not thread-safe; one per stream.
#pragma once

#include <memory>
#include <string_view>

#include "core/types.h"

namespace cairn {

class Sha256Pair {
 public:
  Sha256Pair();
  ~Sha256Pair();
  Sha256Pair(const Sha256Pair&) = delete;
  Sha256Pair& operator=(const Sha256Pair&) = delete;

  void Update(std::string_view bytes);
  // Update, and copies the bytes to `copy_to` (room for bytes.size()) in the same pass.
  void UpdateAndCopy(std::string_view bytes, char* copy_to);
  // The digest of the bytes since the previous FinishPart (or the start); the part
  // restarts empty.
  Digest FinishPart();
  // The digest of every byte; afterwards the pair starts over (whole and part empty).
  Digest FinishWhole();

  // Whether the one-pass implementation is in use on this CPU (for tests and logs).
  static bool Accelerated();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cairn
