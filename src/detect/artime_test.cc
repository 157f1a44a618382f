#include "detect/artime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "detect/detector.h"

namespace iotpipe {
namespace {

std::vector<double> ScoreAll(const ArtimeDetector& d, const std::vector<double>& xs) {
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  std::vector<double> out;
  for (double x : xs) out.push_back(d.Step(st.data(), x));
  return out;
}

// A daily-like pattern: a sine with a flat night, period 96, plus small noise.
std::vector<double> Pattern(int n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 0.3);
  std::vector<double> xs;
  for (int i = 0; i < n; i++) {
    double ph = std::fmod(i, 96.0) / 96.0;
    double v = ph < 0.5 ? 20 + 30 * std::sin(ph * 2 * M_PI) : 20;
    xs.push_back(v + noise(rng));
  }
  return xs;
}

ArtimeParams Fixed(double lo, double hi) {
  ArtimeParams p;
  p.fixed_range = true;
  p.lo = lo;
  p.hi = hi;
  return p;
}

TEST(Artime, DerivedSizesFollowTheProbation) {
  // ARTime's arithmetic: sstep = probation / (window * 13), trend window = probation / sstep.
  ArtimeParams p;
  p.probation = 600;
  ArtimeDetector a(p);
  EXPECT_EQ(a.sstep(), 5);
  EXPECT_EQ(a.trend_window(), 120);
  p.probation = 750;
  ArtimeDetector b(p);
  EXPECT_EQ(b.sstep(), 7);
  EXPECT_EQ(b.trend_window(), 107);
  p.probation = 281;  // odd: made even (280), sstep 2
  ArtimeDetector c(p);
  EXPECT_EQ(c.sstep(), 2);
  EXPECT_EQ(c.trend_window(), 140);
}

TEST(Artime, SilentDuringProbationAndOnALearntPattern) {
  ArtimeDetector d(Fixed(-20, 60));
  auto xs = Pattern(4000);
  auto sc = ScoreAll(d, xs);
  for (int i = 0; i < 600; i++) ASSERT_EQ(sc[i], 0.0) << i;
  // After a settling-in period the learnt pattern raises (almost) nothing.
  int alarms = 0;
  for (size_t i = 2000; i < sc.size(); i++) alarms += sc[i] > 0.3;
  EXPECT_LE(alarms, 2);
}

TEST(Artime, FlagsALevelShiftAndASpike) {
  ArtimeDetector d(Fixed(-20, 100));
  auto xs = Pattern(4000);
  for (int i = 2500; i < 2600; i++) xs[i] += 35;  // a shifted stretch
  xs[3500] = 95;                                  // a spike
  auto sc = ScoreAll(d, xs);
  double shift = *std::max_element(sc.begin() + 2500, sc.begin() + 2620);
  double spike = *std::max_element(sc.begin() + 3495, sc.begin() + 3520);
  double before = *std::max_element(sc.begin() + 2000, sc.begin() + 2490);
  EXPECT_GT(shift, 0.3);
  EXPECT_GT(spike, 0.3);
  EXPECT_LT(before, shift);
  for (double s : sc) {
    ASSERT_GE(s, 0.0);
    ASSERT_LE(s, 1.0);
  }
}

TEST(Artime, OnlineRangeWorksWithoutAHint) {
  ArtimeParams p;
  p.range_margin = 0.1;
  ArtimeDetector d(p);
  auto xs = Pattern(4000);
  xs[3000] = 200;  // far beyond the probation's range: clamped to the top level, still flagged
  auto sc = ScoreAll(d, xs);
  EXPECT_GT(*std::max_element(sc.begin() + 2995, sc.begin() + 3020), 0.3);
}

TEST(Artime, MemoryIsBoundedOnNoise) {
  ArtimeParams p;
  p.max_categories = 64;
  ArtimeDetector d(p);
  std::vector<std::byte> st(d.state_bytes());
  d.InitState(st.data());
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 100);
  for (int i = 0; i < 20000; i++) {
    double s = d.Step(st.data(), u(rng));
    ASSERT_TRUE(std::isfinite(s));
  }
  EXPECT_EQ(d.categories(st.data()), 64u);
  EXPECT_EQ(d.state_bytes(), ArtimeDetector(p).state_bytes());
}

TEST(Artime, NonFiniteValuesAreIgnored) {
  ArtimeDetector d(Fixed(-20, 60));
  auto xs = Pattern(2000);
  auto clean = ScoreAll(d, xs);
  std::vector<double> dirty;
  for (size_t i = 0; i < xs.size(); i++) {
    dirty.push_back(xs[i]);
    if (i % 100 == 50) dirty.push_back(std::nan(""));
  }
  auto sc = ScoreAll(d, dirty);
  std::vector<double> kept;
  for (size_t i = 0; i < dirty.size(); i++)
    if (std::isfinite(dirty[i])) kept.push_back(sc[i]);
  EXPECT_EQ(kept, clean);
}

TEST(Artime, ScoreBatchMatchesStepPerSensor) {
  // Two sensors interleaved through the pipeline's interface score as each does alone.
  ArtimeDetector d;
  auto a = Pattern(3000, 1), b = Pattern(3000, 2);
  for (int i = 0; i < 3000; i++) b[i] = 100 - b[i];
  auto sa = ScoreAll(d, a), sb = ScoreAll(d, b);
  StateStore store(d.state_bytes());
  ReadingBatch batch;
  std::vector<float> got_a, got_b;
  for (int i = 0; i < 3000; i += 500) {
    batch.Clear();
    for (int k = i; k < i + 500; k++) {
      batch.Push(0, k, a[k], false, ReadingBatch::kNoType);
      batch.Push(1, k, b[k], false, ReadingBatch::kNoType);
    }
    d.ScoreBatch(batch, store);
    for (size_t k = 0; k < batch.size(); k++) (batch.sensor[k] == 0 ? got_a : got_b).push_back(batch.score[k]);
  }
  ASSERT_EQ(got_a.size(), sa.size());
  for (size_t k = 0; k < sa.size(); k++) {
    ASSERT_FLOAT_EQ(got_a[k], static_cast<float>(sa[k]));
    ASSERT_FLOAT_EQ(got_b[k], static_cast<float>(sb[k]));
  }
}

}  // namespace
}  // namespace iotpipe
