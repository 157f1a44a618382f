#include "lifecycle/backfill.h"

#include <duckdb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "core/duck.h"
#include "core/fsutil.h"
#include "core/interner.h"
#include "core/timeutil.h"
#include "eval/evaluate.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/registry.h"

namespace iotpipe::ml {

namespace {

std::string TsLit(int64_t us) { return "make_timestamp(" + std::to_string(us) + "::BIGINT)"; }

struct Rows {
  std::vector<int32_t> idx, ty;
  std::vector<int64_t> ts;
  std::vector<double> val;
  std::vector<uint8_t> gt;
};

// Columns: INTEGER sensor idx, BIGINT µs, DOUBLE value, BOOLEAN gt, INTEGER type idx (NULL -> -1).
Status Fetch(Duck& db, const std::string& sql, Rows& out) {
  duckdb_result res;
  if (duckdb_query(db.conn(), sql.c_str(), &res) != DuckDBSuccess) {
    std::string m = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::Error(m);
  }
  while (duckdb_data_chunk ch = duckdb_fetch_chunk(res)) {
    idx_t n = duckdb_data_chunk_get_size(ch);
    auto* a = static_cast<int32_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 0)));
    auto* b = static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 1)));
    auto* c = static_cast<double*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 2)));
    auto* d = static_cast<bool*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, 3)));
    duckdb_vector ve = duckdb_data_chunk_get_vector(ch, 4);
    auto* e = static_cast<int32_t*>(duckdb_vector_get_data(ve));
    uint64_t* valid = duckdb_vector_get_validity(ve);
    for (idx_t i = 0; i < n; i++) {
      out.idx.push_back(a[i]);
      out.ts.push_back(b[i]);
      out.val.push_back(c[i]);
      out.gt.push_back(d[i] ? 1 : 0);
      out.ty.push_back(valid && !duckdb_validity_row_is_valid(valid, i) ? -1 : e[i]);
    }
    duckdb_destroy_data_chunk(&ch);
  }
  duckdb_destroy_result(&res);
  return Status::OK();
}

std::string RangeWhere(int64_t from, int64_t to) {
  if (from == 0 && to == 0) return "true";
  return "timestamp >= " + TsLit(from) + " AND timestamp < " + TsLit(to);
}

}  // namespace

