#include "core/duck.h"

#include <filesystem>
#include <memory>

namespace iotpipe {

const char* kReadingsSchema =
    "sensor_id VARCHAR, timestamp TIMESTAMP, value DOUBLE, is_anomaly_ground_truth BOOLEAN, "
    "anomaly_type VARCHAR, processing_timestamp TIMESTAMP, is_anomaly_predicted BOOLEAN, "
    "anomaly_score FLOAT, model_version VARCHAR";
const char* kDeadLettersSchema =
    "received_timestamp TIMESTAMP, reason VARCHAR, raw BLOB, source VARCHAR, kafka_partition INTEGER, "
    "kafka_offset BIGINT";

double Table::Num(size_t r, size_t c) const {
  const auto& v = rows.at(r).at(c);
  return v ? std::stod(*v) : 0.0;
}
int64_t Table::Int(size_t r, size_t c) const {
  const auto& v = rows.at(r).at(c);
  return v ? std::stoll(*v) : 0;
}
std::string Table::Str(size_t r, size_t c) const {
  const auto& v = rows.at(r).at(c);
  return v ? *v : std::string();
}

Result<std::unique_ptr<Duck>> Duck::Open(const std::string& path, int threads,
                                         const std::vector<std::pair<std::string, std::string>>& config) {
  std::unique_ptr<Duck> d(new Duck());
  duckdb_config cfg;
  if (duckdb_create_config(&cfg) != DuckDBSuccess) return Status::Error("duckdb: cannot create config");
  if (threads > 0) duckdb_set_config(cfg, "threads", std::to_string(threads).c_str());
  for (auto& [k, v] : config) duckdb_set_config(cfg, k.c_str(), v.c_str());
  char* err = nullptr;
  if (duckdb_open_ext(path.empty() ? nullptr : path.c_str(), &d->db_, cfg, &err) != DuckDBSuccess) {
    std::string m = err ? err : "unknown error";
    duckdb_free(err);
    duckdb_destroy_config(&cfg);
    return Status::Error("duckdb: cannot open database: " + m);
  }
  duckdb_destroy_config(&cfg);
  if (duckdb_connect(d->db_, &d->con_) != DuckDBSuccess) return Status::Error("duckdb: cannot connect");
  return d;
}

Duck::~Duck() {
  if (con_) duckdb_disconnect(&con_);
  if (db_) duckdb_close(&db_);
}

Status Duck::Exec(const std::string& sql) {
  duckdb_result res;
  if (duckdb_query(con_, sql.c_str(), &res) != DuckDBSuccess) {
    std::string m = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::Error(m);
  }
  duckdb_destroy_result(&res);
  return Status::OK();
}

Result<Table> Duck::Query(const std::string& sql) {
  duckdb_result res;
  if (duckdb_query(con_, sql.c_str(), &res) != DuckDBSuccess) {
    std::string m = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::Error(m);
  }
  Table t;
  idx_t nc = duckdb_column_count(&res), nr = duckdb_row_count(&res);
  for (idx_t c = 0; c < nc; c++) {
    t.columns.emplace_back(duckdb_column_name(&res, c));
    t.types.push_back(duckdb_column_type(&res, c));
  }
  t.rows.resize(nr);
  for (idx_t r = 0; r < nr; r++) {
    t.rows[r].resize(nc);
    for (idx_t c = 0; c < nc; c++) {
      if (duckdb_value_is_null(&res, c, r)) continue;
      char* s = duckdb_value_varchar(&res, c, r);
      if (s) {
        t.rows[r][c] = std::string(s);
        duckdb_free(s);
      }
    }
  }
  duckdb_destroy_result(&res);
  return t;
}

bool IsNumericType(duckdb_type t) {
  switch (t) {
    case DUCKDB_TYPE_TINYINT: case DUCKDB_TYPE_SMALLINT: case DUCKDB_TYPE_INTEGER: case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT: case DUCKDB_TYPE_USMALLINT: case DUCKDB_TYPE_UINTEGER: case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_FLOAT: case DUCKDB_TYPE_DOUBLE: case DUCKDB_TYPE_HUGEINT: case DUCKDB_TYPE_DECIMAL:
      return true;
    default:
      return false;
  }
}

std::string SqlQuote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'') out += '\'';
    out += ch;
  }
  return out + "'";
}

static bool HasParquet(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return false;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const auto& p = it->path();
    if (p.extension() == ".parquet" && p.filename().string()[0] != '.') return true;
  }
  return false;
}

Status CreateDataViews(Duck& db, const std::string& data_dir) {
  struct V { const char* name; const char* schema; };
  for (V v : {V{"sensor_readings", kReadingsSchema}, V{"dead_letters", kDeadLettersSchema},
              V{"alerts", "alert_id VARCHAR, sensor_id VARCHAR, opened TIMESTAMP, closed TIMESTAMP, points BIGINT, max_score FLOAT, anomaly_type VARCHAR, model_version VARCHAR, state VARCHAR"},
              V{"asset_scores", "asset_id VARCHAR, timestamp TIMESTAMP, processing_timestamp TIMESTAMP, channels INTEGER, present INTEGER, t2 DOUBLE, q DOUBLE, asset_score FLOAT, is_anomaly_predicted BOOLEAN, top_channel VARCHAR, top_share FLOAT, is_anomaly_ground_truth BOOLEAN, anomaly_type VARCHAR, model_version VARCHAR"}}) {
    std::string dir = data_dir + "/" + v.name;
    std::string sql;
    if (HasParquet(dir)) {
      sql = "CREATE OR REPLACE VIEW " + std::string(v.name) + " AS SELECT * FROM read_parquet(" +
            SqlQuote(dir + "/**/*.parquet") + ", hive_partitioning = true, union_by_name = true" +
            (std::string(v.name) == "alerts" || std::string(v.name) == "asset_scores"
                 ? ""
                 : ", hive_types = {'date': DATE, 'hour': INTEGER}") +
            ")";
    } else {
      // An empty view with the stored schema (plus the partition columns), so queries still bind.
      // Build "SELECT NULL::T AS c, ..." from the schema text.
      std::string cols, schema = v.schema;
      size_t pos = 0;
      while (pos < schema.size()) {
        size_t comma = schema.find(", ", pos);
        std::string def = schema.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        size_t sp = def.find(' ');
        if (!cols.empty()) cols += ", ";
        cols += "NULL::" + def.substr(sp + 1) + " AS " + def.substr(0, sp);
        if (comma == std::string::npos) break;
        pos = comma + 2;
      }
      cols += ", NULL::DATE AS date, NULL::INTEGER AS hour";
      sql = "CREATE OR REPLACE VIEW " + std::string(v.name) + " AS SELECT " + cols + " WHERE false";
    }
    Status s = db.Exec(sql);
    if (!s.ok()) return Status::Error(std::string("creating view ") + v.name + ": " + s.message());
  }
  return Status::OK();
}

}  // namespace iotpipe
