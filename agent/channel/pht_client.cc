#include "agent/channel/pht_client.h"

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/tcp.h"
#include "common/address.h"
#include "common/io_operation.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using common::str_cat;
using Clock = asio::steady_timer::clock_type;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// Bytes of one write pushed at once: base64 of 64 KiB is 87 KiB, well inside what servers
// take (GOST's reads a whole line; ours up to 1 MiB).
constexpr size_t kMaxPushPayload = 64 * 1024;
// Pulled bytes held for the reader; the pull waits (and TCP pushes back) beyond this.
constexpr size_t kReceiveBuffer = 256 * 1024;
constexpr size_t kMaxAnswerHead = 8 * 1024;
constexpr size_t kMaxAnswerBody = 64 * 1024;  // authorize and push answers are tiny
// A push or authorize round trip (the server holds a push up to 30 s while its reader is slow).
constexpr auto kRoundTripTimeout = std::chrono::seconds(60);
// A pull silent for this long is dead: servers send a keepalive line every 10 s.
constexpr auto kPullSilence = std::chrono::seconds(60);
// A kept connection idle longer than this is replaced rather than risked.
constexpr auto kMaxReuseIdle = std::chrono::seconds(30);
constexpr auto kGoodbyeTimeout = std::chrono::seconds(5);
// Go's default User-Agent, which GOST's requests carry.
constexpr std::string_view kUserAgent = "Go-http-client/1.1";

struct Settings {
  PhtDialerConfig config;
  std::unique_ptr<Dialer> tcp = make_tcp_dialer();
};

struct Connection {
  StreamPtr stream;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;
  bool used = false;  // carried a request: the server may have closed it since
};

struct Answer {
  unsigned status = 0;
  std::string body;
  bool keep_alive = false;
};

// One tunnel, on the executor it was dialed on: the stream, its pull loop and its goodbye.
class PhtClient : public std::enable_shared_from_this<PhtClient> {
 public:
  PhtClient(asio::any_io_executor executor, std::shared_ptr<const Settings> settings, std::string address,
            std::string authority, DialOptions options)
      : executor_(std::move(executor)),
        settings_(std::move(settings)),
        address_(std::move(address)),
        authority_(std::move(authority)),
        options_(options),
        changed_(executor_, Clock::time_point::max()) {}

  const asio::any_io_executor& executor() const { return executor_; }
  const std::string& address() const { return address_; }

  asio::awaitable<error_code> authorize() {
    auto opened = co_await connect();
    if (!opened) co_return opened.error();
    push_.stream = std::move(*opened);
    common::StreamDeadline deadline(*push_.stream);
    deadline.arm(settings_->config.handshake_timeout);
    auto answer = co_await round_trip(push_, request("GET", settings_->config.authorize_path, "", nullptr));
    deadline.disarm();
    if (!answer) co_return deadline.expired() ? asio::error::timed_out : answer.error();
    auto token = pht::token_of_authorize_body(answer->body);
    if (answer->status != 200 || !token) {
      spdlog::info("pht dialer: {}: authorize answered {} without a token", address_, answer->status);
      co_return answer->status == 200 ? make_error_code(boost::system::errc::bad_message)
                                      : error_code(asio::error::connection_refused);
    }
    token_ = std::move(*token);
    keep_or_drop(push_, *answer);
    co_return error_code{};
  }

  void start_pull() {
    asio::co_spawn(executor_, pull_loop(shared_from_this()), [address = address_](std::exception_ptr e) {
      if (e) spdlog::error("pht dialer: {}: a pull loop ended by an unexpected exception", address);
    });
  }

  asio::awaitable<common::IoResult> read(asio::mutable_buffer buffer) {
    auto self = shared_from_this();
    for (;;) {
      if (buffer.size() == 0) co_return common::IoResult{error_code{}, 0};
      if (!inbound_.empty()) {
        size_t n = inbound_.read(std::span(static_cast<char*>(buffer.data()), buffer.size()));
        notify();  // room for the pull
        co_return common::IoResult{error_code{}, n};
      }
      if (closed_) co_return common::IoResult{asio::error::operation_aborted, 0};
      if (pull_error_) co_return common::IoResult{pull_error_, 0};
      co_await changed_.async_wait(kUseTuple);
    }
  }

  asio::awaitable<error_code> wait_readable() {
    auto self = shared_from_this();
    while (inbound_.empty() && !closed_ && !pull_error_) co_await changed_.async_wait(kUseTuple);
    co_return closed_ ? error_code(asio::error::operation_aborted) : error_code{};
  }

