#include "lifecycle/live_monitor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/clock.h"
#include "detect/lstm.h"
#include "lifecycle/backfill.h"
#include "model/forward.h"
#include "model/model.h"

namespace iotpipe::ml {

PsiReference PsiReference::Of(std::vector<float> ref) {
  PsiReference r;
  if (ref.empty()) return r;
  std::sort(ref.begin(), ref.end());
  for (int k = 1; k < 10; k++)
    r.edges.push_back(ref[static_cast<size_t>(static_cast<double>(k) / 10 * static_cast<double>(ref.size() - 1))]);
  r.share.assign(10, 0);
  for (float x : ref)
    r.share[static_cast<size_t>(std::upper_bound(r.edges.begin(), r.edges.end(), x) - r.edges.begin())] += 1;
  for (auto& c : r.share) c = std::max(c / static_cast<double>(ref.size()), 1e-4);
  return r;
}

template <typename C>
static double PsiOf(const PsiReference& r, const C& cur) {
  if (r.share.empty() || cur.empty()) return 0;
  std::vector<double> h(r.share.size(), 0);
  for (float x : cur)
    h[static_cast<size_t>(std::upper_bound(r.edges.begin(), r.edges.end(), x) - r.edges.begin())] += 1;
  double psi = 0;
  for (size_t k = 0; k < h.size(); k++) {
    double b = std::max(h[k] / static_cast<double>(cur.size()), 1e-4);
    psi += (b - r.share[k]) * std::log(b / r.share[k]);
  }
  return psi;
}

double PsiReference::Psi(const std::vector<float>& cur) const { return PsiOf(*this, cur); }
double PsiReference::Psi(const std::deque<float>& cur) const { return PsiOf(*this, cur); }

// Standard normal quantiles (Abramowitz–Stegun 26.2.23), a deterministic reference for scaled inputs.
static std::vector<float> NormalSample(int n) {
  std::vector<float> v;
  for (int k = 1; k < n; k++) {
    double p = static_cast<double>(k) / n, t = std::sqrt(-2 * std::log(p < 0.5 ? p : 1 - p));
    double z =
        t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    v.push_back(static_cast<float>(p < 0.5 ? -z : z));
  }
  return v;
}

nlohmann::json DriftSnapshot::ToJson() const {
  nlohmann::json w = nlohmann::json::array();
  for (auto& [s, p] : worst_sensors) w.push_back({{"sensor_id", s}, {"psi", p}});
  return {{"version", version},
          {"windows", windows},
          {"min_windows", min_windows},
          {"psi", psi},
          {"ks", ks},
          {"input_psi", input_psi},
          {"input_ks", input_ks},
          {"alert_rate", alert_rate},
          {"rows", rows},
          {"labelled", labelled},
          {"unlabelled", unlabelled},
          {"precision", precision},
          {"recall", recall},
          {"f1", f1},
          {"drifted", drifted},
          {"drifted_for_s", drifted_for_s},
          {"worst_sensors", w}};
}

LiveMonitor::LiveMonitor(const Dictionaries* dicts, LiveMonitorOptions opt) : dicts_(dicts), opt_(opt) {
  ref_in_sorted_ = NormalSample(2000);
  ref_in_ = PsiReference::Of(ref_in_sorted_);
}

LiveMonitor::~LiveMonitor() = default;

void LiveMonitor::SetDetector(std::shared_ptr<const Detector> det) {
  std::lock_guard<std::mutex> g(mu_);
  pending_ = std::move(det);
  pending_set_ = true;
}

void LiveMonitor::Observe(const ProcessedBatch& pb, int64_t now_us) {
  if (now_us < 0) now_us = MonoMicros();
  {
    std::lock_guard<std::mutex> g(mu_);
    if (pending_set_) {
      det_ = std::move(pending_);
      pending_set_ = false;
      auto* lstm = dynamic_cast<const LstmDetector*>(det_.get());
      model_ = lstm ? &lstm->model() : nullptr;
      fwd_ = model_ ? std::make_unique<LstmAeForward>(model_->weights) : nullptr;
      sensors_.clear();
      errors_.clear();
      inputs_.clear();
      drift_start_us_ = 0;
      if (model_) {
        ref_sorted_ = model_->val_errors;
        std::sort(ref_sorted_.begin(), ref_sorted_.end());
        ref_err_ = PsiReference::Of(ref_sorted_);
      }
    }
  }
  const ReadingBatch& b = pb.readings;
  const size_t n = b.size();
  if (stride_ == 0) stride_ = static_cast<uint32_t>(std::max(1, opt_.sample_every));
  rows_since_eval_ += static_cast<int64_t>(n);
  BatchCounts c{static_cast<int64_t>(n), 0, 0, 0, 0, 0};
  for (size_t i = 0; i < n; i++) {
    c.pred += b.predicted[i];
    const bool pos = ReadingBatch::Positive(b.gt[i]);
    c.gt += pos;
    c.tp += b.predicted[i] & pos;
    if (!ReadingBatch::Labelled(b.gt[i])) c.unl++, c.unl_pred += b.predicted[i];
  }
  counts_.push_back(c);
  sum_ = {sum_.rows + c.rows, sum_.pred + c.pred, sum_.gt + c.gt,
          sum_.tp + c.tp,     sum_.unl + c.unl,   sum_.unl_pred + c.unl_pred};
  while (counts_.size() > 1 && sum_.rows - counts_.front().rows >= opt_.rows_window) {
    const BatchCounts& f = counts_.front();
    sum_ = {sum_.rows - f.rows, sum_.pred - f.pred, sum_.gt - f.gt,
            sum_.tp - f.tp,     sum_.unl - f.unl,   sum_.unl_pred - f.unl_pred};
    counts_.pop_front();
  }
  if (model_ && !ref_sorted_.empty()) {
    const int W = model_->weights.window;
    const Scaler& sc = model_->scaler;
    std::vector<float> X;
    std::vector<SensorRing*> owners;
    for (size_t i = 0; i < n; i++) {
      auto [it, fresh] = sensors_.try_emplace(b.sensor[i]);
      SensorRing& r = it->second;
      if (fresh) {
        r.ring.assign(static_cast<size_t>(W), 0.f);
        r.scaler = b.sensor[i] < dicts_->sensors.size() ? sc.Find(dicts_->sensors.Name(b.sensor[i])) : -1;
      }
      if (r.scaler < 0) continue;
      // Raw values in the ring; a window is scaled as the detector does (detect/lstm.cc): residuals
      // from the scaler's expected value at its newest reading (the mean for non-seasonal models).
      r.ring[r.head] = static_cast<float>(b.value[i]);
      r.head = (r.head + 1) % static_cast<uint32_t>(W);
      r.count++;
      if (r.count < static_cast<uint32_t>(W) || r.count % stride_ != 0) continue;
      const size_t si = static_cast<size_t>(r.scaler);
      const double mean = sc.Expected(si, b.ts_us[i]), inv = 1.0 / sc.std[si];
      for (int t = 0; t < W; t++)
        X.push_back(
            static_cast<float>((r.ring[(r.head + static_cast<uint32_t>(t)) % static_cast<uint32_t>(W)] - mean) * inv));
      owners.push_back(&r);
      inputs_.push_back(static_cast<float>((b.value[i] - mean) * inv));
    }
    if (!owners.empty()) {
      std::vector<float> ew(owners.size()), el(owners.size());
      fwd_->Errors(X.data(), owners.size(), ew.data(), el.data(), 1);
      for (size_t k = 0; k < owners.size(); k++) {
        errors_.push_back(ew[k]);
        owners[k]->errors.push_back(ew[k]);
        if (owners[k]->errors.size() > opt_.keep_per_sensor) owners[k]->errors.pop_front();
      }
      while (errors_.size() > opt_.keep) errors_.pop_front();
      while (inputs_.size() > opt_.keep) inputs_.pop_front();
    }
  }
  if (now_us - last_eval_us_ >= static_cast<int64_t>(opt_.eval_interval_s * 1e6)) {
    if (last_eval_us_ > 0 && opt_.max_windows_per_s > 0) {
      const double rate = static_cast<double>(rows_since_eval_) * 1e6 / static_cast<double>(now_us - last_eval_us_);
      stride_ = static_cast<uint32_t>(std::clamp(std::ceil(rate / opt_.max_windows_per_s),
                                                 static_cast<double>(std::max(1, opt_.sample_every)), 1e6));
    }
    rows_since_eval_ = 0;
    Evaluate(now_us);
  }
}

void LiveMonitor::Evaluate(int64_t now_us) {
  if (now_us < 0) now_us = MonoMicros();
  last_eval_us_ = now_us;
  DriftSnapshot s;
  s.version = model_ ? model_->version : "";
  s.windows = static_cast<int64_t>(errors_.size());
  s.min_windows = static_cast<int64_t>(opt_.min_windows);
  if (model_ && !errors_.empty()) {
    std::vector<float> cur(errors_.begin(), errors_.end());
    s.psi = ref_err_.Psi(cur);
    s.ks = KsStatistic(ref_sorted_, cur);
    std::vector<float> in(inputs_.begin(), inputs_.end());
    s.input_psi = ref_in_.Psi(in);
    s.input_ks = KsStatistic(ref_in_sorted_, in);
    std::vector<std::pair<std::string, double>> per;
    for (auto& [id, r] : sensors_)
      if (r.errors.size() >= 32) per.emplace_back(dicts_->sensors.Name(id), ref_err_.Psi(r.errors));
    std::sort(per.begin(), per.end(),
              [](auto& a, auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); });
    if (per.size() > 10) per.resize(10);
    s.worst_sensors = std::move(per);
  }
  s.rows = sum_.rows;
  s.labelled = sum_.gt;
  s.unlabelled = sum_.unl;
  s.alert_rate = sum_.rows ? static_cast<double>(sum_.pred) / static_cast<double>(sum_.rows) : 0;
  if (sum_.gt > 0) {  // precision over labelled rows only: flags on unlabelled rows are neither true nor false
    const int64_t pred_l = sum_.pred - sum_.unl_pred;
    s.precision = pred_l ? static_cast<double>(sum_.tp) / static_cast<double>(pred_l) : 0;
    s.recall = static_cast<double>(sum_.tp) / static_cast<double>(sum_.gt);
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0;
  }
  s.drifted = s.windows >= static_cast<int64_t>(opt_.min_windows) && (s.psi > opt_.psi_limit || s.ks > opt_.ks_limit);
  if (s.drifted) {
    if (drift_start_us_ == 0) drift_start_us_ = now_us;
    s.drifted_for_s = static_cast<double>(now_us - drift_start_us_) / 1e6;
  } else {
    drift_start_us_ = 0;
  }
  std::lock_guard<std::mutex> g(mu_);
  snap_ = std::move(s);
}

