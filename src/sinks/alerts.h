// Alerts: a per-group state machine over scored readings, and their delivery.
//
// The policy (AlertOptions, docs/OPERATIONS.md) decides what an alert is:
//  - grouping: one state machine per sensor (default), per device (the sensor id up to its last
//    `device_separator`, e.g. "pump-3" for "pump-3/temperature") or per asset (the wire asset_id;
//    readings without one group by sensor);
//  - an episode: flagged readings of a group not separated by a quiet spell (below). Its alert opens
//    once the episode has `min_points` flagged readings and spans `min_duration_s` of event time;
//    an episode that ends before that never opens (counted as below_policy);
//  - severity from the highest score of the episode when it opens: critical >= critical_score,
//    warning >= warning_score, else info (fixed for the alert's life: it is part of its identity);
//  - further anomalies while it is open are folded into it (deduplication); it closes after
//    `close_after_normal` consecutive normal readings once `quiet_period_s` of event time has passed
//    since its last anomaly (hysteresis). A group that opens `flap_opens` alerts within
//    `flap_window_s` is flapping: that is reported once, and its further opens are suppressed until
//    it has been quiet for a whole window.
//
// Every event (open, close, flapping) goes to the log, to the webhook (JSON POST on its own thread,
// bounded queue, retries with exponential backoff, timeouts; enqueueing never blocks; failures are
// logged at most once per 30 s), to Alertmanager (sinks/alertmanager.h: firing on open, re-sent
// periodically, resolved on close) and to any extra sink (the Kafka `iot-anomalies` producer hooks in
// there). Closed alerts (and, at Stop, the ones still open) are stored as Parquet under
// data_dir/alerts/date=YYYY-MM-DD/ (view `alerts`; sensor_id holds the group key).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/batch.h"
#include "core/env.h"
#include "core/interner.h"
#include "core/status.h"
#include "sinks/alertmanager.h"

namespace iotpipe {

class Duck;

struct AlertOptions {
  // Policy (see the header comment). The defaults open an alert on the first flagged reading of an
  // episode: the detector's threshold is the calibrated decision, and Alertmanager's group_wait and
  // inhibition handle paging noise; raise min_points / min_duration_s to gate short episodes.
  int min_points = 1;                  // flagged readings an episode needs before its alert opens
  double min_duration_s = 0;           // event time from the episode's first flagged reading to opening
  double warning_score = 0;            // highest score >= this: severity warning (below it: info)
  double critical_score = 0.9;         // highest score >= this: severity critical
  std::string group_by = "sensor";     // sensor | device | asset
  std::string device_separator = "/";  // group_by device: the device is the sensor id up to the last one
  double quiet_period_s = 30;          // event time since the last anomaly before an alert may close
  int close_after_normal = 10;         // consecutive normal readings that close an alert
  int flap_opens = 4;                  // this many opens within flap_window_s = flapping
  double flap_window_s = 600;
  bool log = true;
  int log_per_s = 5;  // log lines per second at most (the rest are counted, not printed)
  // Webhook delivery (empty = none).
  std::string webhook_url;         // http://host:port/path
  int webhook_retries = 3;         // attempts after the first
  double webhook_timeout_s = 2;    // connect / read / write timeout per attempt
  double webhook_backoff_s = 0.2;  // first retry delay, doubled each time
  size_t webhook_queue = 1024;     // pending deliveries; beyond that they are dropped (counted)
  // Storage (empty = not stored). Files and the clock go through env (tests: core/fault_env.h).
  std::string data_dir;
  Env* env = Env::Default();
  std::string file_prefix = "alerts";  // stored file names: <prefix>-<run>-<seq>.parquet
  double store_interval_s = 10;        // closed alerts are written at most this often (and at Stop)
  // Alertmanager delivery (empty URL = none): http://host:port of Alertmanager.
  std::string alertmanager_url;
  double alertmanager_resend_s = 60;             // firing alerts re-sent this often
  std::vector<std::string> alertmanager_labels;  // extra labels name=value on every alert (env=prod)
  std::string generator_url;                     // link sent as generatorURL (the dashboard), optional
  double failure_log_every_s = 30;               // delivery failures: one log line per receiver per this
};

// Checks the policy and delivery options (group_by, thresholds, URLs, labels): InvalidArgument naming
// the option.
Status ValidateAlertOptions(const AlertOptions& o);

// One alert as stored and delivered.
struct Alert {
  std::string alert_id;  // <sensor>-<opened µs>
  std::string sensor_id;
  int64_t opened_us = 0, closed_us = -1, last_anomaly_us = 0;
  int64_t points = 0;  // anomalous readings folded in
  float max_score = 0;
  std::string anomaly_type;  // first known type seen in the alert
  std::string model_version;
  std::string state;             // open | closed
  std::string group = "sensor";  // what sensor_id holds: sensor | device | asset
  std::string severity;          // info | warning | critical
  std::string trigger_sensor;    // the sensor whose reading opened the episode
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
  std::atomic<int64_t> events{0};        // events emitted (open, close, flapping)
  std::atomic<int64_t> below_policy{0};  // episodes that ended before min_points / min_duration_s
  std::atomic<int64_t> webhook_up{-1};   // last webhook delivery: 1 ok, 0 failed, -1 none yet
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
  Status StoreDay(Duck& db, int64_t day, const std::vector<const Alert*>& list);
  Status StoreDue(bool force = false);
  // Stores the still-open alerts (state=open), drains the webhook queue for at most `drain_s`.
  void Stop(double drain_s = 5);

