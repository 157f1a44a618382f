// The offset ledger: the exactly-once rule for partitioned sources, in one object owned by the
// pipeline (the store and the source know nothing of it).
//
//  1. Files are named by source positions (<files>-p<P>-o<first>-<last>.parquet, sinks/parquet_store.h).
//  2. Commit: after every durable sink covers positions up to X of partition P, the marker
//     data/_offsets/<markers>-p<P> ("X\n") is written atomically. Markers only grow.
//  3. Recover (on assignment): files of P whose first position is above the marker were written but
//     never committed: they are deleted, and consumption resumes at marker + 1.
//  4. State follows the partition: the detector state of the sensors last seen on P is saved to
//     data/state/<markers>-p<P>.ckpt when P is let go (the pipeline drained: as of the marker) and
//     restored when P is assigned (again while drained). Format: pipeline/checkpoint.h.
// So a crash at any point neither loses nor duplicates a row.
//
// Threads: Commit/Observe on the sink thread; Recover/SaveStates/LoadStates on the source's Poll
// thread while the pipeline is drained (or stopped); ReadMarkers/committed from any thread.
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/env.h"
#include "core/status.h"
#include "sources/partitioned.h"

namespace iotpipe {

class Processor;
struct Dictionaries;

class OffsetLedger {
 public:
  // Markers, state files and removals go through env (null: Env::Default()).
  OffsetLedger(std::string data_dir, PositionNames names, Processor* proc, const Dictionaries* dicts,
               Env* env = nullptr);

  const PositionNames& names() const { return names_; }
  // The committed marker of each partition (-1 none), read from data_dir/_offsets.
  OffsetMap ReadMarkers() const;
  // Rule 3: deletes files past the marker of `partition`, returns the marker.
  Result<int64_t> Recover(int32_t partition);
  // Rule 2: writes the markers of the partitions whose durable position moved past the last commit.
  Status Commit(const OffsetMap& durable);
  // What this ledger committed (and found committed when it was made). Sink thread.
  const OffsetMap& committed() const { return committed_; }
  // Rule 4: which partition each sensor's readings arrive on (sink thread, each batch).
  void Observe(const ProcessedBatch& b);
  void SaveStates(const std::set<int32_t>& partitions);
  // `drain` is called once before the first state is restored (the processor must be idle).
  void LoadStates(const std::set<int32_t>& partitions, const std::function<bool()>& drain);

  static std::string MarkerPath(const std::string& data_dir, const std::string& markers, int32_t partition);
  static std::string StatePath(const std::string& data_dir, const std::string& markers, int32_t partition);

 private:
  std::string data_dir_;
  PositionNames names_;
  Env* env_;
  Processor* proc_;
  const Dictionaries* dicts_;
  OffsetMap committed_;
  bool offsets_dir_made_ = false;
  std::mutex part_mu_;
  std::vector<int32_t> sensor_part_;            // sensor id -> partition it was last seen on (-1: none)
  std::map<std::string, int32_t> loaded_part_;  // sensors restored from a partition's state file
};

}  // namespace iotpipe
