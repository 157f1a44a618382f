// The `asset_scores` dataset: one row per scored joint vector of an asset (detect/asset.h), stored as
// Parquet under data_dir/asset_scores/date=YYYY-MM-DD/ (temp name, fsync, rename) and queried through the
// `asset_scores` view (core/duck.h).
//
// Why a dataset of its own rather than columns on sensor_readings: an asset score belongs to a vector of
// K readings of one tick, not to a reading; the readings are written by the hand-written Parquet writer on
// the hot path, whose schema (and every reader of old files) would change for a feature most sensors do
// not use; and the asset scores are produced a tick later than the readings (a vector closes when its
// last channel or the next tick arrives). Join on (asset's sensors, timestamp) when both are needed.
//
// Durability: rows are buffered (DuckDB appender, in memory) and written every `flush_rows` rows or
// `flush_interval_s`, and at Close(). Asset scores are derived data: a crash loses at most the buffered
// rows; the readings themselves follow the pipeline's commit rule.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/interner.h"
#include "core/status.h"
#include "detect/asset.h"

namespace iotpipe {

class Duck;

struct AssetStoreOptions {
  std::string data_dir;
  size_t flush_rows = 65536;
  double flush_interval_s = 10;
  std::string model_version = "asset-pca";
};

class AssetScoreStore {
 public:
  explicit AssetScoreStore(AssetStoreOptions opt);
  ~AssetScoreStore();  // Close()s
  Status Open();
  // Buffers rows (names resolved through the scorer and the anomaly-type interner); flushes when due.
  Status Append(const std::vector<AssetScore>& rows, const AssetScorer& scorer, const Interner* types,
                int64_t processing_ts_us);
  Status Flush();
  Status Close();
  int64_t rows_written() const { return written_; }
  int64_t files() const { return files_; }

 private:
  AssetStoreOptions opt_;
  std::unique_ptr<Duck> db_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t buffered_ = 0, written_ = 0, files_ = 0, seq_ = 0;
  int64_t last_flush_mono_ = 0;
  std::string run_id_;
  bool closed_ = false;
};

}  // namespace iotpipe
