#include "detect/asset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/checksum.h"
#include "detect/detector.h"
#include "parse/parser.h"
#include "sim/simulator.h"

namespace iotpipe {
namespace {

TEST(AssetMap, ParsesTomlAndNamesEveryProblem) {
  auto m = AssetMap::FromTomlText("[assets]\npump_1 = [\"s1\", \"s2\", \"s3\"]\nfan = [\"s4\", \"s5\"]\n");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->assets.size(), 2u);  // toml++ orders keys by name
  EXPECT_EQ(m->assets[1].first, "pump_1");
  EXPECT_EQ(m->assets[1].second, (std::vector<std::string>{"s1", "s2", "s3"}));
  EXPECT_EQ(m->assets[0].first, "fan");
  auto top = AssetMap::FromTomlText("a = [\"x\", \"y\"]\n");  // top-level keys work too
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->assets[0].second.size(), 2u);
  auto err = [](const std::string& text) {
    auto r = AssetMap::FromTomlText(text, "f.toml");
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(err("a = \"s1\"\n").find("asset 'a' must be an array"), std::string::npos);
  EXPECT_NE(err("a = []\n").find("has no sensors"), std::string::npos);
  EXPECT_NE(err("a = [1, 2]\n").find("non-empty string"), std::string::npos);
  EXPECT_NE(err("a = [\"s1\"]\nb = [\"s1\"]\n").find("'s1' is in two assets"), std::string::npos);
  EXPECT_NE(err("a = [\"s1\"\n").find("f.toml:"), std::string::npos);
  EXPECT_NE(err("").find("no assets"), std::string::npos);
  EXPECT_FALSE(AssetMap::FromTomlFile("/nonexistent/assets.toml").ok());
}

// Readings of three sensors that move together (b = 2a, c = -a + noise) in ticks of one second.
struct Fleet {
  Interner sensors{100};
  std::mt19937 rng{11};
  std::normal_distribution<double> n01{0, 1};
  double latent = 0;
  void Tick(ReadingBatch& b, int64_t t, const std::vector<std::string>& names, double broken = NAN, int skip = -1) {
    latent = 0.9 * latent + 0.45 * n01(rng);
    const double v[3] = {10 + latent + 0.02 * n01(rng), 5 + 2 * latent + 0.02 * n01(rng),
                         std::isnan(broken) ? 1 - latent + 0.02 * n01(rng) : broken};
    for (int c = 0; c < 3; c++) {
      if (c == skip) continue;
      b.Push(sensors.Intern(names[c]), t * 1000000 + 100000 * c, v[c], !std::isnan(broken) && c == 2,
             ReadingBatch::kNoType);
    }
  }
};

TEST(AssetScorer, ConfiguredAssetWarmsUpThenScoresAndAttributes) {
  Fleet f;
  f.sensors.Intern("other");
  AssetOptions opt;
  opt.window = 100;
  AssetScorer sc(opt, &f.sensors, nullptr);
  AssetMap m;
  m.assets.push_back({"pump", {"p_a", "p_b", "p_c"}});
  ASSERT_TRUE(sc.SetMap(m).ok());
  EXPECT_FALSE(sc.SetMap(m).ok());  // the same sensors again: in two assets
  std::vector<AssetScore> out;
  ReadingBatch b;
  int64_t t = 1700000000;
  for (int i = 0; i < 400; i++) {
    b.Clear();
    f.Tick(b, t++, {"p_a", "p_b", "p_c"});
    b.Push(f.sensors.Find("other"), t * 1000000, 3.0, false, ReadingBatch::kNoType);  // not in an asset
    sc.OnBatch(b, &out);
  }
  ASSERT_EQ(sc.assets(), 1u);
  EXPECT_EQ(sc.AssetName(0), "pump");
  EXPECT_EQ(sc.channels(0), 3u);
  EXPECT_TRUE(sc.fitted(0));
  const auto& c = sc.counters();
  EXPECT_EQ(c.readings, 1200);
  EXPECT_EQ(c.vectors, 400);  // every vector closes as soon as its three channels are in
  EXPECT_EQ(c.warmup, 100);
  EXPECT_EQ(static_cast<int64_t>(out.size()), 300);
  int fp = 0;
  for (const auto& s : out) {
    fp += s.predicted;
    EXPECT_EQ(s.channels, 3);
    EXPECT_EQ(s.present, 3);
  }
  EXPECT_LE(fp, 15) << "normal vectors flagged";
  // Break the relation: c keeps its usual range (around 1 - latent) but stops following a and b.
  out.clear();
  for (int i = 0; i < 30; i++) {
    b.Clear();
    f.Tick(b, t++, {"p_a", "p_b", "p_c"}, 1.0 + f.latent);  // c moves with a instead of against it
    sc.OnBatch(b, &out);
  }
  int hits = 0, right = 0;
  for (const auto& s : out) {
    EXPECT_TRUE(s.gt);
    EXPECT_EQ(s.gt_channel, 2);
    hits += s.predicted;
    if (s.predicted) right += sc.ChannelName(0, s.top_channel) == "p_c";
  }
  EXPECT_GE(hits, 20);
  EXPECT_GE(right, hits * 8 / 10) << "attribution names the broken channel";
  EXPECT_LE(sc.state_bytes(0), sc.max_state_bytes(3));
  EXPECT_GT(sc.state_bytes(0), 100u * 3 * sizeof(double));
}

// A checkpoint taken mid-stream and restored into a new scorer continues bit for bit: same scores,
// same predictions, same attribution. Every kind of bad checkpoint is refused and changes nothing.
TEST(AssetScorer, CheckpointRestoreContinuesExactlyAndRefusesBadInput) {
  Fleet f;
  AssetOptions opt;
  opt.window = 100;
  AssetMap m;
  m.assets.push_back({"pump", {"p_a", "p_b", "p_c"}});
  AssetScorer a(opt, &f.sensors, nullptr);
  ASSERT_TRUE(a.SetMap(m).ok());
  std::vector<AssetScore> out;
  ReadingBatch b;
  int64_t t = 1700000000;
  for (int i = 0; i < 250; i++) {  // past warm-up and a few refits; the last tick still open (skip c)
    b.Clear();
    f.Tick(b, t++, {"p_a", "p_b", "p_c"}, NAN, i == 249 ? 2 : -1);
    a.OnBatch(b, &out);
  }
  ASSERT_TRUE(a.fitted(0));
  const std::string ck = a.Snapshot();
  AssetScorer r(opt, &f.sensors, nullptr);
  ASSERT_TRUE(r.SetMap(m).ok());
  auto n = r.Restore(ck);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n.value(), 1u);
  EXPECT_TRUE(r.fitted(0));
  EXPECT_EQ(r.Snapshot(), ck) << "restore then snapshot is the identity";
  std::vector<AssetScore> oa, orr;
  for (int i = 0; i < 120; i++) {
    b.Clear();
    if (i >= 60 && i < 80)
      f.Tick(b, t++, {"p_a", "p_b", "p_c"}, 1.0 + f.latent);  // a correlation break
    else
      f.Tick(b, t++, {"p_a", "p_b", "p_c"});
    a.OnBatch(b, &oa);
    r.OnBatch(b, &orr);
  }
  ASSERT_EQ(oa.size(), orr.size());
  ASSERT_GT(oa.size(), 100u);
  int predicted = 0;
  for (size_t i = 0; i < oa.size(); i++) {
    EXPECT_EQ(oa[i].tick_us, orr[i].tick_us) << i;
    EXPECT_EQ(oa[i].severity, orr[i].severity) << i;
    EXPECT_EQ(oa[i].q, orr[i].q) << i;
    EXPECT_EQ(oa[i].predicted, orr[i].predicted) << i;
    EXPECT_EQ(oa[i].top_channel, orr[i].top_channel) << i;
    predicted += oa[i].predicted;
  }
  EXPECT_GT(predicted, 5) << "the break is found after the restore too";
  EXPECT_EQ(r.counters().warmup, 0) << "no second warm-up";

