#include "agent/protocol/h2_connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace strait::agent::h2 {
namespace {

// RFC 9113 §6.5.2: each field counts its name, value and 32 bytes towards the list size.
constexpr size_t kFieldOverhead = 32;

nghttp2_nv field(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

// The fields of a header section we send: HTTP/2 wants lower-case names (RFC 9113 §8.2.1).
// `storage` keeps the lowered names alive while nghttp2 copies them.
void append_fields(std::vector<nghttp2_nv>& nva, std::vector<std::string>& storage, const Fields& fields) {
  storage.reserve(fields.size());
  for (const auto& [name, value] : fields) {
    storage.push_back(lower(name));
    nva.push_back(field(storage.back(), value));
  }
}

}  // namespace

std::string_view Head::field(std::string_view name) const {
  for (const auto& [key, value] : fields) {
    if (key == name) return value;
  }
  return {};
}

int tunnel_request_status(const Head& request, std::string_view path) {
  if (path.empty()) return request.method == "CONNECT" ? 200 : 405;
  return request.path == path ? 200 : 400;
}

struct Connection::Callbacks {
  static Connection& self(void* user) { return *static_cast<Connection*>(user); }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    if (c.role_ != Role::kServer || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    if (c.streams_.size() >= c.limits_.max_concurrent_streams) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    auto state = std::make_unique<StreamState>();
    state->id = frame->hd.stream_id;
    c.streams_.emplace(state->id, std::move(state));
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t name_size,
                       const uint8_t* value, size_t value_size, uint8_t, void* user) {
    auto& c = self(user);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    StreamState* s = c.find(frame->hd.stream_id);
    if (s == nullptr || s->head_complete || s->released) return 0;  // trailers are not kept
    s->head_size += name_size + value_size + kFieldOverhead;
    if (s->head_size > c.limits_.max_header_list_size) {
      s->head_too_large = true;
      s->head.fields.clear();
    }
    if (s->head_too_large) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), name_size);
    std::string_view v(reinterpret_cast<const char*>(value), value_size);
    if (n == ":method") {
      s->head.method = v;
    } else if (n == ":scheme") {
      s->head.scheme = v;
    } else if (n == ":authority") {
      s->head.authority = v;
    } else if (n == ":path") {
      s->head.path = v;
    } else if (n == ":status") {
      int status = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), status);
      s->head.status = (ec == std::errc() && end == v.data() + v.size()) ? status : 0;
    } else if (!n.empty() && n.front() != ':') {
      s->head.fields.emplace_back(n, v);
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    if (frame->hd.type == NGHTTP2_SETTINGS) {
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) c.settings_received_ = true;
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    StreamState* s = c.find(frame->hd.stream_id);
    if (s == nullptr) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !s->head_complete) {
      if (c.role_ == Role::kServer) {
        s->head_complete = true;
        c.requests_.push_back(s->id);
      } else if (s->head_too_large) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
      } else if (s->head.status >= 100 && s->head.status < 200) {
        s->head = Head{};  // an interim response (RFC 9110 §15.2): the final one follows
        s->head_size = 0;
      } else {
        s->head_complete = true;
      }
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) s->remote_end = true;
    c.notify(*s);
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t size,
                           void* user) {
    auto& c = self(user);
    StreamState* s = c.find(id);
    if (s == nullptr || s->released) {
      // Nobody will read these: give the window back at once.
      nghttp2_session_consume(session, id, size);
      return 0;
    }
    s->received.emplace_back(data, data + size);
    s->buffered += size;
    c.notify(*s);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    auto& c = self(user);
    StreamState* s = c.find(id);
    if (s == nullptr) return 0;
    s->closed = true;
    if (error_code != NGHTTP2_NO_ERROR) s->error = error_code;
    if (s->released) {
      c.forget(id);
    } else {
      c.notify(*s);
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto& c = self(user);
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
        c.protocol_error_.empty()) {
      c.protocol_error_ = c.last_library_error_.empty()
                              ? std::string("GOAWAY ") + nghttp2_http2_strerror(frame->goaway.error_code)
                              : c.last_library_error_;
    }
    bool end = (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
               (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (!end) return 0;
    StreamState* s = c.find(frame->hd.stream_id);
    if (s == nullptr) return 0;
    s->end_sent = true;
    if (s->released && !s->remote_end && !s->closed && !s->reset_sent) {
      s->reset_sent = true;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int on_error(nghttp2_session*, int lib_error_code, const char* message, size_t size, void* user) {
    auto& c = self(user);
    c.last_library_error_ = std::string(nghttp2_strerror(lib_error_code)) + ": " + std::string(message, size);
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buffer, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void* user) {
    auto& c = self(user);
    auto* s = static_cast<StreamState*>(source->ptr);
    size_t n = std::min(length, s->queued());
    if (n > 0) std::memcpy(buffer, s->outgoing.data() + s->outgoing_offset, n);
    s->outgoing_offset += n;
    if (s->queued() == 0) {
      s->outgoing.clear();
      s->outgoing_offset = 0;
      if (s->local_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      } else if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    if (n > 0) c.notify(*s);  // room for the writer
    return static_cast<ssize_t>(n);
  }
};

std::unique_ptr<Connection> Connection::create(Role role, const Limits& limits, Observer* observer) {
  std::unique_ptr<Connection> c(new Connection(role, limits, observer));
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return nullptr;
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_error_callback2(callbacks, Callbacks::on_error);
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    return nullptr;
  }
  // Window updates follow what the application reads, not what arrives (back-pressure).
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Closed streams are kept only for RFC 7540 priorities, which a tunnel does not use.
  nghttp2_option_set_no_closed_streams(option, 1);
  int rv = role == Role::kServer ? nghttp2_session_server_new2(&c->session_, callbacks, c.get(), option)
                                 : nghttp2_session_client_new2(&c->session_, callbacks, c.get(), option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) return nullptr;
  std::vector<nghttp2_settings_entry> settings = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_size},
  };
  if (role == Role::kClient) settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  if (nghttp2_submit_settings(c->session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size()) != 0 ||
      nghttp2_session_set_local_window_size(c->session_, NGHTTP2_FLAG_NONE, 0,
                                            static_cast<int32_t>(limits.connection_window)) != 0) {
    return nullptr;
  }
  return c;
}

Connection::Connection(Role role, const Limits& limits, Observer* observer)
    : role_(role), limits_(limits), observer_(observer) {}

Connection::~Connection() {
  observer_ = nullptr;
  if (session_ != nullptr) nghttp2_session_del(session_);
}

int Connection::receive(std::span<const uint8_t> bytes) {
  ssize_t rv = nghttp2_session_mem_recv(session_, bytes.data(), bytes.size());
  if (rv < 0) {
    if (protocol_error_.empty()) protocol_error_ = nghttp2_strerror(static_cast<int>(rv));
    return static_cast<int>(rv);
  }
  return 0;
}

int Connection::take_output(std::vector<uint8_t>& out, size_t limit) {
  while (out.size() < limit) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return static_cast<int>(n);
    if (n == 0) break;
    out.insert(out.end(), data, data + n);
  }
  return 0;
}

