// Backfill scoring and drift statistics over stored data.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "detect/lstm.h"

namespace iotpipe::ml {

struct ScoreOptions {
  std::string data_dir = "data";
  std::string model_dir = "models";
  std::string model = "production";  // version or alias
  LstmMode mode = LstmMode::kAuto;
  int64_t from_us = 0, to_us = 0;  // 0,0: all stored rows
  std::string out_dir;             // default data_dir/scores/<version>
  int threads = 1;
};

struct ScoreResult {
  std::string version, file;
  int64_t rows = 0, predicted = 0;
  nlohmann::json evaluation;  // iotpipe evaluate's JSON over the scored rows
};

// Re-scores stored readings through a pinned model version, sensor by sensor in time order (each
// sensor's state is independent, so this equals streaming order), and writes one Parquet file with
// the sensor_readings columns (atomically). Deterministic: same input and version -> same scores.
Result<ScoreResult> Backfill(const ScoreOptions& opt);

// Drift statistics of a sample against a reference (both need not be sorted).
double Psi(std::vector<float> ref, std::vector<float> cur, int bins = 10);
double KsStatistic(std::vector<float> a, std::vector<float> b);

struct DriftOptions {
  std::string data_dir = "data";
  std::string model_dir = "models";
  std::string model = "production";
  int64_t window_us = 3600LL * 1000000;  // the most recent span to compare
  int64_t to_us = 0;                     // 0: newest stored row
  double psi_limit = 0.25, ks_limit = 0.1;
  int threads = 1;
};

struct DriftReport {
  std::string version;
  int64_t from_us = 0, to_us = 0;
  int64_t windows = 0;
  double psi = 0, ks = 0, alert_rate = 0, input_psi = 0, input_ks = 0;
  // The verdict (and `monitor`'s exit code 3): the errors drifted overall, or on any sensor judged alone.
  bool drifted = false;
  bool overall_drifted = false;  // over every sensor's errors together
  int64_t drifted_sensors = 0;
  std::vector<std::pair<std::string, double>> worst_sensors;  // by PSI of errors (at most 5)
  struct Sensor {
    std::string id;
    int64_t windows = 0;
    double psi = 0, ks = 0, alert_rate = 0;
    bool drifted = false;  // judged only with at least 32 windows
  };
  std::vector<Sensor> sensors;  // every sensor with a full window, highest PSI first
  // The stored rows of the span as the live pipeline flagged them: alert rate and, where labels
  // exist, point precision / recall / F1.
  // labelled: rows labelled anomalous; unlabelled: rows without a label (NULL), left out of P/R/F1.
  int64_t rows = 0, flagged = 0, labelled = 0, unlabelled = 0;
  double stored_alert_rate = 0, precision = 0, recall = 0, f1 = 0;
  nlohmann::json ToJson() const;
  std::string ToText(size_t max_sensors = 20) const;
};

// Reconstruction errors of the last window_us of stored readings (normal and anomalous alike, as
// live) against the model's validation errors: PSI and KS overall and per sensor, alert rate.
Result<DriftReport> MonitorDrift(const DriftOptions& opt);

}  // namespace iotpipe::ml
