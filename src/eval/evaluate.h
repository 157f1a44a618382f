// Detection quality over stored data: point-wise and episode-level precision/recall/F1, detection
// delay and false alarms per sensor-day, overall, per anomaly type and per model version.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/duck.h"
#include "core/status.h"

namespace iotpipe {

struct EvalFigures {
  int64_t tp = 0, fp = 0, fn = 0, rows = 0;
  int64_t episodes = 0, episodes_found = 0, alarms = 0, true_alarms = 0, false_alarms = 0;
  double sensor_days = 0, mean_delay_s = 0;
  double point_precision() const { return tp + fp ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0; }
  double point_recall() const { return tp + fn ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0; }
  double episode_recall() const {
    return episodes ? static_cast<double>(episodes_found) / static_cast<double>(episodes) : 0;
  }
  double episode_precision() const {
    return true_alarms + false_alarms
               ? static_cast<double>(true_alarms) / static_cast<double>(true_alarms + false_alarms)
               : 0;
  }
  double false_alarms_per_sensor_day() const {
    return sensor_days > 0 ? static_cast<double>(false_alarms) / sensor_days : 0;
  }
  nlohmann::json ToJson() const;
};

inline double F1(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0; }

// P/R/F1, episodes and delays are computed over labelled rows only (is_anomaly_ground_truth not
// NULL): on a partly labelled run they equal the figures of its labelled rows alone. Unlabelled rows
// are counted (unlabelled) and enter only the alert rate; with no labelled row the report is the
// alert rate alone (labelled_rows == 0).
struct EvalReport {
  int64_t total_rows = 0, labelled_rows = 0, unlabelled_rows = 0, alerts = 0;  // alerts: predicted rows, all rows
  double alert_rate() const { return total_rows ? static_cast<double>(alerts) / static_cast<double>(total_rows) : 0; }
  EvalFigures overall;
  std::map<std::string, EvalFigures> by_type;
  std::map<std::string, EvalFigures> by_model;
  nlohmann::json ToJson() const;
  std::string ToText() const;
};

// Evaluates the rows of `table` (a view or table with the sensor_readings columns).
// `where` optionally restricts rows (SQL predicate).
Result<EvalReport> Evaluate(Duck& db, const std::string& table = "sensor_readings", const std::string& where = "");

}  // namespace iotpipe
