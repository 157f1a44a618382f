#include "http/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/clock.h"
#include "core/query_guard.h"
#include "core/query_service.h"
#include "core/timeutil.h"
#include "detect/detector.h"
#include "http/api_util.h"
#include "http/ingest.h"
#include "parse/parser.h"
#include "pipeline/processor.h"
#include "sinks/alerts.h"

namespace iotpipe::http {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Listen address

bool IsLoopback(const std::string& host) {
  // Decided from the resolved addresses, never from the spelling ("127.attacker.test" may resolve to
  // 0.0.0.0): every address the name resolves to must be in 127.0.0.0/8 or ::1.
  if (host.empty()) return false;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return false;
  bool all = true;
  for (addrinfo* a = res; a; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(a->ai_addr);
      all = all && (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ai_addr);
      all = all && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    } else {
      all = false;
    }
  }
  freeaddrinfo(res);
  return all;
}

// The host part of a Host header ("127.0.0.1:8080", "[::1]:8080", "localhost").
static std::string HostName(const std::string& host_header) {
  if (!host_header.empty() && host_header[0] == '[') {
    size_t close = host_header.find(']');
    return close == std::string::npos ? host_header : host_header.substr(1, close - 1);
  }
  size_t colon = host_header.rfind(':');
  return colon == std::string::npos ? host_header : host_header.substr(0, colon);
}

// A literal loopback name, without resolving (for Host headers sent by clients).
static bool IsLoopbackLiteral(const std::string& name) {
  return name == "localhost" || name == "::1" ||
         (name.rfind("127.", 0) == 0 && name.find_first_not_of("0123456789.") == std::string::npos);
}

Result<std::optional<std::pair<std::string, int>>> ParseListen(const std::string& spec) {
  using R = std::optional<std::pair<std::string, int>>;
  if (spec == "off" || spec == "none" || spec == "false") return R{};
  std::string host = "127.0.0.1", port_s = spec;
  if (!spec.empty() && spec[0] == '[') {
    size_t close = spec.find(']');
    if (close == std::string::npos || close + 1 >= spec.size() || spec[close + 1] != ':')
      return Status::Error("--http: expected [ipv6]:port, got '" + spec + "'");
    host = spec.substr(1, close - 1);
    port_s = spec.substr(close + 2);
  } else if (size_t colon = spec.rfind(':'); colon != std::string::npos) {
    if (colon > 0) host = spec.substr(0, colon);
    port_s = spec.substr(colon + 1);
  }
  char* end = nullptr;
  long port = std::strtol(port_s.c_str(), &end, 10);
  if (port_s.empty() || !end || *end || port < 0 || port > 65535)
    return Status::Error("--http: expected HOST:PORT or 'off', got '" + spec + "'");
  return R{std::make_pair(host, static_cast<int>(port))};
}

// ---------------------------------------------------------------------------------------------
// LiveView

LiveView::LiveView(const Dictionaries* dicts, size_t per_sensor, size_t max_sensors, size_t max_anomalies,
                   FleetOptions fleet)
    : dicts_(dicts),
      per_sensor_(std::max<size_t>(per_sensor, 1)),
      max_sensors_(max_sensors),
      max_anomalies_(max_anomalies),
      fleet_(dicts, fleet) {}

void LiveView::OnBatch(const ProcessedBatch& pb) {
  const ReadingBatch& b = pb.readings;
  const size_t n = b.size();
  fleet_.OnBatch(b);
  std::lock_guard<std::mutex> g(mu_);
  for (size_t i = 0; i < n; i++) {
    uint32_t s = b.sensor[i];
    if (b.predicted[i]) {
      uint16_t ty = b.type[i];
      size_t slot = ty == ReadingBatch::kNoType ? 256 : std::min<size_t>(ty, 255);
      if (by_type_.size() <= slot) by_type_.resize(257, 0);
      by_type_[slot]++;
      anomalies_.push_back(LiveAnomaly{++seq_, s, b.ts_us[i], b.value[i], b.score[i], ty, b.model[i]});
      if (anomalies_.size() > max_anomalies_) anomalies_.pop_front();
    }
    const bool held = s < rings_.size() && rings_[s];
    if (!held && s >= max_sensors_ && !(b.predicted[i] && flagged_rings_ < max_sensors_)) continue;
    if (s >= rings_.size()) rings_.resize(s + 1);
    auto& r = rings_[s];
    if (!r) {
      r = std::make_unique<Ring>();
      r->pts.reserve(std::min<size_t>(per_sensor_, 64));
      flagged_rings_ += s >= max_sensors_;
    }
    LivePoint p{b.ts_us[i], b.value[i], b.score[i], b.predicted[i], b.gt[i], b.model[i]};
    if (r->pts.size() < per_sensor_) {
      r->pts.push_back(p);
    } else {
      r->pts[r->head] = p;
      r->head = (r->head + 1) % per_sensor_;
    }
    r->readings++;
    r->anomalies += b.predicted[i];
  }
}

std::vector<LiveView::SensorInfo> LiveView::Sensors() const {
  std::vector<SensorInfo> out;
  std::lock_guard<std::mutex> g(mu_);
  for (size_t s = 0; s < rings_.size(); s++) {
    const auto& r = rings_[s];
    if (!r || r->pts.empty()) continue;
    const LivePoint& last = r->pts[(r->head + r->pts.size() - 1) % r->pts.size()];
    out.push_back(SensorInfo{dicts_->sensors.Name(static_cast<uint32_t>(s)), r->readings, r->anomalies, last.ts_us,
                             last.value, last.score});
  }
  return out;
}

