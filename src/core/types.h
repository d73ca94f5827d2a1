// Vocabulary types of the object model: ids, digests, storage classes, states, names.
// Pure values; no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace cairn {

// SHA-256 digest of a chunk or of an object's whole content.
struct Digest {
  std::array<uint8_t, 32> bytes{};

  std::string ToHex() const;  // 64 lowercase hex characters
  static Result<Digest> FromHex(std::string_view hex);
  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest&) const = default;
};

// Server-assigned object id: a random (version 4) UUID in canonical text form.
struct ObjectId {
  std::array<uint8_t, 16> bytes{};

  std::string ToString() const;  // "550e8400-e29b-41d4-a716-446655440000"
  // Accepts the canonical 36-character form only (either case); anything else is
  // InvalidArgument.
  static Result<ObjectId> Parse(std::string_view text);
  // Builds a v4 UUID from 16 random bytes (the version and variant bits are set here).
  static ObjectId FromRandomBytes(const std::array<uint8_t, 16>& random);
  bool operator==(const ObjectId&) const = default;
  auto operator<=>(const ObjectId&) const = default;
};

enum class StorageClass { kHot, kCold };
inline constexpr StorageClass kAllStorageClasses[] = {StorageClass::kHot, StorageClass::kCold};
std::string_view StorageClassName(StorageClass storage_class);  // "hot" / "cold"
Result<StorageClass> ParseStorageClass(std::string_view text);

// WRITING -> COMMITTED -> DELETING -> (row purged by GC: DELETED).
enum class ObjectState { kWriting, kCommitted, kDeleting, kDeleted };
std::string_view ObjectStateName(ObjectState state);  // "WRITING", ...
Result<ObjectState> ParseObjectState(std::string_view text);

inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kMaxNameBytes = 63;

// A key is 1..1024 bytes of valid UTF-8 without NUL. Slashes and dots are ordinary
// characters: a key never becomes a file path.
Status ValidateKey(std::string_view key);
// Tenants and namespaces: 1..63 of [a-z0-9._-], starting with a letter or digit.
Status ValidateName(std::string_view what, std::string_view name);
bool IsValidUtf8(std::string_view text);

// Milliseconds since the Unix epoch (UTC).
using TimestampMs = int64_t;
// "2025-12-11T10:30:00.123Z"
std::string FormatTimestamp(TimestampMs ms);
// RFC 7231 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
std::string FormatHttpDate(TimestampMs ms);

std::string HexEncode(std::string_view bytes);
// Lower- or upper-case hex to bytes; kInvalidArgument for odd lengths or non-hex.
Result<std::string> HexDecode(std::string_view hex);
// The value of one hex digit (either case), or -1.
int HexDigitValue(char c);
// Whether `text` is exactly `length` lower-case hex digits.
bool IsLowerHex(std::string_view text, size_t length);

}  // namespace cairn
