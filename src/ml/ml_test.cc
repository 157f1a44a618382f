// Tests of the ML pieces: scaler/windowing, thresholds, the hand-written forward pass against
// LibTorch, the on-disk model and registry, drift statistics, training determinism, the LSTM
// detector's state (checkpoint/restore) and hot swap in the processor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "core/clock.h"
#include "core/duck.h"
#include "detect/lstm.h"
#include "ml/backfill.h"
#include "ml/forward.h"
#include "ml/model.h"
#include "ml/registry.h"
#include "ml/train.h"
#include "ml/watcher.h"
#include "pipeline/processor.h"

namespace iotpipe::ml {
namespace {

namespace fs = std::filesystem;

struct Tmp {
  fs::path p;
  explicit Tmp(const std::string& tag) {
    p = fs::temp_directory_path() / ("iotpipe_ml_" + tag + "_" + std::to_string(getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~Tmp() { fs::remove_all(p); }
  std::string str() const { return p.string(); }
};

std::vector<float> RandomWindows(size_t n, int T, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(n * static_cast<size_t>(T));
  for (auto& v : x) v = nd(g);
  return x;
}

// A small valid model (random weights) for sensors sensor_0..sensor_{S-1}.
Model SmallModel(const std::string& version, int S = 3, uint64_t seed = 1, int W = 8, int H = 16) {
  Model m;
  m.version = version;
  m.weights = TorchInitWeights(W, H, seed);
  for (int i = 0; i < S; i++) {
    m.scaler.names.push_back("sensor_" + std::to_string(i));
    m.scaler.mean.push_back(10.0 * i);
    m.scaler.std.push_back(1.0 + i);
  }
  m.scaler.Reindex();
  std::vector<std::vector<float>> e(static_cast<size_t>(S), std::vector<float>{0.1f, 0.2f, 0.3f});
  m.thresholds = Calibrate(e, e, 0.5, 1.0, 1);
  m.config = {{"window", W}, {"hidden", H}};
  m.card = {{"version", version}, {"created", "2024-11-24T00:00:00Z"}};
  m.val_errors = {0.1f, 0.2f, 0.3f};
  m.val_last = {0.1f, 0.2f, 0.3f};
  return m;
}

TEST(MlScaler, WindowsSlideOverConsecutiveValues) {
  std::vector<float> v = {0, 1, 2, 3, 4, 5, 6};
  WindowSet ws;
  MakeWindows(v, 3, 2, 7, ws);
  ASSERT_EQ(ws.size(), 3u);  // starts 0, 2, 4
  EXPECT_EQ(ws.x, (std::vector<float>{0, 1, 2, 2, 3, 4, 4, 5, 6}));
  EXPECT_EQ(ws.sensor, (std::vector<int32_t>{7, 7, 7}));
  WindowSet none;
  MakeWindows({1, 2}, 3, 1, 0, none);
  EXPECT_EQ(none.size(), 0u);
}

TEST(MlScaler, StdIsFlooredAndJsonRoundTrips) {
  EXPECT_DOUBLE_EQ(Scaler::FloorStd(0.0, 5.0), 1e-3);
  EXPECT_DOUBLE_EQ(Scaler::FloorStd(NAN, 0.0), 1e-3);
  EXPECT_DOUBLE_EQ(Scaler::FloorStd(2.5, 5.0), 2.5);
  Model m = SmallModel("v1");
  auto back = Scaler::FromJson(m.scaler.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->Find("sensor_2"), 2);
  EXPECT_EQ(back->Find("nope"), -1);
  EXPECT_DOUBLE_EQ(back->std[1], 2.0);
  nlohmann::json bad = m.scaler.ToJson();
  bad["std"][0] = 0.0;
  EXPECT_FALSE(Scaler::FromJson(bad).ok());
}

TEST(MlThresholds, QuantileAndCalibrationArithmetic) {
  std::vector<float> v = {5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(Quantile(v, 0.5), 3.0);
  v = {5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(Quantile(v, 0.9), 4.6);  // pos 3.6 between 4 and 5
  v = {5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(Quantile(v, 1.0), 5.0);
  // Sensor 0 has enough windows (own threshold), sensor 1 falls back to the global one.
  std::vector<std::vector<float>> w = {{1, 2, 3, 4, 5}, {100}};
  std::vector<std::vector<float>> l = {{2, 4, 6, 8, 10}, {7}};
  Thresholds t = Calibrate(w, l, 0.5, 2.0, 3);
  EXPECT_FLOAT_EQ(t.win[0], 6.0f);    // 2 * median(1..5)
  EXPECT_FLOAT_EQ(t.last[0], 12.0f);  // 2 * median(2..10)
  EXPECT_FLOAT_EQ(t.global_win, 7.0f);   // 2 * median(1,2,3,4,5,100) = 2 * 3.5
  EXPECT_FLOAT_EQ(t.win[1], t.global_win);
  EXPECT_FLOAT_EQ(t.last[1], t.global_last);
  auto back = Thresholds::FromJson(t.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->win, t.win);
}

TEST(MlForward, MatchesLibTorchWithin1e5) {
  for (auto [W, H] : {std::pair{32, 32}, std::pair{8, 16}, std::pair{16, 48}}) {
    LstmAeWeights w = TorchInitWeights(W, H, 7);
    ASSERT_TRUE(w.Validate().ok());
    // Larger weights than the default init so the gates leave the linear regime.
    for (auto* v : {&w.enc_whh, &w.dec_whh, &w.dec_wih}) for (auto& f : *v) f *= 3;
    const size_t n = 37;  // odd: exercises the unpaired window
    auto x = RandomWindows(n, W, 3);
    std::vector<float> ref = TorchReconstruct(w, x, n);
    ASSERT_EQ(ref.size(), n * static_cast<size_t>(W));
    LstmAeForward fwd(w);
    std::vector<float> got(ref.size()), scalar(ref.size()), threaded(ref.size());
    fwd.Reconstruct(x.data(), n, got.data());
    fwd.Reconstruct(x.data(), n, threaded.data(), 2);
    LstmAeForward fs(w);
    fs.DisableSimd();
    fs.Reconstruct(x.data(), n, scalar.data());
    double worst = 0, worst_s = 0;
    for (size_t i = 0; i < ref.size(); i++) {
      worst = std::max(worst, static_cast<double>(std::fabs(got[i] - ref[i])));
      worst_s = std::max(worst_s, static_cast<double>(std::fabs(scalar[i] - ref[i])));
      ASSERT_EQ(got[i], threaded[i]);
    }
    EXPECT_LT(worst, 1e-5) << "W=" << W << " H=" << H;
    EXPECT_LT(worst_s, 1e-5) << "W=" << W << " H=" << H;
  }
}

// TorchInitWeights is computed without LibTorch (so that only training loads libiotpipe_torch.so):
// it must equal LibTorch's own initialisation bit for bit, for any shape and seed.
TEST(MlTorchInit, TorchInitWeightsMatchesLibTorch) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    GTEST_SKIP() << "LibTorch runs its unfused (non-AVX2) uniform_ kernel on this CPU";
  for (auto [W, H, seed] : {std::tuple{32, 32, 1ULL}, std::tuple{8, 16, 2ULL}, std::tuple{16, 48, 11ULL},
                            std::tuple{32, 128, 0x1234567890ULL}}) {
    LstmAeWeights a = TorchInitWeights(W, H, seed), b = TorchInitWeightsReference(W, H, seed);
    ASSERT_EQ(b.hidden, H) << "libiotpipe_torch.so not loaded";
    EXPECT_EQ(a.window, b.window);
    EXPECT_EQ(a.enc_wih, b.enc_wih) << "H=" << H << " seed=" << seed;
    EXPECT_EQ(a.enc_whh, b.enc_whh);
    EXPECT_EQ(a.enc_b, b.enc_b);
    EXPECT_EQ(a.dec_wih, b.dec_wih);
    EXPECT_EQ(a.dec_whh, b.dec_whh);
    EXPECT_EQ(a.dec_b, b.dec_b);
    EXPECT_EQ(a.out_w, b.out_w);
    EXPECT_EQ(a.out_b, b.out_b);
    EXPECT_TRUE(a.Validate().ok());
  }
}

// The batched kernel puts windows in vector lanes: a window's result must not depend on the batch
// size, its position in the batch, or the number of threads (bit for bit).
TEST(MlForward, SameResultsForAnyBatchPositionAndThreadCount) {
  LstmAeWeights w = TorchInitWeights(32, 32, 11);
  for (auto& f : w.enc_whh) f *= 3;
  const size_t n = 1000;  // 41 blocks of 24 + a tail of 16
  auto x = RandomWindows(n, 32, 5);
  LstmAeForward fwd(w);
  std::vector<float> ew1(n), el1(n), ew2(n), el2(n), rec(n * 32);
  fwd.Errors(x.data(), n, ew1.data(), el1.data(), 1);
  fwd.Errors(x.data(), n, ew2.data(), el2.data(), 2);
  fwd.Reconstruct(x.data(), n, rec.data(), 2);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(ew1[i], ew2[i]) << i;
    ASSERT_EQ(el1[i], el2[i]) << i;
    EXPECT_GT(ew1[i], 0.f);
    const float d = x[i * 32 + 31] - rec[i * 32 + 31];
    EXPECT_EQ(el1[i], d * d) << i;
  }
  for (size_t i : {size_t{0}, size_t{7}, size_t{23}, size_t{24}, size_t{500}, size_t{999}}) {
    float ew, el;
    fwd.Errors(x.data() + i * 32, 1, &ew, &el);
    EXPECT_EQ(ew, ew1[i]) << i;
    EXPECT_EQ(el, el1[i]) << i;
  }
  // Errors agree with the scalar path within float rounding.
  LstmAeForward fs(w);
  fs.DisableSimd();
  std::vector<float> ews(n), els(n);
  fs.Errors(x.data(), n, ews.data(), els.data(), 2);
  for (size_t i = 0; i < n; i++) EXPECT_NEAR(ews[i], ew1[i], 1e-5 * (1 + ews[i])) << i;
}

TEST(MlModel, SaveLoadAndCorruptModelRefused) {
  Tmp d("model");
  Model m = SmallModel("v1");
  ASSERT_TRUE(m.Save(d.str()).ok());
  EXPECT_FALSE(m.Save(d.str()).ok());  // versions are immutable
  auto back = Model::Load(d.str() + "/v1");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->weights.enc_whh, m.weights.enc_whh);
  EXPECT_EQ(back->scaler.names, m.scaler.names);
  EXPECT_EQ(back->version, "v1");
  // Flip one byte of the weights: refused with a clear error.
  {
    std::fstream f(d.str() + "/v1/weights.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  auto bad = Model::Load(d.str() + "/v1");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("checksum mismatch for weights.bin"), std::string::npos) << bad.status().message();
  // Truncated weights blob (even with a matching checksum) is refused by shape validation.
  auto w = LstmAeWeights::Deserialize(m.weights.Serialize().substr(0, 100));
  EXPECT_FALSE(w.ok());
  EXPECT_FALSE(LstmAeWeights::Deserialize("garbage").ok());
}

TEST(MlRegistry, PromoteRollbackAndCorruptRefused) {
  Tmp d("registry");
  for (const char* v : {"v1", "v2", "v3"}) ASSERT_TRUE(SmallModel(v).Save(d.str()).ok());
  Registry reg(d.str());
  EXPECT_EQ(reg.Alias("production"), "");
  ASSERT_TRUE(reg.Promote("v1").ok());
  ASSERT_TRUE(reg.Promote("v2").ok());
  ASSERT_TRUE(reg.Promote("v3", "shadow").ok());
  EXPECT_EQ(reg.Alias("production"), "v2");
  EXPECT_EQ(reg.Alias("shadow"), "v3");
  auto list = reg.List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[1].version, "v2");
  EXPECT_EQ(list[1].aliases, std::vector<std::string>{"production"});
  EXPECT_TRUE(list[0].valid);
  // Corrupt v3: promotion refused, production stays at v2.
  { std::ofstream(d.str() + "/v3/thresholds.json") << "{}"; }
  Status s = reg.Promote("v3");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("refusing to promote v3"), std::string::npos) << s.message();
  EXPECT_EQ(reg.Alias("production"), "v2");
  EXPECT_FALSE(reg.Promote("nope").ok());
  // Rollback to v1, then nothing earlier.
  auto r = reg.Rollback();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value(), "v1");
  EXPECT_EQ(reg.Alias("production"), "v1");
  EXPECT_FALSE(reg.Rollback().ok());
  EXPECT_EQ(reg.Alias("production"), "v1");
  auto dir = reg.Resolve("production");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir.value(), d.str() + "/v1");
  EXPECT_FALSE(reg.Resolve("../etc").ok());
}

TEST(MlDrift, PsiAndKsOnKnownDistributions) {
  std::mt19937_64 g(5);
  std::normal_distribution<float> n01(0, 1), n11(1, 1);
  std::vector<float> a, b, c;
  for (int i = 0; i < 20000; i++) {
    a.push_back(n01(g));
    b.push_back(n01(g));
    c.push_back(n11(g));
  }
  EXPECT_LT(Psi(a, b), 0.01);
  EXPECT_GT(Psi(a, c), 0.25);
  EXPECT_LT(KsStatistic(a, b), 0.03);
  // KS between N(0,1) and N(1,1) is 2*Phi(0.5)-1 = 0.3829.
  EXPECT_NEAR(KsStatistic(a, c), 0.3829, 0.02);
  EXPECT_DOUBLE_EQ(KsStatistic({1, 2, 3}, {1, 2, 3}), 0.0);
}

TEST(MlTrain, FitIsDeterministicForASeed) {
  WindowSet tr, va;
  for (int s = 0; s < 20; s++) {
    std::vector<float> v;
    for (int i = 0; i < 60; i++) v.push_back(std::sin(0.3f * static_cast<float>(i + s)));
    MakeWindows(v, 8, 4, 0, s < 16 ? tr : va);
  }
  TrainOptions o;
  o.window = 8;
  o.hidden = 16;
  o.epochs = 2;
  o.batch = 32;
  o.progress = false;
  o.seed = 11;
  auto a = FitWeights(tr, va, o);
  auto b = FitWeights(tr, va, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->Serialize(), b->Serialize());
  o.seed = 12;
  auto c = FitWeights(tr, va, o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->Serialize(), c->Serialize());
}

// Feeds `steps` readings of sensors 0..2 to a detector; returns the scores.
std::vector<float> Feed(const Detector& det, StateStore& st, int from, int to) {
  ReadingBatch b;
  for (int i = from; i < to; i++)
    for (uint32_t s = 0; s < 3; s++) b.Push(s, i * 1000000LL, 10.0 * s + std::sin(i * 0.2) * (1 + s), false, ReadingBatch::kNoType);
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

TEST(MlDetector, HotSwapInProcessorLosesNoRecord) {
  Tmp d("swap");
  ASSERT_TRUE(SmallModel("v1", 50, 1).Save(d.str()).ok());
  ASSERT_TRUE(SmallModel("v2", 50, 2).Save(d.str()).ok());
  Registry reg(d.str());
  ASSERT_TRUE(reg.Promote("v1").ok());
  auto det = LstmDetector::Load(d.str() + "/v1", LstmMode::kAuto);
  ASSERT_TRUE(det.ok());
  Dictionaries dicts;
  PipelineMetrics m;
  ManualClock clock(0);
  Processor proc(&dicts, std::shared_ptr<const Detector>(std::move(det.value())), &m, &clock);
  ModelWatcher watcher(d.str(), "production", "v1", LstmMode::kAuto, 1,
                       [&](std::shared_ptr<const Detector> x) { proc.SetDetector(std::move(x)); },
                       std::chrono::milliseconds(1));
  watcher.Start();
  std::atomic<bool> promoted{false};
  int64_t in = 0, out = 0;
  std::set<std::string> versions;
  for (int step = 0; step < 400; step++) {
    RawBatch raw;
    for (int s = 0; s < 50; s++) {
      std::string rec = "{\"sensor_id\": \"sensor_" + std::to_string(s) + "\", \"timestamp\": " +
                        std::to_string(1732406400 + step) + ", \"value\": " + std::to_string(10.0 * s + (step % 7)) +
                        ", \"is_anomaly_ground_truth\": false}";
      raw.Add(rec);
      in++;
    }
    raw.sent = 50;
    raw.Seal();
    ProcessedBatch pb;
    proc.Process(raw, pb);
    out += static_cast<int64_t>(pb.readings.size() + pb.dead.size());
    for (uint16_t id : pb.readings.model) versions.insert(dicts.models.Name(id));
    if (step == 100) {
      ASSERT_TRUE(reg.Promote("v2").ok());
      promoted = true;
    }
    if (promoted && watcher.swaps() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  watcher.Stop();
  EXPECT_EQ(in, out);
  EXPECT_EQ(watcher.swaps(), 1);
  EXPECT_EQ(watcher.current(), "v2");
  EXPECT_TRUE(versions.count("lstm-ae-v1"));
  EXPECT_TRUE(versions.count("lstm-ae-v2"));
  // The windows survived the swap (same name = same layout): state was kept, not reset.
  EXPECT_EQ(proc.detector()->version(), "lstm-ae-v2");
  EXPECT_GT(proc.state().size(), 0u);
}

TEST(MlWatcher, CorruptPromotionIsRefusedAndModelStays) {
  Tmp d("watch");
  ASSERT_TRUE(SmallModel("v1").Save(d.str()).ok());
  ASSERT_TRUE(SmallModel("v2").Save(d.str()).ok());
  Registry reg(d.str());
  ASSERT_TRUE(reg.Promote("v1").ok());
  int swapped = 0;
  ModelWatcher w(d.str(), "production", "v1", LstmMode::kLstm, 1, [&](std::shared_ptr<const Detector>) { swapped++; });
  ASSERT_TRUE(reg.Promote("v2").ok());
  { std::ofstream(d.str() + "/v2/weights.bin", std::ios::app) << "x"; }  // corrupted after promotion
  EXPECT_FALSE(w.CheckOnce());
  EXPECT_EQ(swapped, 0);
  EXPECT_EQ(w.current(), "v1");
  EXPECT_EQ(w.refusals(), 1);
}

// After the shadow version is promoted to production, `shadow` points at nothing (the same model is
// not scored twice); the production history keeps the old version for rollback, and a shadow
// watcher that allows it hands the processor "no shadow".
TEST(MlRegistry, PromotingTheShadowVersionClearsShadow) {
  Tmp d("shadowclear");
  for (const char* v : {"v1", "v2", "v3"}) ASSERT_TRUE(SmallModel(v).Save(d.str()).ok());
  Registry reg(d.str());
  ASSERT_TRUE(reg.Promote("v1").ok());
  ASSERT_TRUE(reg.Promote("v2", "shadow").ok());
  std::vector<std::string> seen;
  ModelWatcher w(d.str(), "shadow", "", LstmMode::kLstm, 1,
                 [&](std::shared_ptr<const Detector> det) { seen.push_back(det ? std::string(det->version()) : "none"); });
  w.AllowClear();
  EXPECT_TRUE(w.CheckOnce());
  EXPECT_EQ(w.current(), "v2");
  // Promoting another version leaves shadow alone.
  ASSERT_TRUE(reg.Promote("v3").ok());
  EXPECT_EQ(reg.Alias("shadow"), "v2");
  ASSERT_TRUE(reg.Rollback().ok());
  EXPECT_EQ(reg.Alias("production"), "v1");
  // Promoting the shadow version clears shadow.
  ASSERT_TRUE(reg.Promote("v2").ok());
  EXPECT_EQ(reg.Alias("production"), "v2");
  EXPECT_EQ(reg.Alias("shadow"), "");
  EXPECT_FALSE(reg.Resolve("shadow").ok());
  EXPECT_EQ(reg.History("production"), (std::vector<std::string>{"v1", "v2"}));
  for (auto& m : reg.List()) EXPECT_EQ(m.aliases, m.version == "v2" ? std::vector<std::string>{"production"} : std::vector<std::string>{}) << m.version;
  EXPECT_TRUE(w.CheckOnce());
  EXPECT_EQ(w.current(), "");
  EXPECT_FALSE(w.CheckOnce());  // stays cleared
  EXPECT_EQ(seen, (std::vector<std::string>{"lstm-ae-v2", "none"}));
  // A new shadow is picked up again; rollback of production goes back to v1.
  ASSERT_TRUE(reg.Promote("v3", "shadow").ok());
  EXPECT_TRUE(w.CheckOnce());
  EXPECT_EQ(w.current(), "v3");
  auto r = reg.Rollback();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value(), "v1");
  // A production watcher (no AllowClear) ignores an unset alias.
  ASSERT_TRUE(reg.ClearAlias("production").ok());
  int swaps = 0;
  ModelWatcher p(d.str(), "production", "v1", LstmMode::kLstm, 1, [&](std::shared_ptr<const Detector>) { swaps++; });
  EXPECT_FALSE(p.CheckOnce());
  EXPECT_EQ(p.current(), "v1");
  EXPECT_EQ(swaps, 0);
}

// A retraining on hours of data completes its daily profile from the previous model's: the bins it
// covers fix an affine map (here new = 3 + 1.5 old), the others follow it.
TEST(MlTrain, ProfileCompletedFromThePreviousModel) {
  const int B = 96;
  Scaler prev, cur;
  for (const char* n : {"a", "b", "c"}) {
    prev.names.push_back(n);
    prev.mean.push_back(10);
    prev.std.push_back(1);
    prev.phi.push_back(0);
  }
  prev.tod_bins = B;
  for (int s = 0; s < 3; s++)
    for (int b = 0; b < B; b++) prev.profile.push_back(static_cast<float>(10 + 5 * std::sin(2 * M_PI * b / B + s)));
  prev.Reindex();
  cur = prev;
  cur.names = {"b", "a", "new"};  // another order, and a sensor the previous model does not know
  cur.Reindex();
  std::vector<uint8_t> covered(3 * B, 0);
  for (int b = 0; b < B; b++) {
    const bool cov = b >= 10 && b < 30;  // 5 hours
    for (int s = 0; s < 3; s++) {
      const size_t k = static_cast<size_t>(s * B + b);
      const int ps = s == 0 ? 1 : 0;  // cur "b" is prev 1, cur "a" is prev 0
      cur.profile[k] = cov ? static_cast<float>(3 + 1.5 * prev.profile[static_cast<size_t>(ps * B + b)]) : -1.f;
      covered[k] = cov;
    }
  }
  // "a": only two covered bins -> level shift only (no slope from two points).
  for (int b = 12; b < 30; b++) covered[static_cast<size_t>(B + b)] = 0;
  CompleteProfile(prev, covered, cur);
  for (int b = 0; b < B; b++)
    EXPECT_NEAR(cur.profile[static_cast<size_t>(b)], 3 + 1.5 * prev.profile[static_cast<size_t>(B + b)], 1e-3) << b;
  // "a" got prev + mean(new - prev) over bins 10 and 11.
  const double d10 = 3 + 0.5 * prev.profile[10], d11 = 3 + 0.5 * prev.profile[11];
  for (int b = 12; b < B; b++)
    EXPECT_NEAR(cur.profile[static_cast<size_t>(B + b)], prev.profile[static_cast<size_t>(b)] + (d10 + d11) / 2, 1e-3) << b;
  // "new" is unknown to prev: untouched.
  EXPECT_EQ(cur.profile[static_cast<size_t>(2 * B)], -1.f);
  // A different bin count: nothing happens.
  Scaler other = cur;
  other.tod_bins = 48;
  other.profile.assign(3 * 48, -2.f);
  CompleteProfile(prev, std::vector<uint8_t>(3 * 48, 0), other);
  EXPECT_EQ(other.profile[0], -2.f);
}

}  // namespace
}  // namespace iotpipe::ml
