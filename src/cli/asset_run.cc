#include "cli/asset_run.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "cli/common.h"
#include "core/clock.h"
#include "core/fsutil.h"
#include "detect/asset.h"
#include "sinks/alerts.h"
#include "sinks/asset_store.h"

namespace iotpipe::cli {

void AssetArgs::Add(CLI::App* app) {
  app->add_option(
      "--assets", assets_file,
      "TOML file of assets: one key per asset, name = [\"sensor id\", ...] (records may also carry asset_id)");
  app->add_option(
         "--asset-detector", detector,
         "Multivariate detector for assets: pca (T² + Q on each tick's joint vector, with attribution) or none")
      ->check(CLI::IsMember({"", "pca", "none"}));
  app->add_option("--asset-tick", tick_s, "Seconds of event time that align an asset's readings into one vector")
      ->check(CLI::Range(0.001, 86400.0));
  app->add_option("--asset-window", window, "Normal vectors the asset PCA is fit on (warm-up length, sliding)")
      ->check(CLI::Range(16, 100000));
  app->add_option("--asset-stat", stat,
                  "Asset statistic: q (SPE: broken correlations) or t2q (also T²: unusual operating points)")
      ->check(CLI::IsMember({"q", "t2q"}));
}

struct AssetRun::Impl {
  AssetArgs args;
  std::string data_dir;
  bool enabled = false;
  AssetMap map;
  Pipeline* p = nullptr;
  std::unique_ptr<AssetScorer> scorer;
  std::unique_ptr<AssetScoreStore> store;
  Interner alert_names{1u << 16}, alert_types{1u << 16}, alert_models{16};
  std::unique_ptr<AlertManager> alerts;
  std::vector<AssetScore> out;
  ReadingBatch ab;
  int64_t predicted = 0, truth = 0, tp = 0, attributed = 0;
  bool failed = false;
  // Checkpoint of the asset state beside the detector's (state/assets.ckpt), on the same schedule.
  std::string ckpt_path;
  int64_t ckpt_every_us = 0, last_ckpt_mono = 0;
  size_t restored = 0;
  std::unique_ptr<Sink> sink;

  void SaveCheckpoint() {
    if (ckpt_path.empty() || !scorer || scorer->assets() == 0) return;  // no assets: no file
    Status s = MakeDirs(ParentDir(ckpt_path));
    if (s.ok()) s = WriteFileAtomic(ckpt_path, scorer->Snapshot());
    // Not fatal, like the detector's: the data path does not depend on it.
    if (!s.ok()) spdlog::warn("cannot write asset checkpoint {}: {}", ckpt_path, s.message());
    last_ckpt_mono = MonoMicros();
  }
  void MaybeCheckpoint() {
    if (ckpt_path.empty() || ckpt_every_us <= 0) return;
    if (MonoMicros() - last_ckpt_mono >= ckpt_every_us) SaveCheckpoint();
  }

