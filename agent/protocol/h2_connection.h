#pragma once

// One HTTP/2 connection (RFC 9113) over nghttp2, without I/O: bytes from the peer go in,
// frames to send come out, and each request the application sees is a StreamState. The
// Asio session (agent/channel/h2_session) drives it from its reader and writer coroutines;
// the fuzz target (tests/fuzz/h2_frames_fuzz.cc) drives the very same callbacks from a buffer.
//
// Bounds: at most max_concurrent_streams states exist at once (a HEADERS beyond that is
// refused with RST_STREAM REFUSED_STREAM); a header list over max_header_list_size is
// dropped and the stream answered 431 (server) or failed (client); received body bytes are
// acknowledged with WINDOW_UPDATE only as the application reads them (nghttp2's automatic
// window update is off, nghttp2_session_consume counts what was read), so what is buffered
// is at most the connection window and a slow reader stops the peer; a stream's writes
// queue at most send_buffer bytes. nghttp2 itself limits SETTINGS/PING floods,
// CONTINUATION frames and the rate of stream resets.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

struct nghttp2_session;

namespace strait::agent::h2 {

using Fields = std::vector<std::pair<std::string, std::string>>;

// RFC 9113 §7 error codes used here.
constexpr uint32_t kNoError = 0x0;
constexpr uint32_t kProtocolError = 0x1;
constexpr uint32_t kRefusedStream = 0x7;
constexpr uint32_t kCancel = 0x8;

// One header section: a request's pseudo-header fields or a response's status, and the
// regular fields (names in lower case, as HTTP/2 carries them).
struct Head {
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  int status = 0;
  Fields fields;

  // The first value of field `name` (lower case), empty when absent.
  std::string_view field(std::string_view name) const;
};

struct Limits {
  uint32_t max_concurrent_streams = 256;
  uint32_t max_header_list_size = 16 * 1024;
  uint32_t stream_window = 1024 * 1024;       // SETTINGS_INITIAL_WINDOW_SIZE we grant
  uint32_t connection_window = 4 * 1024 * 1024;  // what all streams may hold unread
  size_t send_buffer = 64 * 1024;             // bytes a stream's writes queue before waiting
};

// How an h2/h2c listener answers a request (GOST listener/http2/h2): without `path` only
// CONNECT opens a tunnel (else 405); with `path` the request path must be exactly it (else
// 400), whatever the method. 200 means the stream is the tunnel.
int tunnel_request_status(const Head& request, std::string_view path);

enum class Role { kClient, kServer };

// What the connection knows of one stream; owned by the Connection, used by the application
// from submit_request()/take_request() until release().
struct StreamState {
  int32_t id = 0;
  Head head;  // the peer's: the request (server) or the final response (client)
  size_t head_size = 0;
  bool head_complete = false;
  bool head_too_large = false;

  std::deque<std::vector<uint8_t>> received;  // body bytes not read yet, one chunk per DATA
  size_t received_offset = 0;
  size_t buffered = 0;
  bool remote_end = false;  // END_STREAM received

  std::vector<uint8_t> outgoing;  // body bytes queued, sent as the peer's window allows
  size_t outgoing_offset = 0;
  bool local_end = false;        // END_STREAM asked for (after the queued bytes)
  bool end_sent = false;         // END_STREAM went out
  bool body_submitted = false;   // request or response sent with a body that reads `outgoing`
  bool deferred = false;         // nghttp2 waits for resume_data
  bool responded = false;

  bool reset_sent = false;
  bool closed = false;  // nghttp2 closed the stream
  uint32_t error = 0;   // RST_STREAM code (either way) when it ended so
  bool released = false;
  void* user = nullptr;  // the application's stream object
  bool event_pending = false;  // free for the observer: an event is queued for `user`

