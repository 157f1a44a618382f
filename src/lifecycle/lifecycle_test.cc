// Tests of the lifecycle pieces: validated state checkpoints (round trip, corrupt/foreign/truncated
// refused with the state untouched), shadow scoring in the processor (own state, same results as the
// shadow detector alone), the shadow sink + comparison, and the live drift monitor on known
// distributions (no drift on the model's own distribution, drift after a level shift).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/clock.h"
#include "detect/baseline.h"
#include "detect/lstm.h"
#include "lifecycle/live_monitor.h"
#include "lifecycle/shadow.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/train.h"
#include "pipeline/processor.h"

namespace iotpipe::ml {
namespace {

namespace fs = std::filesystem;

struct Tmp {
  fs::path p;
  explicit Tmp(const std::string& tag) {
    p = fs::temp_directory_path() / ("iotpipe_lc_" + tag + "_" + std::to_string(getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~Tmp() { fs::remove_all(p); }
  std::string str() const { return p.string(); }
};

Model TinyModel(const std::string& version, int S, uint64_t seed, int W = 8) {
  Model m;
  m.version = version;
  m.weights = TorchInitWeights(W, 16, seed);
  for (int i = 0; i < S; i++) {
    m.scaler.names.push_back("sensor_" + std::to_string(i));
    m.scaler.mean.push_back(10.0 * i);
    m.scaler.std.push_back(1.0 + i);
  }
  m.scaler.Reindex();
  std::vector<std::vector<float>> e(static_cast<size_t>(S), std::vector<float>{0.1f, 0.2f, 0.3f});
  m.thresholds = Calibrate(e, e, 0.5, 1.0, 1);
  m.config = {{"window", W}, {"hidden", 16}};
  m.card = {{"version", version}, {"created", "2024-11-24T00:00:00Z"}};
  m.val_errors = {0.1f, 0.2f, 0.3f};
  m.val_last = {0.1f, 0.2f, 0.3f};
  return m;
}

std::shared_ptr<const Detector> LoadDet(const std::string& dir, const Model& m) {
  EXPECT_TRUE(m.Save(dir).ok());
  auto d = LstmDetector::Load(dir + "/" + m.version, LstmMode::kAuto);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return std::shared_ptr<const Detector>(std::move(d.value()));
}

// A fresh detector instance (a detector binds to one processor's dictionaries: one per processor).
std::shared_ptr<const Detector> Det(const std::string& dir, const std::string& v) {
  auto d = LstmDetector::Load(dir + "/" + v, LstmMode::kAuto);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return std::shared_ptr<const Detector>(std::move(d.value()));
}

RawBatch Records(int step0, int steps, int S) {
  RawBatch raw;
  for (int step = step0; step < step0 + steps; step++)
    for (int s = 0; s < S; s++)
      raw.Add("{\"sensor_id\": \"sensor_" + std::to_string(s) +
              "\", \"timestamp\": " + std::to_string(1732406400 + step) +
              ", \"value\": " + std::to_string(10.0 * s + std::sin(step * 0.3) * (1 + s)) +
              ", \"is_anomaly_ground_truth\": " + (step % 17 == 0 ? "true" : "false") + "}");
  raw.sent = static_cast<int64_t>(steps * S);
  raw.Seal();
  return raw;
}

TEST(LifecycleCheckpoint, RoundTripRestoresFullWindows) {
  Tmp d("ckpt");
  auto det = LoadDet(d.str(), TinyModel("v1", 4, 1));
  Dictionaries da, db;
  PipelineMetrics ma, mb;
  ManualClock clock(0);
  Processor a(&da, det, &ma, &clock), b(&db, Det(d.str(), "v1"), &mb, &clock);
  ProcessedBatch out;
  a.Process(Records(0, 20, 4), out);
  const std::string path = d.str() + "/state/det.ckpt";
  ASSERT_TRUE(a.SaveCheckpoint(path).ok());
  ASSERT_TRUE(b.LoadCheckpoint(path).ok());
  // After the restore, the very first reading of every sensor is scored by the LSTM (full window),
  // with the same score as the processor that never stopped.
  ProcessedBatch oa, ob;
  a.Process(Records(20, 1, 4), oa);
  b.Process(Records(20, 1, 4), ob);
  ASSERT_EQ(ob.readings.size(), 4u);
  for (size_t i = 0; i < 4; i++) {
    EXPECT_EQ(db.models.Name(ob.readings.model[i]), "lstm-ae-v1") << i;
    EXPECT_FLOAT_EQ(ob.readings.score[i], oa.readings.score[i]) << i;
  }
  // Without a checkpoint the first readings fall back to the baseline.
  Dictionaries dc;
  PipelineMetrics mc;
  Processor c(&dc, Det(d.str(), "v1"), &mc, &clock);
  ProcessedBatch oc;
  c.Process(Records(20, 1, 4), oc);
  EXPECT_EQ(dc.models.Name(oc.readings.model[0]), "baseline-v1");
}

TEST(LifecycleCheckpoint, CorruptForeignAndTruncatedAreRefused) {
  Tmp d("ckbad");
  auto det = LoadDet(d.str(), TinyModel("v1", 4, 1));
  Dictionaries da;
  PipelineMetrics m;
  ManualClock clock(0);
  Processor a(&da, det, &m, &clock);
  ProcessedBatch out;
  a.Process(Records(0, 20, 4), out);
  const std::string good = d.str() + "/good.ckpt";
  ASSERT_TRUE(a.SaveCheckpoint(good).ok());
  std::string bytes;
  {
    std::ifstream f(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(d.str() + "/" + name, std::ios::binary) << content;
    return d.str() + "/" + name;
  };
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x5a;
  Dictionaries db;
  Processor b(&db, Det(d.str(), "v1"), &m, &clock);
  auto st = b.LoadCheckpoint(write("flip.ckpt", flipped));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("checksum"), std::string::npos) << st.message();
  EXPECT_FALSE(b.LoadCheckpoint(write("trunc.ckpt", bytes.substr(0, bytes.size() - 10))).ok());
  EXPECT_FALSE(b.LoadCheckpoint(write("garbage.ckpt", "hello\nworld\n")).ok());
  EXPECT_FALSE(b.LoadCheckpoint(write("empty.ckpt", "")).ok());
  std::string old = bytes;
  old.replace(0, 9, "IOTPCKP 1");
  EXPECT_FALSE(b.LoadCheckpoint(write("old.ckpt", old)).ok());
  // A checkpoint of another detector (baseline) is refused by name.
  Dictionaries dx;
  Processor base(&dx, std::make_shared<BaselineDetector>(), &m, &clock);
  base.Process(Records(0, 5, 4), out);
  ASSERT_TRUE(base.SaveCheckpoint(d.str() + "/base.ckpt").ok());
  st = b.LoadCheckpoint(d.str() + "/base.ckpt");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("baseline"), std::string::npos) << st.message();
  // A model with another window has another state size: refused too.
  Tmp d2("ckw");
  auto det16 = LoadDet(d2.str(), TinyModel("v1", 4, 1, 16));
  Dictionaries dy;
  Processor w16(&dy, det16, &m, &clock);
  EXPECT_FALSE(w16.LoadCheckpoint(good).ok());
  // Nothing was restored by the refusals: the first readings still use the baseline.
  EXPECT_EQ(b.state().size(), 0u);
  ProcessedBatch ob;
  b.Process(Records(20, 1, 4), ob);
  EXPECT_EQ(db.models.Name(ob.readings.model[0]), "baseline-v1");
  // The good one loads.
  Dictionaries dz;
  Processor z(&dz, Det(d.str(), "v1"), &m, &clock);
  EXPECT_TRUE(z.LoadCheckpoint(good).ok());
}

TEST(LifecycleShadow, ShadowScoresWithItsOwnStateAndMatchesRunningAlone) {
  Tmp d("shadow");
  auto prod = LoadDet(d.str(), TinyModel("v1", 3, 1));
  auto cand = LoadDet(d.str(), TinyModel("v2", 3, 2));
  Dictionaries dp, dalone;
  PipelineMetrics m;
  ManualClock clock(0);
  Processor p(&dp, prod, &m, &clock), alone(&dalone, Det(d.str(), "v2"), &m, &clock);
  p.SetShadow(cand);
  int64_t rows = 0;
  for (int k = 0; k < 5; k++) {
    ProcessedBatch a, b;
    p.Process(Records(k * 10, 10, 3), a);
    alone.Process(Records(k * 10, 10, 3), b);
    ASSERT_EQ(a.shadow_score.size(), a.readings.size());
    ASSERT_EQ(a.shadow_model.size(), a.readings.size());
    for (size_t i = 0; i < a.readings.size(); i++) {
      EXPECT_FLOAT_EQ(a.shadow_score[i], b.readings.score[i]);
      EXPECT_EQ(a.shadow_predicted[i], b.readings.predicted[i]);
      EXPECT_EQ(dp.models.Name(a.shadow_model[i]), dalone.models.Name(b.readings.model[i]));
    }
    rows += static_cast<int64_t>(a.readings.size());
  }
  EXPECT_EQ(rows, 150);
  EXPECT_GT(p.shadow_state().size(), 0u);
  // Removing the shadow stops it.
  p.SetShadow(nullptr);
  ProcessedBatch c;
  p.Process(Records(50, 1, 3), c);
  EXPECT_TRUE(c.shadow_score.empty());
}

TEST(LifecycleShadow, SinkStoresBothResultsAndComparisonCounts) {
  Tmp d("sink");
  Dictionaries dict;
  const uint16_t pm = static_cast<uint16_t>(dict.models.Intern("lstm-ae-v1"));
  const uint16_t sm = static_cast<uint16_t>(dict.models.Intern("lstm-ae-v2"));
  for (int s = 0; s < 2; s++) dict.sensors.Intern("s" + std::to_string(s));
  ShadowSink sink(d.str(), &dict, 1000000, 1e9);
  // 2 sensors x 100 rows; ground truth on rows 40..49 of each sensor. Production flags 40..44 and
  // 80..89 (a false alarm); shadow flags 40..49 exactly.
  ProcessedBatch pb;
  for (int s = 0; s < 2; s++)
    for (int t = 0; t < 100; t++) {
      bool gt = t >= 40 && t < 50;
      pb.readings.Push(static_cast<uint32_t>(s), 1732406400000000LL + t * 1000000LL, 1.0, gt, ReadingBatch::kNoType);
      bool pp = (t >= 40 && t < 45) || (t >= 80 && t < 90);
      pb.readings.predicted.back() = pp;
      pb.readings.score.back() = pp ? 0.9f : 0.1f;
      pb.readings.model.back() = pm;
      pb.shadow_score.push_back(gt ? 0.9f : 0.1f);
      pb.shadow_predicted.push_back(gt);
      pb.shadow_model.push_back(sm);
    }
  ASSERT_TRUE(sink.Add(pb).ok());
  ProcessedBatch none;  // no shadow results: ignored
  none.readings.Push(0, 1, 1.0, false, ReadingBatch::kNoType);
  ASSERT_TRUE(sink.Add(none).ok());
  ASSERT_TRUE(sink.Flush().ok());
  EXPECT_EQ(sink.rows(), 200);
  EXPECT_EQ(sink.files(), 1);
  auto c = CompareShadow(d.str());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->rows, 200);
  EXPECT_EQ(c->production_versions, "lstm-ae-v1");
  EXPECT_EQ(c->shadow_versions, "lstm-ae-v2");
  EXPECT_EQ(c->production.overall.tp, 10);
  EXPECT_EQ(c->production.overall.fp, 20);
  EXPECT_EQ(c->shadow.overall.tp, 20);
  EXPECT_EQ(c->shadow.overall.fp, 0);
  EXPECT_TRUE(c->labelled);
  EXPECT_TRUE(c->shadow_at_least_as_good) << c->reason;
  EXPECT_NEAR(c->production_alert_rate, 30.0 / 200, 1e-9);
  // Filter: no rows -> error, not a crash.
  EXPECT_FALSE(CompareShadow(d.str(), "sensor_id = 'nope'").ok());
  EXPECT_FALSE(CompareShadow(d.str() + "/missing").ok());
}

// A model whose validation errors are the forward pass's own errors on windows of N(0, 1) inputs, so
// a live stream of the scaler's distribution matches its reference.
Model CalibratedModel(int S, int W) {
  Model m = TinyModel("v1", S, 3, W);
  LstmAeForward fwd(m.weights);
  std::mt19937_64 g(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const size_t n = 4000;
  std::vector<float> x(n * static_cast<size_t>(W));
  for (auto& v : x) v = nd(g);
  std::vector<float> ew(n), el(n);
  fwd.Errors(x.data(), n, ew.data(), el.data());
  m.val_errors = ew;
  return m;
}

// A calibrated 4-sensor model (window 8) loaded as a detector, and its sensors' dictionary.
struct MonitorRig {
  static constexpr int kSensors = 4, kWindow = 8;
  Tmp d;
  std::shared_ptr<const Detector> det;
  Dictionaries dict;
  explicit MonitorRig(const std::string& tag) : d(tag), det(LoadDet(d.str(), CalibratedModel(kSensors, kWindow))) {
    for (int s = 0; s < kSensors; s++) dict.sensors.Intern("sensor_" + std::to_string(s));
  }
};

// The monitor's own forward passes stay within max_windows_per_s whatever the input rate: at
// 200k readings a second it samples every 200th reading of each sensor (1,000 windows a second).
TEST(LifecycleMonitor, OwnScoringStaysWithinItsBudgetAtHighRates) {
  MonitorRig rig("monbudget");
  LiveMonitor mon(&rig.dict, {.sample_every = 1, .max_windows_per_s = 1000, .keep = 10000000, .eval_interval_s = 1.0});
  mon.SetDetector(rig.det);
  const int S = MonitorRig::kSensors;
  std::mt19937_64 g(3);
  std::normal_distribution<double> nd(0, 1);
  auto feed = [&](int steps, int64_t t_us) {
    ProcessedBatch pb;
    for (int t = 0; t < steps; t++)
      for (int s = 0; s < S; s++)
        pb.readings.Push(static_cast<uint32_t>(s), t, 10.0 * s + (1.0 + s) * nd(g), false, ReadingBatch::kNoType);
    mon.Observe(pb, t_us);
  };
  feed(100, 1000000);  // first evaluation: no rate known yet, every reading sampled
  const int64_t w0 = mon.Get().windows;
  EXPECT_GT(w0, 300);
  feed(25000, 1500000);  // 100k readings: still sampled at stride 1
  feed(25000, 2000000);  // 200k readings in the last second -> stride 200 from here
  const int64_t w1 = mon.Get().windows;
  EXPECT_GT(w1 - w0, 150000);
  feed(25000, 2500000);
  feed(25000, 3000000);
  const int64_t w2 = mon.Get().windows;
  EXPECT_GE(w2 - w1, 800);
  EXPECT_LE(w2 - w1, 1300);
}

TEST(LifecycleMonitor, NoDriftOnTheReferenceDistributionDriftAfterAShift) {
  MonitorRig rig("mon");
  const int S = MonitorRig::kSensors;
  Dictionaries& dict = rig.dict;
  auto det = rig.det;
  LiveMonitorOptions o;
  o.sample_every = 1;
  o.min_windows = 500;
  o.eval_interval_s = 1e9;  // only when asked
  LiveMonitor mon(&dict, o);
  mon.SetDetector(det);
  std::mt19937_64 g(11);
  std::normal_distribution<double> nd(0, 1);
  auto feed = [&](double shift_sd, int steps, int64_t t_us) {
    ProcessedBatch pb;
    for (int t = 0; t < steps; t++)
      for (int s = 0; s < S; s++) {
        // sensor s: scaler mean 10 s, std 1 + s (TinyModel)
        pb.readings.Push(static_cast<uint32_t>(s), t, 10.0 * s + (1.0 + s) * (nd(g) + shift_sd), t % 10 == 0,
                         ReadingBatch::kNoType);
        pb.readings.predicted.back() = t % 20 == 0;  // half of the labelled rows, no false alarm
      }
    mon.Observe(pb, t_us);
  };
  for (int k = 0; k < 4; k++) feed(0, 1500, k);
  mon.Evaluate(1000000);
  DriftSnapshot a = mon.Get();
  EXPECT_EQ(a.version, "v1");
  EXPECT_EQ(a.windows, 20000);
  EXPECT_LT(a.psi, 0.05) << a.psi;
  EXPECT_LT(a.ks, 0.05) << a.ks;
  EXPECT_LT(a.input_psi, 0.05) << a.input_psi;
  EXPECT_FALSE(a.drifted);
  EXPECT_NEAR(a.alert_rate, 0.05, 1e-9);
  EXPECT_NEAR(a.precision, 1.0, 1e-9);
  EXPECT_NEAR(a.recall, 0.5, 1e-9);
  EXPECT_NEAR(a.f1, 2.0 / 3, 1e-9);
  // A level shift of 3 sd: the rolling sample (20k) fills with shifted windows.
  for (int k = 0; k < 4; k++) feed(3.0, 1500, 2000000 + k);
  mon.Evaluate(3000000);
  DriftSnapshot b = mon.Get();
  EXPECT_GT(b.psi, 0.25) << b.psi;
  EXPECT_GT(b.ks, 0.1) << b.ks;
  EXPECT_GT(b.input_psi, 1.0) << b.input_psi;
  EXPECT_TRUE(b.drifted);
  EXPECT_EQ(b.drifted_for_s, 0);
  mon.Evaluate(8000000);
  EXPECT_NEAR(mon.Get().drifted_for_s, 5.0, 1e-9);
  ASSERT_FALSE(b.worst_sensors.empty());
  const std::string text = mon.PrometheusText();
  for (const char* g2 :
       {"iotpipe_drift_psi{kind=\"error\"", "iotpipe_drift_ks{kind=\"input\"", "iotpipe_alert_rate ",
        "iotpipe_rolling_f1 ", "iotpipe_drift_detected 1", "iotpipe_drift_sensor_psi{sensor=\"sensor_"})
    EXPECT_NE(text.find(g2), std::string::npos) << g2 << "\n" << text;
  // Unknown sensors (not in the scaler) are ignored, not a crash; a non-LSTM detector: no errors.
  LiveMonitor none(&dict, o);
  none.SetDetector(std::make_shared<BaselineDetector>());
  ProcessedBatch pb;
  pb.readings.Push(0, 0, 1.0, false, ReadingBatch::kNoType);
  none.Observe(pb, 0);
  none.Evaluate(1);
  EXPECT_EQ(none.Get().windows, 0);
  EXPECT_FALSE(none.Get().drifted);
}

}  // namespace
}  // namespace iotpipe::ml
