// Tests of the LSTM detector (detect/lstm.h): its window state (plain bytes, checkpoint/restore),
// scoring split over inference threads, and the feature-model path (batch invariance, rule 2).
#include "detect/lstm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/interner.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/test_models.h"
#include "model/train.h"

namespace iotpipe::ml {
namespace {

using testutil::kDayUs;
using testutil::SeasonalScaler;
using testutil::SmallModel;
using testutil::Tmp;

// Feeds `steps` readings of sensors 0..2 to a detector; returns the scores.
std::vector<float> Feed(const Detector& det, StateStore& st, int from, int to) {
  ReadingBatch b;
  for (int i = from; i < to; i++)
    for (uint32_t s = 0; s < 3; s++)
      b.Push(s, i * 1000000LL, 10.0 * s + std::sin(i * 0.2) * (1 + s), false, ReadingBatch::kNoType);
  det.ScoreBatch(b, st);
  return b.score;
}

TEST(MlDetector, WindowStateIsPlainBytesAndSurvivesCheckpoint) {
  Tmp d("det");
  ASSERT_TRUE(SmallModel("v1").Save(d.str()).ok());
  auto det = LstmDetector::Load(d.str() + "/v1", LstmMode::kAuto);
  ASSERT_TRUE(det.ok()) << det.status().message();
  Interner names(16), models(16);
  for (int i = 0; i < 3; i++) names.Intern("sensor_" + std::to_string(i));
  (*det)->Bind(&names, &models);
  StateStore a((*det)->state_bytes());
  auto full = Feed(**det, a, 0, 40);
  // Same stream, but the state is copied out as bytes after 20 steps and restored into a new store.
  StateStore b((*det)->state_bytes());
  Feed(**det, b, 0, 20);
  StateStore c((*det)->state_bytes());
  c.bytes() = b.bytes();
  c.initialized() = b.initialized();
  auto second = Feed(**det, c, 20, 40);
  ASSERT_EQ(second.size(), 60u);
  for (size_t i = 0; i < second.size(); i++) EXPECT_FLOAT_EQ(second[i], full[60 + i]) << i;
  // Rows with a full window are scored by the LSTM (model id of lstm-ae-v1), earlier ones by the baseline.
  ReadingBatch one;
  one.Push(0, 41000000, 0.5, false, ReadingBatch::kNoType);
  (*det)->ScoreBatch(one, a);
  EXPECT_EQ(models.Name(one.model[0]), "lstm-ae-v1");
}

// Scoring split over 2 inference threads gives exactly the scores of 1 thread (per-sensor order kept).
TEST(MlDetector, SameScoresWithOneAndTwoThreads) {
  Tmp d("threads");
  ASSERT_TRUE(SmallModel("v1", 300, 3).Save(d.str()).ok());
  std::vector<std::vector<float>> scores;
  for (int threads : {1, 2}) {
    auto det = LstmDetector::Load(d.str() + "/v1", LstmMode::kAuto, threads);
    ASSERT_TRUE(det.ok()) << det.status().message();
    Interner names(512), models(16);
    for (int i = 0; i < 300; i++) names.Intern("sensor_" + std::to_string(i));
    (*det)->Bind(&names, &models);
    StateStore st((*det)->state_bytes());
    std::vector<float> all;
    for (int round = 0; round < 3; round++) {
      ReadingBatch b;
      for (int i = round * 10; i < round * 10 + 10; i++)
        for (uint32_t s = 0; s < 300; s++)
          b.Push(s, i * 1000000LL, 10.0 * (s % 3) + std::sin(i * 0.3 + s) * (1 + s % 3), false, ReadingBatch::kNoType);
      (*det)->ScoreBatch(b, st);
      all.insert(all.end(), b.score.begin(), b.score.end());
    }
    scores.push_back(all);
  }
  ASSERT_EQ(scores[0].size(), 9000u);
  size_t lstm_scored = 0;
  for (size_t i = 0; i < scores[0].size(); i++) {
    ASSERT_EQ(scores[0][i], scores[1][i]) << i;
    lstm_scored += i >= 7 * 300 && scores[0][i] > 0;
  }
  EXPECT_GT(lstm_scored, 1000u);
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
    for (size_t i = pos; i < end; i++)
      part.Push(all.sensor[i], all.ts_us[i], all.value[i], false, ReadingBatch::kNoType);
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
    if (stuck_rows[i])
      stuck_flagged += one.predicted[i];
    else
      normal_flagged += one.predicted[i];
  }
  EXPECT_GE(stuck_flagged, 250);  // all but the first thr_stuck readings of the stuck stretch
  EXPECT_LT(normal_flagged, 20);
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