std::vector<LivePoint> LiveView::Readings(const std::string& sensor, int64_t from_us, int64_t to_us,
                                          int64_t* oldest_us) const {
  std::vector<LivePoint> out;
  *oldest_us = INT64_MAX;
  std::lock_guard<std::mutex> g(mu_);
  // Names are looked up by scanning the ids we hold rings for (the interner's map is writer-only).
  for (size_t s = 0; s < rings_.size(); s++) {
    const auto& r = rings_[s];
    if (!r || r->pts.empty() || dicts_->sensors.Name(static_cast<uint32_t>(s)) != sensor) continue;
    size_t n = r->pts.size();
    for (size_t k = 0; k < n; k++) {
      const LivePoint& p = r->pts[(r->head + k) % n];
      *oldest_us = std::min(*oldest_us, p.ts_us);
      if (p.ts_us >= from_us && p.ts_us <= to_us) out.push_back(p);
    }
    break;
  }
  std::sort(out.begin(), out.end(), [](const LivePoint& a, const LivePoint& b) { return a.ts_us < b.ts_us; });
  return out;
}

std::vector<LiveAnomaly> LiveView::Anomalies(int64_t since_us, int64_t after_seq, size_t limit) const {
  std::vector<LiveAnomaly> out;
  std::lock_guard<std::mutex> g(mu_);
  for (auto it = anomalies_.rbegin(); it != anomalies_.rend() && out.size() < limit; ++it) {
    if (it->seq <= after_seq) break;
    if (it->ts_us >= since_us) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::pair<std::string, int64_t>> LiveView::AnomaliesByType() const {
  std::vector<std::pair<std::string, int64_t>> out;
  std::lock_guard<std::mutex> g(mu_);
  for (size_t i = 0; i < by_type_.size(); i++) {
    if (!by_type_[i]) continue;
    out.emplace_back(i == 256 ? std::string("none") : dicts_->types.Name(static_cast<uint32_t>(i)), by_type_[i]);
  }
  return out;
}

std::vector<std::pair<std::string, int64_t>> LiveView::AnomaliesBySensor(size_t limit) const {
  std::vector<std::pair<int64_t, uint32_t>> top;  // (-anomalies, sensor id): sorts most first
  std::lock_guard<std::mutex> g(mu_);
  for (size_t s = 0; s < rings_.size(); s++)
    if (rings_[s] && rings_[s]->anomalies) top.emplace_back(-rings_[s]->anomalies, static_cast<uint32_t>(s));
  const size_t n = std::min(limit, top.size());
  std::partial_sort(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(n), top.end());
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = 0; i < n; i++) out.emplace_back(dicts_->sensors.Name(top[i].second), -top[i].first);
  return out;
}

int64_t LiveView::anomaly_seq() const {
  std::lock_guard<std::mutex> g(mu_);
  return seq_;
}

static json TableJson(const Table& t) {
  json cols = json::array(), rows = json::array();
  for (auto& c : t.columns) cols.push_back(c);
  for (auto& row : t.rows) {
    json r = json::array();
    for (size_t c = 0; c < row.size(); c++) {
      if (!row[c])
        r.push_back(nullptr);
      else if (t.types[c] == DUCKDB_TYPE_BOOLEAN)
        r.push_back(*row[c] == "true");
      else if (IsNumericType(t.types[c])) {
        char* end = nullptr;
        double v = std::strtod(row[c]->c_str(), &end);
        if (end && !*end && std::isfinite(v))
          r.push_back(v);
        else
          r.push_back(*row[c]);
      } else
        r.push_back(*row[c]);
    }
    rows.push_back(std::move(r));
  }
  return json{{"columns", cols}, {"rows", rows}};
}

std::string TableToJson(const Table& t) { return TableJson(t).dump(-1, ' ', false, json::error_handler_t::replace); }

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition

namespace {

class Prom {
 public:
  void Family(const std::string& name, const char* type, const std::string& help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, double v, const std::string& labels = "") {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + Num(v) + "\n";
  }
  void Simple(const std::string& name, const char* type, const std::string& help, double v) {
    Family(name, type, help);
    Sample(name, v);
  }
  void Hist(const std::string& name, const std::string& help, const Histogram& h) {
    Family(name, "histogram", help);
    uint64_t acc = 0;
    // Report every 2nd bucket boundary (4 per decade) up to the last non-empty one, then +Inf.
    int last = 0;
    for (int i = 0; i < Histogram::kBuckets; i++)
      if (h.bucket(i)) last = i;
    for (int i = 0; i < Histogram::kBuckets; i++) {
      acc += h.bucket(i);
      if (i % 2 == 1 && i <= last + 2)
        Sample(name + "_bucket", static_cast<double>(acc), "le=\"" + Num(Histogram::UpperBound(i)) + "\"");
    }
    Sample(name + "_bucket", static_cast<double>(acc), "le=\"+Inf\"");
    Sample(name + "_sum", h.sum());
    Sample(name + "_count", static_cast<double>(acc));
  }
  static std::string Label(const std::string& k, const std::string& v) {
    std::string e;
    for (char c : v) {
      if (c == '\\')
        e += "\\\\";
      else if (c == '"')
        e += "\\\"";
      else if (c == '\n')
        e += "\\n";
      else
        e += c;
    }
    return k + "=\"" + e + "\"";
  }
  static std::string Num(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

}  // namespace

std::string ReadWholeFile(const std::string& path, bool* ok) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *ok = false;
    return {};
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  *ok = true;
  return ss.str();
}

int64_t ParseTimeParam(const httplib::Request& req, const char* key, int64_t dflt, std::string* err) {
  if (!req.has_param(key)) return dflt;
  auto v = req.get_param_value(key);
  if (v.empty()) return dflt;
  auto t = ParseTimeMicros(v);
  if (!t.ok()) {
    *err = std::string(key) + ": " + t.status().message();
    return dflt;
  }
  return t.value();
}

int64_t IntParam(const httplib::Request& req, const char* key, int64_t dflt, int64_t lo, int64_t hi) {
  if (!req.has_param(key)) return dflt;
  const std::string v = req.get_param_value(key);
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || !end || *end) return dflt;
  return std::clamp<int64_t>(n, lo, hi);
}

void SendJson(httplib::Response& res, const json& j, int status) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void SendError(httplib::Response& res, int status, const std::string& msg) {
  SendJson(res, json{{"error", msg}}, status);
}

std::string BodyTooLong() { return "request body longer than " + std::to_string(kMaxJsonBody) + " bytes"; }

bool ReadBody(const httplib::ContentReader& reader, size_t limit, std::string* body) {
  bool over = false;
  reader([&](const char* data, size_t n) {
    if (body->size() + n > limit) {
      over = true;
      return false;
    }
    body->append(data, n);
    return true;
  });
  return !over;
}

// ---------------------------------------------------------------------------------------------
// Server

Server::Server(ServerOptions opt, ServerDeps deps) : opt_(std::move(opt)), deps_(std::move(deps)) {}

Server::~Server() { Stop(); }

std::string Server::url() const {
  std::string h = opt_.host.find(':') != std::string::npos ? "[" + opt_.host + "]" : opt_.host;
  if (h == "0.0.0.0") h = "127.0.0.1";
  return "http://" + h + ":" + std::to_string(port_) + "/";
}

std::string Server::MetricsText() const {
  Prom p;
  const PipelineMetrics& m = *deps_.metrics;
  p.Simple("iotpipe_records_received_total", "counter", "Records the source handed to the pipeline.",
           static_cast<double>(m.sent.load()));
  p.Simple("iotpipe_received_bytes_total", "counter", "Bytes of raw records received.",
           static_cast<double>(m.received_bytes.load()));
  p.Simple("iotpipe_readings_decoded_total", "counter", "Records decoded into readings.",
           static_cast<double>(m.parsed.load()));
  p.Family("iotpipe_records_rejected_total", "counter", "Records rejected into the dead-letter store, by reason.");
  for (int r = 1; r < static_cast<int>(Reject::kCount) && r < static_cast<int>(m.rejected_by_reason.size()); r++)
    p.Sample("iotpipe_records_rejected_total", static_cast<double>(m.rejected_by_reason[r].load()),
             Prom::Label("reason", std::string(RejectName(static_cast<Reject>(r)))));
  p.Simple("iotpipe_readings_stored_total", "counter", "Readings durably written to Parquet.",
           static_cast<double>(m.stored.load()));
  p.Simple("iotpipe_dead_letters_stored_total", "counter", "Dead letters durably written.",
           static_cast<double>(m.dead_stored.load()));
  p.Simple("iotpipe_files_written_total", "counter", "Parquet files committed.", static_cast<double>(m.files.load()));
  p.Simple("iotpipe_written_bytes_total", "counter", "Bytes of Parquet committed.",
           static_cast<double>(m.bytes_written.load()));
  p.Simple("iotpipe_anomalies_predicted_total", "counter", "Readings the detector flagged.",
           static_cast<double>(m.predicted.load()));
  p.Simple("iotpipe_anomalies_ground_truth_total", "counter", "Readings labelled anomalous by the producer.",
           static_cast<double>(m.truth.load()));
  p.Simple("iotpipe_anomalies_true_positive_total", "counter", "Flagged readings that were labelled anomalous.",
           static_cast<double>(m.tp.load()));
  if (deps_.live) {
    p.Family("iotpipe_anomalies_by_type_total", "counter",
             "Flagged readings by labelled anomaly type (none = unlabelled).");
    for (auto& [t, n] : deps_.live->AnomaliesByType())
      p.Sample("iotpipe_anomalies_by_type_total", static_cast<double>(n), Prom::Label("type", t));
    p.Family("iotpipe_sensor_anomalies_total", "counter",
             "Flagged readings per sensor, for the top " + std::to_string(opt_.metrics_top_sensors) +
                 " sensors by flagged readings only (bounded labels).");
    for (auto& [s, n] : deps_.live->AnomaliesBySensor(opt_.metrics_top_sensors))
      p.Sample("iotpipe_sensor_anomalies_total", static_cast<double>(n), Prom::Label("sensor", s));
  }
  p.Family("iotpipe_queue_depth", "gauge", "Batches waiting between stages.");
  p.Sample("iotpipe_queue_depth", static_cast<double>(m.queue_raw.load()), "queue=\"raw\"");
  p.Sample("iotpipe_queue_depth", static_cast<double>(m.queue_processed.load()), "queue=\"processed\"");
  p.Simple("iotpipe_consumer_lag_records", "gauge", "Records behind the head of the source (-1: not applicable).",
           static_cast<double>(m.lag.load()));
  for (auto& [part, lag] : m.lag_by_partition.Get())  // Kafka: one sample per assigned partition too
    p.Sample("iotpipe_consumer_lag_records", static_cast<double>(lag), Prom::Label("partition", std::to_string(part)));
  for (auto& [name, v] : m.source_figures.Get())  // e.g. iotpipe_source_mqtt_reconnects
    p.Simple("iotpipe_source_" + name, "gauge", "Figure reported by the source (" + name + ").",
             static_cast<double>(v));
  p.Simple("iotpipe_sensors", "gauge", "Distinct sensors seen.", static_cast<double>(m.sensors.load()));
  p.Hist("iotpipe_batch_processing_seconds", "Decode and score time per batch.", m.batch_seconds);
  p.Hist("iotpipe_end_to_end_latency_seconds", "Stored time minus event time, per row.", m.e2e_seconds);
  p.Hist("iotpipe_flush_seconds", "Durable write time per flush.", m.flush_seconds);
  if (deps_.processor) {
    auto d = deps_.processor->detector();
    p.Family("iotpipe_model_info", "gauge", "The detector in use (value 1).");
    p.Sample("iotpipe_model_info", 1,
             Prom::Label("detector", std::string(d->name())) + "," + Prom::Label("version", std::string(d->version())));
  }
  if (deps_.alerts) {
    const AlertCounters& a = deps_.alerts->counters();
    p.Simple("iotpipe_alerts_opened_total", "counter", "Alerts opened (including suppressed ones of flapping sensors).",
             static_cast<double>(a.opened.load()));
    p.Simple("iotpipe_alerts_closed_total", "counter", "Alerts closed after enough normal readings.",
             static_cast<double>(a.closed.load()));
    p.Simple("iotpipe_alerts_folded_total", "counter", "Anomalies folded into an open alert (deduplicated).",
             static_cast<double>(a.folded.load()));
    p.Simple("iotpipe_alerts_suppressed_total", "counter", "Alert opens suppressed because the sensor is flapping.",
             static_cast<double>(a.suppressed.load()));
    p.Simple("iotpipe_alerts_flapping_total", "counter", "Sensors reported as flapping.",
             static_cast<double>(a.flapping.load()));
    p.Simple("iotpipe_alerts_open", "gauge", "Alerts open now.", static_cast<double>(a.open_now.load()));
    p.Simple("iotpipe_alerts_below_policy_total", "counter",
             "Anomaly episodes that ended before the alert policy's minimum points or duration.",
             static_cast<double>(a.below_policy.load()));
    const AlertmanagerClient* am = deps_.alerts->alertmanager();
    p.Family("iotpipe_alert_deliveries_total", "counter",
             "Alert deliveries by receiver and outcome (webhook: events; alertmanager: sent = alerts accepted, "
             "failed = posts that failed, dropped = updates dropped).");
    auto out = [&p](const char* rx, const char* outcome, int64_t v) {
      p.Sample("iotpipe_alert_deliveries_total", static_cast<double>(v),
               Prom::Label("receiver", rx) + "," + Prom::Label("outcome", outcome));
    };
    out("webhook", "sent", a.webhook_sent.load());
    out("webhook", "failed", a.webhook_failed.load());
    out("webhook", "dropped", a.webhook_dropped.load());
    if (am) {
      const AlertmanagerCounters& c = am->counters();
      out("alertmanager", "sent", c.sent.load());
      out("alertmanager", "failed", c.failed.load());
      out("alertmanager", "dropped", c.dropped.load());
    }
    p.Simple("iotpipe_alert_delivery_retries_total", "counter", "Webhook attempts after the first.",
             static_cast<double>(a.webhook_retries.load()));
    p.Family("iotpipe_alert_receiver_up", "gauge",
             "Whether the last delivery to the receiver succeeded (1), failed (0), or none was made yet (-1).");
    p.Sample("iotpipe_alert_receiver_up", static_cast<double>(a.webhook_up.load()), "receiver=\"webhook\"");
    if (am) {
      p.Sample("iotpipe_alert_receiver_up", static_cast<double>(am->counters().up.load()), "receiver=\"alertmanager\"");
      p.Simple("iotpipe_alertmanager_alerts_firing", "gauge", "Alerts iotpipe holds as firing in Alertmanager.",
               static_cast<double>(am->counters().firing.load()));
    }
    p.Simple("iotpipe_alerts_stored_total", "counter", "Alerts written to Parquet.",
             static_cast<double>(a.stored.load()));
  }
  p.Simple("iotpipe_http_requests_total", "counter", "HTTP requests served.", static_cast<double>(requests_.load()));
  p.Simple("iotpipe_start_time_seconds", "gauge", "When this process started serving (Unix time).",
           static_cast<double>(start_us_) / 1e6);
  if (deps_.extra_metrics) p.str() += deps_.extra_metrics();
  return std::move(p.str());
}

void Server::Publish(const std::string& event, const std::string& data) {
  {
    std::lock_guard<std::mutex> g(bus_mu_);
    bus_.emplace_back(++bus_seq_, "event: " + event + "\ndata: " + data + "\n\n");
    while (bus_.size() > 512) bus_.pop_front();
  }
  bus_cv_.notify_all();
}

// Stored readings of one sensor in [from, to] (from == INT64_MIN: its latest `kLatest`), oldest first,
// with their model versions.
static constexpr int kLatest = 600;
std::vector<LivePoint> Server::StoredReadings(const std::string& id, int64_t from, int64_t to,
                                              std::vector<std::string>* models) const {
  std::vector<LivePoint> out;
  const bool latest = from == INT64_MIN;
  std::string sql =
      "SELECT epoch_us(timestamp), value, anomaly_score, is_anomaly_predicted, is_anomaly_ground_truth, "
      "model_version FROM sensor_readings WHERE sensor_id = " +
      SqlQuote(id) +
      (latest ? std::string() : " AND timestamp >= make_timestamp(" + std::to_string(from) + "::BIGINT)") +
      (to == INT64_MAX ? std::string() : " AND timestamp <= make_timestamp(" + std::to_string(to) + "::BIGINT)") +
      (latest ? " ORDER BY timestamp DESC LIMIT " + std::to_string(kLatest) : " ORDER BY timestamp LIMIT 20000");
  auto t = query_->Internal(sql);
  if (!t.ok()) {
    spdlog::warn("http: readings history: {}", t.status().message());
    return out;
  }
  for (size_t r = 0; r < t->rows.size(); r++) {
    out.push_back(LivePoint{t->Int(r, 0), t->Num(r, 1), static_cast<float>(t->Num(r, 2)),
                            static_cast<uint8_t>(t->Str(r, 3) == "true"), static_cast<uint8_t>(t->Str(r, 4) == "true"),
                            0});
    models->push_back(t->Str(r, 5));
  }
  if (latest) {
    std::reverse(out.begin(), out.end());
    std::reverse(models->begin(), models->end());
  }
  return out;
}

// Readings of one sensor in [from, to]: what memory holds, and from the store what is older (when a start
// was asked for) or, when memory holds none of the sensor's readings, its latest stored ones. Each point
// names its model version (an index into model_versions).
json Server::SensorReadings(const std::string& id, int64_t from, int64_t to) const {
  int64_t oldest = INT64_MAX;
  std::vector<LivePoint> pts;
  if (deps_.live) pts = deps_.live->Readings(id, from, to, &oldest);
  std::vector<std::string> models;
  for (auto& p : pts) models.push_back(deps_.live->dicts()->models.Name(p.model));
  size_t from_disk = 0;
  if (query_ && from < oldest && (from != INT64_MIN || pts.empty())) {
    std::vector<std::string> old_models;
    std::vector<LivePoint> old =
        StoredReadings(id, from, std::min(to, oldest == INT64_MAX ? to : oldest - 1), &old_models);
    from_disk = old.size();
    old.insert(old.end(), pts.begin(), pts.end());
    pts.swap(old);
    old_models.insert(old_models.end(), models.begin(), models.end());
    models.swap(old_models);
  }
  json t = json::array(), v = json::array(), sc = json::array(), pr = json::array(), gt = json::array(),
       mi = json::array(), versions = json::array();
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < pts.size(); i++) {
    const LivePoint& p = pts[i];
    t.push_back(static_cast<double>(p.ts_us) / 1e6);
    v.push_back(p.value);
    sc.push_back(p.score);
    pr.push_back(p.predicted);
    gt.push_back(ReadingBatch::Labelled(p.gt) ? json(p.gt) : json(nullptr));
    auto [it, added] = index.emplace(models[i], static_cast<int>(index.size()));
    if (added) versions.push_back(models[i]);
    mi.push_back(it->second);
  }
  return json{{"sensor_id", id},
              {"t", t},
              {"value", v},
              {"score", sc},
              {"predicted", pr},
              {"ground_truth", gt},
              {"model", mi},
              {"model_versions", versions},
              {"threshold", kScoreThreshold},
              {"from_memory", pts.size() - from_disk},
              {"from_disk", from_disk}};
}

