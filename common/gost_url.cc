#include "common/gost_url.h"

#include <cctype>
#include <charconv>
#include "common/strings.h"


namespace strait::common {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool valid_scheme_word(std::string_view word) {
  if (word.empty()) return false;
  for (char c : word) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return true;
}

std::optional<unsigned> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return value;
}

}  // namespace

absl::StatusOr<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return absl::InvalidArgumentError(str_cat("bad percent escape in \"", text, "\""));
      }
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(str_cat("bad percent escape in \"", text, "\""));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<GostUrl> parse_gost_url(std::string_view text) {
  std::string_view input = strip_whitespace(text);
  if (input.empty()) return absl::InvalidArgumentError("invalid cmd: empty address");
  std::string normalized(input);
  if (normalized.front() == ':' || normalized.find("://") == std::string::npos) {
    normalized = "auto://" + normalized;
  }
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(str_cat("invalid address \"", input, "\": ", why));
  };

  GostUrl url;
  size_t scheme_end = normalized.find("://");
  url.scheme = to_lower(normalized.substr(0, scheme_end));
  if (url.scheme == "https") url.scheme = "http+tls";
  std::vector<std::string_view> words = split(url.scheme, '+', false);
  if (words.size() > 2) return bad("a scheme has at most two parts, processing+channel");
  for (const auto& word : words) {
    if (!valid_scheme_word(word)) return bad(str_cat("bad scheme \"", url.scheme, "\""));
  }
  url.first = std::string(words[0]);
  url.one_word = words.size() == 1;
  url.second = std::string(url.one_word ? words[0] : words[1]);

  std::string_view rest(normalized);
  rest.remove_prefix(scheme_end + 3);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash);
  }
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    std::string_view user = userinfo;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      user = userinfo.substr(0, colon);
      auto password = percent_decode(userinfo.substr(colon + 1), false);
      if (!password.ok()) return password.status();
      url.password = *std::move(password);
    }
    auto username = percent_decode(user, false);
    if (!username.ok()) return username.status();
    url.username = *std::move(username);
  }
  url.host = std::string(authority);
  auto decoded_path = percent_decode(path, false);
  if (!decoded_path.ok()) return decoded_path.status();
  url.path = *std::move(decoded_path);

  for (std::string_view pair : split(query, '&', true)) {
    std::string_view key = pair;
    std::string_view value;
    if (auto eq = pair.find('='); eq != std::string_view::npos) {
      key = pair.substr(0, eq);
      value = pair.substr(eq + 1);
    }
    auto decoded_key = percent_decode(key, true);
    auto decoded_value = percent_decode(value, true);
    if (!decoded_key.ok()) return decoded_key.status();
    if (!decoded_value.ok()) return decoded_value.status();
    bool seen = false;
    for (const auto& [existing, unused] : url.query) seen = seen || existing == *decoded_key;
    if (!seen) url.query.emplace_back(*std::move(decoded_key), *std::move(decoded_value));
  }
  return url;
}

absl::StatusOr<std::vector<std::string>> expand_port_range(std::string_view host_port) {
  auto colon = host_port.rfind(':');
  auto dash = host_port.rfind('-');
  if (colon == std::string_view::npos || dash == std::string_view::npos || dash < colon) {
    return std::vector<std::string>{std::string(host_port)};
  }
  std::string_view host = host_port.substr(0, colon);
  auto low = parse_port(host_port.substr(colon + 1, dash - colon - 1));
  auto high = parse_port(host_port.substr(dash + 1));
  if (!low || !high || *low == 0 || *high < *low) {
    return absl::InvalidArgumentError(
        str_cat("invalid port range in \"", host_port, "\" (expected host:low-high, low <= high)"));
  }
  std::vector<std::string> out;
  for (unsigned port = *low; port <= *high; ++port) out.push_back(str_cat(host, ":", port));
  return out;
}

}  // namespace strait::common
