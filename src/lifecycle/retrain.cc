#include "lifecycle/retrain.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "core/clock.h"
#include "model/registry.h"

namespace iotpipe::ml {

Result<TrainReport> TrainAndShadow(const TrainOptions& opt) {
  auto r = Train(opt);
  if (!r.ok()) return r.status();
  Status s = Registry(opt.model_dir).Promote(r->version, "shadow");
  if (!s.ok()) return s;
  return r;
}

Result<ShadowComparison> DecideShadow(const std::string& data_dir, const std::string& model_dir,
                                      const std::string& version, bool* promoted, int64_t min_rows) {
  *promoted = false;
  auto c = CompareShadow(data_dir, "shadow_model_version = " + SqlQuote("lstm-ae-" + version));
  if (!c.ok()) return c.status();
  Registry reg(model_dir);
  const std::string prod = reg.Alias("production");
  if (c->shadow_at_least_as_good && c->rows >= min_rows) {
    Status s = reg.Promote(version, "production");
    if (!s.ok()) return s;
    *promoted = true;
  }
  Status s = reg.AddEvaluation(
      version,
      {{"kind", "shadow_comparison"}, {"against", prod}, {"promoted", *promoted}, {"comparison", c->ToJson()}});
  if (!s.ok()) spdlog::warn("model {}: evaluation not recorded: {}", version, s.message());
  return c;
}

AutoRetrainer::AutoRetrainer(RetrainOptions opt, LiveMonitor* monitor) : opt_(std::move(opt)), monitor_(monitor) {}

AutoRetrainer::~AutoRetrainer() { Stop(); }

void AutoRetrainer::Start() {
  th_ = std::thread([this] { Loop(); });
}

void AutoRetrainer::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (th_.joinable()) th_.join();
}

std::vector<RetrainEvent> AutoRetrainer::events() const {
  std::lock_guard<std::mutex> g(mu_);
  return events_;
}

void AutoRetrainer::Log(RetrainEvent e) {
  spdlog::info("auto-retrain: {} {} {}", e.step, e.version, e.detail);
  std::lock_guard<std::mutex> g(mu_);
  events_.push_back(std::move(e));
}

void AutoRetrainer::Loop() {
  auto wait = [this](double s) {
    std::unique_lock<std::mutex> l(mu_);
    return !cv_.wait_for(l, std::chrono::microseconds(static_cast<int64_t>(s * 1e6)), [this] { return stop_; });
  };
  while (wait(opt_.poll_s)) {
    DriftSnapshot d = monitor_->Get();
    if (!d.drifted || d.drifted_for_s < opt_.drift_for_s) continue;
    char buf[256];
    std::snprintf(buf, sizeof buf, "error PSI %.3f KS %.3f for %.0f s (model %s)", d.psi, d.ks, d.drifted_for_s,
                  d.version.c_str());
    Log({"drift", d.version, buf});
    TrainOptions to = opt_.train;
    to.progress = false;
    to.snapshot = true;  // the running store compacts closed hours while training reads
    to.version.clear();
    // Hours of recent data do not cover a day: the production model's daily profile fills the rest.
    if (to.profile_from.empty() && to.tod_bins > 0) {
      auto pd = Registry(to.model_dir).Resolve("production");
      if (pd.ok()) to.profile_from = pd.value();
    }
    auto r = TrainAndShadow(to);
    if (!r.ok()) {
      Log({"failed", "", "training: " + r.status().message()});
      if (!wait(opt_.cooldown_s)) return;
      continue;
    }
    std::snprintf(buf, sizeof buf, "%lld rows, %zu windows, val loss %.5f, %.1f s; now under shadow",
                  static_cast<long long>(r->rows), r->train_windows, r->best_val_loss, r->seconds);
    Log({"trained", r->version, buf});
    // Shadow period: the shadow watcher picks the alias up within seconds; wait for enough rows.
    const int64_t t0 = MonoMicros();
    Result<ShadowComparison> c = Status::Error("no shadow rows yet");
    bool promoted = false;
    while (wait(opt_.poll_s * 5)) {
      if (static_cast<double>(MonoMicros() - t0) / 1e6 < opt_.shadow_s) continue;
      c = DecideShadow(opt_.train.data_dir, opt_.train.model_dir, r->version, &promoted, opt_.min_shadow_rows);
      if (c.ok() && c->rows >= opt_.min_shadow_rows) break;
      if (static_cast<double>(MonoMicros() - t0) / 1e6 > opt_.shadow_s * 4) break;
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      if (stop_) return;
    }
    if (!c.ok()) {
      Log({"failed", r->version, "shadow comparison: " + c.status().message()});
    } else {
      Log({"compared", r->version, std::to_string(c->rows) + " rows: " + c->reason});
      Log({promoted ? "promoted" : "kept", r->version,
           promoted ? "production -> " + r->version + " (previous version kept for rollback)"
                    : "production unchanged: the new version is not at least as good"});
    }
    if (!wait(opt_.cooldown_s)) return;
  }
}

}  // namespace iotpipe::ml
