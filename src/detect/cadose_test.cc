#include "detect/cadose.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "eval/datasets.h"
#include "eval/nab.h"

namespace iotpipe {
namespace {

TEST(CadOse, PythonTwoTupleHash) {
  // Values of Python 2.7's hash() on a 64-bit build.
  EXPECT_EQ(Py2TupleHash(nullptr, 0), 3527539);
  const uint32_t t[] = {1, 2, 3};
  EXPECT_EQ(Py2TupleHash(t, 3), 2528502973977326415LL);
}

std::vector<double> ScoreAll(const CadOseDetector& d, const std::vector<double>& xs, std::vector<std::byte>* st = nullptr) {
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
  xs.push_back(39.0);  // novel: scores high
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

// The port against the original's published per-file scores (numenta/NAB results/contextOSE/...), with NAB's
// inputs: the file's min/max as the range and probation/5 as the rest period. The nyc_taxi rows are ones where
// only Python 2's dict iteration order (not insertion order) gives the published values.
void ExpectPublished(const std::string& rel, const std::vector<std::pair<size_t, double>>& expected) {
  const std::string data = SharedDatasetsDir() + "/nab/data";
  auto s = nab::ReadSeries(data, rel);
  if (!s.ok()) GTEST_SKIP() << "no NAB data: " << s.status().message();
  CadOseParams p;
  p.fixed_range = true;
  p.lo = *std::min_element(s->values.begin(), s->values.end());
  p.hi = *std::max_element(s->values.begin(), s->values.end());
  p.rest_period = static_cast<int>(static_cast<double>(nab::ProbationLength(static_cast<int64_t>(s->values.size()))) / 5.0);
  CadOseDetector d(p);
  size_t last = 0;
  for (const auto& e : expected) last = std::max(last, e.first);
  std::vector<double> xs(s->values.begin(), s->values.begin() + static_cast<ptrdiff_t>(last + 1));
  auto sc = ScoreAll(d, xs);
  for (const auto& [row, want] : expected) EXPECT_NEAR(sc[row], want, 1e-11) << rel << " row " << row;
}

TEST(CadOse, ReproducesPublishedScores) {
  ExpectPublished("realKnownCause/ec2_request_latency_system_failure.csv",
                  {{123, 0.0}, {124, 0.186819172113}, {125, 0.217320261438}, {126, 0.184920634921},
                   {127, 0.109090909091}, {128, 0.147058823529}, {129, 0.109090909091}});
  ExpectPublished("realKnownCause/nyc_taxi.csv", {{2840, 0.201547856814}, {2841, 0.195422535211},
                                                  {2844, 0.183251684017}, {2891, 0.19649122807}});
}

}  // namespace
}  // namespace iotpipe
