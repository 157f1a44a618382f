#include "core/tables.h"

namespace iotpipe {

const char* SqlType(ColType t) {
  switch (t) {
    case ColType::kVarchar:
      return "VARCHAR";
    case ColType::kBlob:
      return "BLOB";
    case ColType::kTimestamp:
      return "TIMESTAMP";
    case ColType::kDouble:
      return "DOUBLE";
    case ColType::kFloat:
      return "FLOAT";
    case ColType::kBoolean:
      return "BOOLEAN";
    case ColType::kInteger:
      return "INTEGER";
    case ColType::kBigint:
      return "BIGINT";
  }
  return "VARCHAR";
}

std::string TableDesc::SqlColumns() const {
  std::string out;
  for (const auto& c : columns) {
    if (!out.empty()) out += ", ";
    out += c.name;
    out += ' ';
    out += SqlType(c.type);
  }
  return out;
}

using C = ColType;

const TableDesc& ReadingsTable() {
  static const TableDesc t{"sensor_readings",
                           {{"sensor_id", C::kVarchar},
                            {"timestamp", C::kTimestamp},
                            {"value", C::kDouble},
                            {"is_anomaly_ground_truth", C::kBoolean},
                            {"anomaly_type", C::kVarchar},
                            {"processing_timestamp", C::kTimestamp},
                            {"is_anomaly_predicted", C::kBoolean},
                            {"anomaly_score", C::kFloat},
                            {"model_version", C::kVarchar}},
                           true};
  return t;
}

const TableDesc& DeadLettersTable() {
  static const TableDesc t{"dead_letters",
                           {{"received_timestamp", C::kTimestamp},
                            {"reason", C::kVarchar},
                            {"raw", C::kBlob},
                            {"source", C::kVarchar},
                            {"kafka_partition", C::kInteger},
                            {"kafka_offset", C::kBigint}},
                           true};
  return t;
}

const TableDesc& AlertsTable() {
  static const TableDesc t{"alerts",
                           {{"alert_id", C::kVarchar},
                            {"sensor_id", C::kVarchar},
                            {"opened", C::kTimestamp},
                            {"closed", C::kTimestamp},
                            {"points", C::kBigint},
                            {"max_score", C::kFloat},
                            {"anomaly_type", C::kVarchar},
                            {"model_version", C::kVarchar},
                            {"state", C::kVarchar}},
                           false};
  return t;
}

const TableDesc& AssetScoresTable() {
  static const TableDesc t{"asset_scores",
                           {{"asset_id", C::kVarchar},
                            {"timestamp", C::kTimestamp},
                            {"processing_timestamp", C::kTimestamp},
                            {"channels", C::kInteger},
                            {"present", C::kInteger},
                            {"t2", C::kDouble},
                            {"q", C::kDouble},
                            {"asset_score", C::kFloat},
                            {"is_anomaly_predicted", C::kBoolean},
                            {"top_channel", C::kVarchar},
                            {"top_share", C::kFloat},
                            {"is_anomaly_ground_truth", C::kBoolean},
                            {"anomaly_type", C::kVarchar},
                            {"model_version", C::kVarchar}},
                           false};
  return t;
}

// One file per run (sensors/sensors-<run>.parquet), replaced atomically as the run goes; the view merges
// them: the latest unit and tags, the earliest first and the latest last sighting (event times).
const TableDesc& SensorsTable() {
  static const TableDesc t{"sensors",
                           {{"sensor_id", C::kVarchar},
                            {"unit", C::kVarchar},
                            {"tags", C::kVarchar},
                            {"first_seen", C::kTimestamp},
                            {"last_seen", C::kTimestamp},
                            {"updated", C::kTimestamp}},
                           false,
                           "sensor_id, arg_max(unit, updated) FILTER (WHERE unit IS NOT NULL) AS unit, "
                           "arg_max(tags, updated) FILTER (WHERE tags IS NOT NULL) AS tags, "
                           "min(first_seen) AS first_seen, max(last_seen) AS last_seen"};
  return t;
}

const std::vector<const TableDesc*>& StoredTables() {
  static const std::vector<const TableDesc*> t = {&ReadingsTable(), &DeadLettersTable(), &AlertsTable(),
                                                  &AssetScoresTable(), &SensorsTable()};
  return t;
}

}  // namespace iotpipe
