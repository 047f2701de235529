#include "controller/ctl/output.h"

#include <algorithm>

#include "common/strings.h"

namespace strait::ctl {

std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(widths[i] - cells[i].size() + 3, ' ');
    }
    out += "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
  return out;
}

std::string line_diff(const std::string& before, const std::string& after) {
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    for (auto piece : common::split(text, '\n', false)) out.emplace_back(piece);
    if (!out.empty() && out.back().empty()) out.pop_back();
    return out;
  };
  auto a = lines(before);
  auto b = lines(after);
  // Longest common subsequence table; resources are a few dozen lines, so quadratic is fine.
  std::vector<std::vector<size_t>> common_length(a.size() + 1, std::vector<size_t>(b.size() + 1, 0));
  for (size_t i = a.size(); i-- > 0;) {
    for (size_t j = b.size(); j-- > 0;) {
      common_length[i][j] = a[i] == b[j] ? common_length[i + 1][j + 1] + 1
                                         : std::max(common_length[i + 1][j], common_length[i][j + 1]);
    }
  }
  std::string out;
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() || j < b.size()) {
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      out += "  " + a[i++] + "\n";
      ++j;
    } else if (i < a.size() && (j == b.size() || common_length[i + 1][j] >= common_length[i][j + 1])) {
      out += "- " + a[i++] + "\n";  // removals first, as diff(1) prints them
    } else {
      out += "+ " + b[j++] + "\n";
    }
  }
  return out;
}

namespace {

// How long, to the unit a reader needs: "45s", "5m", "23h", "6d".
std::string coarse(int64_t seconds) {
  if (seconds < 120) return common::str_cat(seconds, "s");
  if (seconds < 7200) return common::str_cat(seconds / 60, "m");
  if (seconds < 48 * 3600) return common::str_cat(seconds / 3600, "h");
  return common::str_cat(seconds / 86400, "d");
}

}  // namespace

std::string age(int64_t unix_millis, int64_t now_millis) {
  if (unix_millis <= 0) return "never";
  return coarse(std::max<int64_t>(0, (now_millis - unix_millis) / 1000)) + " ago";
}

std::string until(int64_t unix_seconds, int64_t now_seconds) {
  if (unix_seconds <= 0) return "never";
  if (unix_seconds <= now_seconds) return "expired";
  return "in " + coarse(unix_seconds - now_seconds);
}

std::string labels_text(const LabelMap& labels, std::string_view none) {
  std::vector<std::string> entries;
  for (const auto& [key, value] : labels) entries.push_back(key + "=" + value);
  std::sort(entries.begin(), entries.end());
  return entries.empty() ? std::string(none) : common::join(entries, ",");
}

std::string counted(int count, std::string_view noun) {
  return common::str_cat(count, " ", noun, count == 1 ? "" : "s");
}

}  // namespace strait::ctl
