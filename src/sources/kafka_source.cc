#include "sources/kafka_source.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "core/clock.h"
#include "core/fsutil.h"
#include "core/kafka_properties.h"
#include "sinks/kafka_producer.h"

namespace iotpipe {

KafkaSource::KafkaSource(KafkaSourceOptions opt) : opt_(std::move(opt)) {
  if (opt_.dlq_topic.empty()) opt_.dlq_topic = opt_.topic + ".dlq";
}

KafkaSource::~KafkaSource() {
  listener_ = nullptr;
  (void)Stop();
}

PositionNames KafkaSource::position_names() const {
  return PositionNames{"kafka-" + opt_.topic, opt_.topic, "kafka:" + opt_.topic};
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
    auto marker = listener_ ? listener_->Recover(tp.partition) : Result<int64_t>(int64_t{-1});
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
  if (listener_) listener_->Assigned(got);  // the detector state that follows the partitions
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
  // Everything handed out before is flushed and its marker written before the partition moves on
  // (and the state of its sensors saved, as of the marker).
  bool drained = listener_ ? listener_->Revoking(gone) : false;
  if (!drained && listener_) spdlog::warn("kafka: pipeline not drained before revocation");
  if (drained) CommitToKafka(listener_->Committed(), true);
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
  for (auto& e : KafkaProperties()) kv.push_back(e);  // the user's last: they win
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
  last_activity_us_ = MonoMicros();
  spdlog::info("kafka: consuming {} from {} as group {}", opt_.topic, opt_.brokers, opt_.group);
  return Status::OK();
}

PollResult KafkaSource::Poll(RawBatch& out, size_t max) {
  out.Clear();
  if (!rk_ || closed_) return PollResult::kEnd;
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
    if (rd_kafka_get_watermark_offsets(rk_, opt_.topic.c_str(), l->elems[i].partition, &lo, &hi) || hi < 0) continue;
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
  const OffsetMap markers = listener_ ? listener_->Committed() : OffsetMap();
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

void KafkaSource::Ack(const OffsetMap& durable) {
  // The commit markers: durable. Tell Kafka (informational).
  CommitToKafka(durable, false);
}

Status KafkaSource::Stop() {
  if (!rk_ || closed_) return error_;
  closed_ = true;
  // Close leaves the group (revocation: the listener is gone by now, everything is flushed).
  if (listener_) CommitToKafka(listener_->Committed(), true);
  listener_ = nullptr;
  rd_kafka_consumer_close(rk_);
  if (queue_) rd_kafka_queue_destroy(queue_);
  queue_ = nullptr;
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
  return error_;
}

}  // namespace iotpipe
