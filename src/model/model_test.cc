// Tests of the model format: scaler/windowing, thresholds, the hand-written forward pass against
// LibTorch, the on-disk model and registry, training determinism. (The LSTM detector's state is tested
// in detect/lstm_test.cc, hot swap and drift statistics in lifecycle/watcher_test.cc.)
#include "model/model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <tuple>

#include "core/duck.h"
#include "core/fault_env.h"
#include "model/forward.h"
#include "model/registry.h"
#include "model/test_models.h"
#include "model/train.h"

namespace iotpipe::ml {
namespace {

using testutil::SmallModel;
using testutil::Tmp;

std::vector<float> RandomWindows(size_t n, int T, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(n * static_cast<size_t>(T));
  for (auto& v : x) v = nd(g);
  return x;
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
  EXPECT_FLOAT_EQ(t.win[0], 6.0f);      // 2 * median(1..5)
  EXPECT_FLOAT_EQ(t.last[0], 12.0f);    // 2 * median(2..10)
  EXPECT_FLOAT_EQ(t.global_win, 7.0f);  // 2 * median(1,2,3,4,5,100) = 2 * 3.5
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
    for (auto* v : {&w.enc_whh, &w.dec_whh, &w.dec_wih})
      for (auto& f : *v) f *= 3;
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
  EXPECT_NE(bad.status().message().find("checksum mismatch for weights.bin"), std::string::npos)
      << bad.status().message();
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

// The registry writes through its Env: a failed rename or fsync (or a full disk) leaves every alias as it was,
// and the error says which file; the evaluation time comes from the Env's clock.
TEST(MlRegistry, FailedWritesLeaveAliasesAsTheyWere) {
  Tmp d("registry_faults");
  for (const char* v : {"v1", "v2"}) ASSERT_TRUE(SmallModel(v).Save(d.str()).ok());
  FaultInjectionEnv env;
  Registry reg(d.str(), &env);
  ASSERT_TRUE(reg.Promote("v1").ok());
  env.FailRename(true);
  Status s = reg.Promote("v2");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError()) << s.message();
  EXPECT_NE(s.message().find("aliases"), std::string::npos) << s.message();
  env.Reset();
  env.FailSync(true);
  EXPECT_FALSE(reg.Promote("v2").ok());
  env.Reset();
  env.SetWriteBudget(0);
  EXPECT_FALSE(reg.Promote("v2").ok());
  EXPECT_FALSE(reg.AddEvaluation("v2", {{"f1", 0.5}}).ok());
  env.Reset();
  EXPECT_EQ(Registry(d.str()).Alias("production"), "v1");
  EXPECT_TRUE(Registry(d.str()).Evaluations("v2").empty());
  ASSERT_TRUE(reg.Promote("v2").ok());
  EXPECT_EQ(Registry(d.str()).Alias("production"), "v2");
}

// models promote refuses a version that evaluated worse than production's (validation loss, or its
// latest shadow comparison) unless forced; better or equal versions pass.
TEST(MlRegistry, PromotionOfAWorseModelIsRefused) {
  Tmp d("registry_check");
  const double losses[] = {0.75, 15.6, 0.7};
  for (int i = 0; i < 3; i++) {
    Model m = SmallModel("v" + std::to_string(i + 1));
    m.card["best_val_loss"] = losses[i];
    ASSERT_TRUE(m.Save(d.str()).ok());
  }
  Registry reg(d.str());
  EXPECT_TRUE(reg.CheckPromotion("v1").ok()) << "nothing in production yet";
  ASSERT_TRUE(reg.Promote("v1").ok());
  Status s = reg.CheckPromotion("v2");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsPermissionDenied());
  EXPECT_NE(s.message().find("15.6"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("0.75"), std::string::npos) << s.message();
  EXPECT_TRUE(reg.CheckPromotion("v3").ok());
  ASSERT_TRUE(reg.AddEvaluation("v3", {{"shadow_at_least_as_good", false}}).ok());
  EXPECT_TRUE(reg.CheckPromotion("v3").IsPermissionDenied());
  ASSERT_TRUE(reg.AddEvaluation("v3", {{"shadow_at_least_as_good", true}}).ok());
  EXPECT_TRUE(reg.CheckPromotion("v3").ok()) << "the latest comparison counts";
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
    EXPECT_NEAR(cur.profile[static_cast<size_t>(B + b)], prev.profile[static_cast<size_t>(b)] + (d10 + d11) / 2, 1e-3)
        << b;
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
