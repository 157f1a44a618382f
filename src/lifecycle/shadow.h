// Shadow scoring results and their comparison with production.
//
// When the pipeline runs a model detector and the registry's `shadow` alias points at a version, the
// processor scores every reading twice (Processor::SetShadow: the shadow has its own window state).
// ShadowSink stores both results side by side in DATA/shadow_scores/shadow-<first µs>-<seq>.parquet
// (hidden temp name, fsync, rename), one row per reading the shadow scored:
//   sensor_id, timestamp, is_anomaly_ground_truth, anomaly_type,
//   anomaly_score, is_anomaly_predicted, model_version                 (production)
//   shadow_score, shadow_predicted, shadow_model_version                (shadow)
// so that CompareShadow evaluates both on exactly the same rows (`iotpipe evaluate --shadow`).
// A separate dataset keeps the sensor_readings schema and its writer untouched.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/dictionaries.h"
#include "core/duck.h"
#include "core/status.h"
#include "eval/evaluate.h"

namespace iotpipe::ml {

class ShadowSink {
 public:
  // Files are written when flush_rows rows are buffered or the oldest buffered row is flush_s old.
  ShadowSink(std::string data_dir, const Dictionaries* dicts, size_t flush_rows = 262144, double flush_s = 10);
  ~ShadowSink();
  // On the pipeline's sink thread (on_batch hook). Batches without shadow results are ignored.
  Status Add(const ProcessedBatch& pb);
  Status Flush();
  int64_t rows() const { return rows_; }
  int64_t files() const { return files_; }

 private:
  std::string dir_;
  const Dictionaries* dicts_;
  size_t flush_rows_;
  double flush_s_;
  std::unique_ptr<Duck> db_;
  int64_t first_mono_us_ = 0;
  int64_t rows_ = 0, files_ = 0;
  int seq_ = 0;
  // Buffered rows (names resolved at flush time).
  std::vector<uint32_t> sensor_;
  std::vector<int64_t> ts_;
  std::vector<uint8_t> gt_, pred_, spred_;
  std::vector<uint16_t> type_, model_, smodel_;
  std::vector<float> score_, sscore_;
};

struct ShadowComparison {
  int64_t rows = 0;
  std::string production_versions, shadow_versions;  // distinct model_version values, comma-separated
  EvalReport production, shadow;
  bool labelled = false;  // ground truth present (at least one anomalous row)
  double production_alert_rate = 0, shadow_alert_rate = 0;
  // The promotion rule: with labels, shadow episode F1 >= production episode F1 and false alarms
  // per sensor-day not above production's + 0.5 (or point F1 where there are no episodes); without
  // labels, a shadow alert rate not above production's.
  bool shadow_at_least_as_good = false;
  std::string reason;
  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// Compares production and shadow results over the stored shadow_scores rows (optional SQL filter).
Result<ShadowComparison> CompareShadow(const std::string& data_dir, const std::string& where = "");

}  // namespace iotpipe::ml
