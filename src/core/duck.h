// A thin RAII layer over the DuckDB C API.
#pragma once
#include <duckdb.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace iotpipe {

// A materialised query result, every cell as text (nullopt = NULL), with column names and types.
struct Table {
  std::vector<std::string> columns;
  std::vector<duckdb_type> types;
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Convenience for single values: row r, column c, as double / int64 / string.
  double Num(size_t r = 0, size_t c = 0) const;
  int64_t Int(size_t r = 0, size_t c = 0) const;
  std::string Str(size_t r = 0, size_t c = 0) const;
};

class Duck {
 public:
  // path empty = in-memory. threads 0 = DuckDB's default.
  static Result<std::unique_ptr<Duck>> Open(const std::string& path = "", int threads = 0,
                                            const std::vector<std::pair<std::string, std::string>>& config = {});
  ~Duck();
  Duck(const Duck&) = delete;
  Duck& operator=(const Duck&) = delete;

  Status Exec(const std::string& sql);
  Result<Table> Query(const std::string& sql);
  // A stderr line for people every few seconds while a long statement runs: "[what] statement 2: 43% (12s)".
  static std::function<void(double, int, double)> ProgressPrinter(std::string what);
  // Prepares sql (one statement), refuses it unless its type is `allowed`, then runs it.
  Result<Table> QueryOfType(const std::string& sql, duckdb_statement_type allowed);
  duckdb_connection conn() const { return con_; }
  void Interrupt() { duckdb_interrupt(con_); }
  // From now on Exec and Query report a running statement's progress: fn(percent, statement, seconds)
  // every `every_s` once it has run `after_s` (DuckDB's estimate; percent -1: unknown). Null: off.
  Status SetProgress(std::function<void(double, int, double)> fn, double after_s = 2, double every_s = 2);

 private:
  Duck() = default;
  // Runs sql statement by statement through the pending API, calling progress_ between tasks.
  Result<Table> RunWithProgress(const std::string& sql);
  Result<Table> Execute(duckdb_prepared_statement ps);
  std::function<void(double, int, double)> progress_;
  double progress_every_s_ = 2;
  int statements_ = 0;  // run so far under SetProgress, for the callback
  duckdb_database db_ = nullptr;
  duckdb_connection con_ = nullptr;
};

std::string SqlQuote(const std::string& s);  // 'it''s'
// True for DuckDB's integer, floating-point and decimal column types (rendered unquoted in JSON).
bool IsNumericType(duckdb_type t);

// Creates the views `sensor_readings`, `dead_letters`, `alerts` and `asset_scores` over the Parquet files under
// data_dir (empty typed views where no file exists yet). A reader sees a committed state: no temp file, never
// both the inputs and the output of a compaction (a manifest whose output exists hides its inputs), and no
// damaged or foreign file (skipped with a warning, counted by SkippedDataFiles()), so one bad file never
// breaks a query.
struct TableDesc;
Status CreateDataViews(Duck& db, const std::string& data_dir);

// Appends a VARCHAR, or NULL for an empty string (optional text columns of the smaller datasets).
inline void AppendTextOrNull(duckdb_appender app, const std::string& v) {
  if (v.empty())
    duckdb_append_null(app);
  else
    duckdb_append_varchar_length(app, v.data(), v.size());
}
// The files such a view reads for table t, sorted; and how many files were skipped so far (process-wide).
std::vector<std::string> ReadableDataFiles(const std::string& data_dir, const TableDesc& t);
int64_t SkippedDataFiles();

// Column definitions of the stored tables as SQL (from core/tables.h).
extern const std::string kReadingsSchema;
extern const std::string kDeadLettersSchema;

}  // namespace iotpipe
