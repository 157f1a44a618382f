#include "cli/kafka_cli.h"

#include <cstdio>

#include "core/clock.h"
#include "core/kafka_properties.h"
#include "pipeline/pipeline.h"
#include "sinks/kafka_producer.h"

namespace iotpipe::cli {

namespace {

// --kafka-property k=v (repeatable, or an array in the config file): any librdkafka property, for every
// Kafka client of the process (core/kafka_properties.h); librdkafka refuses unknown names and bad values
// when the first client is made, naming them.
void AddProperties(CLI::App* app, std::vector<std::string>* given) {
  app->add_option("--kafka-property", *given,
                  "Any librdkafka property for every Kafka client, e.g. security.protocol=SASL_SSL (repeatable)")
      ->expected(0, CLI::detail::expected_max_vector_size)
      ->each([](const std::string& kv) {
        const size_t eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
          throw CLI::ValidationError("--kafka-property", "expected NAME=VALUE, got '" + kv + "'");
        KafkaProperties().emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
      });
}

}  // namespace

void KafkaArgs::AddProducer(CLI::App* app) {
  app->add_option("--brokers", brokers, "Kafka bootstrap servers (--output kafka)");
  app->add_option("--topic", topic, "Kafka topic (--output kafka)");
  app->add_option("--partitions", partitions, "Partitions when the topic is created")->check(CLI::Range(1, 1000));
  AddProperties(app, &properties);
}

void KafkaArgs::AddConsumer(CLI::App* app) {
  app->add_option("--brokers", brokers, "Kafka bootstrap servers (--source kafka)");
  app->add_option("--topic", topic, "Kafka topic to consume (--source kafka)");
  app->add_option("--group", group, "Kafka consumer group; processors in one group share the partitions");
  app->add_option("--instance-id", instance_id,
                  "Static group membership id: a restarted processor takes its partitions back at once");
  app->add_option(
         "--exit-when-idle", exit_when_idle,
         "With --source kafka or mqtt: finish (flushed, committed) once no record arrived for this many seconds")
      ->check(CLI::Range(0.0, 1e9));
  app->add_option("--dlq-topic", dlq_topic, "With --source kafka: dead-letter topic (default <topic>.dlq; - for none)");
  app->add_option("--anomalies-topic", anomalies_topic,
                  "With --source kafka: topic for predicted anomalies (default iot-anomalies; - for none)");
  AddProperties(app, &properties);
}

KafkaSourceOptions KafkaArgs::SourceOptions() const {
  KafkaSourceOptions o;
  o.brokers = brokers;
  o.topic = topic;
  o.group = group;
  o.instance_id = instance_id;
  o.exit_when_idle_s = exit_when_idle;
  if (!dlq_topic.empty()) o.dlq_topic = dlq_topic;
  o.anomalies_topic = anomalies_topic;
  return o;
}

Status ProduceSimToKafka(const SimSourceOptions& so, const KafkaArgs& ka, const std::atomic<bool>& stop,
                         ProduceStats* st, bool progress) {
  Status s = EnsureKafkaTopic(ka.brokers, ka.topic, ka.partitions);
  if (!s.ok()) return s;
  KafkaProducerOptions po;
  po.brokers = ka.brokers;
  auto prod = KafkaProducer::Create(po);
  if (!prod.ok()) return prod.status();
  auto& p = *prod.value();
  SimSource src(so, RealClock::Get());
  RawBatch b;
  const int64_t t0 = MonoMicros();
  int64_t last = t0, last_n = 0;
  while (!stop.load()) {
    PollResult r = src.Poll(b, 4096);
    if (r == PollResult::kEnd) break;
    for (size_t i = 0; i < b.size(); i++) {
      auto rec = b.record(i);
      s = p.Produce(ka.topic, SensorIdOf(rec), rec);
      if (!s.ok()) return s;
      st->produced++;
    }
    p.Poll(0);
    int64_t now = MonoMicros();
    if (progress && now - last > 2000000) {
      std::fprintf(
          stderr, "[iotpipe] produced %s | %s rec/s | delivered %s | failed %lld | queued %lld\n",
          FormatCount(static_cast<double>(st->produced)).c_str(),
          FormatCount(static_cast<double>(st->produced - last_n) * 1e6 / static_cast<double>(now - last)).c_str(),
          FormatCount(static_cast<double>(p.delivered())).c_str(), static_cast<long long>(p.failed()),
          static_cast<long long>(p.queued()));
      last = now;
      last_n = st->produced;
    }
  }
  // Every record is delivered or has failed (message.timeout.ms) before this returns.
  while (!p.Flush(1000) && p.queued() > 0) {
  }
  st->delivered = p.delivered();
  st->failed = p.failed();
  st->first_error = p.first_error();
  st->malformed = src.malformed();
  st->elapsed_s = static_cast<double>(MonoMicros() - t0) / 1e6;
  return Status::OK();
}

}  // namespace iotpipe::cli
