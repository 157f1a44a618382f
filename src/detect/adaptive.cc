#include "detect/adaptive.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace iotpipe {

void AdaptiveDetector::InitState(std::byte* st) const { std::memset(st, 0, state_bytes()); }

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
  // Sequence context of the last three value bins, over the range seen so far.
  double novel = 0;
  if (p_.ctx_weight > 0) {
    uint8_t* table = reinterpret_cast<uint8_t*>(raw + sizeof(State));
    const double span = s.hi - s.lo;
    const int bin = span > 0 ? std::clamp(static_cast<int>((x - s.lo) / span * kBins), 0, kBins - 1) : 0;
    const uint32_t key = ((static_cast<uint32_t>(s.b2) * kBins + s.b1) * kBins + bin) * 2654435761u;
    uint8_t& cnt = table[(key >> 20) % kTable];
    novel = cnt == 0 ? 1.0 : 0.0;
    if (cnt < 255) cnt++;
    s.b2 = s.b1;
    s.b1 = static_cast<uint16_t>(bin);
  }
  const double nov_fast = s.nov_fast + p_.alpha_ctx_fast * (novel - s.nov_fast);
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
    const double base = std::max(s.nov_slow, 0.002);
    const double r_ctx =
        p_.ctx_weight * (nov_fast - base) / std::sqrt(base * (1 - base) * p_.alpha_ctx_fast) / p_.z_ctx;
    double r = std::max({r_level, r_change, r_shift, r_ctx});
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
  s.nov_fast = nov_fast;
  s.nov_slow += (warm ? p_.alpha_ctx_slow : 1.0 / (s.n + 1)) * (novel - s.nov_slow);
  s.last = x;
  s.lo = std::min(s.lo, x);
  s.hi = std::max(s.hi, x);
  s.n++;
  std::memcpy(raw, &s, sizeof s);
  return out;
}

}  // namespace iotpipe
