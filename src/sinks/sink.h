// Sinks receive the processed batches of a pipeline and report what is durable (Vector's sinks
// with end-to-end acknowledgements).
//
// Contract (every method is called on the pipeline's sink thread, in this order of life:
// Write/Tick ... Flush ... Close):
//   - Write takes one processed batch. An error fails the run: nothing written since the last
//     durable point is acknowledged, so it is read again by whoever consumes next.
//   - Tick does periodic work between batches (flush by age, compaction); it may make more durable.
//   - Flush makes everything written so far durable; after it returns OK, durable() covers every
//     position written.
//   - Close ends the sink after the final Flush (what a sink does at the end of a run).
//   - durable(): null for sinks the acknowledgement does not wait for (observers such as alerts or
//     the live view); else, per source partition, the highest position such that every record at
//     or below it that was written here is durable. A partition absent from the map has nothing
//     durable yet. The pipeline acknowledges, per partition, the minimum over these sinks.
#pragma once
#include <functional>
#include <memory>
#include <utility>

#include "core/batch.h"
#include "core/status.h"

namespace iotpipe {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status Write(const ProcessedBatch& b) = 0;
  virtual Status Tick(int64_t now_mono_us) { return Status::OK(); }
  virtual Status Flush() { return Status::OK(); }
  virtual Status Close() { return Status::OK(); }
  virtual const OffsetMap* durable() const { return nullptr; }
};

// An observer: a function of each written batch, never durable (alerts, live view, monitors).
template <class F>
class FnSink final : public Sink {
 public:
  explicit FnSink(F f) : f_(std::move(f)) {}
  Status Write(const ProcessedBatch& b) override { return f_(b); }

 private:
  F f_;
};

inline std::unique_ptr<Sink> MakeObserver(std::function<Status(const ProcessedBatch&)> f) {
  return std::make_unique<FnSink<std::function<Status(const ProcessedBatch&)>>>(std::move(f));
}

}  // namespace iotpipe
