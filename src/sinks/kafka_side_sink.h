// The Kafka side topics of a run consuming Kafka: dead letters to <topic>.dlq (the reason and the
// source partition/offset in headers) and predicted anomalies (JSON) to iot-anomalies.
//
// A durable sink (sinks/sink.h): Write returns once every side record of the batch is delivered
// (acknowledged by the broker), so durable() covers the batch's positions; a delivery failure fails
// the run before any commit marker covers the batch, which is then consumed again after a restart
// (at least once for the side records).
#pragma once
#include <memory>
#include <string>

#include "core/interner.h"
#include "sinks/kafka_producer.h"
#include "sinks/sink.h"

namespace iotpipe {

struct KafkaSideOptions {
  std::string brokers = "127.0.0.1:9092";
  std::string topic;                              // the consumed topic (headers; partition count)
  std::string dlq_topic;                          // "-": none
  std::string anomalies_topic = "iot-anomalies";  // "-": none
};

class KafkaSideSink final : public Sink {
 public:
  // Creates the side topics (as many partitions as `topic`) and the producer. Null if both are off.
  static Result<std::unique_ptr<KafkaSideSink>> Open(const KafkaSideOptions& opt, const Interner* sensors,
                                                     const Interner* models);
  ~KafkaSideSink() override;
  Status Write(const ProcessedBatch& b) override;
  Status Close() override;
  const OffsetMap* durable() const override { return &durable_; }
  int64_t delivery_failures() const { return producer_ ? producer_->failed() : 0; }

 private:
  KafkaSideSink() = default;
  KafkaSideOptions opt_;
  const Interner* sensors_ = nullptr;
  const Interner* models_ = nullptr;
  std::unique_ptr<KafkaProducer> producer_;
  OffsetMap durable_;
};

}  // namespace iotpipe
