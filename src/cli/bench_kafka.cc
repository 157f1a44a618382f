#include "cli/bench_kafka.h"

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "cli/common.h"
#include "cli/kafka_cli.h"
#include "detect/baseline.h"
#include "sinks/kafka_producer.h"

namespace fs = std::filesystem;

namespace iotpipe::cli {
namespace {

double Since(int64_t t0) { return static_cast<double>(MonoMicros() - t0) / 1e6; }

struct Consumed {
  int64_t sent = 0, stored = 0, dead = 0;
  double seconds = 0;  // without the idle wait at the end
};

// Consumes `topic` from the start into a fresh store until idle; the idle wait is not counted.
Result<Consumed> ConsumeAndStore(const KafkaArgs& ka, const std::string& dir, const std::atomic<bool>& stop) {
  const double idle = 2;
  KafkaSourceOptions ko = ka.SourceOptions();
  ko.exit_when_idle_s = idle;
  ko.dlq_topic = "-";
  ko.anomalies_topic = "-";
  KafkaSource src(ko);
  PipelineOptions po;
  po.store.data_dir = dir;
  po.progress_interval_s = 0;
  fs::remove_all(dir);
  Pipeline p(&src, std::make_shared<BaselineDetector>(), po, RealClock::Get());
  Status s = p.Run(stop);
  if (!s.ok()) return s;
  Consumed c;
  c.sent = p.metrics().sent.load();
  c.stored = static_cast<int64_t>(p.store_stats().rows);
  c.dead = static_cast<int64_t>(p.store_stats().dead);
  c.seconds = std::max(1e-3, p.elapsed_s() - idle);
  return c;
}

}  // namespace

void KafkaBench(const std::string& brokers, int64_t events, const std::string& tmp, const BenchRow& row,
                nlohmann::json& j) {
  if (brokers.empty()) {
    j["kafka_skipped"] = "no broker: set IOTPIPE_KAFKA_BROKERS or --brokers (scripts/kafka start)";
    std::fprintf(stderr,
                 "  kafka: skipped (no broker; scripts/kafka start, then IOTPIPE_KAFKA_BROKERS=127.0.0.1:9092)\n");
    return;
  }
  if (auto n = KafkaPartitionCount(brokers, "__iotpipe_bench_probe", 3000); !n.ok() && n.status().IsUnavailable()) {
    j["kafka_skipped"] = "broker " + brokers + " does not answer: " + n.status().message();
    std::fprintf(stderr, "  kafka: skipped (%s)\n", n.status().message().c_str());
    return;
  }
  std::atomic<bool> stop{false};
  KafkaArgs ka;
  ka.brokers = brokers;
  ka.partitions = 6;
  const std::string base = "bench-" + std::to_string(getpid()) + "-" + std::to_string(MonoMicros() % 1000000);
  SimSourceOptions so;
  so.sim.sensors = 1000;
  so.sim.start_us = 1732406400LL * 1000000;
  so.max_events = events;

  // 1. produce alone (idempotent, acks=all, lz4; every record delivered before the clock stops).
  ka.topic = base;
  ProduceStats ps;
  int64_t t0 = MonoMicros();
  Check(ProduceSimToKafka(so, ka, stop, &ps, false), "bench kafka produce");
  double s1 = Since(t0);
  if (ps.failed > 0) Fail("bench kafka: " + std::to_string(ps.failed) + " records failed delivery: " + ps.first_error);
  row("kafka: produce alone (1k sensors, 6 partitions)", static_cast<double>(ps.delivered) / s1, "records/s",
      "kafka_produce_records_per_s");

  // 2. consume and store alone (the topic is full).
  ka.group = base + "-g";
  auto c = ConsumeAndStore(ka, tmp + "/kafka-consume", stop);
  Check(c.status(), "bench kafka consume");
  if (c.value().stored + c.value().dead != ps.delivered) Fail("bench kafka: stored + dead != produced");
  row("kafka: consume + parse + detect + store alone", static_cast<double>(c.value().sent) / c.value().seconds,
      "records/s", "kafka_consume_store_records_per_s");

  // 3. both together: producer and processor running at once on a fresh topic.
  ka.topic = base + "-both";
  ka.group = base + "-both-g";
  Check(EnsureKafkaTopic(ka.brokers, ka.topic, ka.partitions), "bench kafka topic");
  ProduceStats ps3;
  Status prod_status;
  t0 = MonoMicros();
  std::thread producer([&] { prod_status = ProduceSimToKafka(so, ka, stop, &ps3, false); });
  auto c3 = ConsumeAndStore(ka, tmp + "/kafka-both", stop);
  producer.join();
  Check(prod_status, "bench kafka produce (both)");
  Check(c3.status(), "bench kafka consume (both)");
  double s3 = Since(t0) - 2;  // the consumer's idle wait
  if (c3.value().stored + c3.value().dead != ps3.delivered) Fail("bench kafka (both): stored + dead != produced");
  row("kafka: produce + consume + store together", static_cast<double>(c3.value().sent) / s3, "records/s",
      "kafka_both_records_per_s");
  fs::remove_all(tmp + "/kafka-consume");
  fs::remove_all(tmp + "/kafka-both");
}

}  // namespace iotpipe::cli
