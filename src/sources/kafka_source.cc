#include "sources/kafka_source.h"

#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "core/checksum.h"
#include "core/clock.h"
#include "core/fsutil.h"
#include "pipeline/processor.h"
#include "sinks/parquet_store.h"

namespace iotpipe {

namespace {

// The processor's checkpoint format (pipeline/processor.h): four header lines (magic and format,
// detector name, detector version, "stride count fnv64"), then per sensor: u32 name length, name,
// state bytes. Split here so that a partition's file holds only the sensors of that partition.
struct CkptView {
  std::string_view magic, name, version;
  size_t stride = 0;
  std::vector<std::pair<std::string_view, std::string_view>> entries;  // sensor name, state bytes
};

bool ParseCkpt(std::string_view d, CkptView* v) {
  size_t pos = 0;
  auto line = [&](std::string_view* out) {
    size_t e = d.find('\n', pos);
    if (e == std::string_view::npos) return false;
    *out = d.substr(pos, e - pos);
    pos = e + 1;
    return true;
  };
  std::string_view dims;
  if (!line(&v->magic) || !line(&v->name) || !line(&v->version) || !line(&dims)) return false;
  unsigned long long n = 0, sum = 0;
  if (std::sscanf(std::string(dims).c_str(), "%zu %llu %llx", &v->stride, &n, &sum) != 3) return false;
  for (unsigned long long k = 0; k < n; k++) {
    uint32_t len;
    if (pos + 4 > d.size()) return false;
    std::memcpy(&len, d.data() + pos, 4);
    pos += 4;
    if (pos + len + v->stride > d.size()) return false;
    v->entries.emplace_back(d.substr(pos, len), d.substr(pos + len, v->stride));
    pos += len + v->stride;
  }
  return pos == d.size();
}

std::string FormatCkpt(const CkptView& v, const std::string& payload, uint64_t n) {
  char dims[160];
  std::snprintf(dims, sizeof dims, "%zu %llu %016llx\n", v.stride, static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(Fnv1a64(payload)));
  std::string out;
  out.reserve(payload.size() + 256);
  out.append(v.magic).append("\n").append(v.name).append("\n").append(v.version).append("\n").append(dims);
  out += payload;
  return out;
}

}  // namespace

std::string KafkaSource::PartitionStatePath(const std::string& data_dir, const std::string& topic, int32_t partition) {
  return data_dir + "/state/" + topic + "-p" + std::to_string(partition) + ".ckpt";
}

void KafkaSource::SavePartitionStates(const std::set<int32_t>& parts) {
  if (!proc_ || parts.empty() || opt_.data_dir.empty()) return;
  const std::string blob = proc_->SnapshotState();
  CkptView v;
  if (blob.empty() || !ParseCkpt(blob, &v)) return;
  std::map<int32_t, std::pair<std::string, uint64_t>> per;  // partition -> payload, sensors
  for (int32_t p : parts) per[p];
  {
    std::lock_guard<std::mutex> l(part_mu_);
    for (auto& [name, st] : v.entries) {
      int32_t p = -1;
      uint32_t id = dicts_ ? dicts_->sensors.Find(name) : Interner::kNone;
      if (id != Interner::kNone && id < sensor_part_.size()) p = sensor_part_[id];
      if (p < 0) {
        auto it = loaded_part_.find(std::string(name));
        if (it != loaded_part_.end()) p = it->second;
      }
      auto it = per.find(p);
      if (it == per.end()) continue;
      uint32_t len = static_cast<uint32_t>(name.size());
      it->second.first.append(reinterpret_cast<const char*>(&len), 4).append(name).append(st);
      it->second.second++;
    }
  }
  Status s = MakeDirs(opt_.data_dir + "/state");
  for (auto& [p, pl] : per) {
    if (s.ok()) s = WriteFileAtomic(PartitionStatePath(opt_.data_dir, opt_.topic, p), FormatCkpt(v, pl.first, pl.second));
    if (!s.ok()) {
      spdlog::warn("kafka: cannot save the detector state of partition {}: {}", p, s.message());
      return;
    }
    states_saved_++;
  }
  spdlog::debug("kafka: saved detector state of {} partition(s)", per.size());
}

void KafkaSource::LoadPartitionStates(const std::set<int32_t>& parts) {
  if (!proc_ || opt_.data_dir.empty()) return;
  bool drained = false;
  for (int32_t p : parts) {
    const std::string path = PartitionStatePath(opt_.data_dir, opt_.topic, p);
    auto data = ReadFile(path);
    if (!data.ok()) continue;  // no state saved for this partition yet
    CkptView v;
    if (!ParseCkpt(data.value(), &v)) {
      spdlog::warn("kafka: not restoring detector state of partition {}: {} is malformed", p, path);
      continue;
    }
    // The processor owns the state: restore only while the pipeline is idle (everything handed
    // out so far processed and stored), which the drain guarantees.
    if (!drained && drain_) drained = drain_();
    Status s = proc_->LoadCheckpoint(path);
    if (!s.ok()) {
      spdlog::warn("kafka: not restoring detector state of partition {}: {}", p, s.message());
      continue;
    }
    {
      std::lock_guard<std::mutex> l(part_mu_);
      for (auto& e : v.entries) loaded_part_[std::string(e.first)] = p;
    }
    states_loaded_++;
    spdlog::info("kafka: restored detector state of {} sensor(s) of partition {}", v.entries.size(), p);
  }
}

KafkaSource::KafkaSource(KafkaSourceOptions opt) : opt_(std::move(opt)) {
  if (opt_.dlq_topic.empty()) opt_.dlq_topic = opt_.topic + ".dlq";
}

KafkaSource::~KafkaSource() {
  drain_ = nullptr;
  Stop();
}

void KafkaSource::BindStore(StoreOptions& store) {
  store.kafka_topic = opt_.topic;
  opt_.data_dir = store.data_dir;
}

std::string KafkaSource::Describe() const {
  return "kafka:" + opt_.brokers + "/" + opt_.topic + " group " + opt_.group;
}

void KafkaSource::RebalanceCb(rd_kafka_t* rk, int err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* self = static_cast<KafkaSource*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->OnAssign(parts);
  } else {
    self->OnRevoke(parts);
  }
}

