#include "detect/likelihood.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace iotpipe {

void LikelihoodDetector::InitState(std::byte* st) const { std::memset(st, 0, sizeof(State)); }

namespace {
// HTM's log scale: 1 - L = 1e-10 -> 1.0; 1 - L = 0.5 -> 0.03.
double LogLikelihood(double tail) { return std::log(std::max(tail, 1e-10) + 1e-10) / std::log(1e-10); }
}  // namespace

double LikelihoodDetector::Update(std::byte* raw, int64_t, double x) const {
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
  const double dabs = std::max(s.dabs, std::sqrt(floor2));
  const double d = x - s.last;
  const double fast = s.fast + p_.alpha_fast * (x - s.fast);
  // Nearest-neighbour distance of the current subsequence (last kWin values, x included) to the history.
  s.hist[s.pos % kHist] = static_cast<float>(x);
  double knn = 0;
  if (p_.use_knn && s.n >= 2 * kWin) {
    const uint32_t avail = std::min<uint32_t>(s.n, kHist);
    double best = 1e300;
    // Candidate subsequences end at least kWin points before the current one (no overlap).
    for (uint32_t back = kWin; back + kWin <= avail; back++) {
      double dist = 0;
      for (int j = 0; j < kWin && dist < best; j++) {
        const uint32_t a = (s.pos + kHist - j) % kHist, b = (s.pos + kHist - back - j) % kHist;
        dist += std::fabs(static_cast<double>(s.hist[a]) - s.hist[b]);
      }
      best = std::min(best, dist);
    }
    knn = best / kWin / dabs / p_.knn_k;
  }
  const double z[kScores] = {p_.use_level ? std::fabs(x - s.mean) / sd : 0.0, p_.use_change ? std::fabs(d) / dabs : 0.0,
                             p_.use_shift ? std::fabs(fast - s.mean) / sd : 0.0, knn * p_.k_raw, 0.0};
  const int used = p_.use_level + p_.use_change + p_.use_shift + p_.use_knn;
  // Raw scores in [0, 1], their short-window means, and the likelihood of each.
  const uint32_t slot = s.pos % kShort;
  const double along = std::max(1.0 / s.n, 1.0 / p_.long_window);
  double ll = 0;
  double rsum = 0;
  for (int k = 0; k < kScores; k++) {
    double r = std::min(z[k], 1e6) / (std::min(z[k], 1e6) + p_.k_raw);
    if (k < kScores - 1) {
      rsum += r;
    } else {
      r = rsum / std::max(used, 1);
    }
    const bool counts = p_.combine == 0 ? k < kScores - 1 : k == kScores - 1;
    s.ring[k][slot] = static_cast<float>(r);
    const int cnt = static_cast<int>(std::min<uint32_t>(s.n, kShort));
    double sm = 0;
    for (int i = 0; i < cnt; i++) sm += s.ring[k][i];
    sm /= cnt;
    if (warm && counts) {
      // HTM's lower bounds on the fitted normal.
      const double mu = std::max(s.lmean[k], 0.03);
      const double sg = std::sqrt(std::max(s.lvar[k], 0.0003));
      const double tail = 0.5 * std::erfc((sm - mu) / (sg * std::sqrt(2.0)));
      ll = std::max(ll, LogLikelihood(tail));
    }
    const double dm = r - s.lmean[k];
    s.lmean[k] += along * dm;
    s.lvar[k] = (1 - along) * (s.lvar[k] + along * dm * dm);
  }
  double score = warm ? ll : 0.0;
  // Spatial novelty: beyond the range seen so far by a margin.
  if (warm && range > 0) {
    const double m = p_.spatial_margin * range;
    if (x > s.hi + m || x < s.lo - m) score = std::max(score, p_.spatial_score);
  }
  // Suppression below the recent peak.
  s.peak *= std::exp2(-1.0 / p_.peak_half_life);
  double out = score > s.peak ? score : score * p_.suppress;
  s.peak = std::max(s.peak, score);
  // Learning.
  const double am = warm ? p_.alpha_slow : 1.0 / (s.n + 1);
  const double dm = x - s.mean;
  s.mean += am * dm;
  s.var = (1 - am) * (s.var + am * dm * dm);
  const double ad = warm ? p_.alpha_diff : 1.0 / (s.n + 1);
  s.dabs += ad * (std::fabs(d) - s.dabs);
  s.fast = fast;
  s.last = x;
  s.lo = std::min(s.lo, x);
  s.hi = std::max(s.hi, x);
  s.n++;
  s.pos++;
  std::memcpy(raw, &s, sizeof s);
  // Severity with score = r / (1 + r) == out.
  out = std::clamp(out, 0.0, 0.999999);
  return out / (1.0 - out);
}

}  // namespace iotpipe
