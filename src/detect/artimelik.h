// The artimelik detector: the larger of two calibrated on-line scores per point, artime's (ART novelty of the
// recent shape and level, see artime.h) and likelihood's (HTM-style anomaly likelihood of prediction,
// distribution-change and nearest-subsequence scores, see likelihood.h). They fail on different NAB files
// (artime needs the range and a long probation; likelihood adapts from the first points), so the max of the
// two scores better than either. Equal weights (not tuned). State: both detectors' bytes, side by side.
// A fixed range goes in through ArtimeParams (no per-sensor ranges yet).
#pragma once
#include "detect/artime.h"
#include "detect/likelihood.h"

namespace iotpipe {

class ArtimeLikDetector final : public Detector {
 public:
  explicit ArtimeLikDetector(ArtimeParams p = {}, double alert_threshold = 0.5);
  std::string_view name() const override { return "artimelik"; }
  std::string_view version() const override { return "artimelik-v1"; }
  size_t state_bytes() const override { return off_lik_ + lik_.state_bytes(); }
  void ScoreBatch(ReadingBatch& batch, StateStore& store) const override;

  void InitState(std::byte* st) const;
  double Step(std::byte* st, int64_t ts_us, double value) const;

 private:
  ArtimeDetector art_;
  LikelihoodDetector lik_;
  size_t off_lik_ = 0;
  double alert_threshold_;
};

}  // namespace iotpipe
