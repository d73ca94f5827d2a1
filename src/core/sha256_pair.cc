#include "core/sha256_pair.h"

#include <cstdint>
#include <cstring>

#include "core/hashing.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define CAIRN_SHA_NI 1
#endif

namespace cairn {
namespace {

constexpr size_t kBlockBytes = 64;

// One SHA-256 computation: chaining value, partial block, total length.
struct Context {
  uint32_t h[8];
  uint8_t buffer[kBlockBytes];
  size_t buffered = 0;
  uint64_t length_bytes = 0;

  void Reset() {
    static constexpr uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(h, kInitial, sizeof(h));
    buffered = 0;
    length_bytes = 0;
  }
};

#ifdef CAIRN_SHA_NI

alignas(16) constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

bool DetectShaExtensions() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool ssse3 = (ecx & (1u << 9)) != 0;
  const bool sse41 = (ecx & (1u << 19)) != 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool sha = (ebx & (1u << 29)) != 0;
  return ssse3 && sse41 && sha;
}

// Runs `blocks` 64-byte blocks through N chaining values at once. The SHA instructions
// keep a state as two registers, (A,B,E,F) and (C,D,G,H); the message schedule depends
// only on the data, so it is computed once for all N states.
//
// With `copy_to`, each block is also stored there as it is loaded: a copy that costs next to
// nothing beside the rounds, instead of a separate pass over the bytes.
template <int N>
__attribute__((target("sha,sse4.1,ssse3"))) void CompressBlocks(uint32_t* const (&h)[N],
                                                                const uint8_t* data, size_t blocks,
                                                                uint8_t* copy_to = nullptr) {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i abef[N], cdgh[N];
  for (int s = 0; s < N; ++s) {
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h[s])), 0xB1);
    __m128i efgh =
        _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h[s] + 4)), 0x1B);
    abef[s] = _mm_alignr_epi8(dcba, efgh, 8);
    cdgh[s] = _mm_blend_epi16(efgh, dcba, 0xF0);
  }
  for (; blocks > 0; --blocks, data += kBlockBytes) {
    __m128i saved_abef[N], saved_cdgh[N];
    for (int s = 0; s < N; ++s) {
      saved_abef[s] = abef[s];
      saved_cdgh[s] = cdgh[s];
    }
    __m128i w[4];
    for (int i = 0; i < 4; ++i) {
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * i));
      if (copy_to != nullptr) _mm_storeu_si128(reinterpret_cast<__m128i*>(copy_to + 16 * i), raw);
      w[i] = _mm_shuffle_epi8(raw, byte_swap);
    }
    if (copy_to != nullptr) copy_to += kBlockBytes;
#pragma GCC unroll 16
    for (int group = 0; group < 16; ++group) {
      if (group >= 4) {
        // Words 4g..4g+3 from words 4g-16 .. 4g-1 (w holds the last four groups).
        __m128i next = _mm_sha256msg1_epu32(w[group & 3], w[(group + 1) & 3]);
        next = _mm_add_epi32(next, _mm_alignr_epi8(w[(group + 3) & 3], w[(group + 2) & 3], 4));
        w[group & 3] = _mm_sha256msg2_epu32(next, w[(group + 3) & 3]);
      }
      const __m128i message = _mm_add_epi32(
          w[group & 3], _mm_load_si128(reinterpret_cast<const __m128i*>(kRound + 4 * group)));
      const __m128i message_high = _mm_shuffle_epi32(message, 0x0E);
      for (int s = 0; s < N; ++s) cdgh[s] = _mm_sha256rnds2_epu32(cdgh[s], abef[s], message);
      for (int s = 0; s < N; ++s) {
        abef[s] = _mm_sha256rnds2_epu32(abef[s], cdgh[s], message_high);
      }
    }
    for (int s = 0; s < N; ++s) {
      abef[s] = _mm_add_epi32(abef[s], saved_abef[s]);
      cdgh[s] = _mm_add_epi32(cdgh[s], saved_cdgh[s]);
    }
  }
  for (int s = 0; s < N; ++s) {
    __m128i feba = _mm_shuffle_epi32(abef[s], 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh[s], 0xB1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h[s]), _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h[s] + 4), _mm_alignr_epi8(dchg, feba, 8));
  }
}

void CompressOne(Context& context, const uint8_t* data, size_t blocks) {
  uint32_t* const states[1] = {context.h};
  CompressBlocks<1>(states, data, blocks);
}

void CompressTwo(Context& first, Context& second, const uint8_t* data, size_t blocks,
                 uint8_t* copy_to = nullptr) {
  uint32_t* const states[2] = {first.h, second.h};
  CompressBlocks<2>(states, data, blocks, copy_to);
}

#else

bool DetectShaExtensions() { return false; }
void CompressOne(Context&, const uint8_t*, size_t) { abort(); }
void CompressTwo(Context&, Context&, const uint8_t*, size_t, uint8_t* = nullptr) { abort(); }

