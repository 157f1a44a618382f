// The ML side of a pipeline run (`run`, `process`, `lifecycle-demo`): the production model watcher
// (promotions hot-swap), shadow scoring (the `shadow` alias's model beside production, results in
// DATA/shadow_scores), the live drift monitor (/metrics gauges) and the optional closed loop.
// Only active for model detectors (lstm, auto, ensemble); the rest is a no-op.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "cli/common.h"
#include "lifecycle/live_monitor.h"
#include "lifecycle/retrain.h"
#include "lifecycle/shadow.h"
#include "lifecycle/watcher.h"
#include "sinks/sink.h"

namespace iotpipe::cli {

class MlRun {
 public:
  explicit MlRun(const PipelineArgs& args);
  ~MlRun();
  // After the Pipeline is built, before Run: watchers (the shadow model is loaded now so that its
  // checkpoint is restored), monitor, auto-retrainer. An error is a bad option (exit code 2).
  Status Start(Pipeline& p);
  // The observer sink feeding the drift monitor and the shadow scores (null without a model detector).
  Sink* sink() { return sink_.get(); }
  // After Run: stops the threads, flushes the shadow rows.
  void Finish();
  // Prometheus text of the drift monitor (empty without a model detector).
  std::function<std::string()> MetricsText();
  // The drift monitor's snapshot as JSON text (empty without a model detector).
  std::function<std::string()> DriftJson();
  ml::LiveMonitor* monitor() { return monitor_.get(); }
  ml::AutoRetrainer* retrainer() { return retrainer_.get(); }
  ml::ShadowSink* shadow_sink() { return shadow_sink_.get(); }

 private:
  PipelineArgs args_;
  bool model_detector_ = false;
  std::unique_ptr<ml::ModelWatcher> prod_watcher_, shadow_watcher_;
  std::unique_ptr<ml::ShadowSink> shadow_sink_;
  std::unique_ptr<ml::LiveMonitor> monitor_;
  std::unique_ptr<ml::AutoRetrainer> retrainer_;
  bool sink_error_logged_ = false;
  std::unique_ptr<Sink> sink_;
};

}  // namespace iotpipe::cli
