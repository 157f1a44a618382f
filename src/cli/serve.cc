#include "cli/serve.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/resources.h"
#include "core/clock.h"
#include "http/server.h"
#include "sinks/alerts.h"

namespace iotpipe::cli {

namespace fs = std::filesystem;

void ServeArgs::Add(CLI::App* app) {
  app->add_option("--http", http,
                  "Serve the dashboard, API and /metrics on HOST:PORT, or 'off' (default 127.0.0.1:8080; "
                  "when that default is busy the run goes on without it)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            auto l = http::ParseListen(v);
            if (v.empty() || l.ok()) return std::string();
            std::string m = l.status().message();
            if (m.rfind("--http: ", 0) == 0) m.erase(0, 8);
            return m;
          },
          "HOST:PORT|off"));
  app->add_option("--http-token", http_token,
                  "Bearer token required by the API (mandatory when --http is not a loopback address)");
  app->add_option("--web-dir", web_dir,
                  "Dashboard files (default: $IOTPIPE_WEB_DIR, else share/iotpipe/web by the binary)");
  app->add_option("--http-linger", http_linger_s,
                  "Keep serving this many seconds after the pipeline ends (Ctrl-C ends it)");
  app->add_option("--alert-webhook", alert_webhook, "POST alert events as JSON to this http:// URL");
  app->add_option("--alert-quiet", alert_quiet_s, "Seconds of event time without anomalies before an alert may close");
  app->add_option("--alert-close-after", alert_close_after, "Consecutive normal readings that close an alert")
      ->check(CLI::Range(1, 1000000));
  app->add_option("--alert-min-points", alert_min_points,
                  "Alert policy: flagged readings an episode needs before its alert opens")
      ->check(CLI::Range(1, 1000000));
  app->add_option("--alert-min-duration", alert_min_duration_s,
                  "Alert policy: seconds of event time an episode must span before its alert opens")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--alert-warning-score", alert_warning_score,
                  "Alert policy: highest score >= this gives severity warning (below: info)");
  app->add_option("--alert-critical-score", alert_critical_score,
                  "Alert policy: highest score >= this gives severity critical");
  app->add_option("--alert-group-by", alert_group_by, "Alert policy: one alert per sensor, device or asset")
      ->check(CLI::IsMember({"sensor", "device", "asset"}));
  app->add_option("--alert-device-separator", alert_device_separator,
                  "Alert policy: the device of a sensor id is the part before the last separator");
  app->add_option("--alertmanager", alertmanager,
                  "POST alerts to Prometheus Alertmanager at this http://host:port (API v2)");
  app->add_option("--alertmanager-resend", alertmanager_resend_s,
                  "Seconds between re-sends of firing alerts to Alertmanager (endsAt = 4 x this ahead)")
      ->check(CLI::PositiveNumber);
  app->add_option("--alertmanager-labels", alertmanager_labels,
                  "Extra labels on every alert sent to Alertmanager: name=value[,name=value...], e.g. env=prod");
  app->add_option("--metrics-top-sensors", metrics_top_sensors,
                  "Per-sensor series on /metrics: only the N sensors with the most flagged readings")
      ->check(CLI::Range(0, 100000));
}

Serving::Serving(const ServeArgs& args, const std::string& data_dir) : args_(args), data_dir_(data_dir) {}

Serving::~Serving() {
  if (server_) server_->Stop();
}