void KafkaSource::OnAssign(rd_kafka_topic_partition_list_t* parts) {
  rebalances_++;
  std::string desc;
  for (int i = 0; i < parts->cnt; i++) {
    auto& tp = parts->elems[i];
    // Files written after the last commit marker were never committed: remove them, resume after it.
    auto marker = ParquetStore::RecoverKafkaPartition(opt_.data_dir, opt_.topic, tp.partition);
    if (!marker.ok()) {
      error_ = marker.status();
      spdlog::error("kafka: recovering partition {}: {}", tp.partition, error_.message());
      tp.offset = RD_KAFKA_OFFSET_END;  // consume nothing; Poll ends the run with the error
      SetNext(tp.partition, kNotAssigned);
      continue;
    }
    tp.offset = marker.value() >= 0 ? marker.value() + 1 : RD_KAFKA_OFFSET_BEGINNING;
    SetNext(tp.partition, marker.value() >= 0 ? marker.value() + 1 : 0);
    desc += (desc.empty() ? "" : ", ") + std::to_string(tp.partition) + "@" +
            (marker.value() >= 0 ? std::to_string(marker.value() + 1) : std::string("start"));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int i = 0; i < parts->cnt; i++) assigned_.insert(parts->elems[i].partition);
  }
  spdlog::info("kafka: assigned {} partition(s) of {}: {}", parts->cnt, opt_.topic, desc);
  std::set<int32_t> got;
  for (int i = 0; i < parts->cnt; i++) got.insert(parts->elems[i].partition);
  LoadPartitionStates(got);
  rd_kafka_assign(rk_, parts);
  last_activity_us_ = MonoMicros();
}