json Server::DriftJson() const {
  json j = json::object();
  if (deps_.drift) {
    j = json::parse(deps_.drift(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) j = json::object();
  }
  j["available"] = !j.empty();
  j["production"] = nullptr;
  j["shadow"] = nullptr;
  if (deps_.processor) {
    if (auto d = deps_.processor->detector()) j["production"] = std::string(d->version());
    if (auto sh = deps_.processor->shadow()) j["shadow"] = std::string(sh->version());
  }
  return j;
}

void Server::Tick() {
  const PipelineMetrics& m = *deps_.metrics;
  int64_t last_t = MonoMicros(), last_sent = m.sent.load(), last_stored = m.stored.load(),
          last_pred = m.predicted.load(), last_dead = m.dead_stored.load();
  int64_t last_seq = deps_.live ? deps_.live->anomaly_seq() : 0;
  int64_t last_alert_n = deps_.alerts ? deps_.alerts->counters().events.load() : 0;
  while (!stopping_.load()) {
    {
      std::unique_lock<std::mutex> lk(bus_mu_);
      bus_cv_.wait_for(lk, std::chrono::microseconds(static_cast<int64_t>(opt_.tick_s * 1e6)),
                       [&] { return stopping_.load(); });
    }
    if (stopping_.load()) break;
    int64_t now = MonoMicros();
    double dt = static_cast<double>(now - last_t) / 1e6;
    if (dt <= 0) continue;
    int64_t sent = m.sent.load(), stored = m.stored.load(), pred = m.predicted.load(), dead = m.dead_stored.load();
    Tick1 t{RealClock::Get()->NowMicros(),
            static_cast<double>(sent - last_sent) / dt,
            static_cast<double>(stored - last_stored) / dt,
            static_cast<double>(m.lag.load()),
            static_cast<double>(m.queue_raw.load() + m.queue_processed.load()),
            static_cast<double>(pred - last_pred) / dt,
            static_cast<double>(dead - last_dead) / dt};
    last_dead = dead;
    last_t = now;
    last_sent = sent;
    last_stored = stored;
    last_pred = pred;
    json stats = {{"t", static_cast<double>(t.t_us) / 1e6},
                  {"events_per_s", t.events_per_s},
                  {"stored_per_s", t.stored_per_s},
                  {"lag", t.lag},
                  {"queue", t.queue},
                  {"anomalies_per_s", t.anomalies_per_s},
                  {"sent", sent},
                  {"stored", stored},
                  {"dead_letters", m.dead_stored.load()},
                  {"anomalies", pred},
                  {"sensors", m.sensors.load()}};
    {
      std::lock_guard<std::mutex> g(bus_mu_);
      history_.push_back(t);
      while (history_.size() > 900) history_.pop_front();
    }
    Publish("stats", stats.dump());
    Publish("drift", DriftJson().dump());
    if (deps_.live) {
      // At most 20 a second: a fleet flags more than a table can show (the fleet view counts them all).
      auto an = deps_.live->Anomalies(INT64_MIN, last_seq, 20);
      for (auto& a : an) {
        last_seq = std::max(last_seq, a.seq);
        const auto* d = deps_.live->dicts();
        json j = {{"seq", a.seq},
                  {"sensor_id", d->sensors.Name(a.sensor)},
                  {"t", static_cast<double>(a.ts_us) / 1e6},
                  {"timestamp", FormatIsoMicros(a.ts_us)},
                  {"value", a.value},
                  {"score", a.score},
                  {"anomaly_type", a.type == ReadingBatch::kNoType ? json(nullptr) : json(d->types.Name(a.type))},
                  {"model_version", d->models.Name(a.model)}};
        Publish("anomaly", j.dump(-1, ' ', false, json::error_handler_t::replace));
      }
      last_seq = std::max(last_seq, deps_.live->anomaly_seq());  // skip what did not fit
    }
    if (deps_.alerts) {
      int64_t n = deps_.alerts->counters().events.load();
      if (n > last_alert_n) {
        for (auto& e : deps_.alerts->Recent(static_cast<size_t>(std::min<int64_t>(n - last_alert_n, 100))))
          Publish("alert", e.ToJson());
        last_alert_n = n;
      }
    }
  }
}

static std::string GuessMime(const std::string& path) {
  auto ends = [&](const char* s) {
    size_t n = std::strlen(s);
    return path.size() >= n && path.compare(path.size() - n, n, s) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".png")) return "image/png";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

void Server::Routes() {
  auto& s = *srv_;
  const std::string token = opt_.token;
  s.set_pre_routing_handler([this, token](const httplib::Request& req, httplib::Response& res) {
    requests_++;
    // Browsers: a page elsewhere must not reach this server (CSRF, DNS rebinding). The Host header must
    // name this server, a POST must come from this origin (or no browser origin at all) and carry JSON,
    // which a cross-site page cannot send without a CORS preflight that is never granted.
    const std::string host_hdr = req.get_header_value("Host");
    const std::string host_name = HostName(host_hdr);
    // "Token <t>" too: InfluxDB clients (Telegraf) send it. A request with the token is not a browser
    // tricked by DNS rebinding: any Host (remote writers address the machine by its own name).
    const std::string auth = req.get_header_value("Authorization");
    const bool authorized = !token.empty() && (auth == "Bearer " + token || auth == "Token " + token);
    if (!authorized && !host_hdr.empty() && !IsLoopbackLiteral(host_name) && host_name != opt_.host) {
      SendError(res, 403, "Host '" + host_hdr + "' is not served here");
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool needs = req.path.rfind("/api/", 0) == 0 || req.path == "/metrics" || req.method != "GET";
    if (!token.empty() && needs) {
      bool ok = authorized || (req.path == "/api/stream" && req.get_param_value("token") == token);
      if (!ok) {
        res.set_header("WWW-Authenticate", "Bearer");
        SendError(res, 401, "missing or wrong bearer token (Authorization: Bearer <token>)");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (req.method == "POST") {
      const std::string origin = req.get_header_value("Origin");
      if (!origin.empty() && origin != "http://" + host_hdr) {
        SendError(res, 403, "cross-origin request refused (Origin " + origin + ")");
        return httplib::Server::HandlerResponse::Handled;
      }
      // The body is not read yet here: decide from the headers (a chunked body has no Content-Length).
      const std::string len = req.get_header_value("Content-Length");
      const bool has_body = (!len.empty() && len != "0") || req.has_header("Transfer-Encoding");
      if (has_body && !IsIngestPath(req.path) &&
          req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
        SendError(res, 415, "expected Content-Type: application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  auto file = [](const std::string& path) {
    return [path](const httplib::Request&, httplib::Response& res) {
      bool ok = false;
      std::string body = ReadWholeFile(path, &ok);
      if (!ok) {
        SendError(res, 404, "not installed: " + path + " (run scripts/deps, or pass --web-dir)");
        return;
      }
      res.set_header("Cache-Control", "no-cache");
      res.set_content(body, GuessMime(path));
    };
  };
  if (deps_.ingest) RegisterIngest(s, deps_.ingest);
  s.Get("/", file(opt_.web_dir + "/index.html"));
  s.Get("/index.html", file(opt_.web_dir + "/index.html"));
  s.Get("/app.js", file(opt_.web_dir + "/app.js"));
  s.Get("/style.css", file(opt_.web_dir + "/style.css"));
  s.Get("/vendor/uPlot.iife.min.js", file(opt_.uplot_dir + "/uPlot.iife.min.js"));
  s.Get("/vendor/uPlot.min.css", file(opt_.uplot_dir + "/uPlot.min.css"));

  FleetRoutes();
  RegistryRoutes();

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsText(), "text/plain; version=0.0.4; charset=utf-8");
  });

  s.Get("/api/health", [this](const httplib::Request&, httplib::Response& res) {
    const PipelineMetrics& m = *deps_.metrics;
    std::string state = deps_.pipeline_state ? deps_.pipeline_state() : "running";
    SendJson(res, json{{"status", "ok"},
                       {"pipeline", state},
                       {"version", IOTPIPE_VERSION},
                       {"uptime_s", static_cast<double>(RealClock::Get()->NowMicros() - start_us_) / 1e6},
                       {"sent", m.sent.load()},
                       {"stored", m.stored.load()},
                       {"dead_letters", m.dead_stored.load()},
                       {"lag", m.lag.load()},
                       {"queue", m.queue_raw.load() + m.queue_processed.load()},
                       {"query", query_ != nullptr}});
  });

  s.Get("/api/sensors", [this](const httplib::Request&, httplib::Response& res) {
    json arr = json::array();
    if (deps_.live)
      for (auto& si : deps_.live->Sensors())
        arr.push_back(json{{"sensor_id", si.id},
                           {"readings", si.readings},
                           {"anomalies", si.anomalies},
                           {"last_t", static_cast<double>(si.last_ts_us) / 1e6},
                           {"last_value", si.last_value},
                           {"last_score", si.last_score}});
    SendJson(res, json{{"sensors", arr}, {"total_seen", deps_.metrics->sensors.load()}});
  });

  s.Get(R"(/api/sensors/([^/]+)/readings)", [this](const httplib::Request& req, httplib::Response& res) {
    std::string err;
    int64_t from = ParseTimeParam(req, "from", INT64_MIN, &err), to = ParseTimeParam(req, "to", INT64_MAX, &err);
    if (!err.empty()) return SendError(res, 400, err);
    if (from > to) return SendError(res, 400, "from is after to");
    SendJson(res, SensorReadings(req.matches[1], from, to));
  });

  s.Get("/api/anomalies", [this](const httplib::Request& req, httplib::Response& res) {
    std::string err;
    int64_t since = ParseTimeParam(req, "since", INT64_MIN, &err);
    if (!err.empty()) return SendError(res, 400, err);
    int64_t after = req.has_param("after") ? std::atoll(req.get_param_value("after").c_str()) : 0;
    size_t limit = req.has_param("limit")
                       ? static_cast<size_t>(std::max(1LL, std::atoll(req.get_param_value("limit").c_str())))
                       : 200;
    json arr = json::array();
    int64_t last = 0;
    if (deps_.live) {
      const auto* d = deps_.live->dicts();
      for (auto& a : deps_.live->Anomalies(since, after, std::min<size_t>(limit, 2000))) {
        arr.push_back(
            json{{"seq", a.seq},
                 {"sensor_id", d->sensors.Name(a.sensor)},
                 {"t", static_cast<double>(a.ts_us) / 1e6},
                 {"timestamp", FormatIsoMicros(a.ts_us)},
                 {"value", a.value},
                 {"score", a.score},
                 {"anomaly_type", a.type == ReadingBatch::kNoType ? json(nullptr) : json(d->types.Name(a.type))},
                 {"model_version", d->models.Name(a.model)}});
        last = a.seq;
      }
    }
    SendJson(res, json{{"anomalies", arr}, {"last_seq", last}});
  });

  // Recent alert events, or (state=open) the alerts open now, newest first, at most `limit` (200).
  s.Get("/api/alerts", [this](const httplib::Request& req, httplib::Response& res) {
    json arr = json::array();
    if (deps_.alerts && req.get_param_value("state") == "open") {
      auto open = deps_.alerts->OpenAlerts();
      std::sort(open.begin(), open.end(), [](const Alert& a, const Alert& b) { return a.opened_us > b.opened_us; });
      const auto limit = static_cast<size_t>(IntParam(req, "limit", 200, 1, 200));
      for (size_t i = 0; i < open.size() && i < limit; i++)
        arr.push_back(json::parse(AlertEvent{"open", open[i]}.ToJson()));
      return SendJson(res, json{{"alerts", arr}, {"open", open.size()}});
    }
    if (deps_.alerts)
      for (auto& e : deps_.alerts->Recent(200)) arr.push_back(json::parse(e.ToJson()));
    SendJson(res, json{{"alerts", arr}});
  });

  s.Get("/api/stats/history", [this](const httplib::Request&, httplib::Response& res) {
    json t = json::array(), ev = json::array(), st = json::array(), lag = json::array(), q = json::array(),
         an = json::array();
    {
      std::lock_guard<std::mutex> g(bus_mu_);
      for (auto& h : history_) {
        t.push_back(static_cast<double>(h.t_us) / 1e6);
        ev.push_back(h.events_per_s);
        st.push_back(h.stored_per_s);
        lag.push_back(h.lag);
        q.push_back(h.queue);
        an.push_back(h.anomalies_per_s);
      }
    }
    SendJson(
        res,
        json{
            {"t", t}, {"events_per_s", ev}, {"stored_per_s", st}, {"lag", lag}, {"queue", q}, {"anomalies_per_s", an}});
  });

  // The ML drift panel: the live monitor's snapshot (PSI/KS, alert rate, rolling P/R/F1) and the
  // production and shadow model versions in use.
  s.Get("/api/drift", [this](const httplib::Request&, httplib::Response& res) { SendJson(res, DriftJson()); });

  s.Get("/api/models", [this](const httplib::Request&, httplib::Response& res) {
    json j = {{"available", DetectorNames()}, {"threshold", kScoreThreshold}};
    if (deps_.processor) {
      auto d = deps_.processor->detector();
      j["in_use"] = {{"detector", std::string(d->name())}, {"version", std::string(d->version())}};
      std::lock_guard<std::mutex> g(model_mu_);
      j["can_rollback"] = prev_detector_ != nullptr;
      if (prev_detector_)
        j["previous"] = {{"detector", std::string(prev_detector_->name())},
                         {"version", std::string(prev_detector_->version())}};
    }
    j["can_promote"] = deps_.processor != nullptr;
    j["token_required"] = !opt_.token.empty();
    SendJson(res, j);
  });

  // Promote: swap in a detector by name (hot swap, takes effect from the next batch).
  s.Post("/api/models/promote", [this](const httplib::Request&, httplib::Response& res,
                                       const httplib::ContentReader& reader) {
    std::string text;
    if (!ReadBody(reader, kMaxJsonBody, &text)) return SendError(res, 413, BodyTooLong());
    if (!deps_.processor) return SendError(res, 501, "no pipeline attached");
    json body = json::parse(text, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("detector") || !body["detector"].is_string())
      return SendError(res, 400, "expected JSON {\"detector\": \"<name>\"}");
    auto d = MakeDetector(body["detector"].get<std::string>());
    if (!d.ok()) return SendError(res, 400, d.status().message());
    std::shared_ptr<const Detector> nd(std::move(d.value()));
    std::lock_guard<std::mutex> g(model_mu_);
    prev_detector_ = deps_.processor->detector();
    deps_.processor->SetDetector(nd);
    spdlog::info("http: promoted detector {} ({})", nd->name(), nd->version());
    SendJson(res, json{{"in_use", {{"detector", std::string(nd->name())}, {"version", std::string(nd->version())}}}});
  });

  s.Post("/api/models/rollback", [this](const httplib::Request&, httplib::Response& res,
                                        const httplib::ContentReader& reader) {
    std::string text;
    if (!ReadBody(reader, kMaxJsonBody, &text)) return SendError(res, 413, BodyTooLong());
    if (!deps_.processor) return SendError(res, 501, "no pipeline attached");
    std::lock_guard<std::mutex> g(model_mu_);
    if (!prev_detector_) return SendError(res, 409, "nothing to roll back to");
    auto cur = deps_.processor->detector();
    deps_.processor->SetDetector(prev_detector_);
    spdlog::info("http: rolled back to detector {} ({})", prev_detector_->name(), prev_detector_->version());
    json j = {
        {"in_use",
         {{"detector", std::string(prev_detector_->name())}, {"version", std::string(prev_detector_->version())}}}};
    prev_detector_ = cur;
    SendJson(res, j);
  });

  s.Post("/api/query",
         [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
           std::string text;
           if (!ReadBody(reader, kMaxJsonBody, &text)) return SendError(res, 413, BodyTooLong());
           if (!query_) return SendError(res, 503, "query service unavailable");
           // Only application/json reaches here (see the pre-routing handler): no text/plain CSRF posts.
           if (req.get_header_value("Content-Type").rfind("application/json", 0) != 0)
             return SendError(res, 415, "expected Content-Type: application/json with {\"sql\": \"SELECT ...\"}");
           json body = json::parse(text, nullptr, false);
           if (body.is_discarded() || !body.is_object() || !body.contains("sql") || !body["sql"].is_string())
             return SendError(res, 400, "expected JSON {\"sql\": \"SELECT ...\"}");
           const std::string sql = body["sql"].get<std::string>();
           auto a = query_->Run(sql);
           if (!a.ok()) {
             const std::string m = a.status().message();
             return SendError(res, a.status().IsPermissionDenied() || a.status().IsTimedOut() ? 403 : 400, m);
           }
           json j = TableJson(a->table);
           j["truncated"] = a->truncated;
           j["row_limit"] = opt_.query_row_limit;
           SendJson(res, j);
         });

  s.Get("/api/stream", [this](const httplib::Request&, httplib::Response& res) {
    if (sse_clients_.load() >= static_cast<int>(opt_.max_sse_clients))
      return SendError(res, 503, "too many live streams open");
    sse_clients_++;
    int64_t start_seq;
    {
      std::lock_guard<std::mutex> g(bus_mu_);
      start_seq = bus_seq_;
    }
    auto last = std::make_shared<int64_t>(start_seq);
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, last](size_t, httplib::DataSink& sink) {
          std::string out;
          {
            std::unique_lock<std::mutex> lk(bus_mu_);
            bus_cv_.wait_for(lk, std::chrono::milliseconds(500), [&] { return stopping_.load() || bus_seq_ > *last; });
            if (stopping_.load()) return false;
            for (auto& [seq, text] : bus_)
              if (seq > *last) out += text;
            *last = bus_seq_;
          }
          if (out.empty()) out = ": keep-alive\n\n";
          return sink.write(out.data(), out.size());
        },
        [this](bool) { sse_clients_--; });
  });
}

Status Server::Start() {
  start_us_ = RealClock::Get()->NowMicros();
  if (!IsLoopback(opt_.host) && opt_.token.empty())
    return Status::Error("--http " + opt_.host + " is not a loopback address: it needs --http-token");
  if (!opt_.data_dir.empty()) {
    auto q = QueryService::Open(opt_.data_dir, opt_.query_row_limit, opt_.query_timeout_s, opt_.query_max_bytes);
    if (q.ok())
      query_ = std::move(q.value());
    else
      spdlog::warn("http: query endpoint disabled: {}", q.status().message());
  }
  srv_ = std::make_unique<httplib::Server>();
  srv_->set_keep_alive_max_count(100);
  srv_->set_keep_alive_timeout(2);  // bounds how long Stop waits for idle browser connections
  srv_->set_read_timeout(5, 0);
  srv_->set_write_timeout(5, 0);
  srv_->set_payload_max_length(8 << 20);  // the routes bound their bodies tighter (ReadBody)
  // SO_REUSEADDR only. httplib's default also sets SO_REUSEPORT, with which a second iotpipe bound a port
  // that another already served and the kernel split the connections between them (issue 19).
  srv_->set_socket_options([](int sock) {
    int yes = 1;
    (void)setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  Routes();
  if (opt_.port == 0) {
    port_ = srv_->bind_to_any_port(opt_.host);
    if (port_ <= 0) return Status::Error("http: cannot bind " + opt_.host);
  } else {
    if (!srv_->bind_to_port(opt_.host, opt_.port))
      return Status::AlreadyExists("http: cannot bind " + opt_.host + ":" + std::to_string(opt_.port) +
                                   " (in use? try --http 127.0.0.1:0 or --http off)");
    port_ = opt_.port;
  }
  listen_thread_ = std::thread([this] { srv_->listen_after_bind(); });
  tick_thread_ = std::thread([this] { Tick(); });
  // Bound already: connections queue in the backlog until the loop accepts them.
  for (int i = 0; i < 200 && !srv_->is_running(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return Status::OK();
}

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  bus_cv_.notify_all();
  if (srv_) srv_->stop();
  if (listen_thread_.joinable()) listen_thread_.join();
  if (tick_thread_.joinable()) tick_thread_.join();
}

}  // namespace iotpipe::http