  void Handle(int64_t processing_ts_us) {
    if (out.empty()) return;
    for (const auto& s : out) {
      predicted += s.predicted;
      truth += s.gt;
      tp += s.predicted && s.gt;
      attributed += s.predicted && s.gt && s.top_channel == s.gt_channel;
    }
    if (!store) {
      AssetStoreOptions so;
      so.data_dir = data_dir;
      store = std::make_unique<AssetScoreStore>(so);
      Status st = store->Open();
      if (!st.ok()) {
        spdlog::error("asset scores: {}", st.message());
        failed = true;
      }
    }
    if (!failed) {
      Status st = store->Append(out, *scorer, &p->dicts().types, processing_ts_us);
      if (!st.ok()) {
        spdlog::error("asset scores: {}", st.message());
        failed = true;
      }
    }
    // Asset alerts: one alert stream per asset ("asset:<name>"), type = the top channel when it opened.
    while (alert_names.size() < scorer->assets()) alert_names.Intern("asset:" + scorer->AssetName(alert_names.size()));
    ab.Clear();
    for (const auto& s : out) {
      uint16_t ty = ReadingBatch::kNoType;
      if (s.predicted && s.top_channel >= 0) {
        uint32_t t = alert_types.Intern("top_channel=" + scorer->ChannelName(s.asset, s.top_channel));
        if (t != Interner::kNone && t < ReadingBatch::kNoType) ty = static_cast<uint16_t>(t);
      }
      ab.Push(s.asset, s.tick_us, s.severity, s.gt, ty);
      ab.score.back() = s.score;
      ab.predicted.back() = s.predicted;
    }
    alerts->OnBatch(ab);
    out.clear();
  }
};

AssetRun::AssetRun(const AssetArgs& args, std::string data_dir) : impl_(std::make_unique<Impl>()) {
  impl_->args = args;
  impl_->data_dir = std::move(data_dir);
}

AssetRun::~AssetRun() = default;

Status AssetRun::Configure(const PipelineOptions& po) {
  Impl& m = *impl_;
  m.enabled = m.args.detector != "none";
  if (!m.args.assets_file.empty()) {
    if (!m.enabled) return Status::Error("--assets needs an asset detector (--asset-detector pca)");
    auto map = AssetMap::FromTomlFile(m.args.assets_file);
    if (!map.ok()) return Status::Error("--assets: " + map.status().message());
    m.map = std::move(map.value());
  }
  if (!m.enabled) return Status::OK();
  if (!po.checkpoint_path.empty()) {
    m.ckpt_path = ParentDir(po.checkpoint_path) + "/assets.ckpt";
    m.ckpt_every_us = static_cast<int64_t>(po.checkpoint_interval_s * 1e6);
  }
  Impl* im = impl_.get();
  m.sink = MakeObserver([im](const ProcessedBatch& b) {
    if (!im->scorer) return Status::OK();
    im->scorer->OnBatch(b.readings, &im->out);
    im->Handle(b.readings.processing_ts_us);
    im->MaybeCheckpoint();
    return Status::OK();
  });
  return Status::OK();
}

Sink* AssetRun::sink() { return impl_->sink.get(); }

Status AssetRun::Start(Pipeline& p, const AlertOptions& alerts) {
  Impl& m = *impl_;
  if (!m.enabled) return Status::OK();
  m.p = &p;
  AssetOptions ao;
  ao.tick_us = static_cast<int64_t>(m.args.tick_s * 1e6);
  ao.window = m.args.window;
  ao.pca.t2_weight = m.args.stat == "t2q" ? 1.0 : 0.0;
  m.scorer = std::make_unique<AssetScorer>(ao, &p.dicts().sensors, &p.dicts().assets);
  if (!m.map.assets.empty()) {
    Status s = m.scorer->SetMap(m.map);
    if (!s.ok()) return Status::Error("--assets: " + s.message());
  }
  if (!m.ckpt_path.empty() && std::filesystem::exists(m.ckpt_path)) {
    auto data = ReadFile(m.ckpt_path);
    Result<size_t> r = data.ok() ? m.scorer->Restore(data.value()) : Result<size_t>(data.status());
    if (r.ok()) {
      m.restored = r.value();
      spdlog::info("restored the state of {} assets from {}", m.restored, m.ckpt_path);
    } else {
      spdlog::warn("not restoring asset state from {}: {}", m.ckpt_path, r.status().message());
    }
  }
  m.last_ckpt_mono = MonoMicros();
  m.alert_models.Intern("asset-pca");
  AlertOptions al = alerts;  // the run's quiet period and webhook
  al.data_dir = m.data_dir;
  al.file_prefix = "asset-alerts";
  al.close_after_normal = 5;  // per joint vector (one a tick), not per reading
  al.group_by = "sensor";     // already one stream per asset ("asset:<name>")
  al.min_points = 1;          // ticks, not readings: the asset detector's own decision
  al.min_duration_s = 0;
  m.alerts = std::make_unique<AlertManager>(al, &m.alert_names, &m.alert_types, &m.alert_models);
  return Status::OK();
}

nlohmann::json AssetRun::Finish() {
  Impl& m = *impl_;
  if (!m.enabled || !m.scorer) return nullptr;
  m.SaveCheckpoint();  // before the end-of-stream flush: a restart continues the open ticks
  m.scorer->Flush(&m.out);
  m.Handle(RealClock::Get()->NowMicros());
  if (m.store) {
    Status s = m.store->Close();
    if (!s.ok()) spdlog::error("asset scores: {}", s.message());
  }
  m.alerts->Stop(1);
  const auto& c = m.scorer->counters();
  size_t bytes = 0, chans = 0;
  for (uint32_t a = 0; a < m.scorer->assets(); a++) {
    bytes = std::max(bytes, m.scorer->state_bytes(a));
    chans = std::max(chans, m.scorer->channels(a));
  }
  const double prec = m.predicted ? static_cast<double>(m.tp) / static_cast<double>(m.predicted) : 0;
  const double rec = m.truth ? static_cast<double>(m.tp) / static_cast<double>(m.truth) : 0;
  nlohmann::json j = {
      {"assets", m.scorer->assets()},
      {"max_channels", chans},
      {"readings", c.readings},
      {"vectors", c.vectors},
      {"scored", c.scored},
      {"partial", c.partial},
      {"incomplete", c.incomplete},
      {"warmup", c.warmup},
      {"late", c.late},
      {"refits", c.refits},
      {"true_vectors", m.truth},
      {"predicted_vectors", m.predicted},
      {"tp", m.tp},
      {"precision", prec},
      {"recall", rec},
      {"f1", prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0.0},
      {"attribution_correct", m.tp ? static_cast<double>(m.attributed) / static_cast<double>(m.tp) : 0.0},
      {"state_bytes_per_asset", bytes},
      {"rows_written", m.store ? m.store->rows_written() : 0},
      {"restored_assets", m.restored},
      {"alerts_opened", m.alerts->counters().opened.load()},
      {"alerts_webhook_sent", m.alerts->counters().webhook_sent.load()},
      {"alerts_webhook_failed", m.alerts->counters().webhook_failed.load()}};
  if (m.scorer->assets() > 0)
    std::fprintf(stderr,
                 "[iotpipe] assets: %zu (up to %zu channels), %lld vectors scored (%lld partial, %lld skipped, %lld "
                 "warm-up, %lld late readings); anomalous vectors: %lld true, %lld predicted, precision %.4f recall "
                 "%.4f; top channel right in %.0f%% of hits; state %zu B per asset\n",
                 m.scorer->assets(), chans, static_cast<long long>(c.scored), static_cast<long long>(c.partial),
                 static_cast<long long>(c.incomplete), static_cast<long long>(c.warmup), static_cast<long long>(c.late),
                 static_cast<long long>(m.truth), static_cast<long long>(m.predicted), prec, rec,
                 100 * j["attribution_correct"].get<double>(), bytes);
  return j;
}

}  // namespace iotpipe::cli
