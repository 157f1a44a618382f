// The HTTP server and alerts around a pipeline run (`run` and `process`): flags, wiring, lifetime.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/status.h"
#include "pipeline/pipeline.h"
#include "sinks/alerts.h"
#include "sinks/sink.h"

namespace iotpipe {
class HttpSource;
namespace http {
class LiveView;
class Server;
}  // namespace http
}  // namespace iotpipe

namespace iotpipe::cli {

struct ServeArgs {
  std::string http;  // HOST:PORT, or off; empty = 127.0.0.1:8080, skipped if busy
  std::string http_token;
  std::string web_dir;       // default: cli/resources.h (FindWebDir)
  double http_linger_s = 0;  // keep serving this long after the pipeline ends
  std::string alert_webhook;
  double alert_quiet_s = 30;
  int alert_close_after = 10;
  // Alert policy and Alertmanager delivery (sinks/alerts.h, docs/OPERATIONS.md).
  int alert_min_points = 1;
  double alert_min_duration_s = 0;
  double alert_warning_score = 0;
  double alert_critical_score = 0.9;
  std::string alert_group_by = "sensor";
  std::string alert_device_separator = "/";
  std::string alertmanager;
  double alertmanager_resend_s = 60;
  std::string alertmanager_labels;  // name=value,name=value
  size_t metrics_top_sensors = 20;
  void Add(CLI::App* app);
};

// Owns the live view, the alert manager and the server of one pipeline run.
class Serving {
 public:
  Serving(const ServeArgs& args, const std::string& data_dir);
  ~Serving();
  // After the Pipeline is built, before Run: starts the server (fails on a bad bind).
  Status Start(Pipeline& p);
  // The observer sink feeding the live view and the alerts (valid after Start).
  Sink* sink() { return sink_.get(); }
  // The alert options from the command line (quiet period, closing, webhook), for other alert streams
  // of the run (the asset detector's) to deliver the same way. Valid before Start.
  AlertOptions alert_options() const;
  // After Run: stores open alerts, drains the webhook, lingers if asked, stops the server.
  // The pipeline has ended: /api/health says "done" from now on (before the summary is written, so a
  // reader of the summary never sees "running").
  void MarkDone() { done_ = true; }
  void Finish(const std::atomic<bool>& stop);
  // Before Start: more Prometheus text for /metrics (the ML drift monitor's gauges).
  void SetExtraMetrics(std::function<std::string()> f) { extra_metrics_ = std::move(f); }
  // Before Start: the ML drift monitor's snapshot as JSON text (dashboard drift panel).
  void SetDrift(std::function<std::string()> f) { drift_ = std::move(f); }
  // Before Start: the model registry the dashboard's model controls act on.
  void SetModelDir(std::string dir) { model_dir_ = std::move(dir); }
  // Before Start: the HTTP ingestion source the server feeds (the server is then mandatory).
  void SetIngest(HttpSource* s) { ingest_ = s; }

 private:
  ServeArgs args_;
  std::string data_dir_;
  Pipeline* pipeline_ = nullptr;
  std::unique_ptr<http::LiveView> live_;
  std::unique_ptr<AlertManager> alerts_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<Sink> sink_;
  std::atomic<bool> done_{false};
  std::function<std::string()> extra_metrics_;
  std::function<std::string()> drift_;
  std::string model_dir_;
  HttpSource* ingest_ = nullptr;
};

}  // namespace iotpipe::cli
