#include "pipeline/pipeline.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/fsutil.h"
#include "pipeline/offset_ledger.h"
#include "pipeline/stages.h"
#include "sources/partitioned.h"

namespace iotpipe {

std::string FormatCount(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// The pipeline's side of a partitioned source's rebalances: the ledger plus the drain handshake.
class Pipeline::Listener final : public PartitionListener {
 public:
  explicit Listener(OffsetLedger* ledger) : ledger_(ledger) {}
  Result<int64_t> Recover(int32_t partition) override { return ledger_->Recover(partition); }
  void Assigned(const std::set<int32_t>& parts) override {
    ledger_->LoadStates(parts, [this] { return drain.Drain(); });
  }
  bool Revoking(const std::set<int32_t>& parts) override {
    if (!drain.Drain()) return false;
    ledger_->SaveStates(parts);  // the state of their sensors goes with the partitions, as of the marker
    return true;
  }
  OffsetMap Committed() const override { return ledger_->ReadMarkers(); }
  DrainGate drain;

 private:
  OffsetLedger* ledger_;
};

Pipeline::Pipeline(Source* source, std::shared_ptr<const Detector> det, PipelineOptions opt, Clock* clock)
    : src_(source), opt_(std::move(opt)), clock_(clock) {
  proc_ = std::make_unique<Processor>(&dicts_, std::move(det), &m_, clock_);
}

Pipeline::~Pipeline() = default;

void Pipeline::AddSink(Sink* sink, bool before_store) { (before_store ? before_store_ : after_store_).push_back(sink); }

Status Pipeline::RestoreCheckpoints() {
  if (opt_.checkpoint_path.empty()) return Status::OK();
  Env* env = opt_.store.env;
  if (!dynamic_cast<PartitionedSource*>(src_)) {  // partitioned sources keep state per partition
    const std::string id_path = opt_.checkpoint_path + ".source", id = src_->Describe() + "\n";
    auto before = env->ReadFile(id_path);
    if (before.ok() && before.value() != id && env->FileExists(opt_.checkpoint_path)) {
      std::string was = before.value();
      while (!was.empty() && was.back() == '\n') was.pop_back();
      if (!opt_.adopt_state)
        return Status::InvalidArgument("the detector state in " + opt_.checkpoint_path + " came from " + was +
                                       ", not from " + src_->Describe() +
                                       ": --no-checkpoint starts fresh, --adopt-state continues from it");
      spdlog::warn("adopting the detector state of {} for {} (--adopt-state)", was, src_->Describe());
    }
    Status w = MakeDirs(env, std::filesystem::path(id_path).parent_path().string());
    if (w.ok()) w = WriteFileAtomic(env, id_path, id);
    if (!w.ok()) return w.Prefixed("recording the source of the detector state");
  }
  Status s = proc_->LoadCheckpoint(opt_.checkpoint_path);
  if (s.ok())
    spdlog::info("restored detector state of {} sensors from {}", dicts_.sensors.size(), opt_.checkpoint_path);
  else if (std::filesystem::exists(opt_.checkpoint_path))
    spdlog::warn("not restoring detector state: {}", s.message());
  if (!proc_->shadow()) return Status::OK();
  const std::string sp = opt_.checkpoint_path + ".shadow";
  s = proc_->LoadCheckpoint(sp, true);
  if (s.ok())
    spdlog::info("restored shadow detector state from {}", sp);
  else if (std::filesystem::exists(sp))
    spdlog::warn("not restoring shadow detector state: {}", s.message());
  return Status::OK();
}

// Opens the store (named by the source's positions, if it has them) and lists the sinks in write order.
Status Pipeline::Prepare(std::unique_ptr<ParquetStore>* store, std::vector<Sink*>* sinks) {
  if (opt_.env) opt_.store.env = opt_.env;
  if (!opt_.store.env) opt_.store.env = Env::Default();
  if (auto* ps = dynamic_cast<PartitionedSource*>(src_)) {
    ledger_ =
        std::make_unique<OffsetLedger>(opt_.store.data_dir, ps->position_names(), proc_.get(), &dicts_, opt_.store.env);
    listener_ = std::make_unique<Listener>(ledger_.get());
    opt_.store.position_files = ledger_->names().files;
    opt_.store.source_label = ledger_->names().label;
    opt_.store.committed = ledger_->committed();
    OffsetLedger* l = ledger_.get();
    opt_.store.committed_now = [l] { return l->ReadMarkers(); };
  }
  if (!opt_.store.e2e_latency) opt_.store.e2e_latency = &m_.e2e_seconds;
  *sinks = before_store_;
  if (opt_.with_store) {
    auto r = ParquetStore::Open(opt_.store, &dicts_.sensors, &dicts_.types, &dicts_.models);
    if (!r.ok()) return r.status();
    *store = std::move(r.value());
    sinks->push_back(store->get());
    sensors_ =
        std::make_unique<SensorsSink>(opt_.store.data_dir, &dicts_.sensors, opt_.store.env, 10'000'000, (*store)->db());
    sinks->push_back(sensors_.get());
  }
  sinks->insert(sinks->end(), after_store_.begin(), after_store_.end());
  return Status::OK();
}

namespace {
// The partition ledger observes every batch (which partition each sensor's readings came on).
class LedgerObserver final : public Sink {
 public:
  explicit LedgerObserver(OffsetLedger* l) : l_(l) {}
  Status Write(const ProcessedBatch& b) override {
    l_->Observe(b);
    return Status::OK();
  }

 private:
  OffsetLedger* l_;
};
}  // namespace

Status Pipeline::Run(const std::atomic<bool>& stop) {
  std::unique_ptr<ParquetStore> store;
  std::vector<Sink*> sinks;
  Status st = Prepare(&store, &sinks);
  if (!st.ok()) return st;
  LedgerObserver observe(ledger_.get());
  if (ledger_) sinks.insert(sinks.begin(), &observe);
  auto hook = [this](const ProcessedBatch& b) {
    opt_.on_batch(b);
    return Status::OK();
  };
  FnSink<decltype(hook)> on_batch(hook);
  if (opt_.on_batch) sinks.push_back(&on_batch);
  st = RestoreCheckpoints();
  if (!st.ok()) return st;
  auto* partitioned = dynamic_cast<PartitionedSource*>(src_);
  if (partitioned) partitioned->SetPartitionListener(listener_.get());
  st = src_->Start();
  if (!st.ok()) {
    if (partitioned) partitioned->SetPartitionListener(nullptr);
    return st;
  }
  StageShared sh(opt_.queue_depth);
  sh.now = [c = opt_.mono] { return c ? c->NowMicros() : MonoMicros(); };
  CheckpointHandoff ckpt(opt_.checkpoint_path, opt_.checkpoint_interval_s, opt_.store.env);
  const int64_t t_start = sh.now();
  SourceStage source_stage(src_, &sh, &m_, opt_.batch_size);
  ProcessStage process_stage(proc_.get(), &sh, &m_, &ckpt);
  SinkStageDeps deps{src_,
                     partitioned,
                     ledger_.get(),
                     store.get(),
                     sinks,
                     listener_ ? &listener_->drain : nullptr,
                     &ckpt,
                     opt_.progress,
                     opt_.progress_interval_s,
                     opt_.queue_depth * 2};
  SinkStage sink_stage(std::move(deps), &sh, &m_);
  std::thread source_thread([&] { source_stage.Run(stop); });
  std::thread proc_thread([&] { process_stage.Run(); });
  st = sink_stage.Run();  // the sink stage runs on this thread
  if (listener_) listener_->drain.Close();
  if (!st.ok()) {
    sh.failed = true;
    sh.q_raw.Close();
    sh.q_done.Close();
  }
  source_thread.join();
  proc_thread.join();
  // Only when a sink failed is anything left in the queues; those rows are not acknowledged.
  if (st.ok()) st = sink_stage.Finish();
  elapsed_s_ = static_cast<double>(sh.now() - t_start) / 1e6;
  if (store) store_stats_ = store->stats();
  Finish(st);
  Status src_st = src_->Stop();  // e.g. a Kafka source that gave up
  if (partitioned) partitioned->SetPartitionListener(nullptr);
  return st.ok() ? src_st : st;
}

// After the stages stopped: the state that follows partitions, and the detector checkpoints.
void Pipeline::Finish(const Status& st) {
  if (auto* ps = dynamic_cast<PartitionedSource*>(src_); ps && ledger_) ledger_->SaveStates(ps->assigned());
  if (opt_.checkpoint_path.empty() || !st.ok()) return;
  Status s = proc_->SaveCheckpoint(opt_.checkpoint_path, false, opt_.store.env);
  if (!s.ok()) spdlog::warn("cannot save detector state: {}", s.message());
  s = proc_->SaveCheckpoint(opt_.checkpoint_path + ".shadow", true, opt_.store.env);
  if (!s.ok()) spdlog::warn("cannot save shadow detector state: {}", s.message());
}

}  // namespace iotpipe