bool Connection::wants_read() const { return nghttp2_session_want_read(session_) != 0; }
bool Connection::wants_write() const { return nghttp2_session_want_write(session_) != 0; }

StreamState* Connection::find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void Connection::forget(int32_t id) {
  streams_.erase(id);
  if (streams_.empty() && observer_ != nullptr) observer_->on_idle();
}

int Connection::upgrade(std::span<const uint8_t> settings, Head request, bool head_request) {
  auto state = std::make_unique<StreamState>();
  state->id = 1;
  state->head = std::move(request);
  state->head_complete = true;
  state->remote_end = true;
  int rv = nghttp2_session_upgrade2(session_, settings.data(), settings.size(), head_request ? 1 : 0, nullptr);
  if (rv != 0) return rv;
  streams_.emplace(1, std::move(state));
  requests_.push_back(1);
  return 0;
}

StreamState* Connection::take_request() {
  while (!requests_.empty()) {
    StreamState* s = find(requests_.front());
    requests_.pop_front();
    if (s == nullptr || s->released) continue;
    if (s->closed && s->error != 0) {  // reset by the peer before anyone looked at it
      release(*s);
      continue;
    }
    if (s->head_too_large) {  // RFC 9113 §10.5.1
      submit_response(*s, 431, {}, true);
      release(*s);
      continue;
    }
    return s;
  }
  return nullptr;
}

