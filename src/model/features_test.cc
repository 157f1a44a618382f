// Tests of the seasonal scaler, the streaming feature channels and the calibration rule (hysteresis).
// (The feature-model path of the LSTM detector is tested in detect/lstm_test.cc.)
#include "model/features.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model/forward.h"
#include "model/model.h"
#include "model/test_models.h"
#include "model/train.h"

namespace iotpipe::ml {
namespace {

using testutil::kDayUs;
using testutil::SeasonalScaler;

TEST(SeasonalScaler, InterpolatesBetweenBinCentresAndWrapsAtMidnight) {
  Scaler s = SeasonalScaler(4);  // bins of 6 h, centres at 03:00, 09:00, 15:00, 21:00
  const int64_t h = 3600LL * 1000000;
  EXPECT_DOUBLE_EQ(s.Expected(0, 3 * h), 10);  // centre of bin 0
  EXPECT_DOUBLE_EQ(s.Expected(0, 9 * h), 11);
  EXPECT_DOUBLE_EQ(s.Expected(0, 6 * h), 10.5);  // halfway between bins 0 and 1
  EXPECT_DOUBLE_EQ(s.Expected(1, 15 * h), 22);
  // 00:00 is halfway between bin 3 (21:00, value 13) and bin 0 of the next day (03:00, value 10).
  EXPECT_DOUBLE_EQ(s.Expected(0, 0), 11.5);
  EXPECT_DOUBLE_EQ(s.Expected(0, 5 * kDayUs), 11.5);  // any day
  EXPECT_DOUBLE_EQ(s.Expected(0, 22 * h + 30 * 60 * 1000000LL), 13 - 3 * 0.25);
  // z = (x - expected) / residual sd
  EXPECT_DOUBLE_EQ(s.Z(1, 9 * h, 25), (25 - 21) / 4.0);
  // Not seasonal: the plain mean.
  Scaler p = s;
  p.tod_bins = 0;
  EXPECT_DOUBLE_EQ(p.Expected(1, 9 * h), 20);
}

TEST(SeasonalScaler, JsonRoundTripAndValidation) {
  Scaler s = SeasonalScaler(4);
  auto back = Scaler::FromJson(s.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->tod_bins, 4);
  EXPECT_EQ(back->profile, s.profile);
  EXPECT_EQ(back->phi, s.phi);
  nlohmann::json bad = s.ToJson();
  bad["profile"].erase(0);
  EXPECT_FALSE(Scaler::FromJson(bad).ok());
  bad = s.ToJson();
  bad["phi"][0] = 1.5;
  EXPECT_FALSE(Scaler::FromJson(bad).ok());
  // A scaler from before the seasonal profile still loads (plain mean/std).
  nlohmann::json old = {{"sensors", {"a"}}, {"mean", {1.0}}, {"std", {2.0}}};
  auto o = Scaler::FromJson(old);
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->seasonal());
  EXPECT_DOUBLE_EQ(o->Z(0, 123, 5), 2.0);
}

TEST(Features, EwmaSdMatchesSimulatedAr1) {
  for (double phi : {0.0, 0.5, 0.9}) {
    std::mt19937_64 g(3);
    std::normal_distribution<double> nd(0, 1);
    const double alpha = 1.0 / 50, innov = std::sqrt(1 - phi * phi);
    double x = 0, e = 0, s2 = 0;
    const int n = 400000, burn = 2000;
    for (int t = 0; t < n + burn; t++) {
      x = phi * x + innov * nd(g);
      e += alpha * (x - e);
      if (t >= burn) s2 += e * e;
    }
    const double sd = std::sqrt(s2 / n);
    EXPECT_NEAR(sd / EwmaSd(alpha, phi), 1.0, 0.08) << "phi " << phi;
  }
}

TEST(Features, SpikeFlagsOnePointAndDoesNotRaiseTheVarianceChannel) {
  FeatureConfig c;
  FeatureState s;
  InitFeatureState(s);
  std::mt19937_64 g(5);
  std::normal_distribution<double> nd(0, 1);
  for (int t = 0; t < 500; t++) UpdateFeatures(c, 0.0, s, nd(g), nd(g));
  const double var_before = s.var;
  FeatureChannels spike = UpdateFeatures(c, 0.0, s, 12.0, 99.0);
  EXPECT_GE(spike.point, 12.0);
  EXPECT_LE(s.var - var_before, c.alpha_var * c.winsor * c.winsor + 1e-12);  // winsorised
  // With phi > 0 the reading after a spike is predicted from the imputed value, not from the spike.
  FeatureState a;
  InitFeatureState(a);
  for (int t = 0; t < 50; t++) UpdateFeatures(c, 0.9, a, 0.0, t);
  UpdateFeatures(c, 0.9, a, 10.0, 100);
  FeatureChannels next = UpdateFeatures(c, 0.9, a, 0.0, 101);
  EXPECT_LT(next.point, 1.0);
}

TEST(Features, LevelShiftStuckAndNoiseRaiseTheirChannels) {
  FeatureConfig c;
  std::mt19937_64 g(9);
  std::normal_distribution<double> nd(0, 1);
  FeatureState s;
  InitFeatureState(s);
  const double phi = 0.5, innov = std::sqrt(1 - phi * phi);
  double x = 0, max_level = 0;
  for (int t = 0; t < 2000; t++) {
    x = phi * x + innov * nd(g);
    max_level = std::max(max_level, UpdateFeatures(c, phi, s, x, t).level);
  }
  EXPECT_LT(max_level, 4.5);  // normal data stays well under the floor threshold
  double level = 0;
  for (int t = 0; t < 300; t++) {  // +3 sd shift
    x = phi * x + innov * nd(g);
    level = UpdateFeatures(c, phi, s, x + 3, 5000 + t).level;
  }
  EXPECT_GT(level, 10.0);
  FeatureChannels ch;
  for (int t = 0; t < 20; t++) ch = UpdateFeatures(c, phi, s, 0.3, 42.0);  // stuck at 42
  EXPECT_EQ(ch.stuck, 19);
  ch = UpdateFeatures(c, phi, s, 0.1, 42.5);
  EXPECT_EQ(ch.stuck, 0);
  for (int t = 0; t < 200; t++) {  // noise x6
    x = phi * x + innov * nd(g);
    ch = UpdateFeatures(c, phi, s, 6 * x, 9000 + t);
  }
  EXPECT_GT(ch.var, 5.0);
}

TEST(Features, ContextualAlarmHoldsUntilRelease) {
  FeatureConfig c;  // thr_level 5, release 0.6
  uint8_t alarm = 0;
  FeatureChannels ch;
  ch.level = 4.0;  // 0.8: below the threshold, no alarm
  EXPECT_LT(CombineSeverity(c, ch, 0, 0, alarm), 1.0);
  EXPECT_EQ(alarm, 0);
  ch.level = 5.5;
  EXPECT_GE(CombineSeverity(c, ch, 0, 0, alarm), 1.0);
  ch.level = 3.5;  // 0.7 >= release: held, reported as 1
  EXPECT_DOUBLE_EQ(CombineSeverity(c, ch, 0, 0, alarm), 1.0);
  ch.level = 2.5;  // 0.5 < release: released
  EXPECT_LT(CombineSeverity(c, ch, 0, 0, alarm), 1.0);
  EXPECT_EQ(alarm, 0);
  // The point channel has no hold, and the autoencoder's errors count (already over their thresholds).
  ch = FeatureChannels{};
  ch.point = 2 * c.thr_point;
  EXPECT_DOUBLE_EQ(CombineSeverity(c, ch, 0, 0, alarm), 2.0);
  EXPECT_EQ(alarm, 0);
  ch.point = 0;
  EXPECT_DOUBLE_EQ(CombineSeverity(c, ch, 0, 1.5, alarm), 1.5);
  EXPECT_DOUBLE_EQ(CombineSeverity(c, ch, 1.2, 0, alarm), 1.2);
  EXPECT_EQ(alarm, 1);
}

TEST(Features, ConfigJsonRoundTripAndValidation) {
  FeatureConfig c;
  c.enabled = true;
  c.thr_level = 6.25;
  auto back = FeatureConfig::FromJson(c.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->enabled);
  EXPECT_DOUBLE_EQ(back->thr_level, 6.25);
  nlohmann::json bad = c.ToJson();
  bad["release"] = 0;
  EXPECT_FALSE(FeatureConfig::FromJson(bad).ok());
  bad = c.ToJson();
  bad.erase("thr_point");
  EXPECT_FALSE(FeatureConfig::FromJson(bad).ok());
}

// Rule 2: an outlier the point channel imputes enters neither long EWMA (one spike must not move the
// level channel, which the hysteresis would then hold); rule 1 (older models) keeps the old arithmetic.
TEST(Features, Rule2KeepsAnImputedOutlierOutOfLevelAndVar) {
  for (int rule : {1, 2}) {
    FeatureConfig c;
    c.rule = rule;
    FeatureState s;
    InitFeatureState(s);
    std::mt19937_64 g(5);
    std::normal_distribution<double> nd(0, 1);
    for (int t = 0; t < 500; t++) UpdateFeatures(c, 0.0, s, nd(g), t);
    const FeatureState before = s;
    FeatureChannels spike = UpdateFeatures(c, 0.0, s, 15.0, 999.0);
    EXPECT_GE(spike.point / c.thr_point, 1.0);
    if (rule == 2) {
      EXPECT_TRUE(WasImputed(c, s));
      EXPECT_EQ(s.level, before.level);
      EXPECT_EQ(s.var, before.var);
      EXPECT_DOUBLE_EQ(s.last_z, 0.0);  // phi 0: the imputed residual is the prediction 0
    } else {
      EXPECT_FALSE(WasImputed(c, s));
      EXPECT_NEAR(s.level - before.level, c.alpha_level * (15.0 - before.level), 1e-12);
      EXPECT_GT(s.var, before.var);
    }
  }
  // A level shift on an autocorrelated sensor (phi 0.8) is imputed for max_impute readings, then the
  // prediction follows it and it enters the level as before. (With phi 0 every shifted reading stays
  // an outlier of the point channel, which then flags it, and only 1 in max_impute + 1 enters the level.)
  FeatureConfig c;
  FeatureState s;
  InitFeatureState(s);
  for (int t = 0; t < 100; t++) UpdateFeatures(c, 0.8, s, 0.0, t);
  int imputed = 0;
  double level = 0;
  for (int t = 0; t < 300; t++) {
    level = UpdateFeatures(c, 0.8, s, 8.0, 1000 + t).level;
    imputed += WasImputed(c, s);
  }
  EXPECT_EQ(imputed, c.max_impute);
  EXPECT_GT(level / c.thr_level, 1.0);
}

TEST(Features, RuleVersionInJson) {
  FeatureConfig c;
  c.enabled = true;
  EXPECT_EQ(c.rule, 2);
  auto back = FeatureConfig::FromJson(c.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->rule, 2);
  nlohmann::json old = c.ToJson();
  old.erase("rule");  // a model from before rule 2 is scored as before
  auto o = FeatureConfig::FromJson(old);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->rule, 1);
  old["rule"] = 3;
  auto f = FeatureConfig::FromJson(old);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("unknown rule 3"), std::string::npos);
}

}  // namespace
}  // namespace iotpipe::ml