  // Bad checkpoints: an error each, and the scorer is left as it was (fresh, unfitted, configured).
  auto refused = [&](const std::string& data, const AssetOptions& o) {
    AssetScorer x(o, &f.sensors, nullptr);
    EXPECT_TRUE(x.SetMap(m).ok());
    auto res = x.Restore(data);
    EXPECT_FALSE(res.ok());
    EXPECT_FALSE(x.fitted(0));
    EXPECT_EQ(x.channels(0), 3u);
    return res.ok() ? std::string() : res.status().message();
  };
  std::string flipped = ck;
  flipped[ck.size() / 2] ^= 0x01;
  EXPECT_NE(refused(flipped, opt).find("checksum"), std::string::npos);
  EXPECT_NE(refused(ck.substr(0, ck.size() - 10), opt).find("checksum"), std::string::npos);
  EXPECT_NE(refused("PAR1 not a checkpoint", opt).find("not an iotpipe asset checkpoint"), std::string::npos);
  EXPECT_NE(refused("", opt).find("not an iotpipe asset checkpoint"), std::string::npos);
  AssetOptions other = opt;
  other.window = 200;
  EXPECT_NE(refused(ck, other).find("other asset options"), std::string::npos);
  // Well-formed but wrong inside (checksum recomputed): a NaN, a window row of the wrong width.
  auto reseal = [](std::string body) {
    char head[64];
    std::snprintf(head, sizeof head, "IOTPAST 1 %016llx\n", static_cast<unsigned long long>(Fnv1a64(body)));
    return head + body;
  };
  auto j = nlohmann::json::parse(ck.substr(ck.find('\n') + 1));
  auto j1 = j;
  j1["assets"][0]["window"][3] = {1.0, 2.0};
  EXPECT_NE(refused(reseal(j1.dump()), opt).find("learning-window row"), std::string::npos);
  auto j2 = j;
  j2["assets"][0]["model"][2] = -1.0;
  EXPECT_NE(refused(reseal(j2.dump()), opt).find("control limits"), std::string::npos);
  auto j3 = j;
  j3["assets"][0]["channels"] = {"p_a", "p_b", "p_x"};
  EXPECT_NE(refused(reseal(j3.dump()), opt).find("differ from the configuration"), std::string::npos);
  auto j4 = j;
  j4["assets"][0]["pos"] = 100000;
  EXPECT_NE(refused(reseal(j4.dump()), opt).find("out of range"), std::string::npos);
  EXPECT_TRUE(AssetScorer(opt, &f.sensors, nullptr).Restore(reseal(j.dump())).ok()) << "resealing alone is fine";
}

