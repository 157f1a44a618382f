#include "pipeline/stages.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/fsutil.h"
#include "pipeline/offset_ledger.h"
#include "pipeline/pipeline.h"
#include "sources/partitioned.h"

namespace iotpipe {

// ---- DrainGate ---------------------------------------------------------------------------------

bool DrainGate::Drain() {
  std::unique_lock<std::mutex> l(mu_);
  if (gone_) return false;
  const int64_t gen = ++req_;
  cv_.wait(l, [&] { return done_ >= gen || gone_; });
  return done_ >= gen;
}

int64_t DrainGate::Pending() {
  std::lock_guard<std::mutex> l(mu_);
  return req_ > done_ ? req_ : 0;
}

void DrainGate::Done(int64_t request) {
  std::lock_guard<std::mutex> l(mu_);
  done_ = std::max(done_, request);
  cv_.notify_all();
}

void DrainGate::Close() {
  std::lock_guard<std::mutex> l(mu_);
  gone_ = true;
  cv_.notify_all();
}

// ---- CheckpointHandoff -------------------------------------------------------------------------

CheckpointHandoff::CheckpointHandoff(std::string path, double interval_s, Env* env)
    : path_(std::move(path)),
      on_(!path_.empty() && interval_s > 0),
      every_us_(static_cast<int64_t>(interval_s * 1e6)),
      env_(env ? env : Env::Default()) {}

void CheckpointHandoff::MaybeSnapshot(Processor& proc, int64_t now) {
  if (!on_) return;
  if (last_ == 0) last_ = now;
  if (now - last_ < every_us_) return;
  std::string a = proc.SnapshotState(false), b = proc.SnapshotState(true);
  std::lock_guard<std::mutex> l(mu_);
  main_ = std::move(a);
  shadow_ = std::move(b);
  ready_ = true;
  last_ = now;
}

void CheckpointHandoff::WriteReady() {
  if (!on_) return;
  std::string a, b;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!ready_) return;
    a.swap(main_);
    b.swap(shadow_);
    ready_ = false;
  }
  // A failed checkpoint is logged, not fatal: the data path does not depend on it.
  auto write = [env = env_](const std::string& path, const std::string& bytes) {
    if (bytes.empty()) return;
    Status cs = MakeDirs(env, ParentDir(path));
    if (cs.ok()) cs = WriteFileAtomic(env, path, bytes);
    if (!cs.ok()) spdlog::warn("cannot write checkpoint {}: {}", path, cs.message());
  };
  write(path_, a);
  write(path_ + ".shadow", b);
}

// ---- SourceStage / ProcessStage ----------------------------------------------------------------

void SourceStage::Run(const std::atomic<bool>& stop) {
  while (!stop.load() && !sh_->failed.load()) {
    auto rb = sh_->recycle_raw.Pop(std::chrono::milliseconds(0));
    RawBatch b = rb ? std::move(*rb) : RawBatch();
    PollResult r = src_->Poll(b, batch_size_);
    if (r == PollResult::kEnd) break;
    if (r == PollResult::kIdle || b.size() == 0) {
      sh_->recycle_raw.Push(std::move(b));
      continue;
    }
    m_->sent += b.sent;
    m_->queue_raw = static_cast<int64_t>(sh_->q_raw.size());
    sh_->pushed++;
    if (!sh_->q_raw.Push(std::move(b))) break;
  }
  sh_->q_raw.Close();
}

void ProcessStage::Run() {
  while (true) {
    auto rb = sh_->q_raw.Pop(std::chrono::milliseconds(100));
    if (!rb) {
      if (sh_->q_raw.closed_and_empty() || sh_->failed.load()) break;
      continue;
    }
    auto pb = sh_->recycle_done.Pop(std::chrono::milliseconds(0));
    ProcessedBatch out = pb ? std::move(*pb) : ProcessedBatch();
    proc_->Process(*rb, out);
    rb->Clear();
    sh_->recycle_raw.Push(std::move(*rb));
    m_->queue_processed = static_cast<int64_t>(sh_->q_done.size());
    if (!sh_->q_done.Push(std::move(out))) break;
    ckpt_->MaybeSnapshot(*proc_, sh_->now());
  }
  sh_->q_done.Close();
}

// ---- SinkStage ---------------------------------------------------------------------------------

