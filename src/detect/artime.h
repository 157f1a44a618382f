// The artime detector: an Adaptive-Resonance-Theory anomaly detector after ARTime (Mark Hampton, 2021;
// markNZed/ARTimeNAB.jl, the NAB leader at 74.9 standard on the full corpus). This is an independent C++
// implementation written from a reading of the algorithm, not a translation of its (AGPL-3) code; the
// algorithm and its design are Mark Hampton's. Its DVFA (dual-vigilance fuzzy ART) follows Brito da
// Silva et al. 2019 as packaged in AP6YC/AdaptiveResonance.jl.
//
// The algorithm:
//  - down-sampling: every `sstep` points (sstep = probation / (window * windows_per_probation)), one value:
//    the block's extreme on the side away from a running average (a spike survives down-sampling), or the
//    block mean when the extreme is within 10 % of it;
//  - the value is normalised to [0, 1] by the sensor range, quantised to 80 levels, and snapped to a running
//    median level when within 0.075 of it (noise around the usual level collapses to one value);
//  - features: the last 8 levels, plus their Haar wavelet transform after min-max scaling (shape, not
//    level), each min-max scaled, complement coded (x, 1 - x): 32 numbers per step;
//  - DVFA: categories are fuzzy-AND hyperboxes. A sample's match with a category is
//    (|x ^ w| / |w|)^3 * (energy match of the current level)^2. Matches at or above the upper vigilance
//    rho_ub refine those categories (w <- x ^ w); else a best match at or above the lower vigilance rho_lb
//    adds a new category in the same cluster; else the sample is a new cluster: that is the anomaly signal;
//  - the first `probation` points are learnt in one batch at the end of the probation period; the initial
//    vigilance is the mean match of a scratch ART trained on the probation features (ordered from the least
//    to the most typical) at vigilance 0.8;
//  - vigilances adapt on-line: rho_ub follows the mean match so far (capped at 0.97); rho_lb rises towards
//    the lowest recent match, or falls by the mean recent shortfall, but not below the mean match of past
//    anomalies; updates every half trend window and shortly after each anomaly;
//  - a new cluster is reported only when not masked (masking follows a new cluster or a recent anomaly,
//    until a run of non-new-cluster steps), unless its match is well below the last anomaly's. The score is
//    a confidence: how far the match falls below both vigilances, plus the energy (level) mismatch.
//
// What differs from ARTime as NAB runs it (streaming and bounded):
//  - NAB gives ARTime each file's length (its probation period is 15 % of it, at most 750 points) and its
//    min/max (look-ahead). Here the probation is a fixed parameter (ArtimeParams::probation), and the range
//    is either configured per sensor (the range hint: a datasheet range) or, without one, the range of the
//    probation period's values, widened by `range_margin` on each side; later values are clamped to it;
//  - the category memory has a fixed capacity; when it is full a mismatch still scores but adds nothing;
//  - the anomaly-similarity history keeps only its running sum, count and last value (all ARTime reads).
//  - all state lives in flat per-sensor bytes; state_bytes() reports the size.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "detect/detector.h"

namespace iotpipe {

struct ArtimeParams {
  int probation = 600;  // points learnt before scoring (NAB: 15 % of the file, at most 750)
  int window = 8;       // feature window (down-sampled steps; a power of two)
  int windows_per_probation = 13;
  int levels = 80;              // quantisation levels of the normalised value
  double chomp = 0.075;         // snap to the running median level within this distance
  double initial_rho = 0.80;    // vigilance of the scratch ART that sets the starting vigilance
  double spike_fraction = 0.1;  // a block extreme within this fraction of the block mean is not a spike
  double rho_ub_cap = 0.97;
  uint32_t max_categories = 1024;  // 32 doubles each; the dev subset uses at most 875 (an 18k-row file)
  // Range of the values: fixed when fixed_range, else learnt from the probation period plus a margin.
  bool fixed_range = false;
  double lo = 0, hi = 0;
  double range_margin = 0.0;  // fraction of the probation span added on each side (online range only)
  // A row is predicted anomalous when its score is >= this.
  double alert_threshold = 0.5;
};

class ArtimeDetector final : public Detector {
 public:
  explicit ArtimeDetector(ArtimeParams p = {});
  std::string_view name() const override { return "artime"; }
  std::string_view version() const override { return "artime-v1"; }
  size_t state_bytes() const override { return stride_; }
  void ScoreBatch(ReadingBatch& batch, StateStore& store) const override;
  void Bind(const Interner* sensors, Interner* models) const override { ranges_.Bind(sensors); }

  // Configured per-sensor value ranges (sensor name -> [lo, hi]); sensors without one use params().
  void SetSensorRanges(SensorRanges::Map ranges) { ranges_.Set(std::move(ranges)); }

  // Single-sensor API (tests, harness): initialise a state, score one value.
  void InitState(std::byte* st) const;
  double Step(std::byte* st, double value) const;
  const ArtimeParams& params() const { return p_; }

  // Derived sizes (ARTime's): down-sampling step, trend window (down-sampled steps in the probation).
  int sstep() const { return sstep_; }
  int trend_window() const { return tw_; }
  uint32_t categories(const std::byte* st) const;

 private:
  struct Hdr;
  struct Engine;
  ArtimeParams p_;
  int sstep_ = 1, tw_ = 1, dim_ = 16, mask_ = 12, pp_ = 0;
  size_t stride_ = 0;
  size_t off_ds_ = 0, off_med_ = 0, off_fw_ = 0, off_raw_ = 0, off_sim_ = 0, off_diff_ = 0, off_w_ = 0;
  SensorRanges ranges_;
};

}  // namespace iotpipe
