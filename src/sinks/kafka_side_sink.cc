#include "sinks/kafka_side_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

namespace iotpipe {

Result<std::unique_ptr<KafkaSideSink>> KafkaSideSink::Open(const KafkaSideOptions& opt, const Interner* sensors,
                                                           const Interner* models) {
  if (opt.dlq_topic == "-" && opt.anomalies_topic == "-") return std::unique_ptr<KafkaSideSink>();
  auto n = KafkaPartitionCount(opt.brokers, opt.topic);
  if (!n.ok()) return Status::Error(n.status().message() + " (create it with `iotpipe simulate --output kafka`)");
  for (const std::string& t : {opt.dlq_topic, opt.anomalies_topic}) {
    if (t == "-") continue;
    Status s = EnsureKafkaTopic(opt.brokers, t, n.value());
    if (!s.ok()) return s;
  }
  KafkaProducerOptions po;
  po.brokers = opt.brokers;
  po.client_id = "iotpipe-processor-side";
  po.linger_ms = 5;  // flushed after every batch (at least once): little to gain from waiting
  auto p = KafkaProducer::Create(po);
  if (!p.ok()) return p.status();
  std::unique_ptr<KafkaSideSink> s(new KafkaSideSink());
  s->opt_ = opt;
  s->sensors_ = sensors;
  s->models_ = models;
  s->producer_ = std::move(p.value());
  return s;
}

KafkaSideSink::~KafkaSideSink() { (void)Close(); }

Status KafkaSideSink::Write(const ProcessedBatch& b) {
  int64_t not_queued = 0;
  std::string first_error;
  auto note = [&](const Status& s) {
    if (s.ok()) return;
    if (not_queued++ == 0) first_error = s.message();
  };
  const auto& d = b.dead;
  if (opt_.dlq_topic != "-") {
    for (size_t i = 0; i < d.size(); i++) {
      std::vector<KafkaHeader> h = {{"reason", d.reason[i]}, {"source_topic", opt_.topic}};
      if (!d.origins.empty()) {
        h.push_back({"source_partition", std::to_string(d.origins[i].partition)});
        h.push_back({"source_offset", std::to_string(d.origins[i].offset)});
      }
      note(producer_->Produce(opt_.dlq_topic, {}, d.raw[i], h));
    }
  }
  const auto& r = b.readings;
  if (opt_.anomalies_topic != "-") {
    for (size_t i = 0; i < r.size(); i++) {
      if (!r.predicted[i]) continue;
      const std::string& sid = sensors_->Name(r.sensor[i]);
      nlohmann::json j = {{"sensor_id", sid},
                          {"timestamp", static_cast<double>(r.ts_us[i]) / 1e6},
                          {"value", r.value[i]},
                          {"anomaly_score", static_cast<double>(r.score[i])},
                          {"model_version", models_->Name(r.model[i])},
                          {"is_anomaly_ground_truth", ReadingBatch::Labelled(r.gt[i])  // null: unlabelled
                                                          ? nlohmann::json(r.gt[i] != 0)
                                                          : nlohmann::json(nullptr)}};
      // Sensor ids are arbitrary UTF-8 from the wire: escaped by the JSON library, bad bytes replaced.
      note(producer_->Produce(opt_.anomalies_topic, sid,
                              j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    }
  }
  const int64_t failed_before = producer_->failed();
  if (producer_->queued() > 0) {
    while (!producer_->Flush(1000) && producer_->queued() > 0) {
    }
  } else {
    producer_->Poll(0);
  }
  const int64_t failed = producer_->failed() - failed_before + not_queued;
  if (failed > 0) {
    Status e = Status::Error("kafka: " + std::to_string(failed) + " dead-letter/anomaly record(s) failed delivery (" +
                             (not_queued ? first_error : producer_->first_error()) + ")");
    spdlog::error("{}; ending the run without committing the batch", e.message());
    return e;
  }
  // Delivered: the batch's positions are durable here.
  for (const auto* o : {&r.origins, &d.origins}) {
    int32_t cur = INT32_MIN;
    int64_t* hw = nullptr;
    for (const Origin& x : *o) {
      if (x.partition != cur) hw = &durable_.emplace(cur = x.partition, -1).first->second;
      *hw = std::max(*hw, x.offset);
    }
  }
  return Status::OK();
}

Status KafkaSideSink::Close() {
  if (!producer_) return Status::OK();
  if (!producer_->Flush(10000)) spdlog::warn("kafka: side topics not fully delivered at shutdown");
  if (producer_->failed() > 0)
    spdlog::warn("kafka: {} dead-letter/anomaly records failed delivery: {}", producer_->failed(),
                 producer_->first_error());
  producer_.reset();
  return Status::OK();
}

}  // namespace iotpipe
