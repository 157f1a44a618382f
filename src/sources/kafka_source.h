// Kafka source: a consumer-group member (librdkafka C API) feeding the pipeline, exactly once into
// the store.
//
// Offsets are managed by hand (enable.auto.commit=false). The truth about what is stored is the
// pipeline's offset ledger (pipeline/offset_ledger.h), reached through the PartitionListener: on
// every partition assignment the listener recovers the partition (removes files past its commit
// marker) and the source seeks to marker + 1; on revocation the listener drains the pipeline
// (everything handed out is stored and committed) before the partition is let go, so the next
// owner starts exactly after our last row. Offsets are also committed to Kafka after each Ack and
// on revocation (informational: tools and lag). The side topics are a sink (sinks/kafka_side_sink.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "sources/partitioned.h"
#include "sources/source.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_topic_partition_list_s rd_kafka_topic_partition_list_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_message_s rd_kafka_message_t;

namespace iotpipe {

struct KafkaSourceOptions {
  std::string brokers = "127.0.0.1:9092";
  std::string topic = "iot-sensor-data";
  std::string group = "my-processor-group";
  std::string instance_id;                        // static group membership (group.instance.id), optional
  double exit_when_idle_s = 0;                    // > 0: end once no record arrived for this long
  std::string dlq_topic;                          // default <topic>.dlq; "-" disables (KafkaSideSink)
  std::string anomalies_topic = "iot-anomalies";  // "-" disables (KafkaSideSink)
  int session_timeout_ms = 10000;                 // how soon a dead member's partitions move on
  int fetch_queue_kb = 32768;                     // bounded prefetch per consumer (backpressure)
};

class KafkaSource final : public Source, public PartitionedSource {
 public:
  explicit KafkaSource(KafkaSourceOptions opt);
  ~KafkaSource() override;
  // Source
  Status Start() override;
  PollResult Poll(RawBatch& out, size_t max) override;
  void Ack(const OffsetMap& durable) override;
  Status Stop() override;
  int64_t Lag() const override { return lag_.load(); }
  std::string Describe() const override;
  // PartitionedSource
  PositionNames position_names() const override;
  void SetPartitionListener(PartitionListener* l) override { listener_ = l; }
  std::set<int32_t> assigned() const override;
  std::map<int32_t, int64_t> LagByPartition() const override;

  const KafkaSourceOptions& options() const { return opt_; }
  int64_t rebalances() const { return rebalances_.load(); }

 private:
  static void RebalanceCb(rd_kafka_t* rk, int err, rd_kafka_topic_partition_list_t* parts, void* opaque);
  void OnAssign(rd_kafka_topic_partition_list_t* parts);
  void OnRevoke(rd_kafka_topic_partition_list_t* parts);
  void UpdateLag();
  bool BrokerHasMore();  // records left to read, or the broker does not answer
  void CommitToKafka(const OffsetMap& markers, bool sync);
  // A consumed record is handed out only if its partition is assigned and its offset is past the
  // last one handed out since the assignment: a batch call can return records fetched before a
  // rebalance that happened inside the call (librdkafka 2.0 does not purge those from the batch).
  bool Accept(int32_t p, int64_t off) {
    if (p < 0 || static_cast<size_t>(p) >= next_.size() || next_[p] == kNotAssigned || off < next_[p]) return false;
    next_[p] = off + 1;
    return true;
  }
  void SetNext(int32_t p, int64_t off) {
    if (p < 0) return;
    if (static_cast<size_t>(p) >= next_.size()) next_.resize(static_cast<size_t>(p) + 1, kNotAssigned);
    next_[p] = off;
  }
  static constexpr int64_t kNotAssigned = INT64_MIN;
  static constexpr size_t kConsumeBatch = 2048;

  KafkaSourceOptions opt_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;  // the consumer queue (batch consumption)
  std::vector<rd_kafka_message_t*> msgs_;
  std::vector<int64_t> next_;  // per partition: lowest offset to hand out (Poll's thread)
  PartitionListener* listener_ = nullptr;
  RawBatch* cur_ = nullptr;  // the batch being filled (Poll), for revocation
  mutable std::mutex mu_;
  std::set<int32_t> assigned_;
  std::map<int32_t, int64_t> lag_by_part_;
  OffsetMap kafka_committed_;
  std::atomic<int64_t> lag_{-1};
  std::atomic<int64_t> rebalances_{0};
  int64_t last_activity_us_ = 0, last_lag_us_ = 0, last_error_log_us_ = 0;
  Status error_;
  bool closed_ = false;
};

}  // namespace iotpipe
