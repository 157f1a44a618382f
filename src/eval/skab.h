// SKAB (Skoltech Anomaly Benchmark) harness, outlier-detection protocol: for each experiment file the first
// 400 rows train the detector (they are anomaly-free), the rest are scored; point-wise precision, recall and
// F1 are pooled over all files. Files are ';'-separated: datetime;<channels...>;anomaly;changepoint.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace iotpipe::skab {

constexpr size_t kTrainRows = 400;

struct Experiment {
  std::string name;
  std::vector<std::string> channels;
  std::vector<int64_t> ts_us;
  std::vector<std::vector<double>> rows;  // one value per channel
  std::vector<uint8_t> anomaly;
};

// Reads one experiment; a file without an `anomaly` column is an error.
Result<Experiment> ReadExperiment(const std::string& path);
// The labelled experiment files under dir (recursively, sorted), skipping those without an anomaly column
// (SKAB's anomaly-free.csv).
Result<std::vector<std::string>> ListExperiments(const std::string& dir);

// "pca" (multivariate T² + Q fit on the training rows), "asset-pca" (the live pipeline's asset detector,
// detect/asset.h: the training rows are its warm-up, then it keeps learning online), "aakr" (MSET-like
// similarity: auto-associative kernel regression over the training rows) and every univariate detector
// of the registry run per channel (a row is anomalous when any channel is).
std::vector<std::string> DetectorNames();
// Predictions for rows [kTrainRows, n) of e.
Result<std::vector<uint8_t>> Predict(const std::string& detector, const Experiment& e);

struct Report {
  std::string detector;
  int64_t files = 0, rows = 0, tp = 0, fp = 0, fn = 0, tn = 0;
  double precision = 0, recall = 0, f1 = 0;
  // As SKAB's leaderboard reports them: false alarm rate FP / (FP + TN) over the normal rows, missing alarm
  // rate FN / (FN + TP) over the anomalous rows.
  double far = 0, mar = 0;
  nlohmann::json ToJson() const;
};
// Runs the protocol over the experiments under dir (max_files > 0: only the first ones, sorted by name).
// A detector not in DetectorNames() is refused (InvalidArgument): the list and what runs are one set.
Result<Report> Run(const std::string& dir, const std::string& detector, size_t max_files = 0);

}  // namespace iotpipe::skab
