// iotpipe train | models | score | monitor: the ML lifecycle commands (thin shells over src/model/ and src/lifecycle/).
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cli/common.h"
#include "core/timeutil.h"
#include "detect/lstm.h"
#include "lifecycle/backfill.h"
#include "lifecycle/watcher.h"
#include "model/model.h"
#include "model/registry.h"
#include "model/train.h"

namespace iotpipe::cli {

static int64_t TimeArg(const std::string& s, const char* flag) {
  auto t = ParseTimeMicros(s);
  if (!t.ok()) Fail(std::string(flag) + ": " + t.status().message(), 2);
  return t.value();
}

void AddTrain(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train an LSTM autoencoder on stored readings and register it");
  auto o = std::make_shared<ml::TrainOptions>();
  auto since = std::make_shared<std::string>("7d");
  auto from = std::make_shared<std::string>(), to = std::make_shared<std::string>();
  auto promote = std::make_shared<std::string>();
  cmd->add_option("--data-dir", o->data_dir, "Data directory");
  cmd->add_option("--model-dir", o->model_dir, "Model registry directory");
  cmd->add_option("--since", *since, "Train on the last span of stored data (e.g. 7d), ending at the newest row");
  cmd->add_option("--from", *from, "Span start (ISO 8601 or epoch seconds); with --to");
  cmd->add_option("--to", *to, "Span end");
  cmd->add_option("--window", o->window, "Window length (readings)");
  cmd->add_option("--hidden", o->hidden, "LSTM hidden size (multiple of 16)");
  cmd->add_option("--epochs", o->epochs, "Maximum epochs (early stopping on validation loss)");
  cmd->add_option("--patience", o->patience, "Epochs without improvement before stopping");
  cmd->add_option("--seed", o->seed, "Random seed (training is reproducible for a seed)");
  cmd->add_option("--threads", o->threads, "Threads for reading and calibration");
  cmd->add_option("--torch-threads", o->torch_threads,
                  "LibTorch threads for the training loop (1: no OpenMP spinning)");
  cmd->add_option("--max-windows", o->max_windows, "Cap on training windows (subsampled, see train.h)");
  cmd->add_option("--quantile", o->quantile, "Threshold quantile of validation errors");
  cmd->add_option("--margin", o->margin, "Threshold = margin x quantile");
  cmd->add_option("--version", o->version, "Version name (default: next vN)");
  cmd->add_option("--promote", *promote, "Point this alias (e.g. production) at the new model");
  cmd->add_flag("--keep-anomalies", o->keep_anomalies, "Keep windows with labelled anomalies in training");
  cmd->add_option("--tod-bins", o->tod_bins,
                  "Seasonal scaler: time-of-day bins per sensor (0: plain mean/std, no feature channels)");
  cmd->add_option("--profile-from", o->profile_from,
                  "Model directory whose daily profile fills the time-of-day bins this span does not cover");
  cmd->add_option("--feature-quantile", o->feature_quantile,
                  "Feature-channel threshold quantile of normal validation readings");
  cmd->add_option("--feature-margin", o->feature_margin, "Feature-channel threshold = max(floor, margin x quantile)");
  cmd->callback([o, since, from, to, promote] {
    if (!from->empty() || !to->empty()) {
      if (from->empty() || to->empty()) Fail("--from and --to go together", 2);
      o->from_us = TimeArg(*from, "--from");
      o->to_us = TimeArg(*to, "--to");
    } else {
      auto d = ParseDurationMicros(*since);
      if (!d.ok()) Fail("--since: " + d.status().message(), 2);
      o->since_us = d.value();
    }
    auto r = ml::Train(*o);
    if (!r.ok()) Fail("train: " + r.status().message());
    std::printf(
        "trained %s: %zu sensors, %lld rows, %zu training / %zu validation windows, %d epochs, val loss %.5f, %.1f s "
        "-> %s\n",
        r->version.c_str(), r->sensors, static_cast<long long>(r->rows), r->train_windows, r->val_windows,
        r->epochs_run, r->best_val_loss, r->seconds, r->dir.c_str());
    if (!promote->empty()) {
      Check(ml::Registry(o->model_dir).Promote(r->version, *promote), "promote");
      std::printf("%s -> %s\n", promote->c_str(), r->version.c_str());
    }
    Exit(0);
  });
}

void AddModels(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "Model registry: list, show, promote, rollback");
  cmd->require_subcommand(1);
  auto dir = std::make_shared<std::string>("models");
  cmd->add_option("--model-dir", *dir, "Model registry directory");
  auto* list = cmd->add_subcommand("list", "List model versions and their aliases");
  auto json = std::make_shared<bool>(false);
  list->add_flag("--json", *json, "JSON array of {version, created, aliases, valid}");
  list->callback([dir, json] {
    auto v = ml::Registry(*dir).List(true);
    if (*json) {
      nlohmann::json a = nlohmann::json::array();
      for (auto& m : v) {
        nlohmann::json o = {{"version", m.version}, {"created", m.created}, {"aliases", m.aliases}, {"valid", m.valid}};
        if (!m.valid) o["error"] = m.error;
        if (m.card.is_object() && m.card.contains("best_val_loss")) o["val_loss"] = m.card["best_val_loss"];
        a.push_back(o);
      }
      std::printf("%s\n", a.dump(2).c_str());
    } else {
      std::printf("%-8s %-28s %-20s %s\n", "version", "created", "aliases", "status");
      for (auto& m : v) {
        std::string al;
        for (auto& a : m.aliases) al += (al.empty() ? "" : ",") + a;
        std::printf("%-8s %-28s %-20s %s\n", m.version.c_str(), m.created.c_str(), al.c_str(),
                    m.valid ? "ok" : ("INVALID: " + m.error).c_str());
      }
    }
    Exit(0);
  });
  auto* show = cmd->add_subcommand("show", "Print a model's card (version or alias)");
  auto ver = std::make_shared<std::string>();
  show->add_option("version", *ver, "Version or alias")->required();
  show->callback([dir, ver] {
    auto d = ml::Registry(*dir).Resolve(*ver);
    if (!d.ok()) Fail(d.status().message());
    auto m = ml::Model::Load(d.value());
    if (!m.ok()) Fail(m.status().message());
    nlohmann::json j = m->card;
    j["config"] = m->config;
    j["evaluations"] = ml::Registry(*dir).Evaluations(m->version);
    std::printf("%s\n", j.dump(2).c_str());
    Exit(0);
  });
  auto* prom = cmd->add_subcommand("promote", "Point an alias (default production) at a version");
  auto pv = std::make_shared<std::string>();
  auto alias = std::make_shared<std::string>("production");
  prom->add_option("version", *pv, "Version")->required();
  prom->add_option("--alias", *alias, "Alias: production or shadow (or any name)");
  auto force = std::make_shared<bool>(false);
  prom->add_flag("--force", *force, "Promote even when its evaluation is worse than the current version's");
  prom->callback([dir, pv, alias, force] {
    ml::Registry reg(*dir);
    std::string before = reg.Alias(*alias);
    if (!*force) Check(reg.CheckPromotion(*pv, *alias));
    Check(reg.Promote(*pv, *alias));
    std::printf("%s: %s -> %s\n", alias->c_str(), before.empty() ? "(unset)" : before.c_str(), pv->c_str());
    Exit(0);
  });
  auto* rb = cmd->add_subcommand("rollback", "Point an alias back at its previous version");
  auto ralias = std::make_shared<std::string>("production");
  rb->add_option("--alias", *ralias, "Alias");
  rb->callback([dir, ralias] {
    ml::Registry reg(*dir);
    std::string before = reg.Alias(*ralias);
    auto r = reg.Rollback(*ralias);
    if (!r.ok()) Fail(r.status().message());
    std::printf("%s: %s -> %s\n", ralias->c_str(), before.c_str(), r->c_str());
    Exit(0);
  });
}

