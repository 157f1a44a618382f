// The HTTP side of a running pipeline: REST API, Prometheus /metrics, Server-Sent Events and the
// dashboard (web/), with cpp-httplib on its own threads.
//
// The pipeline feeds a LiveView from its sink thread (PipelineOptions::on_batch): per-sensor rings
// of recent readings, recent anomalies, counts by type. HTTP threads read it under a short lock.
// Older readings and ad-hoc SQL go through a separate, read-only DuckDB over the data directory:
// external access off except the data dir, statements checked (SELECT/EXPLAIN only), row limit,
// timeout by duckdb_interrupt.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/batch.h"
#include "core/duck.h"
#include "core/metrics.h"
#include "core/query_service.h"
#include "core/status.h"
#include "http/fleet.h"

namespace httplib {
class Server;
}

namespace iotpipe {

class Processor;
class Detector;
class HttpSource;
struct Dictionaries;
class AlertManager;

namespace http {

// "127.0.0.1:8080", "0.0.0.0:80", ":8080" (loopback), "8080" (loopback), "[::1]:8080".
// "off" yields nullopt.
Result<std::optional<std::pair<std::string, int>>> ParseListen(const std::string& spec);
bool IsLoopback(const std::string& host);

struct LivePoint {
  int64_t ts_us;
  double value;
  float score;
  uint8_t predicted, gt;
  uint16_t model;  // Dictionaries::models id
};

struct LiveAnomaly {
  int64_t seq;
  uint32_t sensor;
  int64_t ts_us;
  double value;
  float score;
  uint16_t type;  // ReadingBatch::kNoType when none
  uint16_t model;
};

// Recent data in memory, fed by the pipeline's sink thread: rings of recent readings for the first
// max_sensors sensors and for up to max_sensors more once they have a flagged reading (so the sensors a
// fleet view points at have their recent readings), and the fleet view (fleet.h).
class LiveView {
 public:
  LiveView(const Dictionaries* dicts, size_t per_sensor = 600, size_t max_sensors = 2000, size_t max_anomalies = 2000,
           FleetOptions fleet = {});
  void OnBatch(const ProcessedBatch& b);

  struct SensorInfo {
    std::string id;
    int64_t readings = 0, anomalies = 0, last_ts_us = 0;
    double last_value = 0;
    float last_score = 0;
  };
  std::vector<SensorInfo> Sensors() const;
  // Readings of one sensor in [from, to] still in memory; *oldest_us = oldest in memory (or INT64_MAX).
  std::vector<LivePoint> Readings(const std::string& sensor, int64_t from_us, int64_t to_us, int64_t* oldest_us) const;
  std::vector<LiveAnomaly> Anomalies(int64_t since_us, int64_t after_seq, size_t limit) const;
  // Predicted anomalies by ground-truth anomaly type ("none" when the row had none).
  std::vector<std::pair<std::string, int64_t>> AnomaliesByType() const;
  // The `limit` sensors with the most flagged readings, most first (ties: lower sensor id first).
  std::vector<std::pair<std::string, int64_t>> AnomaliesBySensor(size_t limit) const;
  int64_t anomaly_seq() const;
  const Dictionaries* dicts() const { return dicts_; }
  const FleetView& fleet() const { return fleet_; }

 private:
  struct Ring {
    std::vector<LivePoint> pts;
    size_t head = 0;  // next write position once full
    int64_t readings = 0, anomalies = 0;
  };
  const Dictionaries* dicts_;
  size_t per_sensor_, max_sensors_, max_anomalies_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Ring>> rings_;  // by sensor id (< max_sensors)
  std::deque<LiveAnomaly> anomalies_;
  int64_t seq_ = 0;
  std::vector<int64_t> by_type_;  // index type id; last slot = none
  size_t flagged_rings_ = 0;      // rings of sensors beyond max_sensors_
  FleetView fleet_;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;        // 0 = pick a free port
  std::string token;      // required for non-loopback binds; checked as "Authorization: Bearer"
  std::string web_dir;    // dashboard files (index.html, app.js, style.css)
  std::string uplot_dir;  // uPlot dist (uPlot.iife.min.js, uPlot.min.css)
  std::string data_dir;   // for the query endpoint and older readings
  std::string model_dir;  // model registry (model/registry.h) for the model controls; empty = none
  size_t query_row_limit = 10000;
  double query_timeout_s = 10;
  size_t query_max_bytes = 16 * 1024;
  size_t max_sse_clients = 4;
  double tick_s = 1.0;  // per-second figures
  // /metrics: per-sensor series (iotpipe_sensor_anomalies_total) only for the N sensors with the most
  // flagged readings, so a fleet of 100k sensors never becomes 100k series (docs/OPERATIONS.md).
  size_t metrics_top_sensors = 20;
};

// What the server reads from the pipeline (all optional except metrics).
struct ServerDeps {
  PipelineMetrics* metrics = nullptr;
  LiveView* live = nullptr;
  Processor* processor = nullptr;  // model in use, promote/rollback
  AlertManager* alerts = nullptr;
  std::function<std::string()> pipeline_state;  // "running" / "done"; default "running"
  std::function<std::string()> extra_metrics;   // Prometheus text appended to /metrics (ML drift monitor)
  std::function<std::string()> drift;           // JSON object of the ML drift monitor (GET /api/drift, SSE "drift")
  HttpSource* ingest = nullptr;                 // --source http: POST /api/ingest, /api/v2/write (http/ingest.h)
};

using iotpipe::QueryService;

std::string TableToJson(const Table& t);

class Server {
 public:
  Server(ServerOptions opt, ServerDeps deps);
  ~Server();
  // Binds and starts serving on background threads; returns once listening (or an error).
  Status Start();
  void Stop();
  int port() const { return port_; }
  std::string url() const;
  // The Prometheus text exposition (also used by tests).
  std::string MetricsText() const;

 private:
  void Routes();
  void Tick();
  nlohmann::json DriftJson() const;  // deps_.drift plus the model versions in use
  nlohmann::json SensorReadings(const std::string& id, int64_t from_us, int64_t to_us) const;
  std::vector<LivePoint> StoredReadings(const std::string& id, int64_t from_us, int64_t to_us,
                                        std::vector<std::string>* models) const;
  // The fleet view (fleet_api.cc): summary, heat map, ranking; the registry's model controls.
  void FleetRoutes();
  void RegistryRoutes();
  nlohmann::json FleetSummary() const;
  Result<nlohmann::json> StoredRanking(int64_t from_us, int64_t to_us, size_t limit) const;
  void Publish(const std::string& event, const std::string& data);

  ServerOptions opt_;
  ServerDeps deps_;
  std::unique_ptr<httplib::Server> srv_;
  std::unique_ptr<QueryService> query_;
  std::thread listen_thread_, tick_thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> sse_clients_{0};
  std::atomic<int64_t> requests_{0};
  int64_t start_us_ = 0;
  std::shared_ptr<const Detector> prev_detector_;  // for rollback
  std::mutex model_mu_;
  // Event bus for SSE.
  mutable std::mutex bus_mu_;
  std::condition_variable bus_cv_;
  std::deque<std::pair<int64_t, std::string>> bus_;
  int64_t bus_seq_ = 0;
  // Per-second history for the dashboard's throughput/lag charts.
  struct Tick1 {
    int64_t t_us;
    double events_per_s, stored_per_s, lag, queue, anomalies_per_s, dead_per_s;
  };
  std::deque<Tick1> history_;
};

}  // namespace http
}  // namespace iotpipe
