// Tests of the seasonal scaler, the streaming feature channels, the calibration rule (hysteresis)
// and the feature-model path of the LSTM detector.
#include "ml/features.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/interner.h"
#include "detect/lstm.h"
#include "ml/forward.h"
#include "ml/model.h"
#include "ml/train.h"

namespace iotpipe::ml {
namespace {

constexpr int64_t kDayUs = 86400LL * 1000000;

Scaler SeasonalScaler(int bins = 4) {
  Scaler s;
  s.names = {"sensor_0", "sensor_1"};
  s.mean = {10, 20};
  s.std = {2, 4};
  s.tod_bins = bins;
  for (int i = 0; i < 2; i++)
    for (int b = 0; b < bins; b++) s.profile.push_back(static_cast<float>(10 * (i + 1) + b));
  s.phi = {0.5, 0.8};
  s.Reindex();
  return s;
}

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

// A feature model scores the same stream identically however it is cut into batches (the batched
// inference and the per-sensor hysteresis stay in order), flags a stuck stretch, and uses a
// separate state layout from a plain model.
TEST(Features, DetectorIsBatchInvariantAndFlagsStuck) {
  auto m = std::make_shared<Model>();
  m->version = "vf";
  m->weights = TorchInitWeights(8, 16, 2);
  m->scaler = SeasonalScaler(4);
  std::vector<std::vector<float>> e(2, std::vector<float>{0.5f, 1.0f, 2.0f});
  m->thresholds = Calibrate(e, e, 1.0, 1000.0, 1);  // AE errors far below threshold: features decide
  m->thresholds.features.enabled = true;
  LstmDetector det(m, LstmMode::kLstm);
  EXPECT_EQ(det.name(), "lstm-f-w8");
  Interner names(8), models(8);
  names.Intern("sensor_0");
  names.Intern("sensor_1");
  det.Bind(&names, &models);
  std::mt19937_64 g(4);
  std::normal_distribution<double> nd(0, 1);
  ReadingBatch all;
  const int64_t t0 = 1000LL * kDayUs;
  std::vector<bool> stuck_rows;
  double ar[2] = {0, 0};  // residuals follow the AR(1) the scaler describes (phi 0.5 and 0.8)
  for (int t = 0; t < 3000; t++) {
    for (uint32_t sid = 0; sid < 2; sid++) {
      const int64_t ts = t0 + t * 1000000LL;
      bool stuck = sid == 1 && t >= 2000 && t < 2300;
      const double phi = m->scaler.phi[sid];
      ar[sid] = phi * ar[sid] + std::sqrt(1 - phi * phi) * nd(g);
      double v = stuck ? 23.456 : m->scaler.Expected(sid, ts) + m->scaler.std[sid] * ar[sid];
      all.Push(sid, ts, v, stuck, ReadingBatch::kNoType);
      stuck_rows.push_back(stuck);
    }
  }
  StateStore s1(det.state_bytes());
  ReadingBatch one = all;
  det.ScoreBatch(one, s1);
  StateStore s2(det.state_bytes());
  ReadingBatch pieces = all;
  size_t pos = 0, step = 1;
  while (pos < all.size()) {  // batches of 1, 2, 3, ... rows
    ReadingBatch part;
    size_t end = std::min(all.size(), pos + step++);
    for (size_t i = pos; i < end; i++) part.Push(all.sensor[i], all.ts_us[i], all.value[i], false, ReadingBatch::kNoType);
    det.ScoreBatch(part, s2);
    for (size_t i = pos; i < end; i++) {
      pieces.score[i] = part.score[i - pos];
      pieces.predicted[i] = part.predicted[i - pos];
    }
    pos = end;
  }
  int stuck_flagged = 0, normal_flagged = 0;
  for (size_t i = 0; i < all.size(); i++) {
    ASSERT_EQ(one.score[i], pieces.score[i]) << "row " << i;
    ASSERT_EQ(one.predicted[i], pieces.predicted[i]) << "row " << i;
    if (stuck_rows[i]) stuck_flagged += one.predicted[i];
    else normal_flagged += one.predicted[i];
  }
  EXPECT_GE(stuck_flagged, 250);  // all but the first thr_stuck readings of the stuck stretch
  EXPECT_LT(normal_flagged, 20);
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

// The basic-profile failure: one spike inside the window kept the autoencoder's window error over its
// threshold for the next `window` readings (and the hysteresis held it). Under rule 2 the ring holds
// the imputed value, so only the spike itself is flagged; rule 1 still shows the smear.
TEST(Features, Rule2SpikeDoesNotSmearTheWindowError) {
  constexpr int kW = 8;
  auto make = [&](int rule) {
    auto m = std::make_shared<Model>();
    m->version = "vr" + std::to_string(rule);
    m->weights = TorchInitWeights(kW, 16, 3);
    m->scaler = SeasonalScaler(4);
    m->scaler.phi = {0.0, 0.0};
    return m;
  };
  // Stream of sensor_0: iid residuals, one spike of 15 sd at t = 400.
  std::mt19937_64 g(8);
  std::normal_distribution<double> nd(0, 1);
  const int64_t t0 = 1000LL * kDayUs;
  auto base = make(2);
  const Scaler& sc = base->scaler;
  ReadingBatch all;
  std::vector<float> z;
  for (int t = 0; t < 600; t++) {
    const int64_t ts = t0 + t * 1000000LL;
    const double r = t == 400 ? 15.0 : std::clamp(nd(g), -3.5, 3.5);
    z.push_back(static_cast<float>(r));
    all.Push(0, ts, sc.Expected(0, ts) + sc.std[0] * r, t == 400, ReadingBatch::kNoType);
  }
  // Autoencoder thresholds: 1.5 x the largest error over the normal windows of this stream.
  LstmAeForward fwd(base->weights);
  std::vector<float> X;
  for (int t = kW - 1; t < 400; t++) X.insert(X.end(), z.begin() + (t - kW + 1), z.begin() + t + 1);
  const size_t nw = X.size() / kW;
  std::vector<float> ew(nw), el(nw);
  fwd.Errors(X.data(), nw, ew.data(), el.data());
  const float mw = *std::max_element(ew.begin(), ew.end()), ml = *std::max_element(el.begin(), el.end());
  int after[3] = {0, 0, 0};
  for (int rule : {1, 2}) {
    auto m = make(rule);
    m->thresholds.win = {1.5f * mw, 1.5f * mw};
    m->thresholds.last = {1.5f * ml, 1.5f * ml};
    m->thresholds.features.enabled = true;
    m->thresholds.features.rule = rule;
    LstmDetector det(m, LstmMode::kLstm);
    Interner names(8), models(8);
    names.Intern("sensor_0");
    det.Bind(&names, &models);
    StateStore st(det.state_bytes());
    ReadingBatch b = all;
    det.ScoreBatch(b, st);
    EXPECT_TRUE(b.predicted[400]) << "rule " << rule;
    for (int t = 401; t < 600; t++) after[rule] += b.predicted[static_cast<size_t>(t)];
    int before = 0;
    for (int t = 0; t < 400; t++) before += b.predicted[static_cast<size_t>(t)];
    EXPECT_EQ(before, 0) << "rule " << rule;
  }
  EXPECT_GE(after[1], kW / 2);  // the old smear (window error and its hysteresis)
  EXPECT_EQ(after[2], 0);
}

}  // namespace
}  // namespace iotpipe::ml