void KafkaSource::OnRevoke(rd_kafka_topic_partition_list_t* parts) {
  rebalances_++;
  std::set<int32_t> gone;
  for (int i = 0; i < parts->cnt; i++) {
    gone.insert(parts->elems[i].partition);
    SetNext(parts->elems[i].partition, kNotAssigned);
  }
  // Records of revoked partitions in the batch being filled are not handed out: drop them.
  if (cur_ && !cur_->origins.empty()) {
    RawBatch keep;
    for (size_t i = 0; i < cur_->size(); i++) {
      if (gone.count(cur_->origins[i].partition)) continue;
      keep.Add(cur_->record(i));
      keep.origins.push_back(cur_->origins[i]);
    }
    *cur_ = std::move(keep);
  }
  // Everything handed out before is flushed and its marker written before the partition moves on.
  bool drained = drain_ ? drain_() : false;
  if (!drained && drain_) spdlog::warn("kafka: pipeline not drained before revocation");
  if (drained && !opt_.data_dir.empty()) {
    CommitToKafka(ParquetStore::ReadKafkaMarkers(opt_.data_dir, opt_.topic), true);
    SavePartitionStates(gone);  // the state of their sensors goes with the partitions, as of the marker
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int32_t p : gone) {
      assigned_.erase(p);
      lag_by_part_.erase(p);
    }
  }
  spdlog::info("kafka: revoked {} partition(s)", parts->cnt);
  rd_kafka_assign(rk_, nullptr);
  last_activity_us_ = MonoMicros();  // e.g. membership lost while the broker was away: wait to rejoin
}

Status KafkaSource::Start() {
  if (rk_) return Status::OK();
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  std::vector<std::pair<std::string, std::string>> kv = {
      {"bootstrap.servers", opt_.brokers},
      {"group.id", opt_.group},
      {"client.id", "iotpipe-processor"},
      {"auto.offset.reset", "earliest"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      {"session.timeout.ms", std::to_string(opt_.session_timeout_ms)},
      {"heartbeat.interval.ms", std::to_string(std::max(500, opt_.session_timeout_ms / 10))},
      {"max.poll.interval.ms", "300000"},
      {"queued.max.messages.kbytes", std::to_string(opt_.fetch_queue_kb)},
      {"fetch.max.bytes", "52428800"},
      {"max.partition.fetch.bytes", "4194304"},  // fewer, larger fetches per partition
      {"check.crcs", "false"},
      {"fetch.wait.max.ms", "100"},
      {"reconnect.backoff.max.ms", "1000"},
      {"log_level", "3"},
  };
  if (!opt_.instance_id.empty()) kv.emplace_back("group.instance.id", opt_.instance_id);
  for (auto& [k, v] : kv) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return Status::Error("kafka setting " + k + ": " + err);
    }
  }
  rd_kafka_conf_set_opaque(conf, this);
  // Broker trouble (down, restarting, unreachable): logged (at most every 5 s), and the idle timer
  // of --exit-when-idle restarts, so a run never ends just because the broker was away.
  rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaSource*>(opaque);
    int64_t now = MonoMicros();
    self->last_activity_us_ = now;
    if (now - self->last_error_log_us_ > 5000000) {
      self->last_error_log_us_ = now;
      spdlog::warn("kafka: {} ({}); retrying", reason, rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
    }
  });
  rd_kafka_conf_set_rebalance_cb(
      conf, [](rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
        RebalanceCb(rk, static_cast<int>(err), parts, opaque);
      });
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    return Status::Error(std::string("kafka consumer: ") + err);
  }
  rd_kafka_poll_set_consumer(rk_);
  queue_ = rd_kafka_queue_get_consumer(rk_);
  // The topic must exist to be consumed; its partition count comes from whoever created it.
  auto n = KafkaPartitionCount(opt_.brokers, opt_.topic);
  if (!n.ok()) return Status::Error(n.status().message() + " (create it with `iotpipe simulate --output kafka`)");
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, opt_.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk_, sub);
  rd_kafka_topic_partition_list_destroy(sub);
  if (e) return Status::Error(std::string("kafka subscribe: ") + rd_kafka_err2str(e));
  if (opt_.dlq_topic != "-" || opt_.anomalies_topic != "-") {
    for (const std::string& t : {opt_.dlq_topic, opt_.anomalies_topic}) {
      if (t == "-") continue;
      Status s = EnsureKafkaTopic(opt_.brokers, t, n.value());
      if (!s.ok()) return s;
    }
    KafkaProducerOptions po;
    po.brokers = opt_.brokers;
    po.client_id = "iotpipe-processor-side";
    po.linger_ms = 5;  // flushed after every batch (at least once): little to gain from waiting
    auto p = KafkaProducer::Create(po);
    if (!p.ok()) return p.status();
    producer_ = std::move(p.value());
  }
  last_activity_us_ = MonoMicros();
  spdlog::info("kafka: consuming {} from {} as group {}", opt_.topic, opt_.brokers, opt_.group);
  return Status::OK();
}

