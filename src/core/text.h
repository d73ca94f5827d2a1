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

// The items of a comma-separated list (an HTTP list header, say), each with the spaces
// and tabs around it trimmed. Drops nothing: "" gives one empty item and "a,,b" three, so
// callers filter empty items where they mean to.
inline std::vector<std::string> SplitCommaList(std::string_view list) {
  std::vector<std::string> items;
  for (;;) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    const size_t begin = item.find_first_not_of(" \t");
    item = begin == std::string_view::npos
               ? std::string_view()
               : item.substr(begin, item.find_last_not_of(" \t") - begin + 1);
    items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return items;
}

}  // namespace cairn
