#include "eval/evaluate.h"

#include <fmt/format.h>

namespace iotpipe {

nlohmann::json EvalFigures::ToJson() const {
  double pp = point_precision(), pr = point_recall(), ep = episode_precision(), er = episode_recall();
  return {{"point_precision", pp},
          {"point_recall", pr},
          {"point_f1", F1(pp, pr)},
          {"episode_precision", ep},
          {"episode_recall", er},
          {"episode_f1", F1(ep, er)},
          {"false_alarms_per_sensor_day", false_alarms_per_sensor_day()},
          {"mean_detection_delay_s", mean_delay_s},
          {"tp", tp},
          {"fp", fp},
          {"fn", fn},
          {"rows", rows},
          {"episodes", episodes},
          {"episodes_found", episodes_found},
          {"alarms", alarms},
          {"false_alarms", false_alarms},
          {"sensor_days", sensor_days}};
}

nlohmann::json EvalReport::ToJson() const {
  nlohmann::json j = overall.ToJson();
  j["total_rows"] = total_rows;
  j["labelled_rows"] = labelled_rows;
  j["unlabelled_rows_ignored"] = unlabelled_rows;
  j["alerts"] = alerts;
  j["alert_rate"] = alert_rate();
  j["by_type"] = nlohmann::json::object();
  for (auto& [t, f] : by_type) j["by_type"][t] = f.ToJson();
  j["by_model"] = nlohmann::json::object();
  for (auto& [m, f] : by_model) j["by_model"][m] = f.ToJson();
  return j;
}

static std::string Row(const std::string& name, const EvalFigures& f) {
  double pp = f.point_precision(), pr = f.point_recall(), ep = f.episode_precision(), er = f.episode_recall();
  return fmt::format("{:<16} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>8} {:>10.2f} {:>9.1f}\n", name,
                     pp, pr, F1(pp, pr), ep, er, F1(ep, er), f.episodes, f.false_alarms_per_sensor_day(),
                     f.mean_delay_s);
}

std::string EvalReport::ToText() const {
  std::string head =
      fmt::format("rows {}  labelled {}  unlabelled (ignored by P/R/F1) {}  alerts {}  alert_rate {:.6f}\n", total_rows,
                  labelled_rows, unlabelled_rows, alerts, alert_rate());
  if (labelled_rows == 0) return head + "no labelled rows: precision/recall/F1 not computed (alert rate only)\n";
  std::string s =
      head + fmt::format("{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9}\n", "", "point_P", "point_R",
                         "point_F1", "ep_P", "ep_R", "ep_F1", "episodes", "FA/sen-day", "delay_s");
  s += Row("overall", overall);
  for (auto& [t, f] : by_type) s += Row("type:" + t, f);
  for (auto& [m, f] : by_model) s += Row("model:" + m, f);
  return s;
}

namespace {

// Builds temp tables ev (rows with episode/alarm ids), eps (episodes) and alarms for a row filter.
Status Prepare(Duck& db, const std::string& table, const std::string& where) {
  // Labelled rows only: an unlabelled row is neither a true nor a false alarm.
  std::string w = " WHERE is_anomaly_ground_truth IS NOT NULL" + (where.empty() ? "" : " AND (" + where + ")");
  Status s = db.Exec(
      "CREATE OR REPLACE TEMP TABLE ev AS "
      "WITH r AS (SELECT sensor_id, timestamp, coalesce(is_anomaly_ground_truth, false) AS gt, "
      "  coalesce(anomaly_type, 'unknown') AS ty, coalesce(is_anomaly_predicted, false) AS pr FROM " +
      table + w +
      "), "
      "s AS (SELECT *, CASE WHEN gt AND (lag(gt) OVER w IS DISTINCT FROM true OR lag(ty) OVER w <> ty) THEN 1 ELSE 0 "
      "END AS eps, "
      "  CASE WHEN pr AND lag(pr) OVER w IS DISTINCT FROM true THEN 1 ELSE 0 END AS als "
      "  FROM r WINDOW w AS (PARTITION BY sensor_id ORDER BY timestamp)) "
      "SELECT *, sum(eps) OVER w2 AS ep_id, sum(als) OVER w2 AS al_id FROM s "
      "WINDOW w2 AS (PARTITION BY sensor_id ORDER BY timestamp ROWS UNBOUNDED PRECEDING)");
  if (!s.ok()) return s;
  s = db.Exec(
      "CREATE OR REPLACE TEMP TABLE eps AS SELECT sensor_id, ep_id, any_value(ty) AS ty, bool_or(pr) AS found, "
      "min(timestamp) AS t0, min(timestamp) FILTER (WHERE pr) AS t_hit FROM ev WHERE gt GROUP BY sensor_id, ep_id");
  if (!s.ok()) return s;
  return db.Exec(
      "CREATE OR REPLACE TEMP TABLE alarms AS SELECT sensor_id, al_id, bool_or(gt) AS hit, "
      "list_distinct(list(ty) FILTER (WHERE gt)) AS types FROM ev WHERE pr GROUP BY sensor_id, al_id");
}

Status Fill(Duck& db, EvalFigures* f, const std::string& type) {
  // Per type: that type's anomalies against all normal points (one-vs-normal).
  std::string gt_cond = type.empty() ? "gt" : "gt AND ty = " + SqlQuote(type);
  auto pts = db.Query("SELECT count(*) FILTER (WHERE " + gt_cond +
                      " AND pr), count(*) FILTER (WHERE NOT gt AND pr), "
                      "count(*) FILTER (WHERE " +
                      gt_cond + " AND NOT pr), count(*) FROM ev");
  if (!pts.ok()) return pts.status();
  f->tp = pts->Int(0, 0);
  f->fp = pts->Int(0, 1);
  f->fn = pts->Int(0, 2);
  f->rows = pts->Int(0, 3);
  std::string ty = type.empty() ? "" : " WHERE ty = " + SqlQuote(type);
  auto eps = db.Query(
      "SELECT count(*), count(*) FILTER (WHERE found), "
      "coalesce(avg(epoch(t_hit) - epoch(t0)) FILTER (WHERE found), 0) FROM eps" +
      ty);
  if (!eps.ok()) return eps.status();
  f->episodes = eps->Int(0, 0);
  f->episodes_found = eps->Int(0, 1);
  f->mean_delay_s = eps->Num(0, 2);
  std::string hit = type.empty() ? "hit" : "list_contains(types, " + SqlQuote(type) + ")";
  auto al =
      db.Query("SELECT count(*), count(*) FILTER (WHERE " + hit + "), count(*) FILTER (WHERE NOT hit) FROM alarms");
  if (!al.ok()) return al.status();
  f->alarms = al->Int(0, 0);
  f->true_alarms = al->Int(0, 1);
  f->false_alarms = al->Int(0, 2);
  auto days = db.Query(
      "SELECT coalesce(sum(span), 0) FROM (SELECT greatest(epoch(max(timestamp)) - epoch(min(timestamp)), 1) "
      "/ 86400.0 AS span FROM ev GROUP BY sensor_id)");
  if (!days.ok()) return days.status();
  f->sensor_days = days->Num(0, 0);
  return Status::OK();
}

Status FillAll(Duck& db, const std::string& table, const std::string& where, EvalFigures* overall,
               std::map<std::string, EvalFigures>* by_type) {
  Status s = Prepare(db, table, where);
  if (!s.ok()) return s;
  s = Fill(db, overall, "");
  if (!s.ok() || !by_type) return s;
  auto types = db.Query("SELECT DISTINCT ty FROM ev WHERE gt ORDER BY 1");
  if (!types.ok()) return types.status();
  for (size_t i = 0; i < types->rows.size(); i++) {
    std::string t = types->Str(i, 0);
    s = Fill(db, &(*by_type)[t], t);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace

Result<EvalReport> Evaluate(Duck& db, const std::string& table, const std::string& where) {
  EvalReport rep;
  auto counts =
      db.Query("SELECT count(*), count(is_anomaly_ground_truth), count(*) FILTER (WHERE is_anomaly_predicted) FROM " +
               table + (where.empty() ? "" : " WHERE " + where));
  if (!counts.ok()) return counts.status();
  rep.total_rows = counts->Int(0, 0);
  rep.labelled_rows = counts->Int(0, 1);
  rep.unlabelled_rows = rep.total_rows - rep.labelled_rows;
  rep.alerts = counts->Int(0, 2);
  auto models = db.Query("SELECT DISTINCT model_version FROM " + table + (where.empty() ? "" : " WHERE " + where) +
                         " ORDER BY 1");
  if (!models.ok()) return models.status();
  if (models->rows.size() > 1) {
    for (size_t i = 0; i < models->rows.size(); i++) {
      std::string m = models->Str(i, 0);
      std::string w = "model_version = " + SqlQuote(m) + (where.empty() ? "" : " AND (" + where + ")");
      Status s = FillAll(db, table, w, &rep.by_model[m], nullptr);
      if (!s.ok()) return s;
    }
  }
  Status s = FillAll(db, table, where, &rep.overall, &rep.by_type);
  if (!s.ok()) return s;
  if (models->rows.size() == 1) rep.by_model[models->Str(0, 0)] = rep.overall;
  return rep;
}

}  // namespace iotpipe