PollResult KafkaSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (!rk_ || closed_) return PollResult::kEnd;
  if (side_failed_.load() && error_.ok()) error_ = Status::Error("kafka: dead-letter/anomaly records failed delivery");
  if (!error_.ok()) return PollResult::kEnd;
  cur_ = &out;
  // Batch consumption from the consumer queue (one queue lock per batch instead of one
  // rd_kafka_consumer_poll per message; rebalance callbacks are served inside the call).
  if (msgs_.size() < kConsumeBatch) msgs_.resize(kConsumeBatch);
  out.data.reserve(max * 160);
  out.offsets.reserve(max + 1);
  out.origins.reserve(max);
  int timeout = 100;
  while (out.size() < max) {
    const size_t want = std::min(kConsumeBatch, max - out.size());
    ssize_t n = rd_kafka_consume_batch_queue(queue_, timeout, msgs_.data(), want);
    timeout = 0;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) {
      rd_kafka_message_t* m = msgs_[static_cast<size_t>(i)];
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) spdlog::debug("kafka consumer: {}", rd_kafka_message_errstr(m));
      } else if (Accept(m->partition, m->offset)) {
        out.Add(std::string_view(static_cast<const char*>(m->payload), m->payload ? m->len : 0));
        out.origins.push_back(Origin{m->partition, m->offset});
      }
      rd_kafka_message_destroy(m);
    }
    if (static_cast<size_t>(n) < want) break;  // the local queue is empty: hand out what we have
  }
  cur_ = nullptr;
  int64_t now = MonoMicros();
  if (now - last_lag_us_ > 500000) {
    UpdateLag();
    last_lag_us_ = now;
  }
  if (producer_) producer_->Poll(0);
  if (out.size() > 0) {
    last_activity_us_ = now;
    out.sent = static_cast<int64_t>(out.size());
    out.Seal();
    return PollResult::kData;
  }
  if (!error_.ok()) return PollResult::kEnd;
  if (opt_.exit_when_idle_s > 0 && static_cast<double>(now - last_activity_us_) / 1e6 >= opt_.exit_when_idle_s) {
    // Idle only counts while the broker answers and nothing is left to read.
    if (BrokerHasMore()) {
      last_activity_us_ = MonoMicros();
      return PollResult::kIdle;
    }
    return PollResult::kEnd;
  }
  return PollResult::kIdle;
}