OffsetMap MinDurable(const std::vector<Sink*>& sinks) {
  OffsetMap out;
  bool first = true;
  for (Sink* s : sinks) {
    const OffsetMap* d = s->durable();
    if (!d) continue;
    if (first) {
      out = *d;
      first = false;
      continue;
    }
    for (auto it = out.begin(); it != out.end();) {
      auto f = d->find(it->first);
      if (f == d->end()) {
        it = out.erase(it);
      } else {
        it->second = std::min(it->second, f->second);
        ++it;
      }
    }
  }
  return out;
}

SinkStage::SinkStage(SinkStageDeps d, StageShared* sh, PipelineMetrics* m) : d_(std::move(d)), sh_(sh), m_(m) {
  last_progress_ = sh_->now();
}

Status SinkStage::Run() {
  while (true) {
    auto pb = sh_->q_done.Pop(std::chrono::milliseconds(50));
    if (pb) {
      Status s = Write(*pb);
      if (!s.ok()) return s;
    } else if (sh_->q_done.closed_and_empty()) {
      return Status::OK();
    }
    Status s = Step();
    if (!s.ok()) return s;
  }
}

Status SinkStage::Write(ProcessedBatch& b) {
  // In registration order: side records first (e.g. the Kafka side topics, before the batch's
  // rows can reach a file), then the store, then the observers. A failure stores nothing more.
  for (Sink* s : d_.sinks) {
    Status st = s->Write(b);
    if (!st.ok()) return st;
  }
  sh_->recycle_done.Push(std::move(b));
  sh_->appended++;
  return Status::OK();
}

Status SinkStage::Step() {
  const int64_t now = sh_->now();
  for (Sink* s : d_.sinks) {
    Status st = s->Tick(now);
    if (!st.ok()) return st;
  }
  Status st = Acknowledge();
  if (!st.ok()) return st;
  if (d_.ckpt) d_.ckpt->WriteReady();
  // A drain is served once nothing is in flight (the source thread is blocked in it: no new push).
  if (int64_t req = d_.drain ? d_.drain->Pending() : 0; req && sh_->appended.load() == sh_->pushed.load()) {
    st = FlushAll();
    if (!st.ok()) return st;
    d_.drain->Done(req);
  }
  m_->lag = d_.src->Lag();
  if (d_.partitioned) m_->lag_by_partition.Set(d_.partitioned->LagByPartition());
  m_->source_figures.Set(d_.src->Counters());
  Progress(now);
  return Status::OK();
}

Status SinkStage::FlushAll() {
  for (Sink* s : d_.sinks) {
    Status st = s->Flush();
    if (!st.ok()) return st;
  }
  return Acknowledge();
}

Status SinkStage::Acknowledge() {
  if (d_.store) {
    const StoreStats& ss = d_.store->stats();
    m_->stored = static_cast<int64_t>(ss.rows);
    m_->dead_stored = static_cast<int64_t>(ss.dead);
    m_->files = static_cast<int64_t>(ss.files);
    m_->bytes_written = static_cast<int64_t>(ss.bytes);
  }
  OffsetMap ack = MinDurable(d_.sinks);
  if (acked_once_ && ack == acked_) return Status::OK();
  if (d_.ledger) {
    Status s = d_.ledger->Commit(ack);  // the commit markers, after the files they cover
    if (!s.ok()) return s;
    d_.src->Ack(d_.ledger->committed());
  } else {
    d_.src->Ack(ack);
  }
  acked_ = std::move(ack);
  acked_once_ = true;
  return Status::OK();
}

Status SinkStage::Finish() {
  Status st = FlushAll();
  for (Sink* s : d_.sinks) {
    if (!st.ok()) break;
    st = s->Close();
  }
  if (st.ok()) st = Acknowledge();
  return st;
}

void SinkStage::Progress(int64_t now) {
  const double dt = static_cast<double>(now - last_progress_) / 1e6;
  if (!d_.progress || d_.progress_interval_s <= 0 || dt < d_.progress_interval_s) return;
  const int64_t sent = m_->sent.load();
  d_.progress->Report(*m_, dt > 0 ? static_cast<double>(sent - last_sent_) / dt : 0, d_.queue_capacity);
  last_progress_ = now;
  last_sent_ = sent;
}

}  // namespace iotpipe
