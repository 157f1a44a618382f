// The processing stage: decode, stamp processing time, score, count. Owns the per-sensor state.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/batch.h"
#include "core/clock.h"
#include "core/dictionaries.h"
#include "core/env.h"
#include "core/interner.h"
#include "core/metrics.h"
#include "detect/detector.h"
#include "parse/parser.h"

namespace iotpipe {

class Processor {
 public:
  Processor(Dictionaries* dicts, std::shared_ptr<const Detector> det, PipelineMetrics* m, Clock* clock);
  // Decodes and scores raw into out (cleared first).
  void Process(const RawBatch& raw, ProcessedBatch& out);
  // Swaps the detector; takes effect from the next batch. State is reset if the layout differs.
  void SetDetector(std::shared_ptr<const Detector> det);
  std::shared_ptr<const Detector> detector() const;
  // Records of another shape than the original wire record (parse/mapping.h). Before the first batch.
  // id 0 is the pipeline's mapping; id k > 0 decodes the batches whose RawBatch::mapping is k (a
  // parser of its own, sharing the dictionaries).
  Status SetInputMapping(const InputMapping& m, uint16_t id = 0);
  StateStore& state() { return state_; }
  // Shadow scoring: a second detector scores the same rows with its own state; its results go to
  // ProcessedBatch::shadow_*. Null stops it. Takes effect from the next batch (like SetDetector).
  void SetShadow(std::shared_ptr<const Detector> det);
  std::shared_ptr<const Detector> shadow() const;
  StateStore& shadow_state() { return shadow_state_; }
  // Checkpoint bytes of the main (or shadow) detector's state; empty if there is no such detector.
  // Only on the processor's thread between batches, or while it is idle: it owns the state.
  std::string SnapshotState(bool shadow = false);
  // Checkpoint file: "IOTPCKP" magic, format version, detector name and version, state stride,
  // sensor count and an FNV-1a 64 checksum of the payload (per sensor: name, state bytes).
  // Loading validates all of them before touching the state: a corrupt or foreign checkpoint is
  // refused with an error and the state stays as it was.
  Status SaveCheckpoint(const std::string& path, bool shadow = false, Env* env = nullptr);  // null env: Default()
  Status LoadCheckpoint(const std::string& path, bool shadow = false);

 private:
  Dictionaries* dicts_;
  Parser parser_;
  std::map<uint16_t, std::unique_ptr<Parser>> alt_parsers_;  // RawBatch::mapping > 0
  Parser& ParserFor(uint16_t id);
  void CountParsed();  // the parsers' counters into m_
  mutable std::mutex det_mu_;
  std::shared_ptr<const Detector> det_, pending_;
  uint16_t model_id_ = 0;
  StateStore state_;
  std::shared_ptr<const Detector> shadow_, shadow_pending_;
  bool shadow_change_ = false;
  uint16_t shadow_model_id_ = 0;
  StateStore shadow_state_;
  PipelineMetrics* m_;
  Clock* clock_;
};

}  // namespace iotpipe
