// End-to-end lifecycle tests with the iotpipe binary:
//  - kill -9 after a periodic checkpoint, restart: the LSTM scores from the first reading (the
//    windows were restored), where a run without the checkpoint falls back to the baseline;
//  - a corrupt checkpoint is refused with a warning and the run goes on;
//  - `lifecycle-demo` at a small scale: versions, aliases, drift only after the regime change;
//  - `run --auto-retrain`: the closed loop inside a running pipeline, no record lost.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include "core/duck.h"
#include "model/model.h"
#include "model/registry.h"
#include "model/train.h"
#include "test_util.h"

namespace iotpipe::testing {
namespace {

// A valid model (random weights) for sensor_0..S-1 of the basic profile (N(25, 5)).
void WriteModel(const std::string& dir, int S, int W) {
  ml::Model m;
  m.version = "v1";
  m.weights = ml::TorchInitWeights(W, 16, 1);
  for (int i = 0; i < S; i++) {
    m.scaler.names.push_back("sensor_" + std::to_string(i));
    m.scaler.mean.push_back(25);
    m.scaler.std.push_back(5);
  }
  m.scaler.Reindex();
  std::vector<std::vector<float>> e(static_cast<size_t>(S), std::vector<float>{0.5f, 1.0f, 2.0f});
  m.thresholds = ml::Calibrate(e, e, 0.5, 1.0, 1);
  m.config = {{"window", W}, {"hidden", 16}};
  m.card = {{"version", "v1"}, {"created", "2024-11-24T00:00:00Z"}};
  m.val_errors = {0.5f, 1.0f, 2.0f};
  m.val_last = {0.5f, 1.0f, 2.0f};
  ASSERT_TRUE(m.Save(dir).ok());
  ASSERT_TRUE(ml::Registry(dir).Promote("v1", "production").ok());
}

int64_t MtimeNs(const std::string& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

TEST(LifecycleE2E, KillNineAfterCheckpointThenRestartKeepsWindows) {
  TempDir t("lc_kill");
  const std::string models = t.str() + "/models", data = t.str() + "/data";
  WriteModel(models, 5, 8);
  const std::string common = " --sensors 5 --detector auto --model-dir " + models + " --http off --quiet --no-shadow";
  // Real time, 10 readings/s per sensor: windows of 8 fill in under a second; checkpoints every 0.3 s.
  CmdResult r = Sh("exec " + Bin() + " run" + common + " --rate 50 --data-dir " + data +
                   " --checkpoint-interval 0.3 >/dev/null 2>&1 & echo $!");
  ASSERT_EQ(r.code, 0);
  const pid_t pid = static_cast<pid_t>(std::stoi(r.out));
  const std::string ckpt = data + "/state/detector-auto.ckpt";
  // Wait for a checkpoint, then for one written at least 1.5 s later (written periodically, not at shutdown):
  // by then every sensor has had more than 8 readings, so its window is full in the state that survives the
  // kill. (Waiting only for the next rewrite, 0.3 s on, left some windows short on a loaded machine: a clean-
  // clone run saw the restart score with two model versions.)
  int64_t first = 0, second = 0;
  for (int i = 0; i < 300 && second == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int64_t m = MtimeNs(ckpt);
    if (first == 0 && m != 0)
      first = m;
    else if (first != 0 && m > first + 1'500'000'000)
      second = m;
  }
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_NE(first, 0) << "no periodic checkpoint was written";
  ASSERT_NE(second, 0) << "the checkpoint was not rewritten periodically";
  // Restart an hour of sensor time later: every sensor's first reading is scored by the LSTM.
  const int64_t later =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() +
      3600;
  r = Sh(Bin() + " run" + common + " --rate max --events 5 --start " + std::to_string(later) + " --data-dir " + data);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("restored detector state"), std::string::npos) << r.err;
  auto rows = Query(data, "SELECT model_version, count(*) AS n FROM sensor_readings WHERE timestamp >= to_timestamp(" +
                              std::to_string(later) + ") GROUP BY 1");
  ASSERT_EQ(rows.size(), 1u) << rows.dump();
  EXPECT_EQ(rows[0]["model_version"], "lstm-ae-v1");
  EXPECT_EQ(rows[0]["n"], 5);
  // Control: the same restart without the checkpoint starts cold (baseline fallback).
  const std::string cold = t.str() + "/cold";
  r = Sh(Bin() + " run" + common + " --rate max --events 5 --start " + std::to_string(later) + " --data-dir " + cold);
  ASSERT_EQ(r.code, 0) << r.err;
  rows = Query(cold, "SELECT DISTINCT model_version FROM sensor_readings");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["model_version"], "baseline-v1");
  // A corrupt checkpoint is refused with a warning; the run completes.
  {
    std::fstream f(ckpt, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  r = Sh(Bin() + " run" + common + " --rate max --events 5 --start " + std::to_string(later + 3600) + " --data-dir " +
         data);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("not restoring detector state"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("checksum"), std::string::npos) << r.err;
}

// LibTorch lives in libiotpipe_torch.so, which only training dlopens (src/model/torch_api.h): `run`
// with the baseline or the LSTM detector never maps it (LD_DEBUG=files lists every object loaded),
// `train` does, and without the library `train` fails with a clear message instead of crashing.
TEST(LifecycleE2E, OnlyTrainingLoadsLibTorch) {
  TempDir t("lc_torch");
  const std::string models = t.str() + "/models", data = t.str() + "/data";
  WriteModel(models, 5, 8);
  const std::string run =
      "LD_DEBUG=files " + Bin() + " run --sensors 5 --events 200 --rate max --quiet --http off --no-checkpoint";
  CmdResult r = Sh(run + " --detector baseline --data-dir " + data);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("libtorch"), std::string::npos) << "baseline run loaded LibTorch";
  EXPECT_EQ(r.err.find("libiotpipe_torch"), std::string::npos);
  r = Sh(run + " --detector lstm --model-dir " + models + " --data-dir " + t.str() + "/lstm");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("libtorch"), std::string::npos) << "lstm run loaded LibTorch";
  EXPECT_EQ(r.err.find("libiotpipe_torch"), std::string::npos);
  auto rows = Query(t.str() + "/lstm", "SELECT count(*) AS n FROM sensor_readings WHERE model_version = 'lstm-ae-v1'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_GT(rows[0]["n"].get<int64_t>(), 0) << "the LSTM scored nothing";
  // train maps it (the span is too short to train: the library is loaded before the data is read).
  const std::string train = Bin() + " train --data-dir " + data + " --model-dir " + t.str() + "/m2 --epochs 1";
  r = Sh("LD_DEBUG=files " + train);
  EXPECT_NE(r.err.find("libiotpipe_torch.so"), std::string::npos) << r.err.substr(0, 2000);
  EXPECT_NE(r.err.find("libtorch_cpu"), std::string::npos);
  r = Sh("IOTPIPE_TORCH_LIB=" + t.str() + "/missing/libiotpipe_torch.so " + train);
  EXPECT_NE(r.code, 0);
  EXPECT_LT(r.code, 128) << "crashed: " << r.err;
  EXPECT_NE(r.err.find("training needs libiotpipe_torch.so"), std::string::npos) << r.err;
}

TEST(LifecycleE2E, DemoRunsTheWholeStory) {
  TempDir t("lc_demo");
  const std::string wd = t.str() + "/w", js = t.str() + "/demo.json";
  CmdResult r = Sh(Bin() +
                   " lifecycle-demo --sensors 3 --history 2d --phase-a 2h --phase-b 4h --phase-c 2h --phase-d 1h "
                   "--epochs 3 --max-windows 1500 --workdir " +
                   wd + " --json " + js);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  std::ifstream f(js);
  auto j = nlohmann::json::parse(f);
  // Steps happened: history stored, v1 trained and deployed, v2 trained and shadowed.
  EXPECT_GT(j["history"]["rows"].get<int64_t>(), 2 * 3 * 86400 - 10);
  EXPECT_EQ(j["train"]["version"], "v1");
  EXPECT_EQ(j["retrain"]["version"], "v2");
  EXPECT_EQ(j["versions"], nlohmann::json::array({"v1", "v2"}));
  // No drift before the change (seasonal-residual windows: a 2 h slice is comparable with whole-day
  // validation errors), drift after it, and the alert rate of the old model jumps.
  const auto& before = j["before_change"]["drift"];
  EXPECT_GE(before["windows"].get<int64_t>(), 500) << before.dump();  // enough errors to judge
  EXPECT_FALSE(before["drifted"].get<bool>()) << before.dump();
  EXPECT_LT(before["psi"].get<double>(), 0.1) << before.dump();
  EXPECT_LT(before["ks"].get<double>(), 0.1) << before.dump();
  EXPECT_TRUE(j["after_change"]["drift"]["drifted"].get<bool>()) << j["after_change"].dump();
  EXPECT_GT(j["after_change"]["drift"]["psi"].get<double>(), 1.0) << j["after_change"].dump();
  EXPECT_GT(j["after_change"]["drift"]["alert_rate"].get<double>(),
            j["before_change"]["drift"]["alert_rate"].get<double>() + 0.05)
      << j["before_change"].dump() << j["after_change"].dump();
  EXPECT_GT(j["comparison"]["rows"].get<int64_t>(), 1000);
  // The promotion follows the comparison's verdict, and the history keeps v1 for rollback.
  const bool promoted = j["promoted"].get<bool>();
  EXPECT_EQ(promoted, j["comparison"]["shadow_at_least_as_good"].get<bool>());
  EXPECT_EQ(j["aliases"]["production"], promoted ? "v2" : "v1");
  // After a promotion the shadow alias is cleared (v2 is not scored twice); otherwise v2 stays there.
  EXPECT_EQ(j["aliases"]["shadow"], promoted ? "" : "v2");
  EXPECT_EQ(j["production_history"][0], "v1");
  EXPECT_NE(r.out.find("7. live scoring"), std::string::npos) << r.out;
  // `monitor` on the demo's store: its verdict, what it prints and its exit code agree (drift overall or on
  // any sensor is DRIFT and exit 3; it once printed "overall ... ok" and exited 0 with most sensors DRIFT).
  const std::string mon =
      Bin() + " monitor --data-dir " + wd + "/data --model-dir " + wd + "/models --model v1 --window 3h";
  CmdResult mj = Sh(mon + " --json");
  ASSERT_TRUE(mj.code == 0 || mj.code == 3) << mj.out << mj.err;
  auto m = nlohmann::json::parse(mj.out);
  const bool drifted = m["drifted"].get<bool>();
  EXPECT_EQ(drifted, m["overall_drifted"].get<bool>() || m["drifted_sensors"].get<int64_t>() > 0) << m.dump();
  int64_t flagged = 0;
  for (auto& x : m["sensors"]) flagged += x["drifted"].get<bool>();
  EXPECT_EQ(flagged, m["drifted_sensors"].get<int64_t>());
  EXPECT_EQ(mj.code, drifted ? 3 : 0);
  CmdResult mt = Sh(mon);
  EXPECT_EQ(mt.code, mj.code);
  EXPECT_NE(mt.out.find(drifted ? "verdict: DRIFT" : "verdict: ok"), std::string::npos) << mt.out;
}

// A process started by a shell is not our child: alive while it exists and is not a zombie.
bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  const size_t p = line.rfind(')');
  return p == std::string::npos || p + 2 >= line.size() || line[p + 2] != 'Z';
}

std::string ReadAll(const std::string& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The closed loop inside a running `run --auto-retrain`: a day of stored history and v1 trained on
// it; a live run (sensor time 1,200 x faster than the clock) meets a regime change after an hour
// (every level +8 noise sd);
// drift stays above its limit, v2 is trained in the background on the recent stored data and put
// under `shadow`, compared with v1 on the rows both scored, promoted (hot swap, no restart), v1 kept
// for rollback and `shadow` cleared. The run is stopped with SIGINT once the loop has decided;
// every record sent is stored or dead-lettered.
TEST(LifecycleE2E, AutoRetrainInsideARunningPipeline) {
  TempDir t("lc_auto");
  const std::string models = t.str() + "/models", data = t.str() + "/data", log = t.str() + "/run.log",
                    summary = t.str() + "/summary.json";
  const int64_t t0 = 1730419200, t_live = t0 + 86400, t_change = t_live + 3600;
  CmdResult r =
      Sh(Bin() + " run --profile realistic --sensors 3 --rate max --duration 1d --start " + std::to_string(t0) +
         " --detector baseline --data-dir " + data + " --http off --quiet --no-checkpoint");
  ASSERT_EQ(r.code, 0) << r.err;
  r = Sh(Bin() + " train --data-dir " + data + " --model-dir " + models + " --from " + std::to_string(t0) + " --to " +
         std::to_string(t_live) + " --epochs 2 --hidden 16 --max-windows 1500 --seed 3 --promote production 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  r = Sh("exec " + Bin() + " run --profile realistic --sensors 3 --speedup 1200 --duration 3d --start " +
         std::to_string(t_live) + " --regime-at " + std::to_string(t_change) +
         " --regime-shift 8 --regime-scale 1 --detector auto --model-dir " + models + " --data-dir " + data +
         " --http off --quiet --auto-retrain --retrain-after 5 --retrain-span 1h --retrain-epochs 4 --shadow-period 4"
         " --summary-json " +
         summary + " >" + log + " 2>&1 & echo $!");
  ASSERT_EQ(r.code, 0);
  const pid_t pid = static_cast<pid_t>(std::stoi(r.out));
  // Wait (at most 150 s) for the decision, then a few seconds of scoring by the new production model.
  std::string text;
  bool decided = false;
  for (int i = 0; i < 1500 && !decided; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    text = ReadAll(log);
    decided = text.find("auto-retrain: promoted") != std::string::npos ||
              text.find("auto-retrain: kept") != std::string::npos ||
              text.find("auto-retrain: failed") != std::string::npos;
    if (!Alive(pid)) break;  // ended early
  }
  if (decided) std::this_thread::sleep_for(std::chrono::seconds(5));
  kill(pid, SIGINT);
  for (int i = 0; i < 300 && Alive(pid); i++) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (Alive(pid)) {
    kill(pid, SIGKILL);
    FAIL() << "the run did not stop within 30 s of SIGINT\n" << ReadAll(log);
  }
  text = ReadAll(log);
  ASSERT_TRUE(decided) << text;
  // Each step, in order, from the log.
  size_t p_drift = text.find("auto-retrain: drift v1"), p_trained = text.find("auto-retrain: trained v2"),
         p_shadow = text.find("shadow scoring with lstm-ae-v2"), p_compared = text.find("auto-retrain: compared v2"),
         p_promoted = text.find("auto-retrain: promoted v2"), p_swap = text.find("hot swap v1 -> v2"),
         p_cleared = text.find("shadow scoring stopped");
  ASSERT_NE(p_drift, std::string::npos) << text;
  ASSERT_NE(p_trained, std::string::npos) << text;
  ASSERT_NE(p_shadow, std::string::npos) << text;
  ASSERT_NE(p_compared, std::string::npos) << text;
  // After the change v1 flags nearly everything; v2, trained on the new regime, is at least as good.
  ASSERT_NE(p_promoted, std::string::npos) << text;
  ASSERT_NE(p_swap, std::string::npos) << text;
  ASSERT_NE(p_cleared, std::string::npos) << text;
  EXPECT_LT(p_drift, p_trained);
  EXPECT_LT(p_trained, p_shadow);
  EXPECT_LT(p_shadow, p_compared);
  EXPECT_LT(p_compared, p_promoted);
  EXPECT_LT(p_promoted, p_swap);
  // Registry: v2 in production, v1 kept for rollback, shadow cleared.
  ml::Registry reg(models);
  EXPECT_EQ(reg.Alias("production"), "v2");
  EXPECT_EQ(reg.History("production"), (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(reg.Alias("shadow"), "");
  std::vector<std::string> versions;
  for (auto& m : reg.List()) {
    EXPECT_TRUE(m.valid) << m.version << ": " << m.error;
    versions.push_back(m.version);
  }
  EXPECT_EQ(versions, (std::vector<std::string>{"v1", "v2"}));
  // No record lost across the swaps: stored + dead letters = sent, and the files hold them all.
  auto sum = nlohmann::json::parse(ReadAll(summary));
  const int64_t sent = sum["sent"].get<int64_t>();
  EXPECT_GT(sent, 3 * 3600 * 3);
  EXPECT_EQ(sum["stored"].get<int64_t>() + sum["dead_letter"].get<int64_t>(), sent) << sum.dump();
  auto rows = Query(data,
                    "SELECT model_version, count(*) AS n, min(epoch(timestamp)) AS t FROM sensor_readings WHERE "
                    "timestamp >= to_timestamp(" +
                        std::to_string(t_live) + ") GROUP BY 1 ORDER BY t");
  int64_t stored = 0;
  std::map<std::string, int64_t> by_model;
  for (auto& row : rows) {
    stored += row["n"].get<int64_t>();
    by_model[row["model_version"].get<std::string>()] = row["n"].get<int64_t>();
  }
  auto dead = Query(data, "SELECT count(*) AS n FROM dead_letters");
  EXPECT_EQ(stored + (dead.empty() ? 0 : dead[0]["n"].get<int64_t>()), sent) << rows.dump();
  EXPECT_GT(by_model["lstm-ae-v1"], 0) << rows.dump();
  EXPECT_GT(by_model["lstm-ae-v2"], 0) << rows.dump();
  auto db = Duck::Open("", 1);
  ASSERT_TRUE(db.ok()) << db.status().message();
  auto sh =
      (*db)->Query("SELECT DISTINCT shadow_model_version FROM read_parquet('" + data + "/shadow_scores/*.parquet')");
  ASSERT_TRUE(sh.ok()) << sh.status().message();
  ASSERT_EQ(sh->rows.size(), 1u);
  EXPECT_EQ(sh->rows[0][0].value_or(""), "lstm-ae-v2");
}

}  // namespace
}  // namespace iotpipe::testing
