// Wires source -> processor -> sinks as three stage objects on three threads, with bounded queues
// (backpressure), batching, periodic flushes, compaction, checkpoints and acknowledgement after
// durable writes:
//
//   SourceStage  polls the Source into raw batches                     (source thread)
//   ProcessStage decodes and scores them, snapshots detector state     (processor thread)
//   SinkStage    writes processed batches to every registered Sink,   (the thread calling Run)
//                ticks them, acknowledges what every durable sink holds, serves drain requests,
//                writes checkpoints, reports progress.
//
// Acknowledgement rule: per source partition, the position acknowledged to the Source (and, for a
// PartitionedSource, committed first by the OffsetLedger) is the minimum over the durable sinks
// (Sink::durable() != null) of what each holds durably. Nothing is acknowledged past a sink error:
// the run fails with it. A partition revocation (PartitionListener::Revoking) blocks the source
// thread until every batch handed out so far is written, flushed by every sink and committed.
// At the end of the source every sink is flushed and closed, and the final positions acknowledged.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "pipeline/processor.h"
#include "sinks/parquet_store.h"
#include "sinks/sensors_sink.h"
#include "sinks/sink.h"
#include "sources/source.h"

namespace iotpipe {

class OffsetLedger;

// Progress of a running pipeline, given to whoever shows it (the CLI prints a line).
class ProgressReporter {
 public:
  virtual ~ProgressReporter() = default;
  // Every progress_interval_s on the sink thread: events/s since the last report.
  virtual void Report(const PipelineMetrics& m, double events_per_s, size_t queue_capacity) = 0;
};

struct PipelineOptions {
  size_t batch_size = 8192;
  size_t queue_depth = 64;           // batches between two stages: absorbs the store's flush bursts
  StoreOptions store;                // the Parquet store, the first durable sink after the before_store ones
  bool with_store = true;            // false: only the registered sinks (tests)
  double progress_interval_s = 2.0;  // 0: no progress
  ProgressReporter* progress = nullptr;
  std::string checkpoint_path;  // empty: no detector checkpoint
  // Detector state belongs to the stream it came from: <checkpoint>.source names it (Source::Describe).
  // A run of another unpartitioned source refuses to start on it unless adopt_state (issue 19).
  bool adopt_state = false;
  double checkpoint_interval_s = 60;
  // Files of the store, the offset ledger and the checkpoints (tests: core/fault_env.h); null: store.env.
  Env* env = nullptr;
  Clock* mono = nullptr;  // time of the timers (flushes, checkpoints, progress); null: steady clock
  // Called for each processed batch after the sinks wrote it (an observer sink; tests, tools).
  std::function<void(const ProcessedBatch&)> on_batch;
};

class Pipeline {
 public:
  Pipeline(Source* source, std::shared_ptr<const Detector> det, PipelineOptions opt, Clock* clock);
  ~Pipeline();
  // Registers a sink (before Run; not owned). Each batch goes to the before_store sinks, the store,
  // then the others, in registration order. This is the one place side outputs are attached.
  void AddSink(Sink* sink, bool before_store = false);
  // Runs until the source ends or stop becomes true; everything is flushed before it returns.
  Status Run(const std::atomic<bool>& stop);
  PipelineMetrics& metrics() { return m_; }
  Processor& processor() { return *proc_; }
  Dictionaries& dicts() { return dicts_; }
  double elapsed_s() const { return elapsed_s_; }
  const StoreStats& store_stats() const { return store_stats_; }

 private:
  class Listener;
  Status Prepare(std::unique_ptr<ParquetStore>* store, std::vector<Sink*>* sinks);
  Status RestoreCheckpoints();
  void Finish(const Status& st);

  Source* src_;
  PipelineOptions opt_;
  Clock* clock_;
  Dictionaries dicts_;
  PipelineMetrics m_;
  std::unique_ptr<Processor> proc_;
  std::vector<Sink*> before_store_, after_store_;
  std::unique_ptr<OffsetLedger> ledger_;
  std::unique_ptr<SensorsSink> sensors_;  // the sensors dataset, beside the store
  std::unique_ptr<Listener> listener_;
  double elapsed_s_ = 0;
  StoreStats store_stats_;
};

std::string FormatCount(double v);  // 1.2k, 3.4M

}  // namespace iotpipe
