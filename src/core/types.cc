#include "core/types.h"

#include <algorithm>
#include <ctime>

namespace cairn {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

}  // namespace

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsLowerHex(std::string_view text, size_t length) {
  return text.size() == length && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

Result<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return InvalidArgumentError("hex text has an odd length");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexDigitValue(hex[2 * i]), lo = HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("hex text has a non-hex character");
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

std::string Digest::ToHex() const {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Result<Digest> Digest::FromHex(std::string_view hex) {
  if (hex.size() != 64) return InvalidArgumentError("digest must be 64 hex characters");
  Digest d;
  for (size_t i = 0; i < 32; ++i) {
    int hi = HexDigitValue(hex[2 * i]), lo = HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("digest has a non-hex character");
    d.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

std::string ObjectId::ToString() const {
  std::string hex =
      HexEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

Result<ObjectId> ObjectId::Parse(std::string_view text) {
  if (text.size() != 36) return InvalidArgumentError("object id is not a UUID");
  ObjectId id;
  size_t out = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return InvalidArgumentError("object id is not a UUID");
      ++i;
      continue;
    }
    int hi = HexDigitValue(text[i]), lo = HexDigitValue(text[i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("object id is not a UUID");
    id.bytes[out++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return id;
}

ObjectId ObjectId::FromRandomBytes(const std::array<uint8_t, 16>& random) {
  ObjectId id;
  id.bytes = random;
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0f) | 0x40);
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3f) | 0x80);
  return id;
}

std::string_view StorageClassName(StorageClass storage_class) {
  return storage_class == StorageClass::kHot ? "hot" : "cold";
}

Result<StorageClass> ParseStorageClass(std::string_view text) {
  if (text == "hot") return StorageClass::kHot;
  if (text == "cold") return StorageClass::kCold;
  return InvalidArgumentError("unknown storage class '" + std::string(text.substr(0, 64)) +
                              "' (expected hot or cold)");
}

std::string_view ObjectStateName(ObjectState state) {
  switch (state) {
    case ObjectState::kWriting:
      return "WRITING";
    case ObjectState::kCommitted:
      return "COMMITTED";
    case ObjectState::kDeleting:
      return "DELETING";
    case ObjectState::kDeleted:
      return "DELETED";
  }
  return "UNKNOWN";
}

Result<ObjectState> ParseObjectState(std::string_view text) {
  if (text == "WRITING") return ObjectState::kWriting;
  if (text == "COMMITTED") return ObjectState::kCommitted;
  if (text == "DELETING") return ObjectState::kDeleting;
  if (text == "DELETED") return ObjectState::kDeleted;
  return InvalidArgumentError("unknown object state '" + std::string(text) + "'");
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += len;
  }
  return true;
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) return InvalidArgumentError("key must not be empty");
  if (key.size() > kMaxKeyBytes) {
    return InvalidArgumentError("key is " + std::to_string(key.size()) +
                                " bytes; the limit is 1024");
  }
  if (key.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("key must not contain NUL");
  }
  if (!IsValidUtf8(key)) return InvalidArgumentError("key is not valid UTF-8");
  return OkStatus();
}

Status ValidateName(std::string_view what, std::string_view name) {
  std::string label(what);
  if (name.empty()) return InvalidArgumentError(label + " must not be empty");
  if (name.size() > kMaxNameBytes) {
    return InvalidArgumentError(label + " is longer than 63 characters");
  }
  if (name[0] == '.' || name[0] == '-' || name[0] == '_') {
    return InvalidArgumentError(label + " must start with a letter or digit");
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return InvalidArgumentError(label + " '" + std::string(name) +
                                  "' may contain only a-z, 0-9, '.', '_' and '-'");
    }
  }
  return OkStatus();
}

std::string FormatTimestamp(TimestampMs ms) {
  time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm tm_utc;
  gmtime_r(&seconds, &tm_utc);
  char buf[40];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm_utc);
  snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

std::string FormatHttpDate(TimestampMs ms) {
  time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm tm_utc;
  gmtime_r(&seconds, &tm_utc);
  char buf[40];
  strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm_utc);
  return buf;
}

}  // namespace cairn
