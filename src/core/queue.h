// Bounded MPMC queue: a full queue blocks the producer, which is how backpressure travels upstream.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace iotpipe {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : cap_(capacity) {}

  // Blocks while full. Returns false if the queue was closed.
  bool Push(T v) {
    std::unique_lock<std::mutex> l(mu_);
    not_full_.wait(l, [&] { return q_.size() < cap_ || closed_; });
    if (closed_) return false;
    q_.push_back(std::move(v));
    not_empty_.notify_one();
    return true;
  }
  // Blocks until an item arrives, the timeout passes (nullopt) or the queue is closed and drained.
  std::optional<T> Pop(std::chrono::milliseconds timeout = std::chrono::milliseconds(100)) {
    std::unique_lock<std::mutex> l(mu_);
    if (!not_empty_.wait_for(l, timeout, [&] { return !q_.empty() || closed_; })) return std::nullopt;
    if (q_.empty()) return std::nullopt;
    T v = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return v;
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  bool closed_and_empty() {
    std::lock_guard<std::mutex> l(mu_);
    return closed_ && q_.empty();
  }
  size_t size() {
    std::lock_guard<std::mutex> l(mu_);
    return q_.size();
  }

 private:
  size_t cap_;
  std::deque<T> q_;
  bool closed_ = false;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
};

}  // namespace iotpipe
