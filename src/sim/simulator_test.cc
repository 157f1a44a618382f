#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "core/interner.h"

namespace iotpipe {
namespace {

SimConfig Basic(uint32_t n, uint64_t seed = 7) {
  SimConfig c;
  c.sensors = n;
  c.seed = seed;
  c.start_us = 1732406400LL * 1000000;
  return c;
}

// The encoder's fast number writer gives exactly std::to_chars's text: for millisecond values
// (its fast path) of every magnitude and sign, and for everything else (its fallback).
TEST(Simulator, ToCharsMilliWritesWhatToCharsWrites) {
  std::mt19937_64 rng(3);
  auto same = [](double v) {
    char a[64], b[64];
    char* ea = ToCharsMilli(a, a + sizeof a, v);
    char* eb = std::to_chars(b, b + sizeof b, v).ptr;
    return std::string(a, ea) == std::string(b, eb) ? std::string() : std::string(a, ea) + " vs " + std::string(b, eb);
  };
  for (int i = 0; i < 300000; i++) {
    const int64_t scale = static_cast<int64_t>(std::pow(10.0, static_cast<double>(rng() % 16)));
    int64_t m = static_cast<int64_t>(rng() % static_cast<uint64_t>(scale)) * (rng() % 2 ? 1 : -1);
    const double v = static_cast<double>(m) / 1000;
    ASSERT_EQ(same(v), "") << m;
    const double ts = static_cast<double>(1732406400000000 + static_cast<int64_t>(rng() % 100000000) * 1000) / 1e6;
    ASSERT_EQ(same(ts), "");
    ASSERT_EQ(same(std::round(25 + 5 * std::sin(static_cast<double>(i)) * 1000) / 1000), "");
    double r;
    const uint64_t bits = rng();
    std::memcpy(&r, &bits, sizeof r);
    if (std::isfinite(r)) {
      ASSERT_EQ(same(r), "");
    }
  }
  for (double v : {0.0, -0.0, 0.001, -0.001, 0.01, 0.1, 1.0, 1000.0, 1700000000.0, 1700000000.5, 999999999999.999, 1e12,
                   1e15, 123.4565, 0.1 + 0.2, 25.100, 1e-300, 1e300})
    EXPECT_EQ(same(v), "") << v;
}

TEST(Simulator, BasicProfileIsNormal25And5WithRareSpikes) {
  FleetSimulator sim(Basic(100));
  double sum = 0, sum2 = 0;
  int64_t n = 0, anomalies = 0;
  for (int i = 0; i < 500000; i++) {
    SimReading r = sim.Next();
    if (r.kind != AnomalyKind::kNone) {
      anomalies++;
      EXPECT_EQ(r.kind, AnomalyKind::kSpike);
      EXPECT_GE(r.value, 50.0);
      EXPECT_LE(r.value, 100.0);
      continue;
    }
    sum += r.value;
    sum2 += r.value * r.value;
    n++;
  }
  double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
  EXPECT_NEAR(mean, 25.0, 0.05);
  EXPECT_NEAR(sd, 5.0, 0.05);
  // p = 0.001 over 500k readings: 500 expected, sd ~22.
  EXPECT_GT(anomalies, 400);
  EXPECT_LT(anomalies, 600);
}

TEST(Simulator, EachSensorReadsAboutOncePerSecondInTimeOrder) {
  FleetSimulator sim(Basic(50));
  std::map<uint32_t, int64_t> last;
  int64_t prev_ts = 0;
  for (int i = 0; i < 5000; i++) {
    SimReading r = sim.Next();
    if (last.count(r.sensor)) {
      int64_t gap = r.ts_us - last[r.sensor];
      EXPECT_GT(gap, 850000);
      EXPECT_LT(gap, 1150000);
    }
    last[r.sensor] = r.ts_us;
    EXPECT_GT(r.ts_us, prev_ts - 200000);  // jitter only
    prev_ts = r.ts_us;
  }
}

TEST(Simulator, SameSeedSameStreamDifferentSeedDifferent) {
  FleetSimulator a(Basic(20, 1)), b(Basic(20, 1)), c(Basic(20, 2));
  bool differs = false;
  for (int i = 0; i < 10000; i++) {
    SimReading x = a.Next(), y = b.Next(), z = c.Next();
    ASSERT_EQ(x.ts_us, y.ts_us);
    ASSERT_EQ(x.value, y.value);
    ASSERT_EQ(x.kind, y.kind);
    differs |= x.value != z.value;
  }
  EXPECT_TRUE(differs);
}

TEST(Simulator, RealisticProfileLabelsEveryEpisodeType) {
  SimConfig c = Basic(200);
  c.profile = Profile::kRealistic;
  c.anomaly_rate = 2.0;  // episodes per sensor-hour, to see all types quickly
  FleetSimulator sim(c);
  std::map<AnomalyKind, int64_t> counts;
  std::map<uint32_t, double> stuck_value;
  for (int i = 0; i < 200 * 3600; i++) {
    SimReading r = sim.Next();
    counts[r.kind]++;
    if (r.kind == AnomalyKind::kStuck) {
      if (stuck_value.count(r.sensor)) {
        EXPECT_EQ(stuck_value[r.sensor], r.value);
      }
      stuck_value[r.sensor] = r.value;
    } else {
      stuck_value.erase(r.sensor);
    }
  }
  for (int k = 1; k < kNumAnomalyKinds; k++)
    EXPECT_GT(counts[static_cast<AnomalyKind>(k)], 0) << AnomalyKindName(static_cast<AnomalyKind>(k));
  EXPECT_GT(counts[AnomalyKind::kNone], counts[AnomalyKind::kDrift]);
}

}  // namespace
}  // namespace iotpipe
