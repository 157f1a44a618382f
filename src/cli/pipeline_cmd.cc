#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/ingest_cli.h"
#include "cli/ml_run.h"
#include "core/timeutil.h"
#include "detect/detector.h"
#include "eval/evaluate.h"
#include "sinks/kafka_side_sink.h"

namespace iotpipe::cli {

void PipelineArgs::Add(CLI::App* app) {
  app->add_option("--data-dir", data_dir, "Where Parquet files, dead letters and state are written");
  app->add_option(
      "--detector", detector, "Detector: " + [] {
        std::string s;
        for (auto& n : DetectorNames()) s += (s.empty() ? "" : "|") + n;
        return s;
      }());
  app->add_option("--summary-json", summary_json, "Write the final summary as JSON to this file ('-' = stdout)");
  app->add_option("--batch-size", batch_size, "Records per batch between stages")->check(CLI::Range(1, 1 << 20));
  app->add_option("--queue-depth", queue_depth,
                  "Batches buffered between two stages (absorbs the store's flush bursts)")
      ->check(CLI::Range(1, 1024));
  app->add_option("--flush-rows", flush_rows, "Write a partition's file once it buffers this many rows (or after 1 s)")
      ->check(CLI::Range(size_t{1000}, size_t{100000000}));
  app->add_flag("--quiet", quiet, "No progress line");
  app->add_flag("--no-checkpoint", no_checkpoint, "Neither restore nor save detector state");
  app->add_flag("--adopt-state", adopt_state,
                "Restore detector state that another source left in the data directory (refused otherwise)");
  app->add_option("--compression", compression, "Parquet compression")
      ->check(CLI::IsMember({"zstd", "snappy", "lz4", "gzip", "uncompressed"}));
  app->add_option("--parquet-writer", parquet_writer,
                  "Parquet writer: native (hand-written; zstd/uncompressed) or duckdb (COPY; any codec)")
      ->check(CLI::IsMember({"native", "duckdb"}));
  app->add_option("--cpus", cpus, "Pin the process to these CPUs (comma-separated ids), e.g. 0");
  app->add_option("--model-dir", model_dir, "Model registry directory (lstm/auto/ensemble detectors)");
  app->add_option("--model", model, "Model version or alias; an alias is watched and promotions hot-swap");
  app->add_option("--lstm-threads", lstm_threads, "LSTM inference threads (0: one per core); same scores for any count")
      ->check(CLI::Range(0, 64));
  app->add_option("--checkpoint-interval", checkpoint_interval_s,
                  "Seconds between detector state checkpoints (0: only at shutdown)");
  app->add_flag("--no-shadow", no_shadow, "Do not score with the model under the 'shadow' alias beside production");
  app->add_flag("--auto-retrain", auto_retrain,
                "When drift lasts --retrain-after s: retrain on recent data, shadow it, promote if as good");
  app->add_option("--retrain-after", retrain_after_s, "Seconds of continuous drift before retraining (--auto-retrain)");
  app->add_option("--retrain-span", retrain_span, "Recent stored data to retrain on, e.g. 1d (--auto-retrain)");
  app->add_option("--shadow-period", shadow_period_s,
                  "Seconds of shadow scoring before the promotion decision (--auto-retrain)");
  app->add_option("--retrain-epochs", retrain_epochs, "Maximum epochs of a retraining (--auto-retrain)");
  serve.Add(app);
  assets.Add(app);
}

static void PinCpus(const std::string& list) {
  cpu_set_t set;
  CPU_ZERO(&set);
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    std::string id = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    long c = std::strtol(id.c_str(), &end, 10);
    if (id.empty() || *end || c < 0 || c >= CPU_SETSIZE) Fail("--cpus: bad CPU id '" + id + "'", 2);
    CPU_SET(static_cast<int>(c), &set);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (sched_setaffinity(0, sizeof set, &set) != 0) Fail("--cpus: cannot pin to " + list);
}

int LstmThreads(const PipelineArgs& args) {
  if (args.lstm_threads > 0) return args.lstm_threads;
  cpu_set_t set;  // the CPUs this process may run on (after --cpus)
  CPU_ZERO(&set);
  const int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  return std::clamp(n, 1, 8);
}

namespace {

// The progress line of a running pipeline (every 2 s on stderr).
class ProgressLine final : public ProgressReporter {
 public:
  // A finite source's share done gives the line a percentage and an ETA (the time so far, scaled).
  explicit ProgressLine(const SourceProgress* finite) : finite_(finite), t0_(MonoMicros()) {}

