#include "sinks/kafka_producer.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "core/kafka_properties.h"

namespace iotpipe {

namespace {
Status SetConf(rd_kafka_conf_t* conf, const std::string& k, const std::string& v) {
  char err[512];
  if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    return Status::Error("kafka setting " + k + "=" + v + ": " + err);
  return Status::OK();
}
}  // namespace

void KafkaProducer::OnDelivery(rd_kafka_t*, const void* m, void* opaque) {
  auto* msg = static_cast<const rd_kafka_message_t*>(m);
  auto* self = static_cast<KafkaProducer*>(opaque);
  if (msg->err) {
    self->failed_++;
    std::lock_guard<std::mutex> l(self->mu_);
    if (self->first_error_.empty()) self->first_error_ = rd_kafka_err2str(msg->err);
  } else {
    self->delivered_++;
  }
}

Result<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(const KafkaProducerOptions& opt) {
  std::unique_ptr<KafkaProducer> p(new KafkaProducer());
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> kv = {
      {"bootstrap.servers", opt.brokers},
      {"client.id", opt.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.codec", opt.compression},
      {"linger.ms", std::to_string(opt.linger_ms)},
      {"batch.size", std::to_string(opt.batch_bytes)},
      {"queue.buffering.max.kbytes", std::to_string(opt.max_buffered_kb)},
      {"queue.buffering.max.messages", "2000000"},
      {"message.timeout.ms", std::to_string(opt.message_timeout_ms)},
      {"reconnect.backoff.max.ms", "1000"},
      {"log_level", "3"},
  };
  for (auto& e : opt.extra) kv.push_back(e);
  for (auto& e : KafkaProperties()) kv.push_back(e);  // the user's last: they win
  for (auto& [k, v] : kv) {
    Status s = SetConf(conf, k, v);
    if (!s.ok()) {
      rd_kafka_conf_destroy(conf);
      return s;
    }
  }
  rd_kafka_conf_set_dr_msg_cb(
      conf, [](rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) { OnDelivery(rk, m, opaque); });
  rd_kafka_conf_set_opaque(conf, p.get());
  char err[512];
  p->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!p->rk_) {
    rd_kafka_conf_destroy(conf);
    return Status::Error(std::string("kafka producer: ") + err);
  }
  return p;
}

KafkaProducer::~KafkaProducer() {
  if (rk_) {
    rd_kafka_flush(rk_, 10000);
    rd_kafka_destroy(rk_);
  }
}

Status KafkaProducer::Produce(const std::string& topic, std::string_view key, std::string_view value,
                              const std::vector<KafkaHeader>& headers, int32_t partition) {
  while (true) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = rd_kafka_headers_new(headers.size());
      for (auto& h : headers)
        rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                            static_cast<ssize_t>(h.value.size()));
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_KEY(key.empty() ? nullptr : const_cast<char*>(key.data()), key.size()), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::OK();
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk_, 10);  // backpressure: wait for deliveries
      continue;
    }
    return Status::Error(std::string("kafka produce to ") + topic + ": " + rd_kafka_err2str(e));
  }
}

void KafkaProducer::Poll(int timeout_ms) { rd_kafka_poll(rk_, timeout_ms); }

bool KafkaProducer::Flush(int timeout_ms) { return rd_kafka_flush(rk_, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR; }

int64_t KafkaProducer::queued() const { return rd_kafka_outq_len(rk_); }

std::string KafkaProducer::first_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return first_error_;
}

namespace {
rd_kafka_t* AdminClient(const std::string& brokers, std::string* error) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  std::vector<std::pair<std::string, std::string>> kv = {{"bootstrap.servers", brokers}, {"log_level", "3"}};
  for (auto& e : KafkaProperties()) kv.push_back(e);
  for (auto& [k, v] : kv) {
    Status s = SetConf(conf, k, v);
    if (!s.ok()) {
      rd_kafka_conf_destroy(conf);
      *error = s.message();
      return nullptr;
    }
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    *error = err;
  }
  return rk;
}
}  // namespace

Result<int> KafkaPartitionCount(const std::string& brokers, const std::string& topic, int timeout_ms) {
  std::string error;
  rd_kafka_t* rk = AdminClient(brokers, &error);
  if (!rk) return Status::Error("kafka client: " + error);
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, timeout_ms);
  Result<int> out = Status::Error("");
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    out = Status::Unavailable("kafka metadata from " + brokers + ": " + rd_kafka_err2str(e));
  } else if (md->topic_cnt != 1 || md->topics[0].err) {
    out = Status::Error("kafka topic " + topic + ": " +
                        (md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : std::string("not found")));
  } else {
    out = md->topics[0].partition_cnt;
  }
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  rd_kafka_destroy(rk);
  return out;
}

Status EnsureKafkaTopic(const std::string& brokers, const std::string& topic, int partitions, int timeout_ms) {
  std::string error;
  rd_kafka_t* rk = AdminClient(brokers, &error);
  if (!rk) return Status::Error("kafka admin client: " + error);
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  if (!nt) {
    rd_kafka_destroy(rk);
    return Status::Error("kafka topic " + topic + ": " + err);
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, err, sizeof err);
  rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, err, sizeof err);
  rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
  Status st = Status::Error("kafka: no answer creating topic " + topic + " on " + brokers);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
  if (ev) {
    if (rd_kafka_event_error(ev)) {
      st = Status::Error("kafka create topic " + topic + ": " + rd_kafka_event_error_string(ev));
    } else {
      const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
      size_t n = 0;
      const rd_kafka_topic_result_t** tr = rd_kafka_CreateTopics_result_topics(res, &n);
      st = Status::OK();
      for (size_t i = 0; i < n; i++) {
        auto e = rd_kafka_topic_result_error(tr[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          const char* msg = rd_kafka_topic_result_error_string(tr[i]);
          st = Status::Error("kafka create topic " + topic + ": " + (msg ? msg : rd_kafka_err2str(e)));
        }
      }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(ao);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
  if (st.ok()) {
    // The topic is usable once its metadata shows leaders; wait briefly for that.
    for (int i = 0; i < 50; i++) {
      auto n = KafkaPartitionCount(brokers, topic, 2000);
      if (n.ok() && n.value() > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return st;
}

std::string_view SensorIdOf(std::string_view json) {
  size_t k = json.find("\"sensor_id\"");
  if (k == std::string_view::npos) return {};
  size_t c = json.find(':', k + 11);
  if (c == std::string_view::npos) return {};
  size_t q1 = json.find('"', c + 1);
  if (q1 == std::string_view::npos) return {};
  for (size_t i = c + 1; i < q1; i++)
    if (json[i] != ' ' && json[i] != '\t') return {};  // not a string value
  size_t q2 = json.find('"', q1 + 1);
  if (q2 == std::string_view::npos) return {};
  return json.substr(q1 + 1, q2 - q1 - 1);
}

}  // namespace iotpipe