  asio::awaitable<common::IoResult> write(asio::const_buffer buffer) {
    auto self = shared_from_this();
    if (closed_) co_return common::IoResult{asio::error::operation_aborted, 0};
    if (push_error_) co_return common::IoResult{push_error_, 0};
    const size_t n = std::min(buffer.size(), kMaxPushPayload);
    if (n == 0) co_return common::IoResult{error_code{}, 0};
    std::string body;
    pht::append_line(body, std::string_view(static_cast<const char*>(buffer.data()), n));
    pushing_ = true;
    auto answer = co_await push(std::move(body));
    pushing_ = false;
    if (closed_) co_return common::IoResult{asio::error::operation_aborted, 0};
    if (answer && answer->status == 200) co_return common::IoResult{error_code{}, n};
    // A push lost or refused leaves a hole in the stream: the tunnel cannot be written again.
    push_error_ = answer ? error_code(asio::error::broken_pipe) : answer.error();
    if (answer) spdlog::info("pht dialer: {}: a push answered {}", address_, answer->status);
    co_return common::IoResult{push_error_, 0};
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (pushing_ && push_.stream) push_.stream->close();  // aborts the write in flight
    notify();
    asio::co_spawn(executor_, goodbye(shared_from_this()), [address = address_](std::exception_ptr e) {
      if (e) spdlog::error("pht dialer: {}: closing a tunnel ended by an unexpected exception", address);
    });
  }

 private:
  void notify() { changed_.cancel(); }

  asio::awaitable<Result<StreamPtr>> connect() {
    auto opened = co_await settings_->tcp->dial(executor_, address_, Network::kTcp, options_);
    if (!opened || !settings_->config.tls) co_return opened;
    common::StreamDeadline deadline(**opened);
    deadline.arm(settings_->config.handshake_timeout);
    auto secured = co_await settings_->config.tls->connect(std::move(*opened), authority_);
    if (!secured) co_return deadline.expired() ? asio::error::timed_out : secured.error();
    deadline.disarm();
    co_return secured;
  }

  std::string request(std::string_view method, std::string_view path, std::string_view body, const std::string* token) {
    std::string out = str_cat(method, " ", path, token ? str_cat("?", pht::kTokenPrefix, *token) : std::string(),
                              " HTTP/1.1\r\nHost: ", authority_, "\r\nUser-Agent: ", kUserAgent, "\r\n");
    if (method == "POST") out += str_cat("Content-Length: ", body.size(), "\r\n");
    for (const auto& [name, value] : settings_->config.headers) out += str_cat(name, ": ", value, "\r\n");
    out += "\r\n";
    out += body;
    return out;
  }

