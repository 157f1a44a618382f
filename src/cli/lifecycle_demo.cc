// iotpipe lifecycle-demo: the whole ML lifecycle in minutes on simulated time, in one process.
//
//   1 history   a week (--history) of the realistic profile at one reading/s per sensor, --rate max,
//               stored by the embedded pipeline (baseline detector)
//   2 train     LSTM autoencoder on the history -> v1, promoted to production
//   3 live      --phase-a of live scoring with v1 (drift monitor on): no drift expected
//   4 change    a regime change from the start of phase B (every sensor: level + shift x noise sd,
//               deviations x scale), --phase-b of live scoring with v1: drift expected
//   5 retrain   on phase B's stored data -> v2, under the `shadow` alias
//   6 shadow    --phase-c of live scoring: v1 in production, v2 in shadow (own window state);
//               production vs shadow compared on the rows both scored; v2 promoted if as good
//   7 after     --phase-d with the new production model: drift back under the limits
// Every step prints its figures; --json writes them for the end-to-end test.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "cli/ml_run.h"
#include "core/fsutil.h"
#include "core/timeutil.h"
#include "detect/lstm.h"
#include "lifecycle/retrain.h"
#include "model/model.h"
#include "model/registry.h"

namespace iotpipe::cli {

namespace {

namespace fs = std::filesystem;

struct DemoArgs {
  uint32_t sensors = 8;
  std::string workdir = "lifecycle-demo";
  std::string history = "7d", phase_a = "2h", phase_b = "6h", phase_c = "2h", phase_d = "1h";
  uint64_t seed = 7;
  double shift = 8, scale = 1.5;
  int epochs = 6, hidden = 16, window = 32;
  // Seasonal scaler: the drift monitor compares errors of seasonal-residual windows, whose
  // distribution does not depend on the time of day (a plain scaler's errors do, so a 2-hour slice
  // differs from whole-day validation errors with no change at all). The retraining covers hours,
  // not a day: its profile is completed from v1's (TrainOptions::profile_from).
  int tod_bins = 96;
  size_t max_windows = 6000;
  std::string json;
};

int64_t Dur(const std::string& s, const char* flag) {
  auto d = ParseDurationMicros(s);
  if (!d.ok()) Fail(std::string(flag) + ": " + d.status().message(), 2);
  return d.value();
}

struct Phase {
  int64_t rows = 0, predicted = 0;
  double seconds = 0;
  ml::DriftSnapshot drift;
};

// One pipeline run over [start, start + span) of simulated time.
Phase RunPhase(const DemoArgs& a, const std::string& data, const std::string& models, const std::string& detector,
               int64_t start_us, int64_t span_us, int64_t regime_from_us) {
  SimSourceOptions so;
  so.sim.sensors = a.sensors;
  so.sim.profile = Profile::kRealistic;
  so.sim.seed = a.seed;
  so.sim.start_us = start_us;
  so.sim.interval_s = 1.0;
  so.sim.regime_from_us = regime_from_us;
  so.sim.regime_shift = a.shift;
  so.sim.regime_scale = a.scale;
  so.realtime = false;
  so.max_steps = span_us / 1000000;
  SimSource src(so, RealClock::Get());
  PipelineArgs pa;
  pa.data_dir = data;
  pa.detector = detector;
  pa.model_dir = models;
  pa.model = "production";
  pa.quiet = true;
  DetectorOptions dopt;
  dopt.model_dir = models;
  auto det = MakeDetector(detector, dopt);
  if (!det.ok()) Fail(det.status().message());
  PipelineOptions po;
  po.store.data_dir = data;
  po.progress_interval_s = 0;
  po.checkpoint_path = data + "/state/detector-" + detector + ".ckpt";
  MlRun ml(pa);
  Pipeline p(&src, std::shared_ptr<const Detector>(std::move(det.value())), po, RealClock::Get());
  Check(ml.Start(p), "", 2);
  if (ml.sink()) p.AddSink(ml.sink());  // drift monitor, shadow scores
  Status s = p.Run(g_stop);
  Check(s, "pipeline");
  Phase ph;
  if (ml.monitor()) {
    ml.monitor()->Evaluate();
    ph.drift = ml.monitor()->Get();
  }
  ml.Finish();
  ph.rows = static_cast<int64_t>(p.store_stats().rows);
  ph.predicted = p.metrics().predicted.load();
  ph.seconds = p.elapsed_s();
  if (g_stop.load()) Fail("interrupted", 130);
  return ph;
}

nlohmann::json DriftJson(const ml::DriftSnapshot& d) { return d.ToJson(); }

void PrintDrift(const char* what, const Phase& p) {
  const auto& d = p.drift;
  std::printf(
      "  %s: %lld rows in %.1f s; model %s; error PSI %.3f KS %.3f, input PSI %.3f KS %.3f, "
      "alert rate %.4f, rolling point F1 %.3f -> %s\n",
      what, static_cast<long long>(p.rows), p.seconds, d.version.c_str(), d.psi, d.ks, d.input_psi, d.input_ks,
      d.alert_rate, d.f1, d.drifted ? "DRIFT" : "no drift");
  std::fflush(stdout);
}

}  // namespace

void AddLifecycleDemo(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "lifecycle-demo",
      "The ML lifecycle on simulated time: history, train, deploy, regime change, drift, retrain, shadow, promote");
  auto a = std::make_shared<DemoArgs>();
  cmd->add_option("--sensors", a->sensors, "Simulated sensors")->check(CLI::Range(1u, 1000u));
  cmd->add_option("--workdir", a->workdir,
                  "Directory for data/ and models/ (must be new, empty, or a previous demo's)");
  cmd->add_option("--history", a->history, "Simulated history to train on");
  cmd->add_option("--phase-a", a->phase_a, "Live scoring before the regime change");
  cmd->add_option("--phase-b", a->phase_b, "Live scoring after the change (then retraining on it)");
  cmd->add_option("--phase-c", a->phase_c, "Shadow scoring of the retrained model");
  cmd->add_option("--phase-d", a->phase_d, "Live scoring after the promotion");
  cmd->add_option("--seed", a->seed, "Simulator and training seed");
  cmd->add_option("--shift", a->shift, "Regime change: level shift in units of each sensor's noise sd");
  cmd->add_option("--scale", a->scale, "Regime change: factor on deviations from each sensor's baseline");
  cmd->add_option("--epochs", a->epochs, "Training epochs (early stopping)");
  cmd->add_option("--hidden", a->hidden, "LSTM hidden size (multiple of 16)");
  cmd->add_option("--max-windows", a->max_windows, "Training windows cap");
  cmd->add_option("--tod-bins", a->tod_bins, "Seasonal scaler bins for both trainings (0: plain mean/sd scaler)");
  cmd->add_option("--json", a->json, "Write every step's figures as JSON to this file");
  cmd->callback([a] {
    InstallSignalHandlers();
    const fs::path wd(a->workdir);
    std::error_code ec;
    if (fs::exists(wd) && !fs::is_empty(wd, ec) && !fs::exists(wd / ".lifecycle-demo"))
      Fail("--workdir " + a->workdir + " is not empty and not a previous demo's; choose a new directory", 2);
    fs::remove_all(wd / "data", ec);
    fs::remove_all(wd / "models", ec);
    Check(MakeDirs(a->workdir), "--workdir");
    { std::ofstream(wd / ".lifecycle-demo") << "iotpipe lifecycle-demo workdir\n"; }
    const std::string data = (wd / "data").string(), models = (wd / "models").string();
    const int64_t hist = Dur(a->history, "--history"), pa = Dur(a->phase_a, "--phase-a"),
                  pb = Dur(a->phase_b, "--phase-b"), pc = Dur(a->phase_c, "--phase-c"),
                  pd = Dur(a->phase_d, "--phase-d");
    const int64_t t0 = 1730419200LL * 1000000;  // 2024-11-01T00:00:00Z
    const int64_t t_live = t0 + hist, t_change = t_live + pa, t_shadow = t_change + pb, t_after = t_shadow + pc;
    nlohmann::json out = {{"sensors", a->sensors}, {"workdir", a->workdir}};
    const int64_t wall0 = MonoMicros();
    auto phase_json = [](const Phase& p) {
      return nlohmann::json{
          {"rows", p.rows}, {"predicted", p.predicted}, {"seconds", p.seconds}, {"drift", DriftJson(p.drift)}};
    };

    std::printf(
        "1. history: %s of the realistic profile, %u sensors, one reading/s each, simulated as fast as possible\n",
        a->history.c_str(), a->sensors);
    std::fflush(stdout);
    Phase h = RunPhase(*a, data, models, "baseline", t0, hist, 0);
    std::printf("  stored %lld rows in %.1f s (%.0f rows/s)\n", static_cast<long long>(h.rows), h.seconds,
                h.seconds > 0 ? static_cast<double>(h.rows) / h.seconds : 0.0);
    out["history"] = {{"rows", h.rows}, {"seconds", h.seconds}};

    auto train = [&](int64_t from, int64_t to, const char* label, const std::string& profile_from) {
      ml::TrainOptions to_opt;
      to_opt.data_dir = data;
      to_opt.model_dir = models;
      to_opt.from_us = from;
      to_opt.to_us = to;
      to_opt.window = a->window;
      to_opt.hidden = a->hidden;
      to_opt.epochs = a->epochs;
      to_opt.seed = a->seed;
      to_opt.threads = 1;
      to_opt.torch_threads = 1;
      to_opt.max_windows = a->max_windows;
      to_opt.tod_bins = a->tod_bins;
      to_opt.profile_from = profile_from;
      to_opt.progress = false;
      auto r = ml::Train(to_opt);
      if (!r.ok()) Fail(std::string(label) + ": " + r.status().message());
      auto m = ml::Model::Load(r->dir);
      if (!m.ok()) Fail(m.status().message());
      std::printf(
          "  %s: %lld rows, %zu sensors, %zu training / %zu validation windows, %d epochs, val loss %.5f, "
          "global thresholds e_win %.4f e_last %.4f, %.1f s\n",
          r->version.c_str(), static_cast<long long>(r->rows), r->sensors, r->train_windows, r->val_windows,
          r->epochs_run, r->best_val_loss, m->thresholds.global_win, m->thresholds.global_last, r->seconds);
      std::fflush(stdout);
      return nlohmann::json{{"version", r->version},
                            {"rows", r->rows},
                            {"train_windows", r->train_windows},
                            {"val_windows", r->val_windows},
                            {"epochs", r->epochs_run},
                            {"val_loss", r->best_val_loss},
                            {"threshold_win", m->thresholds.global_win},
                            {"threshold_last", m->thresholds.global_last},
                            {"seconds", r->seconds}};
    };

    std::printf("2. train on the history and deploy\n");
    out["train"] = train(t0, t_live, "train", "");
    const std::string v1 = out["train"]["version"];
    ml::Registry reg(models);
    Check(reg.Promote(v1, "production"), "promote");
    std::printf("  production -> %s\n", v1.c_str());

    std::printf("3. live scoring (detector auto, model %s), %s before any change\n", v1.c_str(), a->phase_a.c_str());
    Phase pA = RunPhase(*a, data, models, "auto", t_live, pa, t_change);
    PrintDrift("before the change", pA);
    out["before_change"] = phase_json(pA);

    std::printf("4. regime change at +%s: every sensor's level %+g noise sd, deviations x %g; %s of live scoring\n",
                a->phase_a.c_str(), a->shift, a->scale, a->phase_b.c_str());
    Phase pB = RunPhase(*a, data, models, "auto", t_change, pb, t_change);
    PrintDrift("after the change", pB);
    out["after_change"] = phase_json(pB);

    std::printf("5. retrain on the %s after the change, register under shadow\n", a->phase_b.c_str());
    out["retrain"] = train(t_change, t_shadow, "retrain", a->tod_bins > 0 ? models + "/" + v1 : "");
    const std::string v2 = out["retrain"]["version"];
    Check(reg.Promote(v2, "shadow"), "promote shadow");
    std::printf("  shadow -> %s\n", v2.c_str());

    std::printf("6. shadow scoring for %s: production %s, shadow %s side by side\n", a->phase_c.c_str(), v1.c_str(),
                v2.c_str());
    Phase pC = RunPhase(*a, data, models, "auto", t_shadow, pc, t_change);
    PrintDrift("production during the shadow period", pC);
    out["shadow_period"] = phase_json(pC);
    bool promoted = false;
    auto cmp = ml::DecideShadow(data, models, v2, &promoted, 1000);
    if (!cmp.ok()) Fail("shadow comparison: " + cmp.status().message());
    std::printf("%s", cmp->ToText().c_str());
    std::printf("  %s\n", promoted ? ("promoted: production -> " + v2 + " (" + v1 + " kept for rollback)").c_str()
                                   : ("kept: production stays " + v1).c_str());
    out["comparison"] = cmp->ToJson();
    out["promoted"] = promoted;

    std::printf("7. live scoring with production %s for %s\n", reg.Alias("production").c_str(), a->phase_d.c_str());
    Phase pD = RunPhase(*a, data, models, "auto", t_after, pd, t_change);
    PrintDrift("after the promotion", pD);
    out["after_promotion"] = phase_json(pD);

    nlohmann::json aliases = nlohmann::json::object();
    for (const char* al : {"production", "shadow"}) aliases[al] = reg.Alias(al);
    out["aliases"] = aliases;
    out["production_history"] = reg.History("production");
    nlohmann::json versions = nlohmann::json::array();
    for (auto& m : reg.List(false)) versions.push_back(m.version);
    out["versions"] = versions;
    out["seconds"] = static_cast<double>(MonoMicros() - wall0) / 1e6;
    std::printf("done in %.1f s: versions %s, production %s (history %s), shadow %s\n", out["seconds"].get<double>(),
                versions.dump().c_str(), reg.Alias("production").c_str(), out["production_history"].dump().c_str(),
                reg.Alias("shadow").c_str());
    if (!a->json.empty()) WriteJson(a->json, out.dump(2));
    Exit(0);
  });
}

}  // namespace iotpipe::cli
