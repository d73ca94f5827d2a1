// CountOperations: a FUSE low-level operation table whose every set operation is counted
// and timed in MountMetrics, wrapped around the real table in one place so the operations
// carry no counting code. Include after <fuse3/fuse_lowlevel.h> (with FUSE_USE_VERSION).
//
// Each wrapper finds its CountedOperations through `Of(req)` before the operation runs
// (the request is gone once it has replied), calls the real operation and records the
// time it took: every operation of the mount replies before it returns, so that is the
// time to the reply. init and destroy (no request) are not wrapped.
#pragma once

#include <chrono>
#include <type_traits>

#include "mount/mount_metrics.h"

namespace cairn::mount {

struct CountedOperations {
  fuse_lowlevel_ops inner{};        // the real operations
  MountMetrics* metrics = nullptr;  // not null while the session serves
};

namespace fuse_counting_internal {

template <typename Function>
struct Wrapper;

template <typename... Args>
struct Wrapper<void (*)(fuse_req_t, Args...)> {
  template <CountedOperations* (*Of)(fuse_req_t), auto Field, FuseOperation Op>
  static void Call(fuse_req_t req, Args... args) {
    CountedOperations* counted = Of(req);
    const auto start = std::chrono::steady_clock::now();
    (counted->inner.*Field)(req, args...);
    counted->metrics->Operation(Op, std::chrono::steady_clock::now() - start);
  }
};

template <CountedOperations* (*Of)(fuse_req_t), auto Field, FuseOperation Op>
void Wrap(fuse_lowlevel_ops& ops, MountMetrics* metrics) {
  if (ops.*Field == nullptr) return;
  using Function = std::remove_reference_t<decltype(ops.*Field)>;
  ops.*Field = &Wrapper<Function>::template Call<Of, Field, Op>;
  metrics->SetInstalled(Op);
}

}  // namespace fuse_counting_internal

// The table to hand libfuse: `counted.inner` with every set operation wrapped.
template <CountedOperations* (*Of)(fuse_req_t)>
fuse_lowlevel_ops CountOperations(const CountedOperations& counted) {
  fuse_lowlevel_ops ops = counted.inner;
#define CAIRN_FUSE_OPERATION_WRAP(name)                                                \
  fuse_counting_internal::Wrap<Of, &fuse_lowlevel_ops::name, FuseOperation::k_##name>( \
      ops, counted.metrics);
  CAIRN_FUSE_OPERATIONS(CAIRN_FUSE_OPERATION_WRAP)
#undef CAIRN_FUSE_OPERATION_WRAP
  return ops;
}

}  // namespace cairn::mount