  // One request and its whole answer on `connection`, within kRoundTripTimeout. `*silent`
  // tells a failure before any byte of an answer (a kept connection the server had closed).
  asio::awaitable<Result<Answer>> round_trip(Connection& connection, std::string text, bool* silent = nullptr) {
    common::StreamDeadline deadline(*connection.stream);
    deadline.arm(kRoundTripTimeout);
    connection.used = true;
    auto [write_error, written] = co_await asio::async_write(*connection.stream, asio::buffer(text), kUseTuple);
    if (write_error) {
      if (silent != nullptr) *silent = !deadline.expired();
      co_return deadline.expired() ? asio::error::timed_out : write_error;
    }
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxAnswerHead);
    parser.body_limit(kMaxAnswerBody);
    auto [read_error, n] = co_await http::async_read(*connection.stream, connection.buffer, parser, kUseTuple);
    if (read_error) {
      if (silent != nullptr) *silent = !parser.got_some() && connection.buffer.size() == 0 && !deadline.expired();
      co_return deadline.expired() ? asio::error::timed_out : read_error;
    }
    deadline.disarm();
    const auto& message = parser.get();
    co_return Answer{message.result_int(), message.body(), message.keep_alive()};
  }

  void keep_or_drop(Connection& connection, const Answer& answer) {
    if (answer.keep_alive) {
      connection.idle_since = Clock::now();
    } else {
      connection.stream.reset();
    }
  }

  asio::awaitable<Result<Answer>> push(std::string body) {
    for (int attempt = 0;; ++attempt) {
      if (push_.stream && Clock::now() - push_.idle_since > kMaxReuseIdle) push_.stream.reset();
      if (!push_.stream) {
        auto opened = co_await connect();
        if (!opened) co_return opened.error();
        push_ = Connection{std::move(*opened), {}, Clock::now(), false};
      }
      const bool reused = push_.used;
      bool silent = false;
      auto answer = co_await round_trip(push_, request("POST", settings_->config.push_path, body, &token_), &silent);
      if (answer) {
        keep_or_drop(push_, *answer);
        co_return answer;
      }
      push_.stream.reset();
      // Only a kept connection that answered nothing is tried again, on a new one: the server
      // closed it before reading the push (as Go's client retries).
      if (closed_ || !reused || !silent || attempt > 0) co_return answer.error();
    }
  }

  // Pulls until the server's side ends, the tunnel closes or a pull fails.
  static asio::awaitable<void> pull_loop(std::shared_ptr<PhtClient> self) {
    bool answered = false;  // a pull was answered 200 before
    bool retried = false;
    Connection connection;
    error_code outcome;
    while (!self->closed_) {
      if (!connection.stream) {
        auto opened = co_await self->connect();
        if (!opened) {
          outcome = opened.error();
          break;
        }
        connection = Connection{std::move(*opened), {}, Clock::now(), false};
      }
      self->pull_stream_ = connection.stream.get();
      bool silent = false;
      const bool reused = connection.used;
      outcome = co_await self->pull_once(connection, answered, &silent);
      self->pull_stream_ = nullptr;
      if (!outcome) {
        retried = false;
        continue;
      }
      // A kept connection that answered nothing was closed by the server: one new try.
      if (!silent || !reused || retried || self->closed_) break;
      retried = true;
      connection.stream.reset();
    }
    if (!self->closed_ && outcome != asio::error::eof) {
      spdlog::info("pht dialer: {}: pull failed: {}", self->address_, outcome.message());
    }
    self->pull_error_ = outcome ? outcome : error_code(asio::error::operation_aborted);
    self->notify();
  }

  // One pull answer: its lines into inbound_. Returns eof when the server's side ended;
  // `*silent` tells a failure before any byte of the answer.
  asio::awaitable<error_code> pull_once(Connection& connection, bool& answered, bool* silent) {
    common::StreamDeadline deadline(*connection.stream);
    deadline.arm(kPullSilence);
    connection.used = true;
    auto text = request("GET", settings_->config.pull_path, "", &token_);
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(kMaxAnswerHead);
    parser.body_limit(boost::none);
    auto [write_error, written] = co_await asio::async_write(*connection.stream, asio::buffer(text), kUseTuple);
    error_code error = write_error;
    if (!error) {
      std::tie(error, written) =
          co_await http::async_read_header(*connection.stream, connection.buffer, parser, kUseTuple);
    }
    if (error) {
      if (closed_) co_return asio::error::operation_aborted;
      if (deadline.expired()) co_return asio::error::timed_out;
      *silent = !parser.got_some() && connection.buffer.size() == 0;
      co_return error;
    }
    if (parser.get().result_int() != 200) {
      // GOST's client stops at any refusal; once a pull was answered, a refusal means the
      // server forgot the tunnel: its end.
      if (!answered) spdlog::info("pht dialer: {}: pull answered {}", address_, parser.get().result_int());
      co_return answered ? error_code(asio::error::eof) : error_code(asio::error::connection_refused);
    }
    answered = true;
    pht::PullDecoder decoder;
    std::array<char, 16 * 1024> chunk{};
    std::string decoded;
    while (!parser.is_done()) {
      deadline.disarm();
      while (inbound_.size() >= kReceiveBuffer && !closed_) co_await changed_.async_wait(kUseTuple);
      if (closed_) co_return asio::error::operation_aborted;
      deadline.arm(kPullSilence);
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto [read_error, n] =
          co_await http::async_read_some(*connection.stream, connection.buffer, parser, kUseTuple);
      if (read_error == http::error::need_buffer) read_error = {};
      if (closed_) co_return asio::error::operation_aborted;
      if (read_error) co_return deadline.expired() ? error_code(asio::error::timed_out) : read_error;
      decoded.clear();
      if (!decoder.feed(std::string_view(chunk.data(), chunk.size() - parser.get().body().size), decoded)) {
        co_return make_error_code(boost::system::errc::bad_message);
      }
      deliver(decoded);
    }
    decoded.clear();
    if (!decoder.finish(decoded)) co_return make_error_code(boost::system::errc::bad_message);
    deliver(decoded);
    // An answer without a single line, or one that ends on bytes: the server's side of the
    // tunnel ended (pht::PullDecoder::ended_on_data).
    if (decoder.lines() == 0 || decoder.ended_on_data()) co_return asio::error::eof;
    if (!parser.keep_alive()) connection.stream.reset();
    co_return error_code{};
  }

  void deliver(std::string& bytes) {
    if (bytes.empty()) return;
    inbound_.append(std::move(bytes));
    bytes = std::string();
    notify();
  }

  // GOST's close: an empty push tells the server that the tunnel ended; then the pull goes.
  static asio::awaitable<void> goodbye(std::shared_ptr<PhtClient> self) {
    Connection connection;
    if (!self->pushing_ && self->push_.stream) connection = std::move(self->push_);
    self->push_.stream.reset();
    if (connection.stream && Clock::now() - connection.idle_since > kMaxReuseIdle) connection.stream.reset();
    if (!connection.stream) {
      auto opened = co_await self->connect();
      if (opened) connection.stream = std::move(*opened);
    }
    if (connection.stream) {
      common::StreamDeadline deadline(*connection.stream);
      deadline.arm(kGoodbyeTimeout);
      co_await self->round_trip(connection,
                                self->request("POST", self->settings_->config.push_path, "", &self->token_));
      connection.stream->close();
    }
    if (self->pull_stream_ != nullptr) self->pull_stream_->close();
  }

  const asio::any_io_executor executor_;
  const std::shared_ptr<const Settings> settings_;
  const std::string address_;    // the node: where connections go
  const std::string authority_;  // Host of the requests, SNI
  const DialOptions options_;
  std::string token_;
  Connection push_;
  Stream* pull_stream_ = nullptr;  // the pull loop's connection, to close it
  pht::ByteQueue inbound_;
  error_code pull_error_;  // eof: the server's side ended
  error_code push_error_;
  bool pushing_ = false;
  bool closed_ = false;
  asio::steady_timer changed_;  // cancel(): something changed; never expires
};

