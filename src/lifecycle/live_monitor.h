// Live drift monitoring inside a running pipeline (fed from the on_batch hook on the sink thread).
//
// The monitor keeps its own per-sensor ring of the last `window` raw readings for the production model
// (it does not reach into the detector's state) and, for every `sample_every`-th reading of a sensor
// with a full window and a known scaler entry, computes the window's reconstruction error with the
// model's forward pass. Rolling samples (the last `keep` errors overall, `keep_per_sensor` per sensor,
// and the scaled inputs of the sampled readings) are compared once a second with the model's
// validation errors (PSI over reference deciles, Kolmogorov–Smirnov) and inputs with N(0, 1) (the
// scaler's promise). Alert rate and, where labels exist, precision/recall/F1 are over the last
// `rows_window` rows. Drift = error PSI > psi_limit or KS > ks_limit with at least min_windows
// errors; `drifted_for_s` says for how long without interruption (the retraining trigger).
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/batch.h"
#include "core/dictionaries.h"
#include "detect/detector.h"

namespace iotpipe::ml {

struct Model;
class LstmAeForward;

// PSI against a reference binned once: 10 bins with interior edges at the reference's deciles.
struct PsiReference {
  std::vector<float> edges;
  std::vector<double> share;  // reference share of each bin (floored at 1e-4)
  static PsiReference Of(std::vector<float> ref);
  double Psi(const std::vector<float>& cur) const;
  double Psi(const std::deque<float>& cur) const;
};

struct LiveMonitorOptions {
  int sample_every = 4;
  // Budget of the monitor's own forward passes: above it, every sensor is sampled more sparsely
  // (stride = readings per second / budget, re-derived each evaluation). Without it the monitor
  // re-scored a quarter of all windows on the sink thread: 25 % more LSTM work in a --rate max run.
  double max_windows_per_s = 2000;
  size_t keep = 20000;
  size_t keep_per_sensor = 256;
  size_t min_windows = 500;
  int64_t rows_window = 200000;
  double psi_limit = 0.25, ks_limit = 0.1;
  double eval_interval_s = 1.0;
};

struct DriftSnapshot {
  std::string version;                       // model the errors are computed with ("" if none)
  int64_t windows = 0;                       // errors in the rolling sample
  int64_t min_windows = 0;                   // drift is judged from this many errors on
  double psi = 0, ks = 0;                    // errors vs validation errors
  double input_psi = 0, input_ks = 0;        // scaled inputs vs N(0, 1)
  double alert_rate = 0;                     // flagged rows / rows (rolling)
  int64_t rows = 0, labelled = 0;            // labelled: rows labelled anomalous
  int64_t unlabelled = 0;                    // rows without a label: left out of precision/recall/F1
  double precision = 0, recall = 0, f1 = 0;  // rolling, over labelled rows only
  bool drifted = false;
  double drifted_for_s = 0;
  std::vector<std::pair<std::string, double>> worst_sensors;  // highest error PSI (at most 10)
  nlohmann::json ToJson() const;
};

class LiveMonitor {
 public:
  LiveMonitor(const Dictionaries* dicts, LiveMonitorOptions opt = {});
  ~LiveMonitor();
  // The production model (taken from an LSTM detector; other detectors: no error statistics).
  // Resets the error sample and the windows. Any thread.
  void SetDetector(std::shared_ptr<const Detector> det);
  // On the sink thread. now_us: monotonic time (tests pass their own).
  void Observe(const ProcessedBatch& pb, int64_t now_us = -1);
  // Recomputes the statistics now (Observe does it every eval_interval_s).
  void Evaluate(int64_t now_us = -1);
  DriftSnapshot Get() const;
  // Prometheus text: iotpipe_drift_psi / _ks{kind="error"|"input"}, iotpipe_drift_windows,
  // iotpipe_drift_detected, iotpipe_drift_seconds, iotpipe_alert_rate, iotpipe_rolling_precision /
  // _recall / _f1, iotpipe_drift_sensor_psi{sensor} for the 10 worst sensors.
  std::string PrometheusText() const;

 private:
  struct SensorRing {
    int32_t scaler = -1;
    uint32_t count = 0, head = 0;
    std::vector<float> ring;
    std::deque<float> errors;
  };
  const Dictionaries* dicts_;
  LiveMonitorOptions opt_;
  std::shared_ptr<const Detector> det_;  // keeps the model alive
  const Model* model_ = nullptr;
  std::unique_ptr<LstmAeForward> fwd_;
  PsiReference ref_err_, ref_in_;
  std::vector<float> ref_sorted_, ref_in_sorted_;
  std::unordered_map<uint32_t, SensorRing> sensors_;
  std::deque<float> errors_, inputs_;
  // rows, predicted, positive labels, true positives, unlabelled rows, predicted among unlabelled rows.
  struct BatchCounts {
    int64_t rows, pred, gt, tp, unl, unl_pred;
  };
  std::deque<BatchCounts> counts_;
  BatchCounts sum_{0, 0, 0, 0, 0, 0};
  int64_t last_eval_us_ = 0, drift_start_us_ = 0;
  int64_t rows_since_eval_ = 0;
  uint32_t stride_ = 0;    // sample every stride_-th reading of a sensor (>= sample_every)
  mutable std::mutex mu_;  // guards snap_ and the detector switch
  std::shared_ptr<const Detector> pending_;
  bool pending_set_ = false;
  DriftSnapshot snap_;
};

}  // namespace iotpipe::ml
