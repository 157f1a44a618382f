#include "detect/baseline.h"

#include <gtest/gtest.h>

#include "sim/rng.h"

namespace iotpipe {
namespace {

TEST(Baseline, StateIsSmall) {
  BaselineDetector d;
  EXPECT_LE(d.state_bytes(), 256u);
}

TEST(Baseline, WarmupNeverFlagsThenSpikeIsFlagged) {
  BaselineDetector d;
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  Rng rng(1);
  // An extreme value during warm-up is learned from, never flagged.
  EXPECT_LT(d.Update(st.data(), 0, 1000.0), 1.0);
  for (int i = 1; i < 30; i++) EXPECT_LT(d.Update(st.data(), i, rng.Normal(25, 5)), 1.0) << i;
  for (int i = 0; i < 2000; i++) d.Update(st.data(), i, rng.Normal(25, 5));
  EXPECT_GE(d.Update(st.data(), 3000, 80.0), 1.0);
  EXPECT_LT(d.Update(st.data(), 3001, 26.0), 1.0) << "one spike must not poison the estimate";
}

TEST(Baseline, FewFalseAlarmsOnGaussianNoise) {
  BaselineDetector d;
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  Rng rng(2);
  int flagged = 0;
  for (int i = 0; i < 200000; i++) flagged += d.Update(st.data(), i, rng.Normal(25, 5)) >= 1.0;
  EXPECT_LT(flagged, 20);  // |z| > 4.5 has p ~ 7e-6
}

TEST(Baseline, StuckAndNoiseBurstAreFlagged) {
  BaselineDetector d;
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  Rng rng(3);
  for (int i = 0; i < 3000; i++) d.Update(st.data(), i, std::round(rng.Normal(20, 1) * 1000) / 1000);
  bool stuck = false;
  for (int i = 0; i < 40; i++) stuck |= d.Update(st.data(), i, 20.123) >= 1.0;
  EXPECT_TRUE(stuck);
  for (int i = 0; i < 500; i++) d.Update(st.data(), i, rng.Normal(20, 1));
  int burst = 0;
  // The simulator's bursts multiply the noise by 4 to 8.
  for (int i = 0; i < 100; i++) burst += d.Update(st.data(), i, rng.Normal(20, 5)) >= 1.0;
  EXPECT_GT(burst, 50);
}

TEST(Baseline, SensorsDoNotShareState) {
  BaselineDetector d;
  Rng rng(4);
  // Interleaved sensors in one batch must score exactly as each sensor alone.
  ReadingBatch both, a_only, b_only;
  for (int i = 0; i < 3000; i++) {
    double va = rng.Normal(10, 1), vb = rng.Normal(100, 20);
    if (i == 2000) va = 30;
    both.Push(0, i, va, false, 0);
    both.Push(1, i, vb, false, 0);
    a_only.Push(0, i, va, false, 0);
    b_only.Push(0, i, vb, false, 0);
  }
  StateStore s1(d.state_bytes()), s2(d.state_bytes()), s3(d.state_bytes());
  d.ScoreBatch(both, s1);
  d.ScoreBatch(a_only, s2);
  d.ScoreBatch(b_only, s3);
  for (int i = 0; i < 3000; i++) {
    ASSERT_EQ(both.score[2 * i], a_only.score[i]) << i;
    ASSERT_EQ(both.score[2 * i + 1], b_only.score[i]) << i;
  }
  EXPECT_EQ(both.predicted[4000], 1);
  EXPECT_GE(both.score[4000], kScoreThreshold);
  for (float s : both.score) {
    EXPECT_GE(s, 0.f);
    EXPECT_LE(s, 1.f);
  }
}

}  // namespace
}  // namespace iotpipe
