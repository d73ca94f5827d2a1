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

}  // namespace cairn
