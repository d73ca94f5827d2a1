// Small ASCII text helpers shared across layers. Pure functions; no locale.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cairn {

// ASCII lower case; every other byte as it is (no locale).
inline char ToLowerAscii(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
inline std::string ToLowerAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ToLowerAscii(c);
  return out;
}

// Whether `a` and `b` are the same but for ASCII case.
inline bool EqualsIgnoreCaseAscii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLowerAscii(a[i]) != ToLowerAscii(b[i])) return false;
  }
  return true;
}

// Client input echoed into an error message: in single quotes, at most 64 bytes (then
// "..."), every byte outside printable ASCII shown as '?'.
std::string QuoteForMessage(std::string_view text);

// Character sets for TrimAscii.
inline constexpr std::string_view kAsciiWhitespace = " \t\n\v\f\r";  // C isspace()
inline constexpr std::string_view kHttpWhitespace = " \t";           // RFC 9110 OWS: SP, HTAB
inline constexpr std::string_view kXmlWhitespace = " \t\r\n";        // XML 1.0 S
inline constexpr std::string_view kJsonWhitespace = kXmlWhitespace;  // RFC 8259: the same four

inline bool IsAsciiWhitespace(char c) { return kAsciiWhitespace.find(c) != std::string_view::npos; }

// `text` without the leading and trailing bytes that are in `charset`.
inline std::string_view TrimAscii(std::string_view text, std::string_view charset) {
  const size_t first = text.find_first_not_of(charset);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(charset) - first + 1);
}

// Options of EscapeXmlText. Every caller escapes & < > " and writes TAB and LF as they
// are and CR as "&#13;" (XML parsers turn a literal CR into LF). The callers differ only
// in the two choices below.
struct XmlTextOptions {
  // How the other control bytes (below 0x20) are written. XML 1.0 allows them neither
  // literally nor as character references, so a document with one is not well-formed.
  enum class Control {
    kReplace,    // as '?': the document stays well-formed (error messages)
    kReference,  // as "&#N;": lossless, as S3 writes keys (listings; see api/s3/wire)
  };
  Control control = Control::kReplace;
  // "'" as "&apos;" (needed only inside an attribute value quoted with "'").
  bool escape_apostrophe = false;
};

// Appends `text` to `*out` escaped for XML character data or a double-quoted attribute.
void AppendXmlText(std::string* out, std::string_view text, XmlTextOptions options = {});
inline std::string EscapeXmlText(std::string_view text, XmlTextOptions options = {}) {
  std::string out;
  AppendXmlText(&out, text, options);
  return out;
}

// The items of a comma-separated list (an HTTP list header, say), each with the spaces
// and tabs around it trimmed. Drops nothing: "" gives one empty item and "a,,b" three, so
// callers filter empty items where they mean to.
inline std::vector<std::string> SplitCommaList(std::string_view list) {
  std::vector<std::string> items;
  for (;;) {
    const size_t comma = list.find(',');
    items.emplace_back(TrimAscii(list.substr(0, comma), kHttpWhitespace));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return items;
}

}  // namespace cairn
