#include "api/common/access_log.h"

#include <cstdio>

#include "platform/clock.h"

namespace cairn::api {
namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026, marks a cut value
constexpr char kHex[] = "0123456789abcdef";

// Characters a value may hold and still be written bare: nothing that separates fields
// (space, '='), quotes, escapes or anything outside ASCII.
bool IsBareChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '/':
    case '%':
    case ':':
    case '@':
    case '+':
    case ',':
    case '!':
    case '*':
    case '(':
    case ')':
    case '$':
    case '&':
    case ';':
      return true;
    default:
      return false;
  }
}

// The length of the well-formed UTF-8 sequence at text[i] (and its code point), or 0.
size_t DecodeUtf8(std::string_view text, size_t i, uint32_t* code_point) {
  const auto lead = static_cast<unsigned char>(text[i]);
  size_t length = 0;
  uint32_t value = 0, smallest = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, smallest = 0x10000;
  } else {
    return 0;
  }
  if (text.size() - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    const auto next = static_cast<unsigned char>(text[i + k]);
    if ((next & 0xC0) != 0x80) return 0;
    value = (value << 6) | (next & 0x3F);
  }
  if (value < smallest || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *code_point = value;
  return length;
}

// Code points written as \uXXXX: C1 controls (U+0085 ends a line for some viewers), the
// Unicode line and paragraph separators, the marks that reorder text on screen, the BOM,
// and the ellipsis, which marks a cut value.
bool IsEscapedCodePoint(uint32_t c) {
  return (c >= 0x80 && c <= 0x9F) || c == 0x200E || c == 0x200F || c == 0x2026 || c == 0x2028 ||
         c == 0x2029 || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF;
}

void AppendHexByte(std::string* out, unsigned char c) {
  out->append("\\x");
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0xF]);
}

void AppendField(std::string* out, std::string_view name, std::string_view value,
                 size_t max_bytes = 256) {
  out->push_back(' ');
  out->append(name);
  out->push_back('=');
  if (value.empty()) {
    out->push_back('-');
  } else {
    AppendLogValue(out, value, max_bytes);
  }
}

void AppendNumber(std::string* out, std::string_view name, unsigned long long value) {
  out->push_back(' ');
  out->append(name);
  out->push_back('=');
  out->append(std::to_string(value));
}

}  // namespace

void AppendLogValue(std::string* out, std::string_view value, size_t max_bytes) {
  const bool cut = value.size() > max_bytes;
  std::string_view shown = value;
  if (cut) {
    // Never inside a UTF-8 sequence (at most 3 continuation bytes back).
    size_t end = max_bytes;
    for (int back = 0;
         back < 3 && end > 0 && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80; ++back) {
      --end;
    }
    shown = value.substr(0, end);
  }
  bool bare = !cut && !shown.empty() && shown != "-";
  for (size_t i = 0; bare && i < shown.size(); ++i) {
    bare = IsBareChar(static_cast<unsigned char>(shown[i]));
  }
  if (bare) {
    out->append(shown);
    return;
  }
  out->push_back('"');
  for (size_t i = 0; i < shown.size();) {
    const auto c = static_cast<unsigned char>(shown[i]);
    if (c >= 0x20 && c < 0x7F) {
      if (c == '"' || c == '\\') out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x80) {  // C0 controls and DEL
      if (c == '\n') {
        out->append("\\n");
      } else if (c == '\r') {
        out->append("\\r");
      } else if (c == '\t') {
        out->append("\\t");
      } else {
        AppendHexByte(out, c);
      }
      ++i;
      continue;
    }
    uint32_t code_point = 0;
    const size_t length = DecodeUtf8(shown, i, &code_point);
    if (length == 0) {  // not UTF-8: the byte itself, escaped
      AppendHexByte(out, c);
      ++i;
      continue;
    }
    if (IsEscapedCodePoint(code_point)) {
      out->append("\\u");  // every escaped code point is below U+10000
      for (int shift = 12; shift >= 0; shift -= 4)
        out->push_back(kHex[(code_point >> shift) & 0xF]);
    } else {
      out->append(shown.substr(i, length));
    }
    i += length;
  }
  if (cut) out->append(kEllipsis);
  out->push_back('"');
}

std::string FormatAccessLogLine(const AccessLogEntry& entry) {
  std::string line;
  line.reserve(256);
  line.append("cairn: ");
  line.append(entry.api);
  line.append(" request");
  AppendField(&line, "id", entry.request_id, 64);
  const bool s3 = entry.api == "s3";
  if (s3) AppendField(&line, "op", entry.operation, 64);
  AppendField(&line, "method", entry.method, 32);
  if (s3) {
    AppendField(&line, "bucket", entry.bucket);
  } else {
    AppendField(&line, "path", entry.path);
    AppendField(&line, "ns", entry.bucket);
    AppendField(&line, "tenant", entry.tenant);
  }
  AppendField(&line, "key", entry.key);
  line.append(" status=" + std::to_string(entry.status));
  AppendNumber(&line, "in", entry.bytes_in);
  AppendNumber(&line, "out", entry.bytes_out);
  char ms[32];
  snprintf(ms, sizeof(ms), " ms=%.3f", entry.seconds * 1000);
  line.append(ms);
  AppendField(&line, "key_id", entry.key_id, 128);
  AppendField(&line, "peer", entry.peer, 64);
  return line;
}

void LogAccess(const AccessLogEntry& entry) {
  std::string line = FormatAccessLogLine(entry);
  line.push_back('\n');
  // Standard error is unbuffered: one write, under the stream's lock, so lines of
  // concurrent requests never interleave.
  fwrite(line.data(), 1, line.size(), stderr);
}

std::string RandomRequestId() {
  uint64_t value;
  platform::FillRandom(&value, sizeof(value));
  char text[17];
  snprintf(text, sizeof(text), "%016llX", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace cairn::api
