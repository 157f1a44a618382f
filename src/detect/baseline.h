// The baseline detector: streaming, per sensor, constant memory. It combines three robust scores:
//  - level: |x - EWMA mean| / EWMA sd, updated with winsorised values so outliers don't poison it;
//  - stuck: a run of identical readings;
//  - noise: short-term over long-term variance of first differences (variance bursts).
// The first `warmup` readings of a sensor only learn.
#pragma once
#include "detect/detector.h"

namespace iotpipe {

struct BaselineParams {
  double alpha_mean = 0.02;   // EWMA weight of the mean
  double alpha_var = 0.005;   // EWMA weight of the variance
  double z_threshold = 4.5;   // level score threshold, in standard deviations
  int stuck_run = 20;         // identical readings in a row that count as stuck
  double alpha_fast = 0.1;    // short-term weight for the difference variance
  double alpha_slow = 0.002;  // long-term weight for the difference variance
  double noise_ratio = 6.0;   // short/long variance ratio that counts as a burst
  int warmup = 30;
};

class BaselineDetector final : public PointDetector {
 public:
  struct State {
    double mean, var, last, dvar_fast, dvar_slow;
    uint32_t n, run;
  };
  explicit BaselineDetector(BaselineParams p = {}) : p_(p) {}
  std::string_view name() const override { return "baseline"; }
  std::string_view version() const override { return "baseline-v1"; }
  size_t state_bytes() const override { return sizeof(State); }
  void InitState(std::byte* st) const override;
  double Update(std::byte* st, int64_t ts_us, double value) const override;

 private:
  BaselineParams p_;
};

}  // namespace iotpipe
