#include "sinks/sensors_sink.h"

#include <duckdb.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "core/clock.h"
#include "core/duck.h"
#include "core/fsutil.h"
#include "core/tables.h"

namespace iotpipe {

SensorsSink::SensorsSink(std::string data_dir, const Interner* sensors, Env* env, int64_t interval_us, Duck* db)
    : dir_(data_dir + "/" + SensorsTable().name), db_(db), sensors_(sensors), env_(env), interval_us_(interval_us) {
  const std::string name =
      "sensors-" + std::to_string(env_->clock()->NowMicros()) + "-" + std::to_string(getpid()) + ".parquet";
  path_ = dir_ + "/" + name;
  tmp_ = dir_ + "/." + name + ".tmp";  // hidden: readers never list it
}

Status SensorsSink::Write(const ProcessedBatch& b) {
  const ReadingBatch& r = b.readings;
  for (size_t i = 0; i < r.size(); i++) {
    const uint32_t sid = r.sensor[i];
    if (sid >= by_sensor_.size()) by_sensor_.resize(sid + 1);
    Entry& e = by_sensor_[sid];
    const int64_t ts = r.ts_us[i];
    if (e.first == INT64_MAX) seen_count_++;
    if (ts < e.first || ts > e.last) {
      e.first = std::min(e.first, ts);
      e.last = std::max(e.last, ts);
      dirty_ = true;
    }
  }
  for (const SensorMeta& m : b.sensor_meta) {
    if (m.sensor >= by_sensor_.size()) by_sensor_.resize(m.sensor + 1);
    Entry& e = by_sensor_[m.sensor];
    e.unit = m.unit;
    e.tags = m.tags;
    dirty_ = true;
  }
  return Status::OK();
}

Status SensorsSink::Tick(int64_t now_mono_us) {
  if (last_write_mono_ < 0) last_write_mono_ = now_mono_us;
  if (!dirty_ || now_mono_us - last_write_mono_ < interval_us_) return Status::OK();
  last_write_mono_ = now_mono_us;
  return WriteSnapshot();
}

Status SensorsSink::Flush() { return dirty_ ? WriteSnapshot() : Status::OK(); }

Status SensorsSink::WriteSnapshot() {
  const int64_t t0 = MonoMicros();
  const TableDesc& t = SensorsTable();
  Status s = MakeDirs(env_, dir_);
  if (!s.ok()) return s;
  if (!db_) {
    auto db = Duck::Open();
    if (!db.ok()) return db.status();
    own_db_ = std::move(db.value());
    db_ = own_db_.get();
  }
  s = db_->Exec("CREATE OR REPLACE TEMP TABLE sensors_buf (" + t.SqlColumns() + ")");
  if (!s.ok()) return s;
  duckdb_appender app = nullptr;
  if (duckdb_appender_create(db_->conn(), nullptr, "sensors_buf", &app) != DuckDBSuccess) {
    duckdb_appender_destroy(&app);
    return Status::Error("sensors: cannot create an appender");
  }
  const int64_t now = env_->clock()->NowMicros();
  for (uint32_t sid = 0; sid < by_sensor_.size(); sid++) {
    const Entry& e = by_sensor_[sid];
    if (e.first == INT64_MAX && e.unit.empty() && e.tags.empty()) continue;
    const std::string& name = sensors_->Name(sid);
    duckdb_append_varchar_length(app, name.data(), name.size());
    AppendTextOrNull(app, e.unit);
    AppendTextOrNull(app, e.tags);
    if (e.first == INT64_MAX) {
      duckdb_append_null(app);
      duckdb_append_null(app);
    } else {
      duckdb_append_timestamp(app, duckdb_timestamp{e.first});
      duckdb_append_timestamp(app, duckdb_timestamp{e.last});
    }
    duckdb_append_timestamp(app, duckdb_timestamp{now});
    duckdb_appender_end_row(app);
  }
  const bool ok = duckdb_appender_close(app) == DuckDBSuccess;
  const std::string err = ok || !duckdb_appender_error(app) ? "" : duckdb_appender_error(app);
  duckdb_appender_destroy(&app);
  if (!ok) return Status::Error("sensors: append: " + err);
  s = db_->Exec("COPY sensors_buf TO " + SqlQuote(tmp_) + " (FORMAT parquet)");
  (void)db_->Exec("DROP TABLE IF EXISTS sensors_buf");
  if (s.ok()) s = CommitFile(env_, tmp_, path_);
  if (!s.ok()) {
    (void)env_->RemoveFile(tmp_);
    return s.Prefixed("writing the sensors dataset");
  }
  dirty_ = false;
  spdlog::debug("sensors: snapshot of {} sensors in {:.1f} ms", seen_count_, (MonoMicros() - t0) / 1e3);
  return Status::OK();
}

}  // namespace iotpipe
