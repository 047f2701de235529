#include "common/log_escape.h"

#include <gtest/gtest.h>

namespace strait::common {
namespace {

std::string text_escaped(std::string_view in) {
  std::string out;
  append_text_escaped(out, in);
  return out;
}

std::string json_escaped(std::string_view in) {
  std::string out;
  append_json_escaped(out, in);
  return out;
}

TEST(LogEscape, TextKeepsPrintableUtf8AndEscapesControls) {
  EXPECT_EQ(text_escaped("socks5: 10.0.0.1 -> example.org:443"), "socks5: 10.0.0.1 -> example.org:443");
  EXPECT_EQ(text_escaped("Grüße \"quoted\""), "Grüße \"quoted\"");
  EXPECT_EQ(text_escaped("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(text_escaped("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
  EXPECT_EQ(text_escaped(std::string_view("nul\0", 4)), "nul\\x00");
  EXPECT_EQ(text_escaped("\xff\xc3"), "\\xff\\xc3");       // not UTF-8
  EXPECT_EQ(text_escaped("\xc2\x9b" "2J"), "\\xc2\\x9b2J");  // C1 control CSI
}

TEST(LogEscape, JsonCannotBeEndedOrForged) {
  EXPECT_EQ(json_escaped("x\"},\"level\":\"critical\",\"msg\":\"forged\nnext"),
            "x\\\"},\\\"level\\\":\\\"critical\\\",\\\"msg\\\":\\\"forged\\nnext");
  EXPECT_EQ(json_escaped("back\\slash"), "back\\\\slash");
  EXPECT_EQ(json_escaped("\x01\xfe"), "\\u0001\\u00fe");
  EXPECT_EQ(json_escaped("ünïcødé"), "ünïcødé");
  EXPECT_EQ(json_escaped(""), "");
  EXPECT_EQ(json_escaped("\"\""), "\\\"\\\"");
}

}  // namespace
}  // namespace strait::common
