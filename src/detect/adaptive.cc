#include "detect/adaptive.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace iotpipe {

void AdaptiveDetector::InitState(std::byte* st) const {
  State s{};
  std::memcpy(st, &s, sizeof s);
}

double AdaptiveDetector::Update(std::byte* raw, int64_t, double x) const {
  State s;
  std::memcpy(&s, raw, sizeof s);
  if (!std::isfinite(x)) return 0;  // the parser rejects these; be safe on direct use
  if (s.n == 0) {
    s = State{};
    s.mean = s.fast = s.last = s.lo = s.hi = x;
    s.n = 1;
    std::memcpy(raw, &s, sizeof s);
    return 0;
  }
  const bool warm = s.n >= static_cast<uint32_t>(p_.warmup);
  const double range = s.hi - s.lo;
  // Resolution floors: a constant or quantised sensor can't have a zero spread.
  const double floor2 = 1e-12 + 1e-6 * range * range + 1e-10 * s.mean * s.mean;
  const double sd = std::sqrt(std::max(s.var, floor2));
  const double dsd = std::sqrt(std::max(s.dvar, floor2));
  const double d = x - s.last;
  const double fast = s.fast + p_.alpha_fast * (x - s.fast);
  double sev = 0;
  if (warm) {
    const double z = std::fabs(x - s.mean) / sd;
    const double r_level = z / p_.z_level;
    const double r_change = std::fabs(d) / dsd / p_.z_change;
    const double r_shift = std::fabs(fast - s.mean) / sd / p_.z_shift;
    double r = std::max({r_level, r_change, r_shift});
    // Calibration against this sensor's own score distribution.
    const double typical = s.cal_mean + 3.0 * std::sqrt(std::max(s.cal_var, 0.0));
    const double cal = std::pow(std::max(typical, 1.0), p_.cal_weight);
    sev = r / cal;
    // Spatial novelty: beyond the range seen so far by a margin.
    if (range > 0) {
      const double m = p_.spatial_margin * range;
      double excess = std::max(x - (s.hi + m), (s.lo - m) - x);
      if (excess > 0) sev = std::max(sev, 1.0 + excess / range);
    }
    // Calibration learns from the (clipped) raw score.
    const double rc = std::min(r, 3.0);
    const double dm = rc - s.cal_mean;
    s.cal_mean += p_.alpha_cal * dm;
    s.cal_var = (1 - p_.alpha_cal) * (s.cal_var + p_.alpha_cal * dm * dm);
  }
  // Suppression: below the recent peak, a severity counts for less.
  const double decay = std::exp2(-1.0 / p_.peak_half_life);
  s.peak *= decay;
  double out = sev > s.peak ? sev : sev * p_.suppress;
  s.peak = std::max(s.peak, sev);
  // Learning: cumulative averages during warm-up, then EWMA, winsorised at the level threshold.
  const double am = warm ? p_.alpha_slow : 1.0 / (s.n + 1);
  double xc = x;
  if (warm) {
    const double lim = p_.z_level * sd;
    xc = std::clamp(x, s.mean - lim, s.mean + lim);
  }
  const double dm = xc - s.mean;
  s.mean += am * dm;
  s.var = (1 - am) * (s.var + am * dm * dm);
  const double ad = warm ? p_.alpha_diff : 1.0 / (s.n + 1);
  const double d2 = s.dvar > 0 ? std::min(d * d, 50.0 * s.dvar) : d * d;
  s.dvar += ad * (d2 - s.dvar);
  s.fast = fast;
  s.last = x;
  s.lo = std::min(s.lo, x);
  s.hi = std::max(s.hi, x);
  s.n++;
  std::memcpy(raw, &s, sizeof s);
  return out;
}

}  // namespace iotpipe
