// The processing stage: decode, stamp processing time, score, count. Owns the per-sensor state.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "core/batch.h"
#include "core/clock.h"
#include "core/interner.h"
#include "core/metrics.h"
#include "detect/detector.h"
#include "parse/parser.h"

namespace iotpipe {

// The dictionaries shared by the stages (sensor names, anomaly types, model versions).
struct Dictionaries {
  Interner sensors{1u << 24};
  Interner types{256};
  Interner models{4096};
  Dictionaries() { types.Intern("other"); }
};

class Processor {
 public:
  Processor(Dictionaries* dicts, std::shared_ptr<const Detector> det, PipelineMetrics* m, Clock* clock);
  // Decodes and scores raw into out (cleared first).
  void Process(const RawBatch& raw, ProcessedBatch& out);
  // Swaps the detector; takes effect from the next batch. State is reset if the layout differs.
  void SetDetector(std::shared_ptr<const Detector> det);
  std::shared_ptr<const Detector> detector() const;
  StateStore& state() { return state_; }
  Status SaveCheckpoint(const std::string& path);
  Status LoadCheckpoint(const std::string& path);

 private:
  Dictionaries* dicts_;
  Parser parser_;
  mutable std::mutex det_mu_;
  std::shared_ptr<const Detector> det_, pending_;
  uint16_t model_id_ = 0;
  StateStore state_;
  PipelineMetrics* m_;
  Clock* clock_;
};

}  // namespace iotpipe
