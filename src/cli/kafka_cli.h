// Kafka options shared by simulate / process / run, and the simulator-to-Kafka producer loop.
#pragma once
#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "sinks/kafka_producer.h"
#include "sources/kafka_source.h"
#include "sources/source.h"

namespace iotpipe::cli {

struct KafkaArgs {
  std::string brokers = "127.0.0.1:9092";
  std::string topic = "iot-sensor-data";
  std::string group = "my-processor-group";
  std::string instance_id;
  std::string dlq_topic;  // empty: <topic>.dlq
  std::string anomalies_topic = "iot-anomalies";
  int partitions = 6;
  double exit_when_idle = 0;
  std::vector<std::string> properties;  // --kafka-property NAME=VALUE (into core/kafka_properties.h)
  void AddProducer(CLI::App* app);
  void AddConsumer(CLI::App* app);
  KafkaSourceOptions SourceOptions() const;
};

struct ProduceStats {
  int64_t produced = 0, delivered = 0, failed = 0, malformed = 0;
  double elapsed_s = 0;
  std::string first_error;
};

// Produces the simulated fleet to Kafka (keyed by sensor_id) until the simulator ends or stop.
// Creates the topic if missing. Waits for every delivery report before returning.
Status ProduceSimToKafka(const SimSourceOptions& so, const KafkaArgs& ka, const std::atomic<bool>& stop,
                         ProduceStats* stats, bool progress);

}  // namespace iotpipe::cli