void AddScore(CLI::App& app) {
  auto* cmd = app.add_subcommand("score", "Backfill: re-score stored readings with a pinned model version");
  auto o = std::make_shared<ml::ScoreOptions>();
  auto from = std::make_shared<std::string>(), to = std::make_shared<std::string>();
  auto mode = std::make_shared<std::string>("auto");
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--data-dir", o->data_dir, "Data directory");
  cmd->add_option("--model-dir", o->model_dir, "Model registry directory");
  cmd->add_option("--model", o->model, "Version or alias")->required();
  cmd->add_option("--detector", *mode, "lstm|auto|ensemble");
  cmd->add_option("--from", *from, "Span start");
  cmd->add_option("--to", *to, "Span end");
  cmd->add_option("--out", o->out_dir, "Output directory (default DATA/scores/<version>)");
  cmd->add_option("--threads", o->threads, "Inference threads");
  cmd->add_flag("--json", *json, "Print the result as JSON");
  cmd->callback([o, from, to, mode, json] {
    auto m = ParseLstmMode(*mode);
    if (!m.ok()) Fail(m.status().message(), 2);
    o->mode = m.value();
    if (!from->empty()) o->from_us = TimeArg(*from, "--from");
    if (!to->empty()) o->to_us = TimeArg(*to, "--to");
    if (from->empty() != to->empty()) Fail("--from and --to go together", 2);
    auto r = ml::Backfill(*o);
    if (!r.ok()) Fail("score: " + r.status().message());
    nlohmann::json j = {{"version", r->version},
                        {"rows", r->rows},
                        {"predicted", r->predicted},
                        {"output", r->file},
                        {"evaluation", r->evaluation}};
    if (*json)
      std::printf("%s\n", j.dump(2).c_str());
    else
      std::printf("scored %lld rows with %s: %lld predicted anomalies -> %s\n%s\n", static_cast<long long>(r->rows),
                  r->version.c_str(), static_cast<long long>(r->predicted), r->file.c_str(),
                  r->evaluation.dump(2).c_str());
    Exit(0);
  });
}

