// The adaptive detector: an ensemble of cheap streaming scores, calibrated on-line, with alert suppression.
// Ideas from the NAB leaders, kept O(1) in time and state per sensor:
//  - spatial novelty (Numenta HTM's NAB detector): a value beyond the range seen so far, by a margin;
//  - level: |x - EWMA mean| / EWMA sd (winsorised learning, so outliers don't poison it);
//  - change: |x - previous| / EWMA sd of differences (spikes, steps);
//  - shift: |fast mean - slow mean| / slow sd (level shifts and drifts, CUSUM-like);
//  - calibration (HTM's anomaly likelihood): each score is compared with its own long-run distribution
//    (EWMA mean and sd of the score), so a sensor whose scores are always high stops alerting;
//  - sequence novelty (CAD OSE): value bins of the last three readings form a context; the rate of
//    never-seen contexts, short-run against long-run, flags new patterns and forgets learnt ones;
//  - suppression (CAD OSE / ARTime): once it has alerted, a sensor's severity must exceed its recent
//    peak (decaying with a half-life) to score high again: one alert per episode, not one per point.
// The first `warmup` readings only learn (NAB's probation period is at least this long on every file).
#pragma once
#include "detect/detector.h"

namespace iotpipe {

struct AdaptiveParams {
  int warmup = 100;
  double alpha_slow = 0.01;       // slow mean / variance (level reference)
  double alpha_fast = 0.3;        // fast mean (shift)
  double alpha_diff = 0.01;       // variance of first differences
  double z_level = 1e9;           // level z-score at severity 1 (off: periodic data defeats it)
  double z_change = 1e9;          // change z-score at severity 1 (off on NAB)
  double z_shift = 6.0;           // shift z-score at severity 1
  double spatial_margin = 0.02;   // fraction of the seen range beyond it that is novel
  double alpha_cal = 0.002;       // weight of the score-distribution calibration
  double cal_weight = 1.0;        // how much calibration lowers habitual scores
  double peak_half_life = 400;    // readings for the suppression peak to halve
  double suppress = 0.1;          // severity multiplier while below the recent peak
  double ctx_weight = 0.0;        // weight of the sequence-context novelty score (0: off)
  double alpha_ctx_fast = 0.2;    // short-run rate of novel contexts
  double alpha_ctx_slow = 0.003;  // long-run rate of novel contexts
  double z_ctx = 3.0;             // context-novelty z at severity 1
};

class AdaptiveDetector final : public PointDetector {
 public:
  struct State {
    double mean, var, fast, last, dvar, lo, hi, cal_mean, cal_var, peak, nov_fast, nov_slow;
    uint32_t n;
    uint16_t b1, b2;  // the previous two value bins
  };
  // Sequence contexts: (bin[t-2], bin[t-1], bin[t]) hashed into saturating 8-bit counters after the State.
  static constexpr int kBins = 24;
  static constexpr size_t kTable = 4096;
  explicit AdaptiveDetector(AdaptiveParams p = {}) : p_(p) {}
  std::string_view name() const override { return "adaptive"; }
  std::string_view version() const override { return "adaptive-v1"; }
  size_t state_bytes() const override { return sizeof(State) + (p_.ctx_weight > 0 ? kTable : 0); }
  void InitState(std::byte* st) const override;
  double Update(std::byte* st, int64_t ts_us, double value) const override;
  const AdaptiveParams& params() const { return p_; }

 private:
  AdaptiveParams p_;
};

}  // namespace iotpipe
