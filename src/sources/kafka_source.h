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
  void OnBatch(const ProcessedBatch& b, const Dictionaries& dicts) override;

  // Per-partition lag (records) as last measured.
  std::map<int32_t, int64_t> LagByPartition() const;
  std::set<int32_t> assigned() const;
  int64_t rebalances() const { return rebalances_.load(); }
  const Status& error() const { return error_; }
  int64_t side_delivery_failures() const { return producer_ ? producer_->failed() : 0; }

 private:
  static void RebalanceCb(rd_kafka_t* rk, int err, rd_kafka_topic_partition_list_t* parts, void* opaque);
  void OnAssign(rd_kafka_topic_partition_list_t* parts);
  void OnRevoke(rd_kafka_topic_partition_list_t* parts);
  void UpdateLag();
  bool BrokerHasMore();  // records left to read, or the broker does not answer
  void CommitToKafka(const OffsetMap& markers, bool sync);

  KafkaSourceOptions opt_;
  rd_kafka_t* rk_ = nullptr;
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
