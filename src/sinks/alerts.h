// Alerts: a per-sensor state machine over scored readings, and their delivery.
//
// An anomaly opens an alert for its sensor; further anomalies while it is open are folded into it
// (deduplication); it closes after `close_after_normal` consecutive normal readings once
// `quiet_period_s` of event time has passed since its last anomaly (hysteresis). A sensor that opens
// `flap_opens` alerts within `flap_window_s` is flapping: that is reported once, and its further
// opens are suppressed until it has been quiet for a whole window.
//
// Every event (open, close, flapping) goes to the log, to the webhook (JSON POST on its own thread,
// bounded queue, retries with exponential backoff, timeouts; enqueueing never blocks), and to any
// extra sink (the Kafka `iot-anomalies` producer hooks in there). Closed alerts (and, at Stop, the
// ones still open) are stored as Parquet under data_dir/alerts/date=YYYY-MM-DD/ (view `alerts`).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/batch.h"
#include "core/interner.h"
#include "core/status.h"

namespace iotpipe {

struct AlertOptions {
  double quiet_period_s = 30;   // event time since the last anomaly before an alert may close
  int close_after_normal = 10;  // consecutive normal readings that close an alert
  int flap_opens = 4;           // this many opens within flap_window_s = flapping
  double flap_window_s = 600;
  bool log = true;
  int log_per_s = 5;  // log lines per second at most (the rest are counted, not printed)
  // Webhook delivery (empty = none).
  std::string webhook_url;         // http://host:port/path
  int webhook_retries = 3;         // attempts after the first
  double webhook_timeout_s = 2;    // connect / read / write timeout per attempt
  double webhook_backoff_s = 0.2;  // first retry delay, doubled each time
  size_t webhook_queue = 1024;     // pending deliveries; beyond that they are dropped (counted)
  // Storage (empty = not stored).
  std::string data_dir;
  std::string file_prefix = "alerts";  // stored file names: <prefix>-<run>-<seq>.parquet
  double store_interval_s = 10;        // closed alerts are written at most this often (and at Stop)
};

// One alert as stored and delivered.
struct Alert {
  std::string alert_id;  // <sensor>-<opened µs>
  std::string sensor_id;
  int64_t opened_us = 0, closed_us = -1, last_anomaly_us = 0;
  int64_t points = 0;  // anomalous readings folded in
  float max_score = 0;
  std::string anomaly_type;  // first known type seen in the alert
  std::string model_version;
  std::string state;  // open | closed
};

struct AlertEvent {
  std::string kind;  // open | close | flapping
  Alert alert;
  std::string ToJson() const;
};

struct AlertCounters {
  std::atomic<int64_t> opened{0}, closed{0}, folded{0}, suppressed{0}, flapping{0};
  std::atomic<int64_t> webhook_sent{0}, webhook_failed{0}, webhook_retries{0}, webhook_dropped{0};
  std::atomic<int64_t> stored{0}, store_errors{0};
  std::atomic<int64_t> open_now{0};
  std::atomic<int64_t> events{0};  // events emitted (open, close, flapping)
};

class AlertManager {
 public:
  AlertManager(AlertOptions opt, const Interner* sensors, const Interner* types, const Interner* models);
  ~AlertManager();  // Stop()s

  // Feeds a batch of scored readings (the pipeline's sink thread). Never blocks on delivery.
  void OnBatch(const ReadingBatch& b);
  // Extra delivery (e.g. Kafka): called on the pipeline thread for every event; must not block.
  void AddSink(std::function<void(const AlertEvent&)> sink);
  // Writes stored alerts that are due (call periodically; OnBatch does it by itself).
  Status StoreDue(bool force = false);
  // Stores the still-open alerts (state=open), drains the webhook queue for at most `drain_s`.
  void Stop(double drain_s = 5);

  const AlertCounters& counters() const { return c_; }
  // Recent events, newest last (bounded), for the HTTP API.
  std::vector<AlertEvent> Recent(size_t max = 100) const;

 private:
  struct SensorState {
    bool open = false, flapping = false;
    int normal_run = 0;
    Alert alert;
    std::deque<int64_t> opens;  // open times within the flap window
    int64_t last_anomaly_us = 0;
  };
  void Emit(const std::string& kind, const Alert& a);
  void WebhookLoop();
  bool PostOnce(const std::string& body);

  AlertOptions opt_;
  const Interner *sensors_, *types_, *models_;
  std::vector<SensorState> st_;
  AlertCounters c_;
  std::vector<std::function<void(const AlertEvent&)>> sinks_;
  mutable std::mutex recent_mu_;
  std::deque<AlertEvent> recent_;
  std::vector<Alert> to_store_;
  int64_t last_store_mono_ = 0;
  int64_t log_window_mono_ = 0;
  int log_in_window_ = 0;
  int file_seq_ = 0;
  std::string run_id_;
  // Webhook worker.
  std::string wh_host_, wh_path_;
  std::mutex wh_mu_;
  std::condition_variable wh_cv_;
  std::deque<std::string> wh_q_;
  bool wh_stop_ = false;
  int64_t wh_deadline_mono_ = 0;  // when stopping: give up after this
  std::thread wh_thread_;
  bool stopped_ = false;
};

// Splits "http://host:port/path" into ("http://host:port", "/path"); error on anything else.
Status SplitHttpUrl(const std::string& url, std::string* scheme_host_port, std::string* path);

}  // namespace iotpipe