TEST(AssetScorer, WireAssetsPartialStaleAndLateReadings) {
  Interner sensors{100}, assets{10};
  const uint32_t pump = assets.Intern("pump_7");
  AssetOptions opt;
  opt.window = 40;
  opt.max_stale_ticks = 2;
  AssetScorer sc(opt, &sensors, &assets);
  Fleet f;
  std::vector<AssetScore> out;
  ReadingBatch b;
  auto push = [&](const std::string& s, int64_t t_us, double v) {
    b.Push(sensors.Intern(s), t_us, v, false, ReadingBatch::kNoType);
    b.asset.resize(b.size() - 1, ReadingBatch::kNoAsset);
    b.asset.push_back(pump);
  };
  int64_t t = 1700000000;
  std::mt19937 rng(3);
  std::normal_distribution<double> n01(0, 1);
  for (int i = 0; i < 100; i++, t++) {
    const double l = n01(rng);
    push("x", t * 1000000, l);
    push("y", t * 1000000 + 500, 2 * l + 0.01 * n01(rng));
  }
  b.Push(sensors.Intern("loner"), t * 1000000, 1.0, false, ReadingBatch::kNoType);  // no asset: ignored
  b.asset.push_back(ReadingBatch::kNoAsset);
  sc.OnBatch(b, &out);
  ASSERT_EQ(sc.assets(), 1u);
  EXPECT_EQ(sc.AssetName(0), "pump_7");
  EXPECT_EQ(sc.ChannelName(0, 0), "x");  // channels in order of first appearance
  EXPECT_EQ(sc.ChannelName(0, 1), "y");
  // The first tick closes with x alone (y is not known yet), so y's first reading is late; from then
  // on vectors have both channels.
  EXPECT_EQ(sc.counters().warmup, 41);
  EXPECT_EQ(out.size(), 59u);
  EXPECT_EQ(sc.counters().late, 1);
  // A tick with only x: closed by the next tick, y's last value (1 tick old) completes it.
  out.clear();
  b.Clear();
  push("x", t * 1000000, 0.1);
  push("x", (t + 1) * 1000000, 0.1);
  push("y", (t + 1) * 1000000, 0.2);
  sc.OnBatch(b, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].present, 1);
  EXPECT_EQ(out[1].present, 2);
  EXPECT_EQ(sc.counters().partial, 1);
  // A late reading (its tick already closed) is counted, not scored.
  out.clear();
  b.Clear();
  push("y", t * 1000000 + 10, 0.3);
  sc.OnBatch(b, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(sc.counters().late, 2);
  // y silent for longer than max_stale_ticks: x's vectors are skipped, then Flush closes the open tick.
  t += 2;
  b.Clear();
  for (int k = 0; k < 5; k++) push("x", (t + k) * 1000000, 0.1);
  sc.OnBatch(b, &out);
  sc.Flush(&out);
  EXPECT_EQ(sc.counters().incomplete, 3);  // ticks t+2..t+4 (t, t+1 still within 2 ticks of y)
  EXPECT_EQ(out.size(), 2u);
}

