// The sensors dataset (issue 16): per sensor its unit and tags as its records declared them, and its first
// and last reading (event time), kept apart from sensor_readings so rows stay compact. One Parquet file a
// run, <data>/sensors/sensors-<run>.parquet, rewritten whole and replaced atomically (temp + fsync +
// rename through the Env) at most every `interval_us` while the run goes, and at Flush; the `sensors`
// view merges the runs' files (core/tables.h). An observer: acknowledgements never wait for it, and a
// sighting it lost in a crash comes back with the next reading of that sensor.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/duck.h"
#include "core/env.h"
#include "core/interner.h"
#include "sinks/sink.h"

namespace iotpipe {

class SensorsSink final : public Sink {
 public:
  // db: a DuckDB to stage snapshots in, used only on the sink thread (the store's; null: one of its own,
  // opened at the first snapshot: 9-18 ms measured, most of a snapshot's cost).
  SensorsSink(std::string data_dir, const Interner* sensors, Env* env = Env::Default(),
              int64_t interval_us = 10'000'000, Duck* db = nullptr);
  Status Write(const ProcessedBatch& b) override;
  Status Tick(int64_t now_mono_us) override;
  Status Flush() override;
  Status Close() override { return Flush(); }
  size_t sensors_seen() const { return seen_count_; }

 private:
  struct Entry {
    int64_t first = INT64_MAX, last = INT64_MIN;  // event times (us); first == INT64_MAX: never seen
    std::string unit, tags;
  };
  Status WriteSnapshot();

  std::string dir_, path_, tmp_;
  Duck* db_;
  std::unique_ptr<Duck> own_db_;
  const Interner* sensors_;
  Env* env_;
  int64_t interval_us_, last_write_mono_ = -1;  // -1: no tick yet (the first tick only starts the clock)
  std::vector<Entry> by_sensor_;
  size_t seen_count_ = 0;
  bool dirty_ = false;
};

}  // namespace iotpipe
