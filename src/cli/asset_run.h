// Assets in `run` / `process`: the asset detector on the sink thread (PipelineOptions::on_batch), its
// `asset_scores` dataset and asset alerts (detect/asset.h, sinks/asset_store.h).
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "pipeline/pipeline.h"
#include "sinks/alerts.h"

namespace iotpipe::cli {

struct AssetArgs {
  std::string assets_file;     // --assets FILE (TOML: name = [sensor ids])
  std::string detector;        // --asset-detector: pca | none ("" = pca when assets are configured or on the wire)
  double tick_s = 1.0;         // --asset-tick
  size_t window = 256;         // --asset-window
  std::string stat = "q";      // --asset-stat: q (SPE only) | t2q (max of T² and Q)
  void Add(CLI::App* app);
};

class AssetRun {
 public:
  AssetRun(const AssetArgs& args, std::string data_dir);
  ~AssetRun();
  // Validates the options and the assets file (exits 2 on a bad one); chains on po.on_batch.
  void Attach(PipelineOptions& po);
  // alerts: quiet period, closing and webhook of the run's alerts (Serving::alert_options()); asset
  // alerts are delivered the same way, stored under their own file prefix.
  void Start(Pipeline& p, const AlertOptions& alerts);
  // Closes open ticks, writes the rest, stores open asset alerts. Returns the summary (null if off).
  nlohmann::json Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace iotpipe::cli
