#include "common/yaml_syntax.h"

#include <yaml.h>

#include "common/strings.h"

namespace strait::common {

absl::Status check_yaml_syntax(std::string_view text, std::string_view source) {
  // YAML is UTF-8, and so are protobuf strings: other bytes would fail later, far from here.
  if (size_t bad = invalid_utf8_offset(text); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(str_cat(source, ": not UTF-8 text (byte ", bad, ")"));
  }
  yaml_parser_t parser;
  if (yaml_parser_initialize(&parser) == 0) return absl::ResourceExhaustedError("cannot start the YAML parser");
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  absl::Status status;
  for (;;) {
    yaml_event_t event;
    if (yaml_parser_parse(&parser, &event) == 0) {
      const auto& mark = parser.problem_mark;
      status = absl::InvalidArgumentError(str_cat(source, ":", mark.line + 1, ":", mark.column + 1,
                                                  ": not valid YAML/JSON: ", parser.problem ? parser.problem : "error",
                                                  parser.context ? str_cat(" ", parser.context) : std::string()));
      break;
    }
    bool done = event.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&event);
    if (done) break;
  }
  yaml_parser_delete(&parser);
  return status;
}

}  // namespace strait::common
