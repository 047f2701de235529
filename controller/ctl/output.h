#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/map.h>

namespace strait::ctl {

// Columns padded to their widest cell, as kubectl prints tables.
std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// A line diff of two texts: unchanged lines start with "  ", removed with "- ", added with "+ ".
std::string line_diff(const std::string& before, const std::string& after);

// "3s ago", "5m ago", "2d ago", "never".
std::string age(int64_t unix_millis, int64_t now_millis);

// When something that may expire does, in seconds as the Admin API gives them: "in 23h",
// "expired", or "never" for 0.
std::string until(int64_t unix_seconds, int64_t now_seconds);

using LabelMap = google::protobuf::Map<std::string, std::string>;

// "k=v,k2=v2", sorted by key, or none for no labels.
std::string labels_text(const LabelMap& labels, std::string_view none = "<none>");

// "1 hop", "3 hops".
std::string counted(int count, std::string_view noun);

}  // namespace strait::ctl
