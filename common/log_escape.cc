#include "common/log_escape.h"

namespace strait::common {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence at the start of `text`, 0 when it is not one.
size_t utf8_sequence_length(std::string_view text) {
  auto byte = static_cast<unsigned char>(text[0]);
  size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xE ? 3 : (byte >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || length > text.size()) return 0;
  uint32_t code = length == 1 ? byte : byte & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    auto next = static_cast<unsigned char>(text[k]);
    if ((next >> 6) != 0x2) return 0;
    code = (code << 6) | (next & 0x3F);
  }
  bool overlong = (length == 2 && code < 0x80) || (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
  if (overlong || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  // C1 controls (U+0080..U+009F) act as terminal escapes too.
  if (code >= 0x80 && code <= 0x9F) return 0;
  return length;
}

template <typename EscapeByte>
void append_escaped(std::string& out, std::string_view text, EscapeByte escape_byte) {
  out.reserve(out.size() + text.size());
  while (!text.empty()) {
    auto byte = static_cast<unsigned char>(text[0]);
    size_t length = byte < 0x20 || byte == 0x7F ? 0 : utf8_sequence_length(text);
    if (length == 0) {
      escape_byte(byte);
      text.remove_prefix(1);
      continue;
    }
    out.append(text.substr(0, length));
    text.remove_prefix(length);
  }
}

}  // namespace

void append_text_escaped(std::string& out, std::string_view text) {
  append_escaped(out, text, [&out](unsigned char byte) {
    switch (byte) {
      case '\n': out += "\\n"; return;
      case '\r': out += "\\r"; return;
      case '\t': out += "\\t"; return;
      default:
        out += "\\x";
        out.push_back(kHex[byte >> 4]);
        out.push_back(kHex[byte & 0xF]);
    }
  });
}

void append_json_escaped(std::string& out, std::string_view text) {
  // Quotes and backslashes are valid UTF-8 but not valid inside a JSON string.
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '"' && text[i] != '\\') continue;
    append_escaped(out, text.substr(start, i - start), [&out](unsigned char byte) {
      switch (byte) {
        case '\n': out += "\\n"; return;
        case '\r': out += "\\r"; return;
        case '\t': out += "\\t"; return;
        default:
          out += "\\u00";
          out.push_back(kHex[byte >> 4]);
          out.push_back(kHex[byte & 0xF]);
      }
    });
    if (i < text.size()) {
      out.push_back('\\');
      out.push_back(text[i]);
    }
    start = i + 1;
  }
}

std::string text_escaped(std::string_view text) {
  std::string out;
  append_text_escaped(out, text);
  return out;
}

}  // namespace strait::common
