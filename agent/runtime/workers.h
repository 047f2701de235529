#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace strait::agent {

namespace asio = boost::asio;

// One io_context per thread: a connection lives its whole life on the worker that accepted
// it, so the data path needs no locks.
class Workers {
 public:
  explicit Workers(size_t count);
  ~Workers();

  size_t size() const { return contexts_.size(); }
  asio::any_io_executor executor(size_t index) { return contexts_[index]->get_executor(); }
  // Lets each worker finish what it still runs (closed listeners, ending connections) for up
  // to `grace`, then stops the rest. Coroutines that end on their own thread release their
  // sockets while every io_context is still alive.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> running_{0};
};

}  // namespace strait::agent
