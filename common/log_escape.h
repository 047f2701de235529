#pragma once

#include <string>
#include <string_view>

namespace strait::common {

// Log lines carry strings peers chose (host names, user names, request targets). These make
// each such string one harmless piece of one line, whatever bytes it holds.

// Text format: control characters and bytes that are not UTF-8 become \n, \r, \t or \xNN,
// so a peer cannot start a new line or hide text with terminal escapes.
void append_text_escaped(std::string& out, std::string_view text);
// The same, as a new string.
std::string text_escaped(std::string_view text);

// JSON format: a valid JSON string body (without the quotes); quotes, backslashes and
// control characters escaped, bytes that are not UTF-8 written as \u00NN.
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace strait::common
