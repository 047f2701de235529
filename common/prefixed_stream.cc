#include "common/prefixed_stream.h"

#include <boost/asio/post.hpp>

namespace strait::common {

PrefixedStream::PrefixedStream(StreamPtr inner, std::string prefix)
    : inner_(std::move(inner)), prefix_(std::move(prefix)) {}

asio::ip::tcp::socket* PrefixedStream::plain_tcp_socket() {
  return consumed_ == prefix_.size() ? inner_->plain_tcp_socket() : nullptr;
}

void PrefixedStream::do_read_some(asio::mutable_buffer buffer, IoHandler handler) {
  if (consumed_ < prefix_.size()) {
    size_t n = asio::buffer_copy(buffer, asio::buffer(prefix_.data() + consumed_, prefix_.size() - consumed_));
    consumed_ += n;
    if (consumed_ == prefix_.size()) std::string().swap(prefix_), consumed_ = 0;
    asio::post(inner_->get_executor(), [handler = std::move(handler), n]() mutable { std::move(handler)(error_code{}, n); });
    return;
  }
  inner_->async_read_some(buffer, std::move(handler));
}

void PrefixedStream::do_write_some(asio::const_buffer buffer, IoHandler handler) {
  inner_->async_write_some(buffer, std::move(handler));
}

void PrefixedStream::do_wait_readable(WaitHandler handler) {
  if (consumed_ < prefix_.size()) {
    asio::post(inner_->get_executor(), [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
    return;
  }
  inner_->async_wait_readable(std::move(handler));
}

StreamPtr with_prefix(StreamPtr inner, std::string prefix) {
  if (prefix.empty()) return inner;
  return std::make_unique<PrefixedStream>(std::move(inner), std::move(prefix));
}

}  // namespace strait::common