#endif

void Absorb(Context& context, const uint8_t* data, size_t size) {
  context.length_bytes += size;
  if (context.buffered > 0) {
    const size_t take = std::min(size, kBlockBytes - context.buffered);
    memcpy(context.buffer + context.buffered, data, take);
    context.buffered += take;
    data += take;
    size -= take;
    if (context.buffered < kBlockBytes) return;
    CompressOne(context, context.buffer, 1);
    context.buffered = 0;
  }
  const size_t blocks = size / kBlockBytes;
  if (blocks > 0) CompressOne(context, data, blocks);
  memcpy(context.buffer, data + blocks * kBlockBytes, size % kBlockBytes);
  context.buffered = size % kBlockBytes;
}

// Both contexts are at the same offset within a block: every block is shared. With
// `copy_to`, the bytes are also copied there.
void AbsorbBoth(Context& first, Context& second, const uint8_t* data, size_t size,
                uint8_t* copy_to = nullptr) {
  first.length_bytes += size;
  second.length_bytes += size;
  size_t buffered = first.buffered;
  if (buffered > 0) {
    const size_t take = std::min(size, kBlockBytes - buffered);
    memcpy(first.buffer + buffered, data, take);
    memcpy(second.buffer + buffered, data, take);
    if (copy_to != nullptr) {
      memcpy(copy_to, data, take);
      copy_to += take;
    }
    buffered += take;
    data += take;
    size -= take;
    if (buffered < kBlockBytes) {
      first.buffered = second.buffered = buffered;
      return;
    }
    CompressTwo(first, second, first.buffer, 1);
  }
  const size_t blocks = size / kBlockBytes;
  if (blocks > 0) CompressTwo(first, second, data, blocks, copy_to);
  const size_t tail = size % kBlockBytes;
  memcpy(first.buffer, data + blocks * kBlockBytes, tail);
  memcpy(second.buffer, data + blocks * kBlockBytes, tail);
  if (copy_to != nullptr) memcpy(copy_to + blocks * kBlockBytes, data + blocks * kBlockBytes, tail);
  first.buffered = second.buffered = tail;
}

Digest Finish(Context& context) {
  const uint64_t length_bits = context.length_bytes * 8;
  uint8_t padding[2 * kBlockBytes] = {0x80};
  const size_t pad = (context.buffered < 56 ? 56 : 120) - context.buffered;
  uint8_t length_field[8];
  for (int i = 0; i < 8; ++i) length_field[i] = static_cast<uint8_t>(length_bits >> (56 - 8 * i));
  memcpy(padding + pad, length_field, 8);
  Absorb(context, padding, pad + 8);
  Digest digest;
  for (int i = 0; i < 8; ++i) {
    for (int b = 0; b < 4; ++b) {
      digest.bytes[4 * i + b] = static_cast<uint8_t>(context.h[i] >> (24 - 8 * b));
    }
  }
  context.Reset();
  return digest;
}

}  // namespace

struct Sha256Pair::State {
  bool accelerated = false;
  Context whole, part;               // accelerated
  Sha256Hasher whole_evp, part_evp;  // otherwise
};

bool Sha256Pair::Accelerated() {
  static const bool accelerated = DetectShaExtensions();
  return accelerated;
}

Sha256Pair::Sha256Pair() : state_(new State) {
  state_->accelerated = Accelerated();
  state_->whole.Reset();
  state_->part.Reset();
}

Sha256Pair::~Sha256Pair() = default;

void Sha256Pair::Update(std::string_view bytes) {
  if (!state_->accelerated) {
    state_->whole_evp.Update(bytes);
    state_->part_evp.Update(bytes);
    return;
  }
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  if (state_->whole.buffered == state_->part.buffered) {
    AbsorbBoth(state_->whole, state_->part, data, bytes.size());
  } else {
    Absorb(state_->whole, data, bytes.size());
    Absorb(state_->part, data, bytes.size());
  }
}

void Sha256Pair::UpdateAndCopy(std::string_view bytes, char* copy_to) {
  if (!state_->accelerated || state_->whole.buffered != state_->part.buffered) {
    memcpy(copy_to, bytes.data(), bytes.size());
    Update(bytes);
    return;
  }
  AbsorbBoth(state_->whole, state_->part, reinterpret_cast<const uint8_t*>(bytes.data()),
             bytes.size(), reinterpret_cast<uint8_t*>(copy_to));
}

Digest Sha256Pair::FinishPart() {
  if (!state_->accelerated) return state_->part_evp.Finish();
  return Finish(state_->part);
}

Digest Sha256Pair::FinishWhole() {
  if (!state_->accelerated) {
    state_->part_evp.Finish();
    return state_->whole_evp.Finish();
  }
  state_->part.Reset();
  return Finish(state_->whole);
}

}  // namespace cairn