  size_t queued() const { return outgoing.size() - outgoing_offset; }
};

class Observer {
 public:
  virtual ~Observer() = default;
  // Something changed for `stream`: body bytes, its end, a reset, its head, room to write.
  // Called from inside receive()/take_output(): it must not call back into the Connection.
  virtual void on_stream_event(StreamState& stream) = 0;
  // The last stream is gone (released by the application and closed by nghttp2).
  virtual void on_idle() {}
};

class Connection {
 public:
  // Sends our SETTINGS and connection window first. nullptr when nghttp2 cannot allocate.
  static std::unique_ptr<Connection> create(Role role, const Limits& limits, Observer* observer);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Feeds bytes read from the peer: 0, or a negative nghttp2 error after which the
  // connection is dead (nghttp2_strerror names it). Protocol errors that nghttp2 answers
  // with GOAWAY return 0; then wants_read() turns false and protocol_error() says why.
  int receive(std::span<const uint8_t> bytes);
  // Appends frames to send to `out` until it holds `limit` bytes or nothing is ready; 0 or
  // a negative nghttp2 error.
  int take_output(std::vector<uint8_t>& out, size_t limit);
  bool wants_read() const;
  bool wants_write() const;
  bool settings_received() const { return settings_received_; }
  // Why nghttp2 ended the connection (empty while none): its error and what it saw.
  const std::string& protocol_error() const { return protocol_error_; }

  // Server: the next request whose header section is complete, or nullptr.
  StreamState* take_request();
  // Server, before any receive(): an HTTP/1.1 request that asked for `Upgrade: h2c` (RFC 7540
  // §3.2) becomes stream 1, already ended by the peer, and the next take_request();
  // `settings` is the decoded HTTP2-Settings field. 0 or an nghttp2 error.
  int upgrade(std::span<const uint8_t> settings, Head request, bool head_request);
  // The stream with `id`, while it exists.
  StreamState* find(int32_t id);
  // Client: sends `head` (a body follows through write()); nullptr and `error` when refused.
  StreamState* submit_request(const Head& head, int& error);
  // Client: whether a new request may be sent (no GOAWAY, stream ids left).
  bool can_submit_request() const;
  // Server: answers a taken request; `end_stream` for a response without body. 0 or an
  // nghttp2 error (the stream was reset meanwhile).
  int submit_response(StreamState& stream, int status, const Fields& fields, bool end_stream);

  // Queues body bytes; returns how many fit (0: wait for on_stream_event).
  size_t write(StreamState& stream, std::span<const uint8_t> bytes);
  // END_STREAM after the queued bytes.
  void end_stream(StreamState& stream);
  // Copies received body bytes out and acknowledges them to the peer.
  size_t read(StreamState& stream, std::span<uint8_t> out);
  // RST_STREAM with `code` unless the stream already ended.
  void reset(StreamState& stream, uint32_t code);
  // The application is done with `stream`; it is freed once nghttp2 closed it. When our side
  // had ended, what is queued still goes out, and then RST_STREAM NO_ERROR tells a peer that
  // has not ended that we want no more (RFC 9113 §8.1); otherwise the stream is reset at once
  // with CANCEL.
  void release(StreamState& stream);
  // GOAWAY with `code`, and the connection ends once it is sent.
  void terminate(uint32_t code);
  // Graceful GOAWAY (NO_ERROR, last stream = the last one seen): the peer opens no more
  // streams, the open ones finish, then the connection ends.
  void shutdown();

  // Streams the application holds or that are still open.
  size_t stream_count() const { return streams_.size(); }
  template <typename F>
  void for_each_stream(F f) {
    for (auto& [id, stream] : streams_) f(*stream);
  }

 private:
  struct Callbacks;
  Connection(Role role, const Limits& limits, Observer* observer);
  void forget(int32_t id);
  void notify(StreamState& stream) {
    if (observer_ != nullptr && !stream.released) observer_->on_stream_event(stream);
  }

  const Role role_;
  const Limits limits_;
  Observer* observer_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<StreamState>> streams_;
  std::deque<int32_t> requests_;  // server: complete request heads not taken yet
  bool settings_received_ = false;
  std::string protocol_error_;
  std::string last_library_error_;  // nghttp2's latest complaint, named if it ends the connection
};

}  // namespace strait::agent::h2