AlertOptions Serving::alert_options() const {
  AlertOptions ao;
  ao.quiet_period_s = args_.alert_quiet_s;
  ao.close_after_normal = args_.alert_close_after;
  ao.webhook_url = args_.alert_webhook;
  ao.min_points = args_.alert_min_points;
  ao.min_duration_s = args_.alert_min_duration_s;
  ao.warning_score = args_.alert_warning_score;
  ao.critical_score = args_.alert_critical_score;
  ao.group_by = args_.alert_group_by;
  ao.device_separator = args_.alert_device_separator;
  ao.alertmanager_url = args_.alertmanager;
  ao.alertmanager_resend_s = args_.alertmanager_resend_s;
  for (size_t start = 0; start < args_.alertmanager_labels.size();) {
    size_t comma = args_.alertmanager_labels.find(',', start);
    if (comma == std::string::npos) comma = args_.alertmanager_labels.size();
    if (comma > start) ao.alertmanager_labels.push_back(args_.alertmanager_labels.substr(start, comma - start));
    start = comma + 1;
  }
  return ao;
}

Status Serving::Start(Pipeline& p) {
  pipeline_ = &p;
  sink_ = MakeObserver([this](const ProcessedBatch& b) {
    if (live_) live_->OnBatch(b);
    if (alerts_) alerts_->OnBatch(b.readings);
    return Status::OK();
  });
  const bool given = !args_.http.empty();
  auto listen = http::ParseListen(given ? args_.http : "127.0.0.1:8080");
  if (!listen.ok()) return listen.status();
  AlertOptions ao = alert_options();
  ao.data_dir = data_dir_;
  if (Status s = ValidateAlertOptions(ao); !s.ok()) return s;
  if (listen.value() && listen.value()->second != 0) {  // alerts link back to the dashboard
    const std::string& h = listen.value()->first;
    ao.generator_url = "http://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
                       std::to_string(listen.value()->second) + "/";
  }
  alerts_ = std::make_unique<AlertManager>(ao, &p.dicts().sensors, &p.dicts().types, &p.dicts().models);
  alerts_->SetAssets(&p.dicts().assets);
  if (!listen.value()) return ingest_ ? Status::InvalidArgument("--source http needs --http HOST:PORT") : Status::OK();
  live_ = std::make_unique<http::LiveView>(&p.dicts());
  http::ServerOptions so;
  so.host = listen.value()->first;
  so.port = listen.value()->second;
  so.token = args_.http_token;
  so.web_dir = FindWebDir(args_.web_dir);
  so.uplot_dir = FindUplotDir(so.web_dir);
  so.data_dir = data_dir_;
  so.model_dir = model_dir_;
  so.metrics_top_sensors = args_.metrics_top_sensors;
  if (!fs::exists(so.web_dir + "/index.html"))
    spdlog::warn("dashboard files not found in {} (use --web-dir)", so.web_dir);
  if (!fs::exists(so.uplot_dir + "/uPlot.iife.min.js"))
    spdlog::warn("uPlot not found in {} (run scripts/deps): charts will not draw", so.uplot_dir);
  http::ServerDeps deps;
  deps.metrics = &p.metrics();
  deps.live = live_.get();
  deps.processor = &p.processor();
  deps.alerts = alerts_.get();
  deps.pipeline_state = [this] { return done_.load() ? std::string("done") : std::string("running"); };
  deps.extra_metrics = extra_metrics_;
  deps.drift = drift_;
  deps.ingest = ingest_;
  server_ = std::make_unique<http::Server>(so, deps);
  Status s = server_->Start();
  if (!s.ok()) {
    server_.reset();
    live_.reset();
    if (given || ingest_) return s;
    spdlog::warn("{}; going on without the dashboard", s.message());
    return Status::OK();
  }
  std::fprintf(stderr, "[iotpipe] dashboard: %s  (metrics: %smetrics)\n", server_->url().c_str(),
               server_->url().c_str());
  return Status::OK();
}

void Serving::Finish(const std::atomic<bool>& stop) {
  done_ = true;
  if (alerts_) alerts_->Stop(5);
  if (server_ && args_.http_linger_s > 0) {
    int64_t end = MonoMicros() + static_cast<int64_t>(args_.http_linger_s * 1e6);
    while (!stop.load() && MonoMicros() < end) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (server_) server_->Stop();
}

}  // namespace iotpipe::cli
