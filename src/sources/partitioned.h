// What a partitioned source (Kafka; later MQTT shared subscriptions …) tells the pipeline beyond
// the Source contract: partition assignment and revocation, names for its positions, lag per
// partition. The pipeline finds it with dynamic_cast<PartitionedSource*> and registers itself as
// the PartitionListener; everything Kafka-specific stays in the source.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "core/batch.h"
#include "core/status.h"

namespace iotpipe {

// The names under which a source's positions are stored (files, commit markers, dead letters).
struct PositionNames {
  std::string files;    // data file prefix: <files>-p<P>-o<first>-<last>.parquet (e.g. kafka-<topic>)
  std::string markers;  // commit marker and partition state stem: _offsets/<markers>-p<P> (e.g. <topic>)
  std::string label;    // the dead letters' `source` column (e.g. kafka:<topic>)
};

// Implemented by the pipeline (its offset ledger). Called on the source's Poll thread, inside Poll.
class PartitionListener {
 public:
  virtual ~PartitionListener() = default;
  // Before a newly assigned partition is consumed: removes what was stored past its commit marker
  // and returns the marker (-1: nothing committed; consume from the beginning). The source resumes
  // at marker + 1. An error: the partition must not be consumed.
  virtual Result<int64_t> Recover(int32_t partition) = 0;
  // After Recover of every newly assigned partition: restores the state that follows them.
  virtual void Assigned(const std::set<int32_t>& partitions) = 0;
  // Before partitions are let go: blocks until everything handed out so far is durable and
  // committed, then saves the state that follows them. False: not drained (the pipeline is failing).
  virtual bool Revoking(const std::set<int32_t>& partitions) = 0;
  // The committed positions (commit markers) of every partition. Any thread.
  virtual OffsetMap Committed() const = 0;
};

class PartitionedSource {
 public:
  virtual ~PartitionedSource() = default;
  virtual PositionNames position_names() const = 0;
  // Before Start; null after Stop. The listener outlives its registration.
  virtual void SetPartitionListener(PartitionListener* l) = 0;
  virtual std::set<int32_t> assigned() const = 0;                 // any thread
  virtual std::map<int32_t, int64_t> LagByPartition() const = 0;  // as last measured; any thread
};

}  // namespace iotpipe
