#include "cli/ml_run.h"

#include <spdlog/spdlog.h>

#include "core/timeutil.h"
#include "detect/lstm.h"
#include "model/registry.h"

namespace iotpipe::cli {

MlRun::MlRun(const PipelineArgs& args) : args_(args) { model_detector_ = ParseLstmMode(args.detector).ok(); }

MlRun::~MlRun() { Finish(); }

Status MlRun::Start(Pipeline& p) {
  if (!model_detector_) return Status::OK();
  sink_ = MakeObserver([this](const ProcessedBatch& pb) {
    if (monitor_) monitor_->Observe(pb);
    if (shadow_sink_) {
      Status s = shadow_sink_->Add(pb);
      if (!s.ok() && !sink_error_logged_) {
        spdlog::error("shadow scores not stored: {}", s.message());
        sink_error_logged_ = true;
      }
    }
    return Status::OK();
  });
  const LstmMode mode = ParseLstmMode(args_.detector).value();
  Processor* proc = &p.processor();
  monitor_ = std::make_unique<ml::LiveMonitor>(&p.dicts());
  monitor_->SetDetector(proc->detector());
  ml::LiveMonitor* mon = monitor_.get();
  ml::Registry reg(args_.model_dir);
  std::string cur = reg.Alias(args_.model);
  if (!cur.empty()) {  // an alias: watched (a pinned version is not)
    prod_watcher_ = std::make_unique<ml::ModelWatcher>(args_.model_dir, args_.model, cur, mode, LstmThreads(args_),
                                                       [proc, mon](std::shared_ptr<const Detector> d) {
                                                         mon->SetDetector(d);
                                                         proc->SetDetector(std::move(d));
                                                       });
    prod_watcher_->Start();
  }
  if (!args_.no_shadow && args_.model != "shadow") {
    shadow_sink_ = std::make_unique<ml::ShadowSink>(args_.data_dir, &p.dicts(), 262144, 5.0);
    shadow_watcher_ = std::make_unique<ml::ModelWatcher>(
        args_.model_dir, "shadow", "", mode, LstmThreads(args_), [proc](std::shared_ptr<const Detector> d) {
          if (d)
            spdlog::info("shadow scoring with {}", d->version());
          else
            spdlog::info("shadow scoring stopped (no model under 'shadow')");
          proc->SetShadow(std::move(d));
        });
    shadow_watcher_->AllowClear();
    shadow_watcher_->CheckOnce();  // now, so that the shadow state checkpoint is restored by Run
    shadow_watcher_->Start();
  }
  if (args_.auto_retrain) {
    ml::RetrainOptions ro;
    ro.train.data_dir = args_.data_dir;
    ro.train.model_dir = args_.model_dir;
    auto span = ParseDurationMicros(args_.retrain_span);
    if (!span.ok()) return Status::Error("--retrain-span: " + span.status().message());
    ro.train.since_us = span.value();
    ro.train.epochs = args_.retrain_epochs;
    ro.train.torch_threads = 1;
    ro.train.threads = 1;
    if (auto* l = dynamic_cast<const LstmDetector*>(proc->detector().get())) {
      ro.train.window = l->model().weights.window;  // same window: the state layout (and windows) carry over
      ro.train.hidden = l->model().weights.hidden;
      ro.train.tod_bins = l->model().scaler.tod_bins;  // same scaler kind (feature channels need a seasonal one)
    }
    ro.drift_for_s = args_.retrain_after_s;
    ro.shadow_s = args_.shadow_period_s;
    retrainer_ = std::make_unique<ml::AutoRetrainer>(ro, monitor_.get());
    retrainer_->Start();
  }
  return Status::OK();
}

void MlRun::Finish() {
  if (retrainer_) retrainer_->Stop();
  if (prod_watcher_) prod_watcher_->Stop();
  if (shadow_watcher_) shadow_watcher_->Stop();
  if (shadow_sink_) {
    Status s = shadow_sink_->Flush();
    if (!s.ok()) spdlog::error("shadow scores not stored: {}", s.message());
  }
}

std::function<std::string()> MlRun::DriftJson() {
  ml::LiveMonitor* mon = monitor_.get();
  if (!mon) return nullptr;
  return [mon] { return mon->Get().ToJson().dump(); };
}

std::function<std::string()> MlRun::MetricsText() {
  ml::LiveMonitor* mon = monitor_.get();
  if (!mon) return nullptr;
  return [mon] { return mon->PrometheusText(); };
}

}  // namespace iotpipe::cli
