// Injected time: real clocks for production, a manual clock for tests.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace iotpipe {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in microseconds since the Unix epoch.
  virtual int64_t NowMicros() const = 0;
  // Blocks until NowMicros() >= t (or returns at once for simulated clocks).
  virtual void SleepUntil(int64_t t_us) = 0;
};

class RealClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SleepUntil(int64_t t_us) override {
    int64_t d = t_us - NowMicros();
    if (d > 0) std::this_thread::sleep_for(std::chrono::microseconds(d));
  }
  static RealClock* Get() {
    static RealClock c;
    return &c;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t t_us = 0) : t_(t_us) {}
  int64_t NowMicros() const override { return t_.load(); }
  void SleepUntil(int64_t t_us) override {
    int64_t cur = t_.load();
    while (cur < t_us && !t_.compare_exchange_weak(cur, t_us)) {
    }
  }
  void Advance(int64_t d_us) { t_ += d_us; }
  void Set(int64_t t_us) { t_ = t_us; }

 private:
  std::atomic<int64_t> t_;
};

inline int64_t MonoMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace iotpipe