Result<ScoreResult> Backfill(const ScoreOptions& opt) {
  Registry reg(opt.model_dir);
  auto dir = reg.Resolve(opt.model);
  if (!dir.ok()) return dir.status();
  auto det_r = LstmDetector::Load(dir.value(), opt.mode, opt.threads);
  if (!det_r.ok()) return det_r.status();
  const LstmDetector& det = *det_r.value();
  ScoreResult res;
  res.version = det.model().version;
  auto dbr = Duck::Open("", 2);
  if (!dbr.ok()) return dbr.status();
  Duck& db = **dbr;
  Status s = CreateDataViews(db, opt.data_dir);
  if (!s.ok()) return s;
  const std::string where = RangeWhere(opt.from_us, opt.to_us);
  s = db.Exec(
      "CREATE TEMP TABLE sensors AS SELECT sensor_id, (row_number() OVER (ORDER BY sensor_id) - 1)::INTEGER AS idx "
      "FROM (SELECT DISTINCT sensor_id FROM sensor_readings WHERE " +
      where + ")");
  if (!s.ok()) return s;
  s = db.Exec(
      "CREATE TEMP TABLE types AS SELECT anomaly_type, (row_number() OVER (ORDER BY anomaly_type) - 1)::INTEGER AS "
      "tidx "
      "FROM (SELECT DISTINCT anomaly_type FROM sensor_readings WHERE anomaly_type IS NOT NULL AND " +
      where + ")");
  if (!s.ok()) return s;
  auto ns = db.Query("SELECT count(*) FROM sensors");
  if (!ns.ok()) return ns.status();
  const int64_t S = ns->Int();
  if (S == 0) return Status::Error("no stored readings to score in " + opt.data_dir);
  auto names = db.Query("SELECT sensor_id FROM sensors ORDER BY idx");
  if (!names.ok()) return names.status();
  Interner sensors(static_cast<uint32_t>(S) + 1), models(16);
  for (auto& r : names->rows) sensors.Intern(*r[0]);
  det.Bind(&sensors, &models);
  const std::string out_dir = opt.out_dir.empty() ? opt.data_dir + "/scores/" + res.version : opt.out_dir;
  std::error_code ec;
  std::filesystem::remove_all(out_dir, ec);
  s = MakeDirs(out_dir);
  if (!s.ok()) return s;
  // Sensors in groups (bounded memory); each group is one Parquet part.
  const int64_t group = 64;
  StateStore store(det.state_bytes());
  int part = 0;
  for (int64_t g0 = 0; g0 < S; g0 += group) {
    Rows rows;
    s = Fetch(db,
              "SELECT s.idx, epoch_us(r.timestamp), r.value, coalesce(r.is_anomaly_ground_truth, false), t.tidx "
              "FROM sensor_readings r JOIN sensors s USING (sensor_id) LEFT JOIN types t USING (anomaly_type) "
              "WHERE s.idx >= " +
                  std::to_string(g0) + " AND s.idx < " + std::to_string(g0 + group) + " AND " + where +
                  " ORDER BY 1, 2",
              rows);
    if (!s.ok()) return Status::Error("reading: " + s.message());
    ReadingBatch b;
    for (size_t i = 0; i < rows.idx.size(); i++)
      b.Push(static_cast<uint32_t>(rows.idx[i]), rows.ts[i], rows.val[i], rows.gt[i] != 0,
             rows.ty[i] < 0 ? ReadingBatch::kNoType : static_cast<uint16_t>(rows.ty[i]));
    det.ScoreBatch(b, store);
    s = db.Exec(
        "CREATE OR REPLACE TEMP TABLE out (idx INTEGER, ts BIGINT, value DOUBLE, gt BOOLEAN, ty INTEGER, "
        "score FLOAT, pred BOOLEAN, model INTEGER)");
    if (!s.ok()) return s;
    duckdb_appender app;
    if (duckdb_appender_create(db.conn(), nullptr, "out", &app) != DuckDBSuccess)
      return Status::Error("duckdb appender");
    for (size_t i = 0; i < b.size(); i++) {
      duckdb_append_int32(app, rows.idx[i]);
      duckdb_append_int64(app, rows.ts[i]);
      duckdb_append_double(app, rows.val[i]);
      duckdb_append_bool(app, rows.gt[i] != 0);
      if (rows.ty[i] < 0)
        duckdb_append_null(app);
      else
        duckdb_append_int32(app, rows.ty[i]);
      duckdb_append_float(app, b.score[i]);
      duckdb_append_bool(app, b.predicted[i] != 0);
      duckdb_append_int32(app, b.model[i]);
      duckdb_appender_end_row(app);
      res.predicted += b.predicted[i];
    }
    duckdb_appender_destroy(&app);
    res.rows += static_cast<int64_t>(b.size());
    std::string mv = "(VALUES ";
    for (uint32_t m = 0; m < models.size(); m++)
      mv += (m ? ", (" : "(") + std::to_string(m) + ", " + SqlQuote(models.Name(m)) + ")";
    mv += ") AS mv(model, model_version)";
    char pname[32];
    std::snprintf(pname, sizeof pname, "part-%05d.parquet", part++);
    const std::string fin = out_dir + "/" + pname, tmp = out_dir + "/." + pname + ".tmp";
    s = db.Exec(
        "COPY (SELECT s.sensor_id, make_timestamp(o.ts) AS timestamp, o.value, o.gt AS is_anomaly_ground_truth, "
        "t.anomaly_type, NULL::TIMESTAMP AS processing_timestamp, o.pred AS is_anomaly_predicted, "
        "o.score AS anomaly_score, mv.model_version FROM out o JOIN sensors s USING (idx) "
        "LEFT JOIN types t ON t.tidx = o.ty LEFT JOIN " +
        mv + " USING (model) ORDER BY s.sensor_id, timestamp) TO " + SqlQuote(tmp) + " (FORMAT parquet)");
    if (!s.ok()) return s;
    s = CommitFile(tmp, fin);
    if (!s.ok()) return s;
    store = StateStore(det.state_bytes());  // next group: fresh sensors
  }
  res.file = out_dir;
  s = db.Exec("CREATE OR REPLACE VIEW scored AS SELECT * FROM read_parquet(" + SqlQuote(out_dir + "/*.parquet") + ")");
  if (!s.ok()) return s;
  auto ev = Evaluate(db, "scored");
  if (ev.ok()) {
    res.evaluation = ev->ToJson();
    const std::string ver = std::filesystem::path(dir.value()).filename().string();
    Status rs = reg.AddEvaluation(ver, {{"kind", "backfill"},
                                        {"data_dir", opt.data_dir},
                                        {"from", opt.from_us ? FormatIsoMicros(opt.from_us) : ""},
                                        {"to", opt.to_us ? FormatIsoMicros(opt.to_us) : ""},
                                        {"rows", res.rows},
                                        {"evaluation", res.evaluation}});
    (void)rs;  // best effort: the scores are written either way
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
double Psi(std::vector<float> ref, std::vector<float> cur, int bins) {
  if (ref.empty() || cur.empty() || bins < 2) return 0;
  std::sort(ref.begin(), ref.end());
  std::vector<float> edges;  // interior edges at reference quantiles
  for (int k = 1; k < bins; k++)
    edges.push_back(ref[static_cast<size_t>(static_cast<double>(k) / bins * static_cast<double>(ref.size() - 1))]);
  auto hist = [&](const std::vector<float>& v) {
    std::vector<double> h(static_cast<size_t>(bins), 0);
    for (float x : v) h[static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin())] += 1;
    for (auto& c : h) c = std::max(c / static_cast<double>(v.size()), 1e-4);
    return h;
  };
  auto a = hist(ref), b = hist(cur);
  double psi = 0;
  for (int k = 0; k < bins; k++)
    psi += (b[static_cast<size_t>(k)] - a[static_cast<size_t>(k)]) *
           std::log(b[static_cast<size_t>(k)] / a[static_cast<size_t>(k)]);
  return psi;
}

double KsStatistic(std::vector<float> a, std::vector<float> b) {
  if (a.empty() || b.empty()) return 0;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    float x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] <= x) i++;
    while (j < b.size() && b[j] <= x) j++;
    d = std::max(d, std::fabs(static_cast<double>(i) / static_cast<double>(a.size()) -
                              static_cast<double>(j) / static_cast<double>(b.size())));
  }
  return d;
}