// The acceptance case: simulated correlated assets (--asset-size 4) through the real parser; the
// asset detector finds correlation breaks that the univariate baseline, run on the same readings,
// does not, and names the broken channel.
TEST(AssetScorer, FindsCorrelationBreaksTheBaselineMisses) {
  SimConfig cfg;
  cfg.sensors = 24;
  cfg.asset_size = 4;
  cfg.anomaly_rate = 1.5;  // breaks per asset-hour
  cfg.seed = 5;
  cfg.start_us = 1732406400LL * 1000000;
  FleetSimulator sim(cfg);
  Interner sensors{1000}, types{64}, assets{100};
  Parser parser(&sensors, &types);
  parser.SetAssets(&assets);
  auto base = MakeDetector("baseline");
  ASSERT_TRUE(base.ok());
  StateStore store((*base)->state_bytes());
  AssetScorer sc(AssetOptions{}, &sensors, &assets);
  std::vector<AssetScore> out;
  int64_t gt_readings = 0, base_hits = 0, base_fp = 0, normal_readings = 0;
  const int64_t n = 24LL * 3 * 3600;  // three hours
  for (int64_t done = 0; done < n;) {
    RawBatch raw;
    for (int k = 0; k < 4096 && done < n; k++, done++) sim.Encode(sim.Next(), raw);
    raw.Seal();
    ProcessedBatch pb;
    parser.Parse(raw, pb);
    ASSERT_EQ(pb.dead.size(), 0u);
    ASSERT_EQ(pb.readings.asset.size(), pb.readings.size());
    (*base)->ScoreBatch(pb.readings, store);
    for (size_t i = 0; i < pb.readings.size(); i++) {
      if (pb.readings.gt[i]) {
        gt_readings++;
        base_hits += pb.readings.predicted[i];
        EXPECT_EQ(types.Name(pb.readings.type[i]), "correlation_break");
      } else {
        normal_readings++;
        base_fp += pb.readings.predicted[i];
      }
    }
    sc.OnBatch(pb.readings, &out);
  }
  sc.Flush(&out);
  ASSERT_EQ(sc.assets(), 6u);
  ASSERT_GT(gt_readings, 1000);
  int64_t tv = 0, tp = 0, fp = 0, nv = 0, right = 0;
  for (const auto& s : out) {
    EXPECT_EQ(s.present, 4);
    if (s.gt) {
      tv++;
      tp += s.predicted;
      right += s.predicted && s.top_channel == s.gt_channel;
    } else {
      nv++;
      fp += s.predicted;
    }
  }
  const double asset_recall = static_cast<double>(tp) / static_cast<double>(tv);
  const double base_recall = static_cast<double>(base_hits) / static_cast<double>(gt_readings);
  std::printf("asset: recall %.3f, false-positive rate %.4f, attribution %.3f; baseline: recall %.3f, FP rate %.4f\n",
              asset_recall, static_cast<double>(fp) / static_cast<double>(nv),
              static_cast<double>(right) / static_cast<double>(tp), base_recall,
              static_cast<double>(base_fp) / static_cast<double>(normal_readings));
  EXPECT_GT(asset_recall, 0.7);
  EXPECT_LT(base_recall, 0.1);
  // Measured 0.126: mostly the EWMA tail right after a break ends (vectors labelled normal again).
  EXPECT_LT(static_cast<double>(fp) / static_cast<double>(nv), 0.2);
  EXPECT_GT(static_cast<double>(right) / static_cast<double>(tp), 0.8);
  for (uint32_t a = 0; a < sc.assets(); a++) EXPECT_LE(sc.state_bytes(a), sc.max_state_bytes(4));
}

}  // namespace
}  // namespace iotpipe
