#include "detect/cadose.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace iotpipe {
namespace {

TEST(CadOse, PythonTwoTupleHash) {
  // Values of Python 2.7's hash() on a 64-bit build.
  EXPECT_EQ(Py2TupleHash(nullptr, 0), 3527539);
  const uint32_t t[] = {1, 2, 3};
  EXPECT_EQ(Py2TupleHash(t, 3), 2528502973977326415LL);
}

std::vector<double> ScoreAll(const CadOseDetector& d, const std::vector<double>& xs,
                             std::vector<std::byte>* st = nullptr) {
  std::vector<std::byte> local(d.state_bytes());
  std::vector<std::byte>& s = st ? *st : local;
  if (!st) d.InitState(s.data());
  std::vector<double> out;
  for (double x : xs) out.push_back(d.Step(s.data(), x));
  return out;
}

std::vector<double> Periodic(int n, int period) {
  std::vector<double> xs;
  for (int i = 0; i < n; i++) xs.push_back(std::sin(2 * M_PI * i / period) * 10 + 20);
  return xs;
}

TEST(CadOse, LearnsAPatternAndFlagsANewOne) {
  CadOseParams p;
  p.fixed_range = true;
  p.lo = 0;
  p.hi = 40;
  p.rest_period = 20;
  CadOseDetector d(p);
  auto xs = Periodic(1500, 24);
  auto sc = ScoreAll(d, xs);
  for (double s : sc) {
    EXPECT_GE(s, 0.0);
    EXPECT_LE(s, 1.0);
  }
  // The first rest_period scores are 0 (the original's history starts at 1.0).
  for (int i = 0; i < 20; i++) EXPECT_EQ(sc[i], 0.0);
  // Once learnt, the pattern is mostly predicted: scores stay below the alert threshold.
  double late = 0;
  for (int i = 1300; i < 1500; i++) late = std::max(late, sc[i]);
  EXPECT_LT(late, 0.5);
  // A value never seen in this context (the top of the range during a trough) scores high.
  auto ys = xs;
  ys.resize(1500);
  ys.push_back(39.0);
  auto sc2 = ScoreAll(d, ys);
  EXPECT_GT(sc2.back(), 0.5);
  EXPECT_GT(sc2.back(), late);
}

TEST(CadOse, RestPeriodSuppressesScoresAfterAnAlert) {
  CadOseParams p;
  p.fixed_range = true;
  p.lo = 0;
  p.hi = 40;
  p.rest_period = 50;
  CadOseDetector d(p);
  auto xs = Periodic(1200, 24);
  xs.push_back(39.0);                                             // novel: scores high
  for (int i = 0; i < 40; i++) xs.push_back(i % 2 ? 1.0 : 39.0);  // more novelty within the rest period
  auto sc = ScoreAll(d, xs);
  ASSERT_GE(sc[1200], p.base_threshold);
  for (size_t i = 1201; i < sc.size(); i++) EXPECT_EQ(sc[i], 0.0) << i;
}

TEST(CadOse, StateIsPlainBytesAndBounded) {
  CadOseParams p;  // online range
  p.max_contexts = 64;
  p.max_left = 32;
  p.max_facts = 256;
  CadOseDetector d(p);
  std::vector<std::byte> a(d.state_bytes());
  d.InitState(a.data());
  std::vector<double> xs;
  uint64_t r = 12345;
  for (int i = 0; i < 3000; i++) {
    r = r * 6364136223846793005ULL + 1442695040888963407ULL;
    xs.push_back(static_cast<double>(r >> 40) / 1e3);
  }
  std::vector<double> first(xs.begin(), xs.begin() + 1000), rest(xs.begin() + 1000, xs.end());
  ScoreAll(d, first, &a);
  // A copy of the bytes (checkpoint, hot swap) continues exactly like the original.
  std::vector<std::byte> b = a;
  auto sa = ScoreAll(d, rest, &a);
  auto sb = ScoreAll(d, rest, &b);
  EXPECT_EQ(sa, sb);
  auto u = d.usage(a.data());
  EXPECT_TRUE(u.full);
  EXPECT_LE(u.contexts, 64u);
  EXPECT_LE(u.left, 32u);
  EXPECT_LE(u.facts, 256u);
  for (double s : sa) EXPECT_TRUE(s >= 0 && s <= 1);
}

TEST(CadOse, BadValuesScoreZeroWithoutTouchingTheState) {
  CadOseDetector d;
  std::vector<std::byte> a(d.state_bytes());
  d.InitState(a.data());
  EXPECT_EQ(d.Step(a.data(), std::nan("")), 0.0);
  EXPECT_EQ(d.Step(a.data(), INFINITY), 0.0);
  EXPECT_EQ(d.usage(a.data()).contexts, 0u);
}

}  // namespace
}  // namespace iotpipe