void KafkaSource::UpdateLag() {
  std::set<int32_t> parts = assigned();
  if (parts.empty()) {
    lag_ = 0;
    return;
  }
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(static_cast<int>(parts.size()));
  for (int32_t p : parts) rd_kafka_topic_partition_list_add(l, opt_.topic.c_str(), p);
  rd_kafka_position(rk_, l);
  std::map<int32_t, int64_t> lags;
  int64_t total = 0;
  bool known = false;
  for (int i = 0; i < l->cnt; i++) {
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(rk_, opt_.topic.c_str(), l->elems[i].partition, &lo, &hi) ||
        hi < 0)
      continue;
    int64_t pos = l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
    int64_t lag = std::max<int64_t>(0, hi - pos);
    lags[l->elems[i].partition] = lag;
    total += lag;
    known = true;
  }
  rd_kafka_topic_partition_list_destroy(l);
  std::lock_guard<std::mutex> g(mu_);
  lag_by_part_ = std::move(lags);
  lag_ = known ? total : -1;
}

bool KafkaSource::BrokerHasMore() {
  std::set<int32_t> parts = assigned();
  if (parts.empty()) {
    // Not in the group (yet, or again after the broker was away): idle only if the broker answers
    // and every partition of the topic is committed up to its end (by this or other processors).
    auto n = KafkaPartitionCount(opt_.brokers, opt_.topic, 2000);
    if (!n.ok()) return true;
    for (int32_t p = 0; p < n.value(); p++) parts.insert(p);
  }
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(static_cast<int>(parts.size()));
  for (int32_t p : parts) rd_kafka_topic_partition_list_add(l, opt_.topic.c_str(), p);
  rd_kafka_position(rk_, l);
  const OffsetMap markers = ParquetStore::ReadKafkaMarkers(opt_.data_dir, opt_.topic);
  bool more = false;
  for (int i = 0; i < l->cnt && !more; i++) {
    int64_t lo = -1, hi = -1;
    if (rd_kafka_query_watermark_offsets(rk_, opt_.topic.c_str(), l->elems[i].partition, &lo, &hi, 3000)) {
      more = true;  // the broker does not answer: not idle, waiting for it
    } else {
      // Nothing consumed yet from this partition: it starts after its commit marker.
      auto mk = markers.find(l->elems[i].partition);
      int64_t pos = l->elems[i].offset >= 0 ? l->elems[i].offset : (mk != markers.end() ? mk->second + 1 : lo);
      more = hi > pos;
    }
  }
  rd_kafka_topic_partition_list_destroy(l);
  return more;
}

std::map<int32_t, int64_t> KafkaSource::LagByPartition() const {
  std::lock_guard<std::mutex> l(mu_);
  return lag_by_part_;
}

std::set<int32_t> KafkaSource::assigned() const {
  std::lock_guard<std::mutex> l(mu_);
  return assigned_;
}

void KafkaSource::CommitToKafka(const OffsetMap& markers, bool sync) {
  if (!rk_) return;
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(static_cast<int>(markers.size()));
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [p, off] : markers) {
      if (off < 0 || !assigned_.count(p)) continue;
      auto c = kafka_committed_.find(p);
      if (c != kafka_committed_.end() && c->second >= off) continue;
      rd_kafka_topic_partition_list_add(l, opt_.topic.c_str(), p)->offset = off + 1;
      kafka_committed_[p] = off;
    }
  }
  if (l->cnt > 0) {
    rd_kafka_resp_err_t e = rd_kafka_commit(rk_, l, sync ? 0 : 1);
    if (e && sync) spdlog::debug("kafka commit: {}", rd_kafka_err2str(e));
  }
  rd_kafka_topic_partition_list_destroy(l);
}

void KafkaSource::Ack(const OffsetMap& readings, const OffsetMap& dead) {
  // In Kafka mode both maps are the store's commit markers: durable. Tell Kafka (informational).
  (void)dead;
  CommitToKafka(readings, false);
}

