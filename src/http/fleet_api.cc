// The dashboard's fleet view and model controls (routes of http::Server, see server.h):
//   GET  /api/fleet/summary   headline figures: sensors alerting now, open alerts, anomaly rate, pipeline health
//   GET  /api/fleet/heatmap   sensor x time heat map of anomaly scores: top N sensors, the fleet in bands,
//                             or the top N assets or devices (when the fleet has them)
//   GET  /api/fleet/top       sensors ranked by flagged readings in a time range, from memory or the store
//   GET  /api/registry        model versions, aliases and evaluations (model/registry.h)
//   POST /api/registry/promote | rollback | clear   act on aliases (production, shadow); a running
//        pipeline's watchers hot-swap what they point at
// All times are UTC (ISO 8601 with Z, or epoch seconds). Every answer is bounded: N rows, never a series
// per sensor.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <set>

#include "core/duck.h"
#include "core/timeutil.h"
#include "detect/detector.h"
#include "http/api_util.h"
#include "http/server.h"
#include "model/registry.h"
#include "pipeline/processor.h"
#include "sinks/alerts.h"

namespace iotpipe::http {

using json = nlohmann::json;

namespace {

constexpr int64_t kMaxRows = 500;    // heat-map rows and ranked sensors per answer
constexpr size_t kAlertingIds = 50;  // sensor ids listed beside the alerting count

double Seconds(int64_t us) { return static_cast<double>(us) / 1e6; }

json HeatmapJson(const FleetHeatmap& h, const std::string& mode) {
  json score = json::array(), flagged = json::array();
  for (size_t r = 0; r < h.rows.size(); r++) {
    const auto first = static_cast<std::ptrdiff_t>(r * h.cols), last = first + static_cast<std::ptrdiff_t>(h.cols);
    score.push_back(std::vector<int>(h.score.begin() + first, h.score.begin() + last));
    flagged.push_back(std::vector<uint32_t>(h.flagged.begin() + first, h.flagged.begin() + last));
  }
  return json{{"mode", mode},   {"t0", Seconds(h.t0_us)}, {"bucket_s", Seconds(h.bucket_us)},
              {"cols", h.cols}, {"rows", h.rows},         {"row_flagged", h.row_flagged},
              {"score", score}, {"flagged", flagged},     {"threshold", static_cast<int>(kScoreThreshold * 100)}};
}

json RankJson(const std::vector<FleetRank>& rows) {
  json arr = json::array();
  for (auto& r : rows)
    arr.push_back(json{{"sensor_id", r.sensor_id},
                       {"flagged", r.flagged},
                       {"max_score", r.max_score},
                       {"last_flagged", r.last_flagged_us ? json(FormatIsoMicros(r.last_flagged_us)) : json(nullptr)}});
  return arr;
}

// The time range of a ranking: from/to (UTC), else range=<seconds> back from `head_us`, else everything.
Status RangeOf(const httplib::Request& req, int64_t head_us, int64_t* from, int64_t* to) {
  std::string err;
  *from = ParseTimeParam(req, "from", INT64_MIN, &err);
  *to = ParseTimeParam(req, "to", INT64_MAX, &err);
  if (!err.empty()) return Status::InvalidArgument(err);
  const int64_t range_s = IntParam(req, "range", 0, 0, 400LL * 86400);
  if (*from == INT64_MIN && range_s > 0 && head_us > 0) *from = head_us - range_s * 1000000;
  if (*from > *to) return Status::InvalidArgument("from is after to");
  return Status::OK();
}

json VersionJson(const ml::ModelInfo& m, const ml::Registry& reg) {
  json o = {{"version", m.version}, {"created", m.created}, {"aliases", m.aliases}, {"valid", m.valid}};
  if (!m.valid) o["error"] = m.error;
  for (const char* k : {"best_val_loss", "detector", "threshold"})
    if (m.card.is_object() && m.card.contains(k)) o[k] = m.card[k];
  o["evaluations"] = reg.Evaluations(m.version);
  return o;
}

// {"version": "...", "alias": "...", "force": bool} with alias defaulting to production.
bool ParseAliasBody(const std::string& text, bool need_version, std::string* version, std::string* alias, bool* force) {
  json b = json::parse(text.empty() ? "{}" : text, nullptr, false);
  if (b.is_discarded() || !b.is_object()) return false;
  *alias = b.contains("alias") && b["alias"].is_string() ? b["alias"].get<std::string>() : "production";
  *force = b.contains("force") && b["force"].is_boolean() && b["force"].get<bool>();
  if (b.contains("version") && b["version"].is_string()) *version = b["version"].get<std::string>();
  return !need_version || !version->empty();
}

int HttpStatusOf(const Status& s) {
  if (s.IsPermissionDenied()) return 409;  // the promotion check refused a worse model
  if (s.IsNotFound()) return 404;
  return 400;
}

}  // namespace

json Server::FleetSummary() const {
  const PipelineMetrics& m = *deps_.metrics;
  json j = {{"time_zone", "UTC"}, {"sensors", m.sensors.load()}};
  if (deps_.live) {
    const FleetTotals t = deps_.live->fleet().Totals();
    const auto& fo = deps_.live->fleet().options();
    j["window_s"] = Seconds(fo.bucket_us * static_cast<int64_t>(fo.buckets));
    j["readings_window"] = t.readings;
    j["flagged_window"] = t.flagged;
    j["flagged_sensors_window"] = t.flagged_sensors;
    j["anomaly_rate"] = t.readings ? static_cast<double>(t.flagged) / static_cast<double>(t.readings) : 0.0;
    j["head"] = t.head_us ? json(FormatIsoMicros(t.head_us)) : json(nullptr);
    j["has_assets"] = deps_.live->fleet().has_assets();
    j["has_devices"] = deps_.live->fleet().has_devices();
  }
  std::set<std::string> alerting;
  int64_t open = 0;
  if (deps_.alerts)
    for (const Alert& a : deps_.alerts->OpenAlerts()) {
      open++;
      alerting.insert(a.trigger_sensor.empty() ? a.sensor_id : a.trigger_sensor);
    }
  j["open_alerts"] = open;
  j["sensors_alerting"] = alerting.size();
  json ids = json::array();
  for (auto it = alerting.begin(); it != alerting.end() && ids.size() < kAlertingIds; ++it) ids.push_back(*it);
  j["alerting"] = ids;
  double dead_per_s = 0;
  {
    std::lock_guard<std::mutex> g(bus_mu_);
    if (!history_.empty()) dead_per_s = history_.back().dead_per_s;
  }
  const int64_t sent = m.sent.load(), dead = m.dead_stored.load();
  int64_t drops = 0;
  for (auto& [name, v] : m.source_figures.Get())
    if (name.find("drop") != std::string::npos) drops += v;
  if (deps_.alerts) drops += deps_.alerts->counters().webhook_dropped.load();
  j["health"] = {{"pipeline", deps_.pipeline_state ? deps_.pipeline_state() : "running"},
                 {"lag", m.lag.load()},
                 {"queue", m.queue_raw.load() + m.queue_processed.load()},
                 {"dead_letters", dead},
                 {"dead_letters_per_s", dead_per_s},
                 {"dead_letter_fraction", sent ? static_cast<double>(dead) / static_cast<double>(sent) : 0.0},
                 {"drops", drops}};
  return j;
}

Result<json> Server::StoredRanking(int64_t from, int64_t to, size_t limit) const {
  if (!query_) return Status::Unavailable("query service unavailable (no data directory)");
  std::string where = "is_anomaly_predicted";
  if (from != INT64_MIN) where += " AND timestamp >= make_timestamp(" + std::to_string(from) + "::BIGINT)";
  if (to != INT64_MAX) where += " AND timestamp <= make_timestamp(" + std::to_string(to) + "::BIGINT)";
  auto t = query_->Internal(
      "SELECT sensor_id, count(*), max(anomaly_score), epoch_us(max(timestamp)) "
      "FROM sensor_readings WHERE " +
      where + " GROUP BY sensor_id ORDER BY 2 DESC, 3 DESC, 1 LIMIT " + std::to_string(limit));
  if (!t.ok()) return t.status();
  std::vector<FleetRank> rows;
  for (size_t r = 0; r < t->rows.size(); r++)
    rows.push_back(FleetRank{t->Str(r, 0), t->Int(r, 1), static_cast<float>(t->Num(r, 2)), t->Int(r, 3)});
  return RankJson(rows);
}

void Server::FleetRoutes() {
  auto& s = *srv_;
  s.Get("/api/fleet/summary",
        [this](const httplib::Request&, httplib::Response& res) { SendJson(res, FleetSummary()); });

  s.Get("/api/fleet/heatmap", [this](const httplib::Request& req, httplib::Response& res) {
    if (!deps_.live) return SendError(res, 503, "no live view");
    const FleetView& f = deps_.live->fleet();
    const auto cols = static_cast<size_t>(IntParam(req, "buckets", 60, 1, static_cast<int64_t>(f.options().buckets)));
    const auto rows = static_cast<size_t>(IntParam(req, "top", 40, 1, kMaxRows));
    const std::string mode = req.has_param("mode") ? req.get_param_value("mode") : "top";
    FleetHeatmap h;
    if (mode == "top")
      h = f.Top(cols, rows);
    else if (mode == "fleet")
      h = f.Bands(cols, rows);
    else if (mode == "asset" || mode == "device")
      h = f.Groups(cols, rows, mode);
    else
      return SendError(res, 400, "mode: expected top, fleet, asset or device");
    json j = HeatmapJson(h, mode);
    j["sensors"] = f.sensors();
    SendJson(res, j);
  });

  s.Get("/api/fleet/top", [this](const httplib::Request& req, httplib::Response& res) {
    const auto limit = static_cast<size_t>(IntParam(req, "limit", 20, 1, kMaxRows));
    const std::string source = req.has_param("source") ? req.get_param_value("source") : "memory";
    if (source != "memory" && source != "store") return SendError(res, 400, "source: expected memory or store");
    const int64_t head = deps_.live ? deps_.live->fleet().head_us() : 0;
    int64_t from = 0, to = 0;
    if (Status st = RangeOf(req, head, &from, &to); !st.ok()) return SendError(res, 400, st.message());
    json j = {{"source", source},
              {"from", from == INT64_MIN ? json(nullptr) : json(FormatIsoMicros(from))},
              {"to", to == INT64_MAX ? json(nullptr) : json(FormatIsoMicros(to))}};
    if (source == "store") {
      auto r = StoredRanking(from, to, limit);
      if (!r.ok()) return SendError(res, r.status().IsUnavailable() ? 503 : 500, r.status().message());
      j["sensors"] = std::move(r.value());
    } else {
      if (!deps_.live) return SendError(res, 503, "no live view");
      j["sensors"] = RankJson(deps_.live->fleet().Rank(from, to, limit));
    }
    SendJson(res, j);
  });
}

void Server::RegistryRoutes() {
  auto& s = *srv_;
  s.Get("/api/registry", [this](const httplib::Request&, httplib::Response& res) {
    json j = {{"available", !opt_.model_dir.empty()}, {"versions", json::array()}};
    if (deps_.processor) j["in_use"] = std::string(deps_.processor->detector()->version());
    if (opt_.model_dir.empty()) return SendJson(res, j);
    ml::Registry reg(opt_.model_dir);
    for (auto& m : reg.List(true)) j["versions"].push_back(VersionJson(m, reg));
    j["aliases"] = {{"production", reg.Alias("production")}, {"shadow", reg.Alias("shadow")}};
    j["history"] = reg.History("production");
    j["token_required"] = !opt_.token.empty();
    SendJson(res, j);
  });

  // One handler per action: read {"version", "alias", "force"}, act on the registry, answer the aliases.
  auto action =
      [this](bool need_version,
             std::function<Result<std::string>(ml::Registry&, const std::string&, const std::string&, bool)> act) {
        return [this, need_version, act](const httplib::Request&, httplib::Response& res,
                                         const httplib::ContentReader& reader) {
          std::string text, version, alias;
          bool force = false;
          if (!ReadBody(reader, kMaxJsonBody, &text)) return SendError(res, 413, BodyTooLong());
          if (opt_.model_dir.empty()) return SendError(res, 501, "no model registry (--model-dir)");
          if (!ParseAliasBody(text, need_version, &version, &alias, &force))
            return SendError(res, 400, R"(expected JSON {"version": "v2", "alias": "production", "force": false})");
          ml::Registry reg(opt_.model_dir);
          auto r = act(reg, version, alias, force);
          if (!r.ok()) return SendError(res, HttpStatusOf(r.status()), r.status().message());
          spdlog::info("http: registry alias {} -> {}", alias, r.value().empty() ? "(unset)" : r.value());
          SendJson(res, json{{"alias", alias}, {"version", r.value()}});
        };
      };
  s.Post("/api/registry/promote",
         action(true,
                [](ml::Registry& reg, const std::string& v, const std::string& a, bool force) -> Result<std::string> {
                  if (!force)
                    if (Status st = reg.CheckPromotion(v, a); !st.ok()) return st;
                  if (Status st = reg.Promote(v, a); !st.ok()) return st;
                  return v;
                }));
  s.Post("/api/registry/rollback", action(false, [](ml::Registry& reg, const std::string&, const std::string& a, bool) {
           return reg.Rollback(a);
         }));
  s.Post("/api/registry/clear",
         action(false, [](ml::Registry& reg, const std::string&, const std::string& a, bool) -> Result<std::string> {
           if (Status st = reg.ClearAlias(a); !st.ok()) return st;
           return std::string();
         }));
}

}  // namespace iotpipe::http