  void Report(const PipelineMetrics& m, double rate, size_t queue_capacity) override {
    std::string done;
    if (const double f = finite_ ? finite_->Done() : -1; f > 0) {
      const double left = static_cast<double>(MonoMicros() - t0_) / 1e6 * (1 - std::min(f, 1.0)) / f;
      done = " " + std::to_string(static_cast<int>(std::min(f, 1.0) * 100)) + "% ETA " + FormatSpan(left) + " |";
    }
    std::string lag = m.lag.load() >= 0 ? " | lag " + FormatCount(static_cast<double>(m.lag.load())) : "";
    if (!lag.empty()) {  // per partition, compact: lag 1.2k (p0 200, p1 1.0k, ...)
      auto parts = m.lag_by_partition.Get();
      int shown = 0;
      for (auto& [pn, l] : parts) {
        lag += (shown ? ", p" : " (p") + std::to_string(pn) + " " + FormatCount(static_cast<double>(l));
        if (++shown == 8 && parts.size() > 8) {
          lag += ", ...";
          break;
        }
      }
      if (shown) lag += ")";
    }
    std::string figures;  // the source's own (MQTT: connected, reconnects, duplicates)
    for (auto& [name, v] : m.source_figures.Get())
      figures += (figures.empty() ? " | " : ", ") + name + " " + FormatCount(static_cast<double>(v));
    std::fprintf(stderr, "[iotpipe]%s events %s | %s ev/s | stored %s | dead %s | anomalies %s | queue %lld/%zu%s%s\n",
                 done.c_str(), FormatCount(static_cast<double>(m.sent.load())).c_str(), FormatCount(rate).c_str(),
                 FormatCount(static_cast<double>(m.stored.load())).c_str(),
                 FormatCount(static_cast<double>(m.dead_stored.load())).c_str(),
                 FormatCount(static_cast<double>(m.predicted.load())).c_str(),
                 static_cast<long long>(m.queue_raw.load() + m.queue_processed.load()), queue_capacity, lag.c_str(),
                 figures.c_str());
  }

