#include "detect/artimelik.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace iotpipe {
namespace {

TEST(ArtimeLik, ScoreIsTheMaxOfBothDetectors) {
  ArtimeParams p;
  p.fixed_range = true;
  p.lo = 0;
  p.hi = 100;
  ArtimeLikDetector both(p);
  ArtimeDetector art(p);
  LikelihoodDetector lik;
  std::vector<std::byte> sb(both.state_bytes()), sa(art.state_bytes()), sl(lik.state_bytes());
  both.InitState(sb.data());
  art.InitState(sa.data());
  lik.InitState(sl.data());
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 1);
  int from_art = 0, from_lik = 0;
  for (int i = 0; i < 5000; i++) {
    double v = 50 + 20 * std::sin(2 * M_PI * i / 120.0) + noise(rng) + (i >= 3000 && i < 3100 ? 25 : 0);
    double a = art.Step(sa.data(), v);
    double l = SeverityToScore(lik.Update(sl.data(), i, v));
    double s = both.Step(sb.data(), i, v);
    ASSERT_DOUBLE_EQ(s, std::max(a, l)) << i;
    from_art += a > l && a > 0.3;
    from_lik += l > a && l > 0.3;
  }
  EXPECT_GT(from_art + from_lik, 0);
}

TEST(ArtimeLik, ScoreBatchFlagsAboveTheThreshold) {
  ArtimeLikDetector d(ArtimeParams{}, 0.4);
  StateStore store(d.state_bytes());
  ReadingBatch b;
  for (int i = 0; i < 3000; i++) b.Push(0, i, 10 + (i % 50) + (i == 2500 ? 500 : 0), false, ReadingBatch::kNoType);
  d.ScoreBatch(b, store);
  for (size_t k = 0; k < b.size(); k++) ASSERT_EQ(b.predicted[k] != 0, b.score[k] >= 0.4f) << k;
  EXPECT_GE(*std::max_element(b.score.begin() + 2495, b.score.begin() + 2520), 0.4f);
}

}  // namespace
}  // namespace iotpipe