DriftSnapshot LiveMonitor::Get() const {
  std::lock_guard<std::mutex> g(mu_);
  return snap_;
}

std::string LiveMonitor::PrometheusText() const {
  DriftSnapshot s = Get();
  std::string o;
  char buf[512];
  auto gauge = [&](const char* name, const char* help, const std::string& labels_values) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + labels_values;
  };
  auto line = [&](const char* name, const std::string& labels, double v) {
    std::snprintf(buf, sizeof buf, "%s%s %.6g\n", name, labels.c_str(), v);
    return std::string(buf);
  };
  const std::string mv = "model=\"" + s.version + "\"";
  gauge("iotpipe_drift_psi",
        "Population stability index of live reconstruction errors (kind=error) and scaled inputs (kind=input) vs the "
        "model's validation distribution.",
        line("iotpipe_drift_psi", "{kind=\"error\"," + mv + "}", s.psi) +
            line("iotpipe_drift_psi", "{kind=\"input\"," + mv + "}", s.input_psi));
  gauge("iotpipe_drift_ks", "Kolmogorov-Smirnov statistic, same samples as iotpipe_drift_psi.",
        line("iotpipe_drift_ks", "{kind=\"error\"," + mv + "}", s.ks) +
            line("iotpipe_drift_ks", "{kind=\"input\"," + mv + "}", s.input_ks));
  gauge("iotpipe_drift_windows", "Reconstruction errors in the rolling drift sample.",
        line("iotpipe_drift_windows", "", static_cast<double>(s.windows)));
  gauge("iotpipe_drift_detected", "1 while error PSI or KS is above its limit.",
        line("iotpipe_drift_detected", "", s.drifted ? 1 : 0));
  gauge("iotpipe_drift_seconds", "How long drift has been detected without interruption.",
        line("iotpipe_drift_seconds", "", s.drifted_for_s));
  gauge("iotpipe_alert_rate", "Flagged rows / rows over the rolling row window.",
        line("iotpipe_alert_rate", "", s.alert_rate));
  gauge("iotpipe_rolling_precision", "Point precision over the rolling row window (labelled streams).",
        line("iotpipe_rolling_precision", "", s.precision));
  gauge("iotpipe_rolling_recall", "Point recall over the rolling row window (labelled streams).",
        line("iotpipe_rolling_recall", "", s.recall));
  gauge("iotpipe_rolling_f1", "Point F1 over the rolling row window (labelled streams).",
        line("iotpipe_rolling_f1", "", s.f1));
  std::string per;
  for (auto& [id, p] : s.worst_sensors) {
    std::string esc;
    for (char ch : id) {
      if (ch == '"' || ch == '\\') esc += '\\';
      if (ch == '\n') {
        esc += "\\n";
        continue;
      }
      esc += ch;
    }
    per += line("iotpipe_drift_sensor_psi", "{sensor=\"" + esc + "\"}", p);
  }
  gauge("iotpipe_drift_sensor_psi", "Error PSI of the 10 most drifted sensors.", per);
  return o;
}

}  // namespace iotpipe::ml
