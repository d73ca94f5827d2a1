#include "core/text.h"

namespace cairn {

void AppendXmlText(std::string* out, std::string_view text, XmlTextOptions options) {
  out->reserve(out->size() + text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '&':
        *out += "&amp;";
        break;
      case '<':
        *out += "&lt;";
        break;
      case '>':
        *out += "&gt;";
        break;
      case '"':
        *out += "&quot;";
        break;
      case '\'':
        *out += options.escape_apostrophe ? "&apos;" : "'";
        break;
      case '\r':
        *out += "&#13;";
        break;
      default:
        if (byte < 0x20 && c != '\t' && c != '\n') {
          if (options.control == XmlTextOptions::Control::kReference) {
            *out += "&#" + std::to_string(byte) + ";";
          } else {
            *out += '?';
          }
        } else {
          *out += c;
        }
    }
  }
}

std::string QuoteForMessage(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (text.size() > kMax) out += "...";
  out += "'";
  return out;
}

}  // namespace cairn
