// Assets in `run` / `process`: the asset detector on the sink thread (an observer sink), its
// `asset_scores` dataset and asset alerts (detect/asset.h, sinks/asset_store.h).
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/pipeline.h"
#include "sinks/alerts.h"
#include "sinks/sink.h"

namespace iotpipe::cli {

struct AssetArgs {
  std::string assets_file;  // --assets FILE (TOML: name = [sensor ids])
  std::string detector;     // --asset-detector: pca | none ("" = pca when assets are configured or on the wire)
  double tick_s = 1.0;      // --asset-tick
  size_t window = 256;      // --asset-window
  std::string stat = "q";   // --asset-stat: q (SPE only) | t2q (max of T² and Q)
  void Add(CLI::App* app);
};

class AssetRun {
 public:
  AssetRun(const AssetArgs& args, std::string data_dir);
  ~AssetRun();
  // Validates the options and the assets file (an error is a bad option: exit code 2); takes the
  // checkpoint schedule of the run.
  Status Configure(const PipelineOptions& po);
  // alerts: quiet period, closing and webhook of the run's alerts (Serving::alert_options()); asset
  // alerts are delivered the same way, stored under their own file prefix. Errors: exit code 2.
  Status Start(Pipeline& p, const AlertOptions& alerts);
  // The observer sink running the asset detector on each batch (null when off).
  Sink* sink();
  // Closes open ticks, writes the rest, stores open asset alerts. Returns the summary (null if off).
  nlohmann::json Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace iotpipe::cli
