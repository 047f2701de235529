// Fuzzes GOST's pht wire codec (agent/protocol/pht) as the pht listener and dialer meet it:
// push bodies, pull answers read in pieces, request targets and authorize answers, with
// round trips through the encoder. First byte: the size of the pieces a pull answer arrives
// in (1..64); the rest is the input of every parser.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/protocol/pht.h"

namespace pht = strait::agent::pht;

namespace {

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// What the decoder makes of `body` fed in pieces of `piece` bytes.
bool pull(std::string_view body, size_t piece, std::string& out, size_t& lines) {
  pht::PullDecoder decoder;
  bool ok = true;
  for (size_t at = 0; ok && at < body.size(); at += piece) ok = decoder.feed(body.substr(at, piece), out);
  if (ok) ok = decoder.finish(out);
  lines = decoder.lines();
  return ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = (data[0] & 63) + 1;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  // Base64: whatever decodes encodes back to text that decodes to the same bytes.
  std::string decoded;
  if (pht::decode_base64(input, decoded)) {
    std::string line;
    pht::append_line(line, decoded);
    check(line.size() == pht::base64_size(decoded.size()) + 1);
    std::string again;
    check(pht::decode_base64(line, again) && again == decoded);
  }

  // A push body: its bytes survive a round trip through the client's encoding. (No bytes at
  // all, as from "\r\n", would encode as GOST's close; its clients never push nothing.)
  auto push = pht::parse_push_body(input);
  if (push.kind == pht::PushKind::kData && !push.data.empty()) {
    std::string body;
    pht::append_line(body, push.data);
    auto again = pht::parse_push_body(body);
    check(again.kind == pht::PushKind::kData && again.data == push.data);
  }

  // A pull answer: the pieces it arrives in change nothing.
  std::string whole;
  std::string pieces;
  size_t whole_lines = 0;
  size_t piece_lines = 0;
  bool whole_ok = pull(input, input.size() + 1, whole, whole_lines);
  bool pieces_ok = pull(input, piece, pieces, piece_lines);
  check(whole_ok == pieces_ok);
  if (whole_ok) check(whole == pieces && whole_lines == piece_lines);

  // Targets and tokens.
  auto path = pht::path_of_target(input);
  check(path.size() <= input.size());
  if (auto token = pht::token_of_target(input)) check(token->size() <= input.size());
  if (auto token = pht::token_of_authorize_body(input)) {
    check(!token->empty() && token->size() <= pht::kMaxTokenSize);
    check(pht::token_of_target("/push?token=" + *token) == *token);  // sent back as it came
  }

  // The byte queue gives back what it took, in order, across pieces.
  pht::ByteQueue queue;
  for (size_t at = 0; at < input.size(); at += piece) queue.append(std::string(input.substr(at, piece)));
  check(queue.size() == input.size());
  std::string back = queue.take(piece);
  back += queue.take(input.size());
  check(back == input && queue.empty());
  return 0;
}
