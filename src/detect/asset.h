// Assets: several sensors read together and scored jointly (multivariate detection in the live pipeline).
//
// Membership. A reading belongs to an asset by its wire `asset_id` field (ReadingBatch::asset), or else by
// configuration (AssetMap: `asset = [sensor ids]` in a TOML file, `iotpipe run --assets FILE`). The wire
// field wins. An asset's channels are its sensors in configuration order, or in order of first appearance
// for wire assets (at most AssetOptions::max_channels; further sensors are counted and ignored).
//
// Joint vectors. Readings are aligned on event-time ticks (floor(timestamp / tick)). The vector of a tick
// is closed when every channel has reported for it (scored at once) or when a reading of a later tick
// arrives (a partial vector). A partial vector is completed with each missing channel's last value when
// that value is at most `max_stale_ticks` old (scored, `present` < `channels`); otherwise it is skipped
// (counted, not scored). A reading for a tick already closed is late: counted, not scored (it is still
// stored with the readings). Only complete vectors teach the model.
//
// Model. PCA with Hotelling's T² and Q (SPE) (detect/pca.h) fit on a sliding window of the last `window`
// complete vectors whose Q was within its limit: the first fit after `window` vectors (warm-up, nothing
// scored), then a refit every `refit_every` such vectors, so the model follows a new operating point along
// its components (T² high, Q normal) but never learns a broken correlation (Q high).
// Severity = max(T²/T²_lim, Q/Q_lim) smoothed by an EWMA (alpha); anomalous at >= 1; score = r/(1+r).
// Attribution: the channel with the largest share of Q (or of T² when T² dominates) is `top_channel`.
//
// State per asset (bounded): the window (window x channels doubles), the PCA model, the open tick and last
// values per channel: AssetScorer::state_bytes().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/batch.h"
#include "core/interner.h"
#include "core/status.h"
#include "detect/pca.h"

namespace iotpipe {

struct AssetOptions {
  int64_t tick_us = 1000000;  // readings within one tick form a joint vector
  size_t window = 256;        // normal vectors the PCA is fit on (warm-up length)
  size_t refit_every = 32;    // refit after this many new normal vectors
  int max_stale_ticks = 3;    // a missing channel takes its last value if it is at most this old
  size_t max_channels = 32;
  // Live default: Q (SPE) only. T² flags an operating point outside the sliding window, which a slowly
  // wandering process reaches all the time (on the simulated assets T² + Q: precision 0.44 at recall 1.0).
  PcaParams pca{0.9, 0.99, 1.0, 0.1, 0.0};
};

// Configured membership: asset name -> sensor ids, in channel order.
struct AssetMap {
  std::vector<std::pair<std::string, std::vector<std::string>>> assets;
  // TOML: one key per asset, `pump_1 = ["sensor_0", "sensor_1"]`, at the top level or under [assets].
  // Errors name the key: not an array of strings, an empty asset, a sensor in two assets.
  static Result<AssetMap> FromTomlFile(const std::string& path);
  static Result<AssetMap> FromTomlText(const std::string& text, const std::string& source = "assets");
};

// One scored joint vector.
struct AssetScore {
  uint32_t asset = 0;   // AssetScorer::AssetName(asset)
  int64_t tick_us = 0;  // start of the tick
  uint16_t channels = 0, present = 0;
  double t2 = 0, q = 0;
  double severity = 0;  // smoothed
  float score = 0;      // severity / (1 + severity)
  bool predicted = false;
  int32_t top_channel = -1;               // AssetScorer::ChannelName(asset, top_channel)
  float top_share = 0;                    // its share of the statistic, in (0, 1]
  bool gt = false;                        // any reading of the vector labelled anomalous
  int32_t gt_channel = -1;                // the first labelled channel (evaluation of the attribution)
  uint16_t type = ReadingBatch::kNoType;  // first labelled anomaly type in the vector
};

struct AssetCounters {
  int64_t readings = 0;        // readings that belong to an asset
  int64_t vectors = 0;         // vectors closed
  int64_t scored = 0;          // vectors scored
  int64_t partial = 0;         // of which completed with last values
  int64_t incomplete = 0;      // partial vectors skipped (a channel never seen or too stale)
  int64_t warmup = 0;          // complete vectors used before the first fit
  int64_t late = 0;            // readings for a tick already closed
  int64_t extra_channels = 0;  // readings of sensors beyond max_channels
  int64_t refits = 0, fit_errors = 0;
};

class AssetScorer {
 public:
  // sensors: the pipeline's sensor names; wire_assets: its asset_id interner (may be null).
  AssetScorer(AssetOptions opt, const Interner* sensors, const Interner* wire_assets);
  ~AssetScorer();
  // Adds configured assets (before the first batch).
  Status SetMap(const AssetMap& map);
  // Feeds scored readings (any order within a tick; ticks in time order per asset); appends the
  // vectors closed by this batch to *out.
  void OnBatch(const ReadingBatch& b, std::vector<AssetScore>* out);
  // Closes every open tick (end of stream).
  void Flush(std::vector<AssetScore>* out);

  size_t assets() const { return assets_.size(); }
  const std::string& AssetName(uint32_t a) const;
  size_t channels(uint32_t a) const;
  const std::string& ChannelName(uint32_t a, int32_t ch) const;
  bool fitted(uint32_t a) const;
  // Bytes held for asset a now (window, model, tick buffers), and the bound for a fitted asset of d channels.
  size_t state_bytes(uint32_t a) const;
  size_t max_state_bytes(size_t d) const;
  // Checkpoint of every asset's state: open tick, last values, learning window, fitted model and smoothed
  // severity (not the counters, nor an open tick's anomaly type: type ids are per process). Text:
  // "IOTPAST <format> <FNV-1a 64 of the rest>\n" then JSON. Restore checks the checksum, the options
  // (tick, window, channel limit, statistic) and every asset's shape and numbers before it changes
  // anything; a configured asset must have the same channels as in the checkpoint. Returns the number
  // of assets restored.
  std::string Snapshot() const;
  Result<size_t> Restore(std::string_view data);
  const AssetCounters& counters() const { return c_; }
  const AssetOptions& options() const { return opt_; }

 private:
  struct Asset;
  int32_t Resolve(const ReadingBatch& b, size_t i, uint32_t* asset);
  uint32_t AddAsset(const std::string& name);
  void Close(Asset& a, std::vector<AssetScore>* out);
  void Score(Asset& a, uint32_t idx, bool complete, std::vector<AssetScore>* out);

  AssetOptions opt_;
  const Interner* sensors_;
  const Interner* wire_;
  std::vector<std::unique_ptr<Asset>> assets_;
  std::unordered_map<std::string, uint32_t> by_name_;
  std::unordered_map<std::string, std::pair<uint32_t, uint16_t>> configured_;  // sensor -> (asset, channel)
  std::vector<uint64_t> sensor_cache_;  // sensor id -> 0 unknown, 1 none, else (asset << 16 | channel) + 2
  std::vector<uint32_t> wire_cache_;    // wire asset id -> asset index + 1 (0 unknown)
  AssetCounters c_;
};

}  // namespace iotpipe