StreamState* Connection::submit_request(const Head& head, int& error) {
  const bool connect = head.method == "CONNECT";
  std::vector<nghttp2_nv> nva = {field(":method", head.method)};
  if (!connect) nva.push_back(field(":scheme", head.scheme.empty() ? std::string_view("http") : head.scheme));
  nva.push_back(field(":authority", head.authority));
  if (!connect) nva.push_back(field(":path", head.path.empty() ? std::string_view("/") : head.path));
  std::vector<std::string> storage;
  append_fields(nva, storage, head.fields);
  auto state = std::make_unique<StreamState>();
  nghttp2_data_provider body{};
  body.source.ptr = state.get();
  body.read_callback = Callbacks::read_body;
  int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &body, nullptr);
  if (id < 0) {
    error = id;
    return nullptr;
  }
  state->id = id;
  state->body_submitted = true;
  return streams_.emplace(id, std::move(state)).first->second.get();
}

bool Connection::can_submit_request() const {
  return role_ == Role::kClient && nghttp2_session_check_request_allowed(session_) != 0;
}

int Connection::submit_response(StreamState& stream, int status, const Fields& fields, bool end_stream) {
  if (stream.responded) return NGHTTP2_ERR_INVALID_STATE;
  std::string status_text = std::to_string(status);
  std::vector<nghttp2_nv> nva = {field(":status", status_text)};
  std::vector<std::string> storage;
  append_fields(nva, storage, fields);
  nghttp2_data_provider body{};
  body.source.ptr = &stream;
  body.read_callback = Callbacks::read_body;
  int rv = nghttp2_submit_response(session_, stream.id, nva.data(), nva.size(), end_stream ? nullptr : &body);
  if (rv != 0) return rv;
  stream.responded = true;
  if (end_stream) {
    stream.local_end = true;
  } else {
    stream.body_submitted = true;
  }
  return 0;
}

size_t Connection::write(StreamState& stream, std::span<const uint8_t> bytes) {
  if (stream.closed || stream.local_end || stream.reset_sent || stream.error != 0) return 0;
  size_t room = limits_.send_buffer > stream.queued() ? limits_.send_buffer - stream.queued() : 0;
  size_t n = std::min(room, bytes.size());
  if (n == 0) return 0;
  if (stream.outgoing_offset > 0) {  // keep the vector at most twice the queue
    stream.outgoing.erase(stream.outgoing.begin(), stream.outgoing.begin() + static_cast<long>(stream.outgoing_offset));
    stream.outgoing_offset = 0;
  }
  stream.outgoing.insert(stream.outgoing.end(), bytes.data(), bytes.data() + n);
  if (stream.body_submitted && stream.deferred) {
    stream.deferred = false;
    nghttp2_session_resume_data(session_, stream.id);
  }
  return n;
}

void Connection::end_stream(StreamState& stream) {
  if (stream.local_end) return;
  stream.local_end = true;
  if (stream.body_submitted && stream.deferred && !stream.closed) {
    stream.deferred = false;
    nghttp2_session_resume_data(session_, stream.id);
  }
}

size_t Connection::read(StreamState& stream, std::span<uint8_t> out) {
  size_t n = 0;
  while (n < out.size() && !stream.received.empty()) {
    auto& chunk = stream.received.front();
    size_t count = std::min(out.size() - n, chunk.size() - stream.received_offset);
    std::memcpy(out.data() + n, chunk.data() + stream.received_offset, count);
    n += count;
    stream.received_offset += count;
    if (stream.received_offset == chunk.size()) {
      stream.received.pop_front();
      stream.received_offset = 0;
    }
  }
  stream.buffered -= n;
  if (n > 0) nghttp2_session_consume(session_, stream.id, n);
  return n;
}

void Connection::reset(StreamState& stream, uint32_t code) {
  if (stream.closed || stream.reset_sent) return;
  stream.reset_sent = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id, code);
}

void Connection::release(StreamState& stream) {
  if (stream.released) return;
  stream.released = true;
  stream.user = nullptr;
  if (stream.buffered > 0) nghttp2_session_consume(session_, stream.id, stream.buffered);
  stream.received.clear();
  stream.received_offset = 0;
  stream.buffered = 0;
  if (stream.closed) return forget(stream.id);
  bool sending = stream.body_submitted || stream.responded;
  if (stream.local_end && sending && !stream.reset_sent && stream.error == 0) {
    // The response head must not be reset before it is out: on_frame_send finishes.
    if (!stream.end_sent || stream.remote_end) return;
    return reset(stream, kNoError);
  }
  reset(stream, kCancel);
}

void Connection::terminate(uint32_t code) { nghttp2_session_terminate_session(session_, code); }

void Connection::shutdown() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

}  // namespace strait::agent::h2
