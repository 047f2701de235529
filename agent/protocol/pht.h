#pragma once

// GOST's pht wire format (plain HTTP tunnel): pure encoders and parsers shared by the pht
// listener and dialer (agent/channel/pht_*), fuzzed directly. The exchange itself is told in
// agent/channel/pht.h; sources: go-gost/x internal/util/pht server.go, client.go, conn.go.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace strait::agent::pht {

// Default paths (listener/pht, dialer/pht metadata.go).
constexpr std::string_view kAuthorizePath = "/authorize";
constexpr std::string_view kPushPath = "/push";
constexpr std::string_view kPullPath = "/pull";
// The authorize answer is `token=<token>`; push and pull URLs end in `?token=<token>`.
constexpr std::string_view kTokenPrefix = "token=";
// GOST's tokens are xids (rs/xid): 20 characters of lower-case base32hex.
constexpr size_t kTokenSize = 20;
// Longest token our client takes from an authorize answer.
constexpr size_t kMaxTokenSize = 128;
// GOST's server reads the tunnel 32 KiB at a time (defaultReadBufferSize), one pull line per
// read; GOST's client reads pull lines with a bufio.Scanner, whose lines end at 64 KiB
// (bufio.MaxScanTokenSize): a pull line carries at most 32 KiB, and a reader takes 64 KiB.
constexpr size_t kMaxPullPayload = 32 * 1024;
constexpr size_t kMaxPullLine = 64 * 1024;

// Length of the padded base64 text of `size` bytes.
constexpr size_t base64_size(size_t size) { return (size + 2) / 3 * 4; }

// Appends the padded standard base64 (RFC 4648 §4) of `data` and a '\n': a push body, or one
// line of a pull answer.
void append_line(std::string& out, std::string_view data);

// Decodes padded standard base64 as Go's base64.StdEncoding.DecodeString does: '\r' and '\n'
// anywhere are skipped, padding is required and ends the text, non-zero trailing bits are
// accepted. Appends to `out`; false (and `out` unspecified) on anything else.
bool decode_base64(std::string_view text, std::string& out);

// What GOST's server makes of a push body: it reads the first line only. No '\n' at all (an
// empty body is how a client closes) or an empty line closes the tunnel; otherwise the line
// without its '\n' is base64 of the bytes to deliver, and anything after it is ignored.
enum class PushKind { kClose, kData, kInvalid };
struct PushBody {
  PushKind kind = PushKind::kInvalid;
  std::string data;
};
PushBody parse_push_body(std::string_view body);

// Reads a pull answer's body as GOST's client does: lines split at '\n' with a trailing '\r'
// dropped (bufio.ScanLines); an empty line is a keepalive, any other is base64 of tunnel
// bytes. Lines longer than `max_line` are refused, as Go's scanner refuses them.
class PullDecoder {
 public:
  explicit PullDecoder(size_t max_line = kMaxPullLine) : max_line_(max_line) {}
  // Appends the bytes of every complete line in `bytes` to `out`; false once a line is too
  // long or not base64 (then for good).
  bool feed(std::string_view bytes, std::string& out);
  // The end of the body: a last line without '\n' still counts, as it does for the scanner.
  bool finish(std::string& out);
  // Lines seen so far, keepalives included. An answer that ends with none tells the client
  // that the tunnel's server side is gone (GOST's readLoop then stops).
  size_t lines() const { return lines_; }
  // The last line carried bytes. GOST's servers end an answer after a keepalive line only
  // while the tunnel goes on (older ones answer each 10 s of silence that way); one that
  // ends on bytes ended with the server's side of the tunnel. (GOST's client pulls again
  // and so meets a GOST >= 3.2 server's habit of opening a new tunnel for the old token.)
  bool ended_on_data() const { return ended_on_data_; }

 private:
  bool take_line(std::string_view line, std::string& out);

  size_t max_line_;
  std::string partial_;
  size_t lines_ = 0;
  bool ended_on_data_ = false;
  bool failed_ = false;
};

// The path of a request target: an origin-form target up to '?', or the path of an
// absolute-form one ("http://host/push?..." gives "/push"; no path gives "/").
std::string_view path_of_target(std::string_view target);

// The token of a push or pull target, as Go's Request.ParseForm and Form.Get("token") read
// the query: pairs split at '&', a pair holding ';' or a bad %-escape is an error (Go answers
// 400), names and values percent-decoded with '+' as a space, the first `token` wins.
// nullopt on an error; "" when there is no token.
std::optional<std::string> token_of_target(std::string_view target);

// Whether `token` looks like one of GOST's (an xid). GOST ≥ 3.2 clients make their own token
// and never call authorize, so a server takes a new token from a client only in this form.
bool is_xid_token(std::string_view token);

// The token of an authorize answer's body: what follows "token=", 1 to kMaxTokenSize
// characters that need no escaping in a URL query (GOST's own are xids). nullopt otherwise.
std::optional<std::string> token_of_authorize_body(std::string_view body);

// A token spelled as an xid from kTokenSize random bytes (5 bits of each: 100 bits).
std::string token_from_random(std::span<const uint8_t, kTokenSize> random);

// Bytes in transit one way through a tunnel: appended in pieces, read from the front.
class ByteQueue {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void append(std::string bytes);
  // Moves up to out.size() bytes from the front into `out`; returns how many.
  size_t read(std::span<char> out);
  // Removes and returns up to `max` bytes from the front.
  std::string take(size_t max);
  void clear();

 private:
  std::deque<std::string> pieces_;
  size_t offset_ = 0;  // bytes of pieces_.front() already read
  size_t size_ = 0;
};

}  // namespace strait::agent::pht