 private:
  const SourceProgress* finite_;
  int64_t t0_;
};

}  // namespace

int RunPipeline(Source* source, const PipelineArgs& args, const KafkaSourceOptions* kafka) {
  if (auto r = ResolveMapping(args.input); !r.ok()) Fail(r.status().message(), 2);
  if (!args.cpus.empty()) PinCpus(args.cpus);  // before any thread starts: threads inherit it
  DetectorOptions dopt;
  dopt.model_dir = args.model_dir;
  dopt.model = args.model;
  dopt.threads = LstmThreads(args);
  auto det = MakeDetector(args.detector, dopt);
  if (!det.ok()) Fail(det.status().message(), 2);
  ProgressLine progress_line(dynamic_cast<const SourceProgress*>(source));
  PipelineOptions po;
  po.batch_size = args.batch_size;
  po.queue_depth = args.queue_depth;
  po.store.max_rows = args.flush_rows;
  po.store.data_dir = args.data_dir;
  po.store.compression = args.compression;
  po.store.writer = args.parquet_writer;
  po.progress_interval_s = args.quiet ? 0 : 2.0;
  po.progress = &progress_line;
  if (!args.no_checkpoint) po.checkpoint_path = args.data_dir + "/state/detector-" + args.detector + ".ckpt";
  po.adopt_state = args.adopt_state;
  po.checkpoint_interval_s = args.checkpoint_interval_s;
  std::shared_ptr<const Detector> d(std::move(det.value()));
  Serving serving(args.serve, args.data_dir);   // HTTP API, dashboard, alerts
  MlRun ml(args);                               // model watchers, shadow scoring, drift monitor, auto-retrain
  AssetRun assets(args.assets, args.data_dir);  // multivariate asset detector (sink thread)
  Check(assets.Configure(po), "", 2);
  Pipeline p(source, d, po, RealClock::Get());
  Check(p.processor().SetInputMapping(args.input), "input mapping");
  if (auto* ingest = dynamic_cast<HttpSource*>(source)) {  // POST /api/ingest feeds the source
    Check(AttachHttpSource(ingest, p), "http ingest");
    serving.SetIngest(ingest);
  }
  Check(ml.Start(p), "", 2);
  Check(assets.Start(p, serving.alert_options()), "", 2);
  serving.SetExtraMetrics(ml.MetricsText());
  serving.SetDrift(ml.DriftJson());
  serving.SetModelDir(args.model_dir);
  Check(serving.Start(p));
  // The sinks of the run, in write order, the one place they are registered. The Parquet store
  // (PipelineOptions::store) is written after the before_store sinks and before the others.
  std::unique_ptr<KafkaSideSink> side;  // dead-letter and anomaly topics (durable: gates the commit)
  if (kafka) {
    KafkaSideOptions ko{kafka->brokers, kafka->topic, kafka->dlq_topic, kafka->anomalies_topic};
    auto r = KafkaSideSink::Open(ko, &p.dicts().sensors, &p.dicts().models);
    Check(r.status(), "kafka");
    side = std::move(r.value());
    if (side) p.AddSink(side.get(), /*before_store=*/true);
  }
  p.AddSink(serving.sink());                    // live view, alerts
  if (ml.sink()) p.AddSink(ml.sink());          // drift monitor, shadow scores
  if (assets.sink()) p.AddSink(assets.sink());  // asset scoring, asset alerts
  InstallSignalHandlers();
  Status s = p.Run(g_stop);
  serving.MarkDone();
  ml.Finish();
  nlohmann::json asset_summary = assets.Finish();
  auto& m = p.metrics();
  const auto& st = p.store_stats();
  int64_t sent = m.sent.load(), stored = static_cast<int64_t>(st.rows), dead = static_cast<int64_t>(st.dead);
  // Precision over labelled rows only: a flag on an unlabelled reading is neither true nor false.
  const int64_t pred_labelled = m.predicted - m.unlabelled_predicted;
  double prec = pred_labelled ? static_cast<double>(m.tp) / static_cast<double>(pred_labelled) : 0;
  double rec = m.truth ? static_cast<double>(m.tp) / static_cast<double>(m.truth) : 0;
  // Records: a multi-field record is stored as several readings; a CSV header as none.
  const int64_t records_stored = stored - m.expanded.load() + m.skipped.load();
  nlohmann::json j = {{"sent", sent},
                      {"stored", stored},
                      {"dead_letter", dead},
                      {"events_per_s", p.elapsed_s() > 0 ? static_cast<double>(sent) / p.elapsed_s() : 0.0},
                      {"elapsed_s", p.elapsed_s()},
                      {"peak_rss_mb", PeakRssMb()},
                      {"true_anomalies", m.truth.load()},
                      {"predicted_anomalies", m.predicted.load()},
                      {"precision", prec},
                      {"recall", rec},
                      {"f1", F1(prec, rec)},
                      {"unlabelled_rows", m.unlabelled.load()},
                      {"readings_beyond_first_per_record", m.expanded.load()},
                      {"records_without_readings", m.skipped.load()},
                      {"sensors", m.sensors.load()},
                      {"files", st.files},
                      {"bytes_written", st.bytes},
                      {"compactions", st.compactions},
                      {"detector", std::string(p.processor().detector()->version())},
                      {"data_dir", args.data_dir}};
  std::fprintf(stderr,
               "[iotpipe] done: sent %lld, stored %lld, dead letters %lld (%s) in %.2f s = %s events/s; "
               "anomalies: %lld true, %lld predicted, precision %.4f recall %.4f F1 %.4f; peak RSS %lld MB\n",
               static_cast<long long>(sent), static_cast<long long>(stored), static_cast<long long>(dead),
               records_stored + dead == sent ? "all accounted for" : "MISMATCH", p.elapsed_s(),
               FormatCount(j["events_per_s"].get<double>()).c_str(), static_cast<long long>(m.truth.load()),
               static_cast<long long>(m.predicted.load()), prec, rec, F1(prec, rec),
               static_cast<long long>(PeakRssMb()));
  if (!asset_summary.is_null()) j["assets"] = asset_summary;
  if (!args.summary_json.empty()) WriteJson(args.summary_json, j.dump(2));
  serving.Finish(g_stop);  // stores open alerts, drains the webhook, --http-linger
  if (!s.ok()) {
    std::fprintf(stderr, "iotpipe: error: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace iotpipe::cli