nlohmann::json DriftReport::ToJson() const {
  nlohmann::json w = nlohmann::json::array(), per = nlohmann::json::array();
  for (auto& [s, p] : worst_sensors) w.push_back({{"sensor_id", s}, {"psi", p}});
  for (auto& s : sensors)
    per.push_back({{"sensor_id", s.id},
                   {"windows", s.windows},
                   {"psi", s.psi},
                   {"ks", s.ks},
                   {"alert_rate", s.alert_rate},
                   {"drifted", s.drifted}});
  return {{"version", version},
          {"from", FormatIsoMicros(from_us)},
          {"to", FormatIsoMicros(to_us)},
          {"windows", windows},
          {"psi", psi},
          {"ks", ks},
          {"alert_rate", alert_rate},
          {"input_psi", input_psi},
          {"input_ks", input_ks},
          {"drifted", drifted},
          {"overall_drifted", overall_drifted},
          {"drifted_sensors", drifted_sensors},
          {"sensors_judged", static_cast<int64_t>(sensors.size())},
          {"worst_sensors", w},
          {"sensors", per},
          {"stored",
           {{"rows", rows},
            {"flagged", flagged},
            {"alert_rate", stored_alert_rate},
            {"labelled", labelled},
            {"unlabelled_rows_ignored", unlabelled},
            {"precision", labelled ? nlohmann::json(precision) : nlohmann::json(nullptr)},
            {"recall", labelled ? nlohmann::json(recall) : nlohmann::json(nullptr)},
            {"f1", labelled ? nlohmann::json(f1) : nlohmann::json(nullptr)}}}};
}

