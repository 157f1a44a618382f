// Hot model swap: a small thread re-reads an alias (e.g. production) every `interval` and, when it
// points at a new version, loads and validates that model and hands the new detector to `swap`
// (Processor::SetDetector: takes effect from the next batch, no restart, no record dropped).
// A model that fails validation is refused with one log line and the running model stays.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "detect/lstm.h"

namespace iotpipe::ml {

class ModelWatcher {
 public:
  using Swap = std::function<void(std::shared_ptr<const Detector>)>;
  ModelWatcher(std::string model_dir, std::string alias, std::string current_version, LstmMode mode, int threads,
               Swap swap, std::chrono::milliseconds interval = std::chrono::milliseconds(2000));
  ~ModelWatcher();
  void Start();
  void Stop();
  // One check now (also what the thread does); returns true if it swapped.
  bool CheckOnce();
  // The alias may be unset (e.g. `shadow` after its version was promoted): then `swap` gets nullptr
  // and the watcher waits for the alias to point somewhere again. Call before Start.
  void AllowClear() { allow_clear_ = true; }
  std::string current() const;
  int swaps() const { return swaps_.load(); }
  int refusals() const { return refusals_.load(); }

 private:
  std::string dir_, alias_, current_, refused_;
  LstmMode mode_;
  int threads_;
  Swap swap_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread th_;
  std::atomic<int> swaps_{0}, refusals_{0};
  bool allow_clear_ = false;
};

}  // namespace iotpipe::ml
