#include "lifecycle/shadow.h"

#include <duckdb.h>

#include <cstdio>
#include <filesystem>

#include "core/clock.h"
#include "core/fsutil.h"

namespace iotpipe::ml {

ShadowSink::ShadowSink(std::string data_dir, const Dictionaries* dicts, size_t flush_rows, double flush_s)
    : dir_(std::move(data_dir) + "/shadow_scores"), dicts_(dicts), flush_rows_(flush_rows), flush_s_(flush_s) {}

ShadowSink::~ShadowSink() = default;

Status ShadowSink::Add(const ProcessedBatch& pb) {
  const ReadingBatch& b = pb.readings;
  const size_t n = b.size();
  if (n == 0 || pb.shadow_score.size() != n) return Status::OK();
  if (sensor_.empty()) first_mono_us_ = MonoMicros();
  sensor_.insert(sensor_.end(), b.sensor.begin(), b.sensor.end());
  ts_.insert(ts_.end(), b.ts_us.begin(), b.ts_us.end());
  gt_.insert(gt_.end(), b.gt.begin(), b.gt.end());
  type_.insert(type_.end(), b.type.begin(), b.type.end());
  score_.insert(score_.end(), b.score.begin(), b.score.end());
  pred_.insert(pred_.end(), b.predicted.begin(), b.predicted.end());
  model_.insert(model_.end(), b.model.begin(), b.model.end());
  sscore_.insert(sscore_.end(), pb.shadow_score.begin(), pb.shadow_score.end());
  spred_.insert(spred_.end(), pb.shadow_predicted.begin(), pb.shadow_predicted.end());
  smodel_.insert(smodel_.end(), pb.shadow_model.begin(), pb.shadow_model.end());
  if (sensor_.size() >= flush_rows_ || static_cast<double>(MonoMicros() - first_mono_us_) / 1e6 >= flush_s_)
    return Flush();
  return Status::OK();
}

Status ShadowSink::Flush() {
  if (sensor_.empty()) return Status::OK();
  if (!db_) {
    auto d = Duck::Open("", 1);
    if (!d.ok()) return d.status();
    db_ = std::move(d.value());
  }
  Status s = MakeDirs(dir_);
  if (!s.ok()) return s;
  s = db_->Exec(
      "CREATE OR REPLACE TEMP TABLE shadow_buf (sensor_id VARCHAR, timestamp TIMESTAMP, is_anomaly_ground_truth "
      "BOOLEAN, "
      "anomaly_type VARCHAR, anomaly_score FLOAT, is_anomaly_predicted BOOLEAN, model_version VARCHAR, "
      "shadow_score FLOAT, shadow_predicted BOOLEAN, shadow_model_version VARCHAR)");
  if (!s.ok()) return s;
  duckdb_appender app;
  if (duckdb_appender_create(db_->conn(), nullptr, "shadow_buf", &app) != DuckDBSuccess) {
    duckdb_appender_destroy(&app);
    return Status::Error("shadow sink: cannot create a DuckDB appender");
  }
  for (size_t i = 0; i < sensor_.size(); i++) {
    duckdb_append_varchar(app, dicts_->sensors.Name(sensor_[i]).c_str());
    duckdb_append_timestamp(app, duckdb_timestamp{ts_[i]});
    if (ReadingBatch::Labelled(gt_[i]))
      duckdb_append_bool(app, gt_[i] != 0);
    else
      duckdb_append_null(app);
    if (type_[i] == ReadingBatch::kNoType || type_[i] >= dicts_->types.size())
      duckdb_append_null(app);
    else
      duckdb_append_varchar(app, dicts_->types.Name(type_[i]).c_str());
    duckdb_append_float(app, score_[i]);
    duckdb_append_bool(app, pred_[i] != 0);
    duckdb_append_varchar(app, dicts_->models.Name(model_[i]).c_str());
    duckdb_append_float(app, sscore_[i]);
    duckdb_append_bool(app, spred_[i] != 0);
    duckdb_append_varchar(app, dicts_->models.Name(smodel_[i]).c_str());
    duckdb_appender_end_row(app);
  }
  bool ok = duckdb_appender_close(app) == DuckDBSuccess;
  std::string err = ok ? "" : (duckdb_appender_error(app) ? duckdb_appender_error(app) : "append failed");
  duckdb_appender_destroy(&app);
  if (!ok) return Status::Error("shadow sink: " + err);
  char name[96];
  std::snprintf(name, sizeof name, "shadow-%lld-%04d.parquet", static_cast<long long>(ts_.front()), seq_++);
  const std::string fin = dir_ + "/" + name, tmp = dir_ + "/." + name + ".tmp";
  s = db_->Exec("COPY shadow_buf TO " + SqlQuote(tmp) + " (FORMAT parquet, COMPRESSION zstd)");
  if (!s.ok()) return s;
  s = CommitFile(tmp, fin);
  if (!s.ok()) return s;
  rows_ += static_cast<int64_t>(sensor_.size());
  files_++;
  sensor_.clear();
  ts_.clear();
  gt_.clear();
  type_.clear();
  score_.clear();
  pred_.clear();
  model_.clear();
  sscore_.clear();
  spred_.clear();
  smodel_.clear();
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------

static double EpisodeF1(const EvalFigures& f) { return F1(f.episode_precision(), f.episode_recall()); }
static double PointF1(const EvalFigures& f) { return F1(f.point_precision(), f.point_recall()); }

nlohmann::json ShadowComparison::ToJson() const {
  return {
      {"rows", rows},
      {"labelled", labelled},
      {"production",
       {{"versions", production_versions}, {"alert_rate", production_alert_rate}, {"evaluation", production.ToJson()}}},
      {"shadow", {{"versions", shadow_versions}, {"alert_rate", shadow_alert_rate}, {"evaluation", shadow.ToJson()}}},
      {"shadow_at_least_as_good", shadow_at_least_as_good},
      {"reason", reason}};
}

std::string ShadowComparison::ToText() const {
  char buf[1024];
  auto line = [&](const char* who, const std::string& v, const EvalFigures& f, double rate) {
    std::snprintf(buf, sizeof buf,
                  "%-10s %-24s point P %.3f R %.3f F1 %.3f | episode P %.3f R %.3f F1 %.3f | "
                  "false alarms/sensor-day %.2f | alert rate %.5f\n",
                  who, v.c_str(), f.point_precision(), f.point_recall(), PointF1(f), f.episode_precision(),
                  f.episode_recall(), EpisodeF1(f), f.false_alarms_per_sensor_day(), rate);
    return std::string(buf);
  };
  std::string s = "shadow comparison over " + std::to_string(rows) + " rows scored by both\n";
  s += line("production", production_versions, production.overall, production_alert_rate);
  s += line("shadow", shadow_versions, shadow.overall, shadow_alert_rate);
  s += std::string("verdict: shadow is ") + (shadow_at_least_as_good ? "at least as good" : "worse") + " (" + reason +
       ")\n";
  return s;
}

Result<ShadowComparison> CompareShadow(const std::string& data_dir, const std::string& where) {
  const std::string dir = data_dir + "/shadow_scores";
  bool any = false;
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec))
    for (auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string n = e.path().filename().string();
      any |= !n.empty() && n[0] != '.' && e.path().extension() == ".parquet";
    }
  if (!any) return Status::Error("no shadow scores under " + dir + " (is a model under the 'shadow' alias?)");
  auto dbr = Duck::Open("", 2);
  if (!dbr.ok()) return dbr.status();
  Duck& db = **dbr;
  const std::string src = "read_parquet(" + SqlQuote(dir + "/*.parquet") + ")";
  const std::string w = where.empty() ? "" : " WHERE " + where;
  Status s = db.Exec(
      "CREATE VIEW shadow_prod AS SELECT sensor_id, timestamp, is_anomaly_ground_truth, anomaly_type, "
      "anomaly_score, is_anomaly_predicted, model_version FROM " +
      src + w);
  if (!s.ok()) return s;
  s = db.Exec(
      "CREATE VIEW shadow_cand AS SELECT sensor_id, timestamp, is_anomaly_ground_truth, anomaly_type, "
      "shadow_score AS anomaly_score, shadow_predicted AS is_anomaly_predicted, "
      "shadow_model_version AS model_version FROM " +
      src + w);
  if (!s.ok()) return s;
  ShadowComparison c;
  auto q = db.Query(
      "SELECT count(*), count(*) FILTER (WHERE is_anomaly_ground_truth), "
      "avg(is_anomaly_predicted::INTEGER), avg(shadow_predicted::INTEGER), "
      "string_agg(DISTINCT model_version, ','), string_agg(DISTINCT shadow_model_version, ',') FROM " +
      src + w);
  if (!q.ok()) return q.status();
  c.rows = q->Int(0, 0);
  if (c.rows == 0) return Status::Error("no shadow-scored rows match");
  c.labelled = q->Int(0, 1) > 0;
  c.production_alert_rate = q->Num(0, 2);
  c.shadow_alert_rate = q->Num(0, 3);
  c.production_versions = q->Str(0, 4);
  c.shadow_versions = q->Str(0, 5);
  auto a = Evaluate(db, "shadow_prod");
  if (!a.ok()) return a.status();
  auto b = Evaluate(db, "shadow_cand");
  if (!b.ok()) return b.status();
  c.production = std::move(a.value());
  c.shadow = std::move(b.value());
  const EvalFigures &p = c.production.overall, &sh = c.shadow.overall;
  char buf[256];
  if (c.labelled && p.episodes > 0) {
    const bool f1_ok = EpisodeF1(sh) >= EpisodeF1(p) - 1e-9;
    const bool fa_ok = sh.false_alarms_per_sensor_day() <= p.false_alarms_per_sensor_day() + 0.5;
    c.shadow_at_least_as_good = f1_ok && fa_ok;
    std::snprintf(buf, sizeof buf, "episode F1 %.3f vs %.3f, false alarms/sensor-day %.2f vs %.2f", EpisodeF1(sh),
                  EpisodeF1(p), sh.false_alarms_per_sensor_day(), p.false_alarms_per_sensor_day());
  } else if (c.labelled) {
    c.shadow_at_least_as_good = PointF1(sh) >= PointF1(p) - 1e-9;
    std::snprintf(buf, sizeof buf, "point F1 %.3f vs %.3f", PointF1(sh), PointF1(p));
  } else {
    c.shadow_at_least_as_good = c.shadow_alert_rate <= c.production_alert_rate + 1e-12;
    std::snprintf(buf, sizeof buf, "no labels: alert rate %.5f vs %.5f", c.shadow_alert_rate, c.production_alert_rate);
  }
  c.reason = buf;
  return c;
}

}  // namespace iotpipe::ml