std::string DriftReport::ToText(size_t max_sensors) const {
  char buf[512];
  std::string o;
  std::snprintf(buf, sizeof buf, "model %s, %s .. %s: %lld windows\n", version.c_str(),
                FormatIsoMicros(from_us).c_str(), FormatIsoMicros(to_us).c_str(), static_cast<long long>(windows));
  o += buf;
  std::snprintf(buf, sizeof buf,
                "overall: error PSI %.3f KS %.3f, input PSI %.3f KS %.3f, model alert rate %.4f -> %s\n", psi, ks,
                input_psi, input_ks, alert_rate, overall_drifted ? "DRIFT" : "ok");
  o += buf;
  std::snprintf(buf, sizeof buf, "stored rows: %lld, flagged %lld (alert rate %.4f)", static_cast<long long>(rows),
                static_cast<long long>(flagged), stored_alert_rate);
  o += buf;
  if (unlabelled) {
    std::snprintf(buf, sizeof buf, "; %lld unlabelled rows ignored by precision/recall/F1",
                  static_cast<long long>(unlabelled));
    o += buf;
  }
  if (labelled) {
    std::snprintf(buf, sizeof buf, "; %lld labelled anomalous: point precision %.3f recall %.3f F1 %.3f\n",
                  static_cast<long long>(labelled), precision, recall, f1);
    o += buf;
  } else {
    o += "; no labelled anomalies in the span (precision/recall/F1 need labels)\n";
  }
  o += "sensor                            windows  error PSI  error KS  alert rate\n";
  for (size_t i = 0; i < sensors.size() && i < max_sensors; i++) {
    const Sensor& s = sensors[i];
    std::snprintf(buf, sizeof buf, "%-32s %8lld %10.3f %9.3f %11.4f%s\n", s.id.c_str(),
                  static_cast<long long>(s.windows), s.psi, s.ks, s.alert_rate, s.drifted ? "  DRIFT" : "");
    o += buf;
  }
  if (sensors.size() > max_sensors)
    o += "... " + std::to_string(sensors.size() - max_sensors) + " more (--json lists all)\n";
  std::snprintf(buf, sizeof buf, "verdict: %s (overall %s; %lld of %zu sensors drifted)\n", drifted ? "DRIFT" : "ok",
                overall_drifted ? "drifted" : "ok", static_cast<long long>(drifted_sensors), sensors.size());
  o += buf;
  return o;
}

