// Shared pieces of the subcommands: simulator options, signals, summaries.
#pragma once
#include <CLI/CLI.hpp>
#include <atomic>
#include <string>

#include "cli/asset_run.h"
#include "cli/serve.h"
#include "core/status.h"
#include "parse/mapping.h"
#include "pipeline/pipeline.h"
#include "sources/kafka_source.h"
#include "sources/source.h"

namespace iotpipe::cli {

// Set by SIGINT/SIGTERM; every long-running command polls it and shuts down cleanly.
extern std::atomic<bool> g_stop;
void InstallSignalHandlers();

// Commands end with an exit code; only main exits. Exit throws ExitCode, which main catches and
// returns (destructors run on the way: a pipeline is stopped cleanly).
struct ExitCode {
  int code;
};
[[noreturn]] void Exit(int code);
// Ends the command with a clear message (exit code 1, or 2 for bad usage).
[[noreturn]] void Fail(const std::string& msg, int code = 1);
void Check(const Status& s, const std::string& context = "", int code = 1);
// After a parse error: "did you mean ...?" for the closest subcommand or option name (edit distance)
// to each word of argv the parsed (sub)command does not know; prints to stderr, returns how many.
int SuggestFixes(CLI::App& app, int argc, char** argv);
size_t EditDistance(std::string_view a, std::string_view b);

struct SimArgs {
  uint32_t sensors = 100;
  std::string profile = "basic";
  std::string rate = "";  // events/s overall, or "max"; empty = one reading/s per sensor, real time
  int64_t events = -1;
  std::string duration;  // sensor-time span: 3600, 90m, 7d
  uint64_t seed = 42;
  std::string start;  // ISO 8601 or epoch seconds
  double malformed_rate = 0;
  double anomaly_rate = -1;
  uint32_t asset_size = 0;  // --asset-size: correlated multi-channel assets (sim/simulator.h)
  double speedup = 0;       // --speedup: paced, sensor time this many times faster than the clock
  std::string regime_at;    // --regime-at: a regime change from this sensor time (sim/simulator.h)
  double regime_shift = 8, regime_scale = 1.5;
  void Add(CLI::App* app);
  // Resolves into source options (start time defaults: real time = now; max = now - span).
  SimSourceOptions Resolve(Clock* clock) const;
};

int64_t PeakRssMb();
// Writes JSON text atomically to path ("-" = stdout).
void WriteJson(const std::string& path, const std::string& json);

void AddRun(CLI::App& app);
void AddSimulate(CLI::App& app);
void AddProcess(CLI::App& app);
void AddQuery(CLI::App& app);
void AddEvaluate(CLI::App& app);
void AddBench(CLI::App& app);
void AddNab(CLI::App& app);    // nab.cc
void AddSkab(CLI::App& app);   // skab.cc
void AddTrain(CLI::App& app);  // ml_cmd.cc
void AddModels(CLI::App& app);
void AddScore(CLI::App& app);
void AddMonitor(CLI::App& app);
void AddLifecycleDemo(CLI::App& app);  // lifecycle_demo.cc

}  // namespace iotpipe::cli

namespace iotpipe::cli {

struct PipelineArgs {
  std::string data_dir = "data";
  std::string detector = "baseline";
  std::string summary_json;
  size_t batch_size = 8192;
  size_t queue_depth = 64;     // batches buffered between two stages (PipelineOptions)
  size_t flush_rows = 250000;  // a partition is written at this many buffered rows (StoreOptions)
  bool quiet = false;
  bool no_checkpoint = false;
  bool adopt_state = false;
  std::string cpus;                       // pin the process to these CPUs, e.g. "0" or "0,1"
  std::string compression = "zstd";       // Parquet codec
  std::string parquet_writer = "native";  // native (hand-written) | duckdb (COPY)
  std::string model_dir = "models";       // lstm/auto/ensemble detectors
  std::string model = "production";       // version, or alias (watched: promotions hot-swap)
  int lstm_threads = 0;                   // LSTM inference threads (0: one per core, at most 8)
  double checkpoint_interval_s = 60;      // detector state checkpoints (also at shutdown)
  bool no_shadow = false;                 // do not run the `shadow` alias's model beside production
  bool auto_retrain = false;              // closed loop (cli/ml_run.h)
  double retrain_after_s = 60;            // drift must last this long (wall time) to retrain
  std::string retrain_span = "1d";        // recent stored data to train on
  double shadow_period_s = 60;            // shadow scoring before the promotion decision
  int retrain_epochs = 8;
  ServeArgs serve;     // --http, --http-token, --web-dir, --alert-webhook ...
  AssetArgs assets;    // --assets, --asset-detector, --asset-tick, --asset-window (cli/asset_run.h)
  InputMapping input;  // --input-format ... (AddInputOptions; process only): the original record by default
  void Add(CLI::App* app);
};

// The declared input mapping (parse/mapping.h) as flags, --input-format (alias --format), --input-id,
// --input-time ... ; in a config file a [<command>.input] table with the keys format, id, time ...
// (cli/config.cc flattens it to input-format, input-id ...).
void AddInputOptions(CLI::App* app, InputMapping* m);

// Runs a pipeline over `source` to completion (or Ctrl-C) and prints the summary. Returns the exit
// code. kafka: the options of a Kafka source (its side topics are a sink of the run).
int RunPipeline(Source* source, const PipelineArgs& args, const KafkaSourceOptions* kafka = nullptr);
// LSTM inference threads for the run: --lstm-threads, or one per CPU the process may use (at most 8).
int LstmThreads(const PipelineArgs& args);
// Watches args.model (an alias) and hot-swaps the processor's detector on promotion; null if n/a.
std::shared_ptr<void> StartModelWatcher(Pipeline& p, const PipelineArgs& args);

}  // namespace iotpipe::cli