Status KafkaSource::OnBatch(const ProcessedBatch& b, const Dictionaries& dicts) {
  if (proc_ && b.readings.origins.size() == b.readings.size()) {
    // Which partition each sensor's readings arrive on (for its state to follow the partition).
    std::lock_guard<std::mutex> l(part_mu_);
    dicts_ = &dicts;
    const auto& r = b.readings;
    for (size_t i = 0; i < r.size(); i++) {
      const uint32_t id = r.sensor[i];
      if (id >= sensor_part_.size()) sensor_part_.resize(std::max<size_t>(id + 1, sensor_part_.size() * 3 / 2), -1);
      sensor_part_[id] = r.origins[i].partition;
    }
  }
  if (!producer_) return Status::OK();
  int64_t not_queued = 0;
  std::string first_error;
  auto note = [&](const Status& s) {
    if (s.ok()) return;
    if (not_queued++ == 0) first_error = s.message();
  };
  if (opt_.dlq_topic != "-") {
    const auto& d = b.dead;
    for (size_t i = 0; i < d.size(); i++) {
      std::vector<KafkaHeader> h = {{"reason", d.reason[i]}, {"source_topic", opt_.topic}};
      if (!d.origins.empty()) {
        h.push_back({"source_partition", std::to_string(d.origins[i].partition)});
        h.push_back({"source_offset", std::to_string(d.origins[i].offset)});
      }
      note(producer_->Produce(opt_.dlq_topic, {}, d.raw[i], h));
    }
  }
  if (opt_.anomalies_topic != "-") {
    const auto& r = b.readings;
    for (size_t i = 0; i < r.size(); i++) {
      if (!r.predicted[i]) continue;
      const std::string& sid = dicts.sensors.Name(r.sensor[i]);
      nlohmann::json j = {{"sensor_id", sid},
                          {"timestamp", static_cast<double>(r.ts_us[i]) / 1e6},
                          {"value", r.value[i]},
                          {"anomaly_score", static_cast<double>(r.score[i])},
                          {"model_version", dicts.models.Name(r.model[i])},
                          {"is_anomaly_ground_truth", r.gt[i] != 0}};
      // Sensor ids are arbitrary UTF-8 from the wire: escaped by the JSON library, bad bytes replaced.
      note(producer_->Produce(opt_.anomalies_topic, sid, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    }
  }
  // At least once: the pipeline appends the batch to the store only after OnBatch returns OK (on
  // this thread), so its side records are delivered before any commit marker can cover them. A
  // crash before that replays the batch and produces them again.
  const int64_t failed_before = producer_->failed();
  if (producer_->queued() > 0) {
    while (!producer_->Flush(1000) && producer_->queued() > 0) {
    }
  } else {
    producer_->Poll(0);
  }
  const int64_t failed = producer_->failed() - failed_before + not_queued;
  if (failed > 0) {
    // The pipeline stores nothing of this batch when this fails, so no commit marker covers it:
    // it is consumed again (with its side records) after a restart.
    side_failed_ = true;  // Poll ends the run too
    Status e = Status::Error("kafka: " + std::to_string(failed) + " dead-letter/anomaly record(s) failed delivery (" +
                             (not_queued ? first_error : producer_->first_error()) + ")");
    spdlog::error("{}; ending the run without committing the batch", e.message());
    return e;
  }
  return Status::OK();
}

void KafkaSource::Stop() {
  if (!rk_ || closed_) return;
  closed_ = true;
  // Close leaves the group (revocation: the drain hook is a no-op by now, everything is flushed).
  if (!opt_.data_dir.empty()) CommitToKafka(ParquetStore::ReadKafkaMarkers(opt_.data_dir, opt_.topic), true);
  // The pipeline has stopped (processor idle, everything stored): the partitions' detector state
  // is saved for whoever gets them next.
  SavePartitionStates(assigned());
  proc_ = nullptr;
  drain_ = nullptr;
  rd_kafka_consumer_close(rk_);
  if (queue_) rd_kafka_queue_destroy(queue_);
  queue_ = nullptr;
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
  if (producer_) {
    if (!producer_->Flush(10000)) spdlog::warn("kafka: side topics not fully delivered at shutdown");
    if (producer_->failed() > 0)
      spdlog::warn("kafka: {} dead-letter/anomaly records failed delivery: {}", producer_->failed(),
                   producer_->first_error());
    producer_.reset();
  }
}

}  // namespace iotpipe
