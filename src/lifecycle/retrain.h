// The closed loop (--auto-retrain): drift that lasts -> train on recent stored data -> the new
// version goes under `shadow` -> after a shadow period, compare it with production on the rows both
// scored (lifecycle/shadow.h) -> promote it to `production` only if it does at least as well (the old
// version stays in the registry and in the alias history, so `models rollback` undoes it).
// Each step is logged. The trainer runs on its own thread with one LibTorch thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "lifecycle/live_monitor.h"
#include "lifecycle/shadow.h"
#include "model/train.h"

namespace iotpipe::ml {

struct RetrainOptions {
  TrainOptions train;              // data_dir, model_dir, since_us (recent span), epochs, sizes
  double drift_for_s = 60;         // continuous drift before retraining
  double shadow_s = 60;            // shadow scoring before the decision
  int64_t min_shadow_rows = 1000;  // rows the new version must have scored in shadow
  double cooldown_s = 300;         // after a decision, before the next retraining
  double poll_s = 1;
};

// What happened, step by step (also logged); for the demo, tests and /metrics.
struct RetrainEvent {
  std::string step;  // drift, trained, shadow, compared, promoted, kept, failed
  std::string version;
  std::string detail;
};

// Trains on the recent span and registers the result under `shadow`. Returns the report.
Result<TrainReport> TrainAndShadow(const TrainOptions& opt);
// Decides about `version` (under shadow) from the shadow rows it scored; promotes it to production
// if it is at least as good. Returns the comparison (promoted: *promoted = true).
Result<ShadowComparison> DecideShadow(const std::string& data_dir, const std::string& model_dir,
                                      const std::string& version, bool* promoted, int64_t min_rows = 1);

class AutoRetrainer {
 public:
  // The shadow rows are read from what the ShadowSink has committed (it flushes every few seconds).
  AutoRetrainer(RetrainOptions opt, LiveMonitor* monitor);
  ~AutoRetrainer();
  void Start();
  void Stop();
  std::vector<RetrainEvent> events() const;

 private:
  void Loop();
  void Log(RetrainEvent e);
  RetrainOptions opt_;
  LiveMonitor* monitor_;
  std::thread th_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<RetrainEvent> events_;
};

}  // namespace iotpipe::ml
