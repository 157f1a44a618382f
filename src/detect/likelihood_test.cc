#include "detect/likelihood.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sim/rng.h"

namespace iotpipe {
namespace {

double Score(const LikelihoodDetector& d, std::vector<std::byte>& st, int64_t i, double x) {
  return SeverityToScore(d.Update(st.data(), i, x));
}

TEST(Likelihood, StateIsBoundedAndNamesHaveNoUnderscore) {
  LikelihoodDetector d;
  EXPECT_EQ(d.state_bytes(), sizeof(LikelihoodDetector::State));
  EXPECT_LE(d.state_bytes(), 4096u);
  EXPECT_EQ(d.name().find('_'), std::string_view::npos);
}

TEST(Likelihood, WarmupOnlyLearns) {
  LikelihoodDetector d;
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  Rng rng(3);
  EXPECT_EQ(Score(d, st, 0, 1000.0), 0.0);
  for (int i = 1; i < d.params().warmup; i++) EXPECT_EQ(Score(d, st, i, rng.Normal(25, 5)), 0.0) << i;
}

TEST(Likelihood, SpikeAfterNoiseScoresHighThenIsSuppressed) {
  LikelihoodDetector d;
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  Rng rng(7);
  int alarms = 0;  // Gaussian tails do extend the range seen now and then: few, not none
  for (int i = 0; i < 3000; i++) {
    double s = Score(d, st, i, rng.Normal(25, 5));
    if (i > 1000 && s >= 0.5) alarms++;
  }
  EXPECT_LE(alarms, 20);
  const double spike = Score(d, st, 3000, 200.0);  // far beyond the range seen: spatial novelty
  EXPECT_GT(spike, 0.9);
  // The next few points of the same episode stay below the spike's score (one detection per episode).
  for (int i = 1; i <= 20; i++) EXPECT_LT(Score(d, st, 3000 + i, rng.Normal(25, 5)), spike) << i;
}

TEST(Likelihood, HabitualPatternStopsScoringButANewPatternStandsOut) {
  // A noisy periodic signal: after learning, its scores are low; a run of a new shape within the usual
  // range (a flat segment in the middle of the cycle) scores higher than anything seen on the learnt pattern.
  LikelihoodDetector d;
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  Rng rng(11);
  auto wave = [&](int i) { return 50 + 40 * std::sin(2 * M_PI * i / 48.0) + rng.Normal(0, 1); };
  double max_learnt = 0;
  int i = 0;
  for (; i < 4000; i++) {
    double s = Score(d, st, i, wave(i));
    if (i > 2000) max_learnt = std::max(max_learnt, s);
  }
  double max_new = 0;
  for (int k = 0; k < 48; k++, i++) max_new = std::max(max_new, Score(d, st, i, 50.0 + rng.Normal(0, 1)));
  EXPECT_GT(max_new, max_learnt);
}

TEST(Likelihood, NonFiniteInputIsIgnored) {
  LikelihoodDetector d;
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  for (int i = 0; i < 500; i++) d.Update(st.data(), i, 10.0 + (i % 7));
  EXPECT_EQ(d.Update(st.data(), 500, std::nan("")), 0.0);
  EXPECT_EQ(d.Update(st.data(), 501, INFINITY), 0.0);
  EXPECT_TRUE(std::isfinite(d.Update(st.data(), 502, 12.0)));
}

}  // namespace
}  // namespace iotpipe
