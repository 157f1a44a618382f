// Wires source -> processor -> store with bounded queues (backpressure), batching, periodic
// flushes, compaction, checkpoints and commit-after-durable-write (Source::Ack).
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/metrics.h"
#include "pipeline/processor.h"
#include "sinks/parquet_store.h"
#include "sources/source.h"

namespace iotpipe {

struct PipelineOptions {
  size_t batch_size = 8192;
  size_t queue_depth = 64;  // batches between two stages: absorbs the store's flush bursts
  StoreOptions store;
  double progress_interval_s = 2.0;   // 0: no progress line
  std::string checkpoint_path;        // empty: no detector checkpoint
  double checkpoint_interval_s = 60;
  // Called after each durable flush with what was processed (alerts, live views).
  std::function<void(const ProcessedBatch&)> on_batch;
};

class Pipeline {
 public:
  Pipeline(Source* source, std::shared_ptr<const Detector> det, PipelineOptions opt, Clock* clock);
  ~Pipeline();
  // Runs until the source ends or stop becomes true; everything is flushed before it returns.
  Status Run(const std::atomic<bool>& stop);
  PipelineMetrics& metrics() { return m_; }
  Processor& processor() { return *proc_; }
  Dictionaries& dicts() { return dicts_; }
  double elapsed_s() const { return elapsed_s_; }
  const StoreStats& store_stats() const { return store_stats_; }

 private:
  Source* src_;
  PipelineOptions opt_;
  Clock* clock_;
  Dictionaries dicts_;
  PipelineMetrics m_;
  std::unique_ptr<Processor> proc_;
  double elapsed_s_ = 0;
  StoreStats store_stats_;
};

std::string FormatCount(double v);  // 1.2k, 3.4M

}  // namespace iotpipe
