// artimelik: max of the artime and likelihood scores (see artimelik.h).
#include "detect/artimelik.h"

#include <algorithm>
#include <cmath>

namespace iotpipe {

ArtimeLikDetector::ArtimeLikDetector(ArtimeParams p, double alert_threshold)
    : art_(p), off_lik_((art_.state_bytes() + 7) & ~size_t{7}), alert_threshold_(alert_threshold) {}

void ArtimeLikDetector::InitState(std::byte* st) const {
  art_.InitState(st);
  lik_.InitState(st + off_lik_);
}

double ArtimeLikDetector::Step(std::byte* st, int64_t ts_us, double value) const {
  if (!std::isfinite(value)) return 0;
  const double a = art_.Step(st, value);
  const double l = SeverityToScore(lik_.Update(st + off_lik_, ts_us, value));
  return std::max(a, l);
}

void ArtimeLikDetector::ScoreBatch(ReadingBatch& b, StateStore& store) const {
  const size_t n = b.size();
  for (size_t i = 0; i < n; i++) {
    bool fresh;
    std::byte* st = store.Get(b.sensor[i], &fresh);
    if (fresh) InitState(st);
    const double s = Step(st, b.ts_us[i], b.value[i]);
    b.score[i] = static_cast<float>(s);
    b.predicted[i] = s >= alert_threshold_;
  }
}

}  // namespace iotpipe
