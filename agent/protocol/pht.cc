#include "agent/protocol/pht.h"

#include <algorithm>
#include <array>

namespace strait::agent::pht {
namespace {

constexpr std::string_view kBase64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// rs/xid's encoding alphabet (base32hex, RFC 4648 §7, lower case).
constexpr std::string_view kXidAlphabet = "0123456789abcdefghijklmnopqrstuv";

constexpr std::array<int8_t, 256> make_base64_values() {
  std::array<int8_t, 256> values{};
  values.fill(-1);
  for (size_t i = 0; i < kBase64Alphabet.size(); ++i)
    values[static_cast<uint8_t>(kBase64Alphabet[i])] = static_cast<int8_t>(i);
  return values;
}
constexpr auto kBase64Values = make_base64_values();

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's url.QueryUnescape: %XX escapes and '+' as a space; a bad escape is an error.
std::optional<std::string> query_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = hex_value(text[i + 1]);
      int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high << 4 | low));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool is_url_safe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace

void append_line(std::string& out, std::string_view data) {
  out.reserve(out.size() + base64_size(data.size()) + 1);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t group = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kBase64Alphabet[(group >> shift) & 63]);
  }
  if (size_t rest = data.size() - i; rest > 0) {
    uint32_t group = at(i) << 16 | (rest == 2 ? at(i + 1) << 8 : 0);
    out.push_back(kBase64Alphabet[(group >> 18) & 63]);
    out.push_back(kBase64Alphabet[(group >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(group >> 6) & 63] : '=');
    out.push_back('=');
  }
  out.push_back('\n');
}

bool decode_base64(std::string_view text, std::string& out) {
  std::array<char, 4> quantum{};
  size_t filled = 0;
  bool ended = false;  // a padded quantum was the last one
  out.reserve(out.size() + text.size() / 4 * 3);
  for (char c : text) {
    if (c == '\r' || c == '\n') continue;
    if (ended) return false;
    quantum[filled++] = c;
    if (filled < 4) continue;
    filled = 0;
    // Padding: "xy==" or "xyz=", only in the last quantum.
    size_t data_chars = 4;
    if (quantum[3] == '=') data_chars = quantum[2] == '=' ? 2 : 3;
    uint32_t group = 0;
    for (size_t k = 0; k < 4; ++k) {
      int value = 0;
      if (k < data_chars) {
        value = kBase64Values[static_cast<uint8_t>(quantum[k])];
        if (value < 0) return false;
      } else if (quantum[k] != '=') {
        return false;
      }
      group = group << 6 | static_cast<uint32_t>(value);
    }
    out.push_back(static_cast<char>(group >> 16));
    if (data_chars > 2) out.push_back(static_cast<char>(group >> 8 & 0xff));
    if (data_chars > 3) out.push_back(static_cast<char>(group & 0xff));
    ended = data_chars < 4;
  }
  return filled == 0;
}

PushBody parse_push_body(std::string_view body) {
  size_t newline = body.find('\n');
  if (newline == std::string_view::npos || newline == 0) return {PushKind::kClose, {}};
  PushBody push{PushKind::kData, {}};
  if (!decode_base64(body.substr(0, newline), push.data)) return {PushKind::kInvalid, {}};
  return push;
}

bool PullDecoder::take_line(std::string_view line, std::string& out) {
  ++lines_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  ended_on_data_ = !line.empty();
  if (line.empty()) return true;  // keepalive
  if (!decode_base64(line, out)) failed_ = true;
  return !failed_;
}

bool PullDecoder::feed(std::string_view bytes, std::string& out) {
  while (!failed_ && !bytes.empty()) {
    size_t newline = bytes.find('\n');
    std::string_view piece = bytes.substr(0, newline);
    if (partial_.size() + piece.size() + (newline == std::string_view::npos ? 0 : 1) > max_line_) {
      failed_ = true;
      break;
    }
    if (newline == std::string_view::npos) {
      partial_.append(piece);
      break;
    }
    bytes.remove_prefix(newline + 1);
    if (partial_.empty()) {
      take_line(piece, out);
    } else {
      partial_.append(piece);
      std::string line = std::move(partial_);
      partial_.clear();
      take_line(line, out);
    }
  }
  return !failed_;
}

bool PullDecoder::finish(std::string& out) {
  if (failed_) return false;
  if (partial_.empty()) return true;
  std::string line = std::move(partial_);
  partial_.clear();
  return take_line(line, out);
}

std::string_view path_of_target(std::string_view target) {
  target = target.substr(0, target.find('?'));
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && std::equal(scheme.begin(), scheme.end(), target.begin(), [](char a, char b) {
          return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
        })) {
      std::string_view rest = target.substr(scheme.size());
      size_t slash = rest.find('/');
      return slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    }
  }
  return target;
}

std::optional<std::string> token_of_target(std::string_view target) {
  size_t mark = target.find('?');
  if (mark == std::string_view::npos) return std::string();
  std::string_view query = target.substr(mark + 1);
  std::optional<std::string> token;
  bool malformed = false;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.find(';') != std::string_view::npos) {
      malformed = true;
      continue;
    }
    if (pair.empty()) continue;
    size_t equals = pair.find('=');
    auto name = query_unescape(pair.substr(0, equals));
    auto value = query_unescape(equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1));
    if (!name || !value) {
      malformed = true;
      continue;
    }
    if (!token && *name == "token") token = std::move(*value);
  }
  if (malformed) return std::nullopt;
  return token.value_or(std::string());
}

bool is_xid_token(std::string_view token) {
  return token.size() == kTokenSize &&
         std::all_of(token.begin(), token.end(), [](char c) { return kXidAlphabet.find(c) != std::string_view::npos; });
}

std::optional<std::string> token_of_authorize_body(std::string_view body) {
  if (!body.starts_with(kTokenPrefix)) return std::nullopt;
  std::string_view token = body.substr(kTokenPrefix.size());
  if (token.empty() || token.size() > kMaxTokenSize || !std::all_of(token.begin(), token.end(), is_url_safe)) {
    return std::nullopt;
  }
  return std::string(token);
}

std::string token_from_random(std::span<const uint8_t, kTokenSize> random) {
  std::string token(kTokenSize, '0');
  for (size_t i = 0; i < kTokenSize; ++i) token[i] = kXidAlphabet[random[i] & 31];
  return token;
}

void ByteQueue::append(std::string bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  pieces_.push_back(std::move(bytes));
}

size_t ByteQueue::read(std::span<char> out) {
  size_t copied = 0;
  while (copied < out.size() && !pieces_.empty()) {
    const std::string& front = pieces_.front();
    size_t n = std::min(out.size() - copied, front.size() - offset_);
    std::copy_n(front.data() + offset_, n, out.data() + copied);
    copied += n;
    offset_ += n;
    if (offset_ == front.size()) {
      pieces_.pop_front();
      offset_ = 0;
    }
  }
  size_ -= copied;
  return copied;
}

std::string ByteQueue::take(size_t max) {
  std::string out(std::min(max, size_), '\0');
  read(out);
  return out;
}

void ByteQueue::clear() {
  pieces_.clear();
  offset_ = 0;
  size_ = 0;
}

}  // namespace strait::agent::pht
