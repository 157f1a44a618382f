// Tests of the model lifecycle around a running processor: hot swap on promotion (ModelWatcher), a
// corrupt promotion refused, the shadow alias cleared by promotion, and the drift statistics.
#include "lifecycle/watcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/dictionaries.h"
#include "detect/lstm.h"
#include "lifecycle/backfill.h"
#include "model/registry.h"
#include "model/test_models.h"
#include "pipeline/processor.h"

namespace iotpipe::ml {
namespace {

using testutil::SmallModel;
using testutil::Tmp;

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
  ModelWatcher watcher(
      d.str(), "production", "v1", LstmMode::kAuto, 1,
      [&](std::shared_ptr<const Detector> x) { proc.SetDetector(std::move(x)); }, std::chrono::milliseconds(1));
  watcher.Start();
  std::atomic<bool> promoted{false};
  int64_t in = 0, out = 0;
  std::set<std::string> versions;
  for (int step = 0; step < 400; step++) {
    RawBatch raw;
    for (int s = 0; s < 50; s++) {
      std::string rec =
          "{\"sensor_id\": \"sensor_" + std::to_string(s) + "\", \"timestamp\": " + std::to_string(1732406400 + step) +
          ", \"value\": " + std::to_string(10.0 * s + (step % 7)) + ", \"is_anomaly_ground_truth\": false}";
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
  ModelWatcher w(d.str(), "shadow", "", LstmMode::kLstm, 1, [&](std::shared_ptr<const Detector> det) {
    seen.push_back(det ? std::string(det->version()) : "none");
  });
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
  for (auto& m : reg.List())
    EXPECT_EQ(m.aliases, m.version == "v2" ? std::vector<std::string>{"production"} : std::vector<std::string>{})
        << m.version;
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

}  // namespace
}  // namespace iotpipe::ml