class PhtClientStream final : public Stream {
 public:
  explicit PhtClientStream(std::shared_ptr<PhtClient> client) : client_(std::move(client)) {}
  ~PhtClientStream() override { client_->close(); }

  executor_type get_executor() override { return client_->executor(); }
  // GOST's tunnels have no half close: the only signal is the empty push of close(), and a
  // GOST server then ends both directions; so the end of our data is told on close.
  void shutdown_send() override {}
  void close() override { client_->close(); }
  std::string remote_address() const override { return client_->address(); }
  std::string local_address() const override { return {}; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), client_->read(buffer), std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), client_->write(buffer), std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override {
    asio::co_spawn(get_executor(), client_->wait_readable(),
                   [handler = std::move(handler)](std::exception_ptr failure, error_code ec) mutable {
                     std::move(handler)(failure ? asio::error::no_memory : ec);
                   });
  }

 private:
  std::shared_ptr<PhtClient> client_;
};

class PhtDialer final : public Dialer {
 public:
  explicit PhtDialer(PhtDialerConfig config) : settings_(std::make_shared<Settings>(Settings{std::move(config)})) {}

  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address, Network network,
                                          const DialOptions& options) override {
    if (network != Network::kTcp) co_return asio::error::operation_not_supported;
    auto client = std::make_shared<PhtClient>(executor, settings_, address, authority_of(address), options);
    if (auto error = co_await client->authorize(); error) co_return error;
    client->start_pull();
    co_return StreamPtr(std::make_unique<PhtClientStream>(std::move(client)));
  }

  asio::awaitable<Result<StreamPtr>> handshake(StreamPtr stream, const std::string& address) override {
    spdlog::warn("pht dialer: {}: cannot run over a previous hop's stream (a tunnel needs several connections)",
                 address);
    stream->close();
    co_return asio::error::operation_not_supported;
  }

 private:
  // GOST: `host` (without any port of its own) with the node's port, else the node address.
  std::string authority_of(const std::string& address) const {
    const std::string& host = settings_->config.host;
    if (host.empty()) return address;
    auto node = common::parse_host_port(address);
    if (!node.ok()) return address;
    std::string name = host;
    if (auto own = common::parse_host_port(host); own.ok()) name = own->host;
    return common::HostPort{name, node->port}.to_string();
  }

  std::shared_ptr<const Settings> settings_;
};

}  // namespace

std::unique_ptr<Dialer> make_pht_dialer_from(PhtDialerConfig config) {
  return std::make_unique<PhtDialer>(std::move(config));
}

}  // namespace strait::agent