  const AlertCounters& counters() const { return c_; }
  // Alertmanager delivery, or null when not configured.
  const AlertmanagerClient* alertmanager() const { return am_.get(); }
  // Before the first OnBatch: the asset names (Dictionaries::assets) for group_by asset.
  void SetAssets(const Interner* assets) { assets_ = assets; }
  // Recent events, newest last (bounded), for the HTTP API.
  std::vector<AlertEvent> Recent(size_t max = 100) const;
  // The alerts open now (any thread; as counted by open_now, suppressed ones of flapping groups included).
  std::vector<Alert> OpenAlerts() const;

 private:
  struct SensorState {
    bool open = false, flapping = false, pending = false, am_fired = false;
    int normal_run = 0;
    Alert alert;                // the open alert, or the pending episode
    std::deque<int64_t> opens;  // open times within the flap window
    int64_t last_anomaly_us = 0;
  };
  void Emit(const std::string& kind, const Alert& a);
  void WebhookLoop();
  bool PostOnce(const std::string& body, std::string* err);
  // The group of row i: its index in st_, with its name and label (sensor | device | asset).
  uint32_t GroupOf(const ReadingBatch& b, size_t i);
  void Open(SensorState& s, int64_t ts);
  void Track(const Alert& a, bool open);  // open_, beside c_.open_now
  AmAlert ToAm(const Alert& a) const;

  AlertOptions opt_;
  const Interner *sensors_, *types_, *models_;
  std::vector<SensorState> st_;
  AlertCounters c_;
  std::vector<std::function<void(const AlertEvent&)>> sinks_;
  mutable std::mutex recent_mu_;
  std::deque<AlertEvent> recent_;
  std::map<std::string, Alert> open_;  // by alert_id (under recent_mu_)
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
  // Groups other than by sensor: name -> index (st_), and per sensor id its device group (+1).
  std::unordered_map<std::string, uint32_t> group_ids_;
  std::vector<std::pair<std::string, std::string>> groups_;  // index -> (label, name)
  std::vector<uint32_t> device_of_;                          // sensor id -> group + 1 (device, or the sensor itself)
  bool by_sensor_ = true, by_device_ = false;                // opt_.group_by, decided once
  std::vector<uint32_t> asset_of_;                           // asset id -> group + 1
  const Interner* assets_ = nullptr;
  std::unique_ptr<AlertmanagerClient> am_;
  std::map<std::string, std::string> am_labels_;
  FailureLog wh_log_;
};

// Splits "http://host:port/path" into ("http://host:port", "/path"); error on anything else.
Status SplitHttpUrl(const std::string& url, std::string* scheme_host_port, std::string* path);

}  // namespace iotpipe
