// The three stages of a Pipeline (pipeline/pipeline.h) and what they share. Internal to pipeline/.
//
// Invariants:
//   - pushed counts raw batches the source stage queued; appended counts processed batches every
//     sink wrote. A drain is served only when appended == pushed (nothing in flight) and every
//     sink was flushed and the positions acknowledged.
//   - Acknowledged positions never pass a sink error: after one, the sink stage stops and the
//     other stages are closed; the source is not acknowledged again.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/env.h"
#include "core/metrics.h"
#include "core/queue.h"
#include "core/status.h"
#include "pipeline/processor.h"
#include "sinks/parquet_store.h"
#include "sinks/sink.h"
#include "sources/source.h"

namespace iotpipe {

class OffsetLedger;
class PartitionedSource;
class ProgressReporter;

// The drain handshake: the source thread, blocked inside Poll, waits until the sink stage has
// written every batch pushed so far, flushed it durably and acknowledged it.
class DrainGate {
 public:
  bool Drain();                // source thread; false if the sink stage is gone (failing)
  int64_t Pending();           // sink thread: the request to serve (0: none)
  void Done(int64_t request);  // sink thread: served
  void Close();                // the sink stage is gone: wakes and refuses every drain

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t req_ = 0, done_ = 0;
  bool gone_ = false;
};

// Detector state snapshots: taken by the processor thread between batches, written by the sink thread.
class CheckpointHandoff {
 public:
  CheckpointHandoff(std::string path, double interval_s, Env* env = nullptr);  // files through env (null: Default)
  bool on() const { return on_; }
  void MaybeSnapshot(Processor& proc, int64_t now);  // processor thread
  void WriteReady();                                 // sink thread; failures are logged, not fatal

 private:
  std::string path_;
  bool on_;
  int64_t every_us_, last_ = 0;
  Env* env_;
  std::mutex mu_;
  std::string main_, shadow_;
  bool ready_ = false;
};

struct StageShared {
  explicit StageShared(size_t depth)
      : q_raw(depth), q_done(depth), recycle_raw(depth * 2 + 4), recycle_done(depth * 2 + 4) {}
  BoundedQueue<RawBatch> q_raw;
  BoundedQueue<ProcessedBatch> q_done;
  BoundedQueue<RawBatch> recycle_raw;
  BoundedQueue<ProcessedBatch> recycle_done;
  std::atomic<bool> failed{false};
  std::atomic<int64_t> pushed{0}, appended{0};
  std::function<int64_t()> now;  // the pipeline's timer clock (µs)
};

class SourceStage {
 public:
  SourceStage(Source* src, StageShared* sh, PipelineMetrics* m, size_t batch_size)
      : src_(src), sh_(sh), m_(m), batch_size_(batch_size) {}
  void Run(const std::atomic<bool>& stop);  // until the end of the source, stop or failure

 private:
  Source* src_;
  StageShared* sh_;
  PipelineMetrics* m_;
  size_t batch_size_;
};

class ProcessStage {
 public:
  ProcessStage(Processor* proc, StageShared* sh, PipelineMetrics* m, CheckpointHandoff* ckpt)
      : proc_(proc), sh_(sh), m_(m), ckpt_(ckpt) {}
  void Run();  // until the raw queue is closed and empty, or failure

 private:
  Processor* proc_;
  StageShared* sh_;
  PipelineMetrics* m_;
  CheckpointHandoff* ckpt_;
};

struct SinkStageDeps {
  Source* src = nullptr;
  PartitionedSource* partitioned = nullptr;  // for lag per partition
  OffsetLedger* ledger = nullptr;            // commits before acknowledging (partitioned sources)
  ParquetStore* store = nullptr;             // for the stored/files/bytes figures (may be null)
  std::vector<Sink*> sinks;                  // in write order
  DrainGate* drain = nullptr;
  CheckpointHandoff* ckpt = nullptr;
  ProgressReporter* progress = nullptr;
  double progress_interval_s = 0;
  size_t queue_capacity = 0;
};

class SinkStage {
 public:
  SinkStage(SinkStageDeps d, StageShared* sh, PipelineMetrics* m);
  // Until the processed queue is closed and empty, or a sink fails (returned).
  Status Run();
  // After the other stages stopped, if Run succeeded: flushes and closes every sink, acknowledges.
  Status Finish();

 private:
  Status Write(ProcessedBatch& b);
  Status Step();  // between batches: ticks, acknowledgement, checkpoints, drain, progress
  Status FlushAll();
  Status Acknowledge();  // commits and acknowledges the minimum durable positions
  void Progress(int64_t now);

  SinkStageDeps d_;
  StageShared* sh_;
  PipelineMetrics* m_;
  OffsetMap acked_;
  bool acked_once_ = false;
  int64_t last_progress_ = 0, last_sent_ = 0;
};

// Per partition, the minimum over the durable sinks of their durable positions (a partition one
// durable sink does not hold is left out). Empty when no sink is durable.
OffsetMap MinDurable(const std::vector<Sink*>& sinks);

}  // namespace iotpipe
