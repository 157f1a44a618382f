#include "detect/baseline.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace iotpipe {

void PointDetector::ScoreBatch(ReadingBatch& b, StateStore& store) const {
  const size_t n = b.size();
  for (size_t i = 0; i < n; i++) {
    bool fresh;
    std::byte* st = store.Get(b.sensor[i], &fresh);
    if (fresh) InitState(st);
    double r = Update(st, b.ts_us[i], b.value[i]);
    b.score[i] = SeverityToScore(r);
    b.predicted[i] = r >= 1.0;
  }
}

void BaselineDetector::InitState(std::byte* st) const {
  State s{};
  std::memcpy(st, &s, sizeof s);
}

double BaselineDetector::Update(std::byte* raw, int64_t, double x) const {
  State s;
  std::memcpy(&s, raw, sizeof s);
  double sev = 0;
  if (s.n == 0) {
    s.mean = x;
    s.var = 0;
    s.last = x;
    s.dvar_fast = s.dvar_slow = 0;
    s.run = 1;
    s.n = 1;
    std::memcpy(raw, &s, sizeof s);
    return 0;
  }
  const double d = x - s.last;
  s.run = (d == 0) ? s.run + 1 : 1;
  const bool warm = s.n >= static_cast<uint32_t>(p_.warmup);
  // Resolution floor: a sensor reporting 3 decimals can't have sd below ~1e-3.
  const double sd = std::sqrt(std::max(s.var, 1e-6 + 1e-8 * s.mean * s.mean));
  const double z = std::fabs(x - s.mean) / sd;
  if (warm) {
    double r_level = z / p_.z_threshold;
    double r_stuck = static_cast<double>(s.run) / p_.stuck_run;
    double r_noise = s.dvar_slow > 0 ? (s.dvar_fast / s.dvar_slow) / p_.noise_ratio : 0;
    sev = std::max({r_level, r_stuck, r_noise});
  }
  // Learn: cumulative averages during warm-up, then EWMA; winsorise outliers at the threshold.
  const double am = warm ? p_.alpha_mean : 1.0 / (s.n + 1);
  const double av = warm ? p_.alpha_var : 1.0 / (s.n + 1);
  double xc = x;
  if (warm && z > p_.z_threshold) xc = s.mean + std::copysign(p_.z_threshold * sd, x - s.mean);
  const double dm = xc - s.mean;
  s.mean += am * dm;
  s.var = (1 - av) * (s.var + av * dm * dm);
  const double d2 = d * d;
  // Winsorised so that a single spike (two large differences) cannot look like a variance burst.
  const double dslow = s.dvar_slow > 0 ? std::min(d2, 50.0 * s.dvar_slow) : d2;
  const double dfast = s.dvar_slow > 0 ? std::min(d2, 20.0 * s.dvar_slow) : d2;
  s.dvar_fast += p_.alpha_fast * (dfast - s.dvar_fast);
  const double as = warm ? p_.alpha_slow : 1.0 / (s.n + 1);
  s.dvar_slow += as * (dslow - s.dvar_slow);
  s.last = x;
  s.n++;
  std::memcpy(raw, &s, sizeof s);
  return sev;
}

}  // namespace iotpipe
