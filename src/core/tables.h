// One descriptor per stored dataset: the Parquet writer, the DuckDB views, the DuckDB staging tables of
// the smaller datasets and compaction all take their columns from here, so a column is named once.
#pragma once
#include <string>
#include <vector>

namespace iotpipe {

enum class ColType { kVarchar, kBlob, kTimestamp, kDouble, kFloat, kBoolean, kInteger, kBigint };

struct ColumnDesc {
  const char* name;
  ColType type;
};

struct TableDesc {
  const char* name;                 // the directory under the data dir and the DuckDB view
  std::vector<ColumnDesc> columns;  // in file order
  bool hour_partitioned;            // date=YYYY-MM-DD/hour=HH/ (else date= only or flat)
  // The view's select list over its files when they hold snapshots to merge (GROUP BY its first
  // column); null: the view is every row of every file.
  const char* merge_select = nullptr;
  // "name TYPE, name TYPE, ..." for CREATE TABLE and typed empty views.
  std::string SqlColumns() const;
};

const char* SqlType(ColType t);

const TableDesc& ReadingsTable();     // sensor_readings
const TableDesc& DeadLettersTable();  // dead_letters
const TableDesc& AlertsTable();       // alerts
const TableDesc& AssetScoresTable();  // asset_scores
const TableDesc& SensorsTable();      // sensors (snapshots of units, tags, first and last seen)
// Every stored dataset, in the order the views are created.
const std::vector<const TableDesc*>& StoredTables();

}  // namespace iotpipe