Result<DriftReport> MonitorDrift(const DriftOptions& opt) {
  Registry reg(opt.model_dir);
  auto dir = reg.Resolve(opt.model);
  if (!dir.ok()) return dir.status();
  auto mr = Model::Load(dir.value());
  if (!mr.ok()) return mr.status();
  const Model& m = mr.value();
  DriftReport rep;
  rep.version = m.version;
  auto dbr = Duck::Open("", 2);
  if (!dbr.ok()) return dbr.status();
  Duck& db = **dbr;
  Status s = CreateDataViews(db, opt.data_dir);
  if (!s.ok()) return s;
  int64_t to = opt.to_us;
  if (to == 0) {
    auto t = db.Query("SELECT epoch_us(max(timestamp)) FROM sensor_readings");
    if (!t.ok()) return t.status();
    if (t->rows.empty() || !t->rows[0][0]) return Status::Error("no stored readings under " + opt.data_dir);
    to = t->Int() + 1;
  }
  const int64_t from = to - opt.window_us;
  rep.from_us = from;
  rep.to_us = to;
  auto st = db.Query(
      "SELECT count(*), coalesce(sum(is_anomaly_predicted::INTEGER), 0), "
      "coalesce(sum(coalesce(is_anomaly_ground_truth, false)::INTEGER), 0), "
      "coalesce(sum((is_anomaly_predicted AND coalesce(is_anomaly_ground_truth, false))::INTEGER), 0), "
      "count(*) FILTER (WHERE is_anomaly_ground_truth IS NULL), "
      "count(*) FILTER (WHERE is_anomaly_ground_truth IS NULL AND is_anomaly_predicted) "
      "FROM sensor_readings WHERE " +
      RangeWhere(from, to));
  if (!st.ok()) return st.status();
  rep.rows = st->Int(0, 0);
  rep.flagged = st->Int(0, 1);
  rep.labelled = st->Int(0, 2);
  const int64_t tp = st->Int(0, 3);
  rep.unlabelled = st->Int(0, 4);
  const int64_t flagged_labelled = rep.flagged - st->Int(0, 5);  // P/R/F1 over labelled rows only
  rep.stored_alert_rate = rep.rows ? static_cast<double>(rep.flagged) / static_cast<double>(rep.rows) : 0;
  if (rep.labelled) {
    rep.precision = flagged_labelled ? static_cast<double>(tp) / static_cast<double>(flagged_labelled) : 0;
    rep.recall = static_cast<double>(tp) / static_cast<double>(rep.labelled);
    rep.f1 = rep.precision + rep.recall > 0 ? 2 * rep.precision * rep.recall / (rep.precision + rep.recall) : 0;
  }
  s = db.Exec(
      "CREATE TEMP TABLE sensors AS SELECT sensor_id, (row_number() OVER (ORDER BY sensor_id) - 1)::INTEGER AS idx "
      "FROM (SELECT DISTINCT sensor_id FROM sensor_readings WHERE " +
      RangeWhere(from, to) + ")");
  if (!s.ok()) return s;
  auto names = db.Query("SELECT sensor_id FROM sensors ORDER BY idx");
  if (!names.ok()) return names.status();
  Rows rows;
  s = Fetch(db,
            "SELECT s.idx, epoch_us(r.timestamp), r.value, coalesce(r.is_anomaly_ground_truth, false), NULL::INTEGER "
            "FROM sensor_readings r JOIN sensors s USING (sensor_id) WHERE " +
                RangeWhere(from, to) + " ORDER BY 1, 2",
            rows);
  if (!s.ok()) return s;
  const int W = m.weights.window;
  LstmAeForward fwd(m.weights);
  std::vector<float> all_err, all_in;
  std::map<std::string, double> per_sensor;
  int64_t alerts = 0;
  size_t i = 0;
  while (i < rows.idx.size()) {
    size_t j = i;
    while (j < rows.idx.size() && rows.idx[j] == rows.idx[i]) j++;
    const std::string& name = *names->rows[static_cast<size_t>(rows.idx[i])][0];
    int32_t sc = m.scaler.Find(name);
    if (sc >= 0 && j - i >= static_cast<size_t>(W)) {
      std::vector<float> v;
      for (size_t q = i; q < j; q++) {
        v.push_back(static_cast<float>(
            m.scaler.Z(static_cast<size_t>(sc), rows.ts[q], rows.val[q])));  // seasonal residual if the model has one
        all_in.push_back(v.back());
      }
      std::vector<float> X;
      for (size_t st = 0; st + static_cast<size_t>(W) <= v.size(); st += 4)
        X.insert(X.end(), v.begin() + static_cast<std::ptrdiff_t>(st), v.begin() + static_cast<std::ptrdiff_t>(st) + W);
      size_t n = X.size() / static_cast<size_t>(W);
      std::vector<float> ew(n), el(n);
      fwd.Errors(X.data(), n, ew.data(), el.data(), opt.threads);
      int64_t sa = 0;
      for (size_t k = 0; k < n; k++)
        sa += std::max(ew[k] / m.thresholds.win[static_cast<size_t>(sc)],
                       el[k] / m.thresholds.last[static_cast<size_t>(sc)]) >= 1;
      alerts += sa;
      per_sensor[name] = Psi(m.val_errors, ew, 10);
      DriftReport::Sensor ps;
      ps.id = name;
      ps.windows = static_cast<int64_t>(n);
      ps.psi = per_sensor[name];
      ps.ks = KsStatistic(m.val_errors, ew);
      ps.alert_rate = n ? static_cast<double>(sa) / static_cast<double>(n) : 0;
      ps.drifted = n >= 32 && (ps.psi > opt.psi_limit || ps.ks > opt.ks_limit);
      rep.sensors.push_back(std::move(ps));
      all_err.insert(all_err.end(), ew.begin(), ew.end());
    }
    i = j;
  }
  rep.windows = static_cast<int64_t>(all_err.size());
  if (all_err.empty()) return Status::Error("no full windows of known sensors in the last span");
  rep.psi = Psi(m.val_errors, all_err);
  rep.ks = KsStatistic(m.val_errors, all_err);
  rep.alert_rate = static_cast<double>(alerts) / static_cast<double>(rep.windows);
  // Inputs: scaled values should look like the training data's (mean 0, sd 1): PSI against N(0,1) deciles
  // approximated by a deterministic normal sample.
  std::vector<float> ref_in;
  for (int k = 1; k < 2000; k++) {
    double p = k / 2000.0, t = std::sqrt(-2 * std::log(p < 0.5 ? p : 1 - p));
    double z =
        t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    ref_in.push_back(static_cast<float>(p < 0.5 ? -z : z));
  }
  rep.input_psi = Psi(ref_in, all_in);
  rep.input_ks = KsStatistic(ref_in, all_in);
  std::sort(rep.sensors.begin(), rep.sensors.end(), [](const DriftReport::Sensor& a, const DriftReport::Sensor& b) {
    return a.psi > b.psi || (a.psi == b.psi && a.id < b.id);
  });
  rep.overall_drifted = rep.psi > opt.psi_limit || rep.ks > opt.ks_limit;
  for (const auto& ps : rep.sensors) rep.drifted_sensors += ps.drifted;
  rep.drifted = rep.overall_drifted || rep.drifted_sensors > 0;
  std::vector<std::pair<std::string, double>> v(per_sensor.begin(), per_sensor.end());
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  if (v.size() > 5) v.resize(5);
  rep.worst_sensors = v;
  return rep;
}

}  // namespace iotpipe::ml
