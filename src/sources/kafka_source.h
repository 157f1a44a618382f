// Kafka source: a consumer-group member (librdkafka C API) feeding the pipeline, exactly once into
// the Parquet store.
//
// Offsets are managed by hand (enable.auto.commit=false). The truth about what is stored is the
// store's per-partition commit marker (data/_offsets/<topic>-p<P>): on every partition assignment
// the source removes files written after the marker (ParquetStore::RecoverKafkaPartition) and seeks
// to marker + 1. On revocation it drains the pipeline (everything handed out is flushed and
// committed) before letting the partition go, so the next owner starts exactly after our last row.
// Offsets are also committed to Kafka after each durable flush (informational: tools and lag).
// Dead letters go to <topic>.dlq with the reason in headers; predicted anomalies to iot-anomalies.
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

#include "sinks/kafka_producer.h"
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
  std::string instance_id;                 // static group membership (group.instance.id), optional
  std::string data_dir = "data";           // taken from the store options by BindStore
  double exit_when_idle_s = 0;             // > 0: end once no record arrived for this long
  std::string dlq_topic;                   // default <topic>.dlq; "-" disables
  std::string anomalies_topic = "iot-anomalies";  // "-" disables
  int session_timeout_ms = 10000;          // how soon a dead member's partitions move on
  int fetch_queue_kb = 32768;              // bounded prefetch per consumer (backpressure)
};

class KafkaSource final : public Source {
 public:
  explicit KafkaSource(KafkaSourceOptions opt);
  ~KafkaSource() override;
  Status Start() override;
  PollResult Poll(RawBatch& out, size_t max) override;
  void Ack(const OffsetMap& readings, const OffsetMap& dead) override;
  void Stop() override;
  std::string Describe() const override;
  int64_t Lag() const override { return lag_.load(); }
  void SetDrain(std::function<bool()> drain) override { drain_ = std::move(drain); }
  void BindStore(StoreOptions& store) override;
  Status OnBatch(const ProcessedBatch& b, const Dictionaries& dicts) override;

  void BindProcessor(Processor* proc) override { proc_ = proc; }
  // Per-partition lag (records) as last measured.
  std::map<int32_t, int64_t> LagByPartition() const override;
  // Where the detector state of the sensors last seen on a partition is kept (with its commit).
  static std::string PartitionStatePath(const std::string& data_dir, const std::string& topic, int32_t partition);
  int64_t states_saved() const { return states_saved_.load(); }
  int64_t states_loaded() const { return states_loaded_.load(); }
  std::set<int32_t> assigned() const;
  int64_t rebalances() const { return rebalances_.load(); }
  Status error() const override { return error_; }
  int64_t side_delivery_failures() const { return producer_ ? producer_->failed() : 0; }

 private:
  static void RebalanceCb(rd_kafka_t* rk, int err, rd_kafka_topic_partition_list_t* parts, void* opaque);
  void OnAssign(rd_kafka_topic_partition_list_t* parts);
  void OnRevoke(rd_kafka_topic_partition_list_t* parts);
  void UpdateLag();
  // Detector state following its partition: saved (sensors last seen on the partition) right after
  // the partition's commit marker, while the pipeline is drained; restored on assignment.
  void SavePartitionStates(const std::set<int32_t>& parts);
  void LoadPartitionStates(const std::set<int32_t>& parts);
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
  rd_kafka_queue_t* queue_ = nullptr;    // the consumer queue (batch consumption)
  std::vector<rd_kafka_message_t*> msgs_;
  std::vector<int64_t> next_;            // per partition: lowest offset to hand out (Poll's thread)
  Processor* proc_ = nullptr;
  const Dictionaries* dicts_ = nullptr;
  std::mutex part_mu_;
  std::vector<int32_t> sensor_part_;     // sensor id -> partition it was last seen on (-1: none)
  std::map<std::string, int32_t> loaded_part_;  // sensors restored from a partition's state file
  std::atomic<int64_t> states_saved_{0}, states_loaded_{0};
  std::atomic<bool> side_failed_{false};  // a side-topic record failed delivery (sink thread)
  std::unique_ptr<KafkaProducer> producer_;
  std::function<bool()> drain_;
  RawBatch* cur_ = nullptr;             // the batch being filled (Poll), for revocation
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