void AddMonitor(CLI::App& app) {
  auto* cmd = app.add_subcommand("monitor", "Drift of recent reconstruction errors vs the model's validation errors");
  auto o = std::make_shared<ml::DriftOptions>();
  auto window = std::make_shared<std::string>("1h");
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--data-dir", o->data_dir, "Data directory");
  cmd->add_option("--model-dir", o->model_dir, "Model registry directory");
  cmd->add_option("--model", o->model, "Version or alias");
  cmd->add_option("--window", *window, "Recent span to compare (e.g. 1h)");
  cmd->add_option("--psi-limit", o->psi_limit, "PSI above which the errors count as drifted");
  cmd->add_option("--ks-limit", o->ks_limit, "KS statistic above which the errors count as drifted");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([o, window, json] {
    auto d = ParseDurationMicros(*window);
    if (!d.ok()) Fail("--window: " + d.status().message(), 2);
    o->window_us = d.value();
    auto r = ml::MonitorDrift(*o);
    if (!r.ok()) Fail("monitor: " + r.status().message());
    if (*json)
      std::printf("%s\n", r->ToJson().dump(2).c_str());
    else
      std::printf("%s", r->ToText().c_str());
    Exit(r->drifted ? 3 : 0);
  });
}

std::shared_ptr<void> StartModelWatcher(Pipeline& p, const PipelineArgs& args) {
  auto mode = ParseLstmMode(args.detector);
  if (!mode.ok()) return nullptr;
  ml::Registry reg(args.model_dir);
  std::string cur = reg.Alias(args.model);
  if (cur.empty()) return nullptr;  // a pinned version: nothing to watch
  Processor* proc = &p.processor();
  auto w = std::make_shared<ml::ModelWatcher>(
      args.model_dir, args.model, cur, mode.value(), 1,
      [proc](std::shared_ptr<const Detector> d) { proc->SetDetector(std::move(d)); });
  w->Start();
  return w;
}

}  // namespace iotpipe::cli
