// A Kafka producer (librdkafka C API) for sensor records, dead letters and anomalies.
//
// Idempotent (enable.idempotence: no duplicates or reordering from retries), acks=all, lz4
// compression, batching tuned for throughput (linger 20 ms, batches up to 1 MB). Records are keyed
// by sensor_id so one sensor's readings stay ordered in one partition. Delivery failures are
// counted (and the first error kept) — never silent. Also: topic creation through the admin API.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace iotpipe {

struct KafkaProducerOptions {
  std::string brokers = "127.0.0.1:9092";
  std::string client_id = "iotpipe-producer";
  std::string compression = "lz4";
  int linger_ms = 20;
  int batch_bytes = 1 << 20;
  int64_t max_buffered_kb = 262144;                        // queue.buffering.max.kbytes (then Produce waits)
  int message_timeout_ms = 300000;                         // how long a record may wait for a broker that is down
  std::vector<std::pair<std::string, std::string>> extra;  // further librdkafka settings
};

struct KafkaHeader {
  std::string name, value;
};

class KafkaProducer {
 public:
  static Result<std::unique_ptr<KafkaProducer>> Create(const KafkaProducerOptions& opt);
  ~KafkaProducer();
  // Queues one record (copied). Waits while the local queue is full. partition -1 = by key hash.
  Status Produce(const std::string& topic, std::string_view key, std::string_view value,
                 const std::vector<KafkaHeader>& headers = {}, int32_t partition = -1);
  // Serves delivery reports (call now and then; Produce also does).
  void Poll(int timeout_ms = 0);
  // Waits until everything queued is delivered or failed. False on timeout.
  bool Flush(int timeout_ms);
  int64_t queued() const;
  int64_t delivered() const { return delivered_.load(); }
  int64_t failed() const { return failed_.load(); }
  std::string first_error() const;
  rd_kafka_t* handle() { return rk_; }

 private:
  KafkaProducer() = default;
  static void OnDelivery(rd_kafka_t*, const void* msg, void* opaque);
  rd_kafka_t* rk_ = nullptr;
  std::atomic<int64_t> delivered_{0}, failed_{0};
  mutable std::mutex mu_;
  std::string first_error_;
};

// Creates the topic if it does not exist (partitions, replication 1). OK if it already exists.
Status EnsureKafkaTopic(const std::string& brokers, const std::string& topic, int partitions, int timeout_ms = 30000);
// Number of partitions of a topic (metadata request), or an error.
Result<int> KafkaPartitionCount(const std::string& brokers, const std::string& topic, int timeout_ms = 10000);

// The sensor_id of a wire record, found without a full parse (empty if absent).
std::string_view SensorIdOf(std::string_view json);

}  // namespace iotpipe
