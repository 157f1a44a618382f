#include "pipeline/pipeline.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/fsutil.h"
#include "core/queue.h"

namespace iotpipe {

std::string FormatCount(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

Pipeline::Pipeline(Source* source, std::shared_ptr<const Detector> det, PipelineOptions opt, Clock* clock)
    : src_(source), opt_(std::move(opt)), clock_(clock) {
  proc_ = std::make_unique<Processor>(&dicts_, std::move(det), &m_, clock_);
}

Pipeline::~Pipeline() = default;

Status Pipeline::Run(const std::atomic<bool>& stop) {
  src_->BindStore(opt_.store);
  if (!opt_.store.e2e_latency) opt_.store.e2e_latency = &m_.e2e_seconds;
  auto store_r = ParquetStore::Open(opt_.store, &dicts_.sensors, &dicts_.types, &dicts_.models);
  if (!store_r.ok()) return store_r.status();
  auto store = std::move(store_r.value());
  if (!opt_.checkpoint_path.empty()) {
    Status s = proc_->LoadCheckpoint(opt_.checkpoint_path);
    if (s.ok()) spdlog::info("restored detector state of {} sensors from {}", dicts_.sensors.size(), opt_.checkpoint_path);
    else if (std::filesystem::exists(opt_.checkpoint_path)) spdlog::warn("not restoring detector state: {}", s.message());
    if (proc_->shadow()) {
      const std::string sp = opt_.checkpoint_path + ".shadow";
      s = proc_->LoadCheckpoint(sp, true);
      if (s.ok()) spdlog::info("restored shadow detector state from {}", sp);
      else if (std::filesystem::exists(sp)) spdlog::warn("not restoring shadow detector state: {}", s.message());
    }
  }
  // Periodic checkpoints: the processor thread owns the state, so it snapshots it between batches
  // every checkpoint_interval_s and hands the bytes to the sink thread, which writes them atomically.
  std::mutex ckpt_mu;
  std::string ckpt_main, ckpt_shadow;
  bool ckpt_ready = false;
  const bool ckpt_on = !opt_.checkpoint_path.empty() && opt_.checkpoint_interval_s > 0;
  const int64_t ckpt_us = static_cast<int64_t>(opt_.checkpoint_interval_s * 1e6);
  // Drain handshake (Source::SetDrain): the source thread, blocked inside Poll, waits until the
  // sink has appended every batch pushed so far and flushed it durably.
  std::atomic<int64_t> pushed{0}, appended{0};
  std::mutex drain_mu;
  std::condition_variable drain_cv;
  int64_t drain_req = 0, drain_done = 0;
  bool sink_gone = false;
  src_->SetDrain([&]() -> bool {
    std::unique_lock<std::mutex> l(drain_mu);
    if (sink_gone) return false;
    const int64_t gen = ++drain_req;
    drain_cv.wait(l, [&] { return drain_done >= gen || sink_gone; });
    return drain_done >= gen;
  });
  src_->BindProcessor(proc_.get());
  Status st = src_->Start();
  if (!st.ok()) {
    src_->SetDrain(nullptr);
    return st;
  }

  BoundedQueue<RawBatch> q_raw(opt_.queue_depth);
  BoundedQueue<ProcessedBatch> q_done(opt_.queue_depth);
  BoundedQueue<RawBatch> recycle_raw(opt_.queue_depth * 2 + 4);
  BoundedQueue<ProcessedBatch> recycle_done(opt_.queue_depth * 2 + 4);
  std::atomic<bool> failed{false};
  const int64_t t_start = MonoMicros();

  std::thread source_thread([&] {
    while (!stop.load() && !failed.load()) {
      auto rb = recycle_raw.Pop(std::chrono::milliseconds(0));
      RawBatch b = rb ? std::move(*rb) : RawBatch();
      PollResult r = src_->Poll(b, opt_.batch_size);
      if (r == PollResult::kEnd) break;
      if (r == PollResult::kIdle || b.size() == 0) {
        recycle_raw.Push(std::move(b));
        continue;
      }
      m_.sent += b.sent;
      m_.queue_raw = static_cast<int64_t>(q_raw.size());
      pushed++;
      if (!q_raw.Push(std::move(b))) break;
    }
    q_raw.Close();
  });

  std::thread proc_thread([&] {
    int64_t last_snap = MonoMicros();
    while (true) {
      auto rb = q_raw.Pop(std::chrono::milliseconds(100));
      if (!rb) {
        if (q_raw.closed_and_empty() || failed.load()) break;
        continue;
      }
      auto pb = recycle_done.Pop(std::chrono::milliseconds(0));
      ProcessedBatch out = pb ? std::move(*pb) : ProcessedBatch();
      proc_->Process(*rb, out);
      rb->Clear();
      recycle_raw.Push(std::move(*rb));
      m_.queue_processed = static_cast<int64_t>(q_done.size());
      if (!q_done.Push(std::move(out))) break;
      if (ckpt_on && MonoMicros() - last_snap >= ckpt_us) {
        std::string a = proc_->SnapshotState(false), b = proc_->SnapshotState(true);
        std::lock_guard<std::mutex> l(ckpt_mu);
        ckpt_main = std::move(a);
        ckpt_shadow = std::move(b);
        ckpt_ready = true;
        last_snap = MonoMicros();
      }
    }
    q_done.Close();
  });

  // The sink runs on this thread.
  int64_t last_progress = MonoMicros(), last_compact = MonoMicros();
  int64_t last_sent = 0;
  auto acked = [&] {
    m_.stored = static_cast<int64_t>(store->stats().rows);
    m_.dead_stored = static_cast<int64_t>(store->stats().dead);
    m_.files = static_cast<int64_t>(store->stats().files);
    m_.bytes_written = static_cast<int64_t>(store->stats().bytes);
    src_->Ack(store->readings_offsets(), store->dead_offsets());
  };
  auto progress = [&](bool final_line) {
    int64_t now = MonoMicros();
    double dt = static_cast<double>(now - last_progress) / 1e6;
    if (!final_line && (opt_.progress_interval_s <= 0 || dt < opt_.progress_interval_s)) return;
    int64_t sent = m_.sent.load();
    double rate = dt > 0 ? static_cast<double>(sent - last_sent) / dt : 0;
    if (opt_.progress_interval_s > 0 && !final_line) {
      std::string lag = m_.lag.load() >= 0 ? " | lag " + FormatCount(static_cast<double>(m_.lag.load())) : "";
      if (!lag.empty()) {  // per partition, compact: lag 1.2k (p0 200, p1 1.0k, ...)
        auto parts = m_.lag_by_partition.Get();
        int shown = 0;
        for (auto& [pn, l] : parts) {
          lag += (shown ? ", p" : " (p") + std::to_string(pn) + " " + FormatCount(static_cast<double>(l));
          if (++shown == 8 && parts.size() > 8) {
            lag += ", ...";
            break;
          }
        }
        if (shown) lag += ")";
      }
      std::fprintf(stderr, "[iotpipe] events %s | %s ev/s | stored %s | dead %s | anomalies %s | queue %lld/%zu%s\n",
                   FormatCount(static_cast<double>(sent)).c_str(), FormatCount(rate).c_str(),
                   FormatCount(static_cast<double>(m_.stored.load())).c_str(),
                   FormatCount(static_cast<double>(m_.dead_stored.load())).c_str(),
                   FormatCount(static_cast<double>(m_.predicted.load())).c_str(),
                   static_cast<long long>(m_.queue_raw.load() + m_.queue_processed.load()), opt_.queue_depth * 2,
                   lag.c_str());
    }
    last_progress = now;
    last_sent = sent;
  };
  Status sink_status;
  while (true) {
    auto pb = q_done.Pop(std::chrono::milliseconds(50));
    if (pb) {
      // Side records first (Kafka: dead-letter and anomaly topics, delivered before the batch's
      // rows can reach a file and its commit marker); on failure nothing of the batch is stored.
      sink_status = src_->OnBatch(*pb, dicts_);
      if (!sink_status.ok()) break;
      sink_status = store->Append(*pb);
      if (!sink_status.ok()) break;
      if (opt_.on_batch) opt_.on_batch(*pb);
      recycle_done.Push(std::move(*pb));
      appended++;
    } else if (q_done.closed_and_empty()) {
      break;
    }
    int64_t now = MonoMicros();
    size_t before = store->stats().files;
    sink_status = store->FlushDue(now);
    if (!sink_status.ok()) break;
    if (store->stats().files != before) acked();
    if (now - last_compact > 5000000) {
      sink_status = store->CompactClosed();
      if (!sink_status.ok()) break;
      last_compact = now;
    }
    if (ckpt_on) {
      std::string a, b;
      {
        std::lock_guard<std::mutex> l(ckpt_mu);
        if (ckpt_ready) {
          a.swap(ckpt_main);
          b.swap(ckpt_shadow);
          ckpt_ready = false;
        }
      }
      // A failed checkpoint is logged, not fatal: the data path does not depend on it.
      auto write = [](const std::string& path, const std::string& bytes) {
        if (bytes.empty()) return;
        Status cs = MakeDirs(ParentDir(path));
        if (cs.ok()) cs = WriteFileAtomic(path, bytes);
        if (!cs.ok()) spdlog::warn("cannot write checkpoint {}: {}", path, cs.message());
      };
      write(opt_.checkpoint_path, a);
      write(opt_.checkpoint_path + ".shadow", b);
    }
    {
      std::lock_guard<std::mutex> l(drain_mu);
      if (drain_req > drain_done && appended.load() == pushed.load()) {
        sink_status = store->Flush();
        if (!sink_status.ok()) break;
        acked();
        drain_done = drain_req;
        drain_cv.notify_all();
      }
    }
    m_.lag = src_->Lag();
    m_.lag_by_partition.Set(src_->LagByPartition());
    progress(false);
  }
  {
    std::lock_guard<std::mutex> l(drain_mu);
    sink_gone = true;
    drain_cv.notify_all();
  }
  if (!sink_status.ok()) {
    failed = true;
    q_raw.Close();
    q_done.Close();
  }
  source_thread.join();
  proc_thread.join();
  // Drain anything left (only when the sink failed is the queue not empty; those rows are not acked).
  if (sink_status.ok()) {
    sink_status = store->Flush();
    if (sink_status.ok()) sink_status = store->CompactClosed();
    acked();
  }
  elapsed_s_ = static_cast<double>(MonoMicros() - t_start) / 1e6;
  store_stats_ = store->stats();
  src_->Stop();
  src_->SetDrain(nullptr);
  if (!opt_.checkpoint_path.empty() && sink_status.ok()) {
    Status s = proc_->SaveCheckpoint(opt_.checkpoint_path);
    if (!s.ok()) spdlog::warn("cannot save detector state: {}", s.message());
    s = proc_->SaveCheckpoint(opt_.checkpoint_path + ".shadow", true);
    if (!s.ok()) spdlog::warn("cannot save shadow detector state: {}", s.message());
  }
  progress(true);
  if (sink_status.ok()) sink_status = src_->error();  // e.g. a Kafka source that gave up
  return sink_status;
}

}  // namespace iotpipe
