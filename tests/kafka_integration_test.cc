// Kafka integration tests against a real broker (scripts/kafka; `make test` starts it and sets
// IOTPIPE_KAFKA_BROKERS). Without a broker they skip, unless IOTPIPE_REQUIRE_KAFKA=1 (then fail).
// Each test uses its own topic, group and data directory, and runs the real `iotpipe` binary.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/duck.h"
#include "detect/baseline.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using iotpipe::testing::Child;
using iotpipe::testing::Env;
using iotpipe::testing::ReadAll;
using iotpipe::testing::SourceDir;
using iotpipe::testing::Unique;
using iotpipe::testing::WaitForText;

#define REQUIRE_KAFKA()                                                                              \
  do {                                                                                               \
    if (Env("IOTPIPE_KAFKA_BROKERS").empty()) {                                                      \
      if (Env("IOTPIPE_REQUIRE_KAFKA") == "1")                                                       \
        FAIL() << "IOTPIPE_REQUIRE_KAFKA=1 but no broker (scripts/test prints why after the tests)"; \
      GTEST_SKIP() << "IOTPIPE_KAFKA_BROKERS unset (scripts/kafka start)";                           \
    }                                                                                                \
  } while (0)

// The project's venv with kafka-python (scripts/deps), for tests that use a third-party client.
#define REQUIRE_PYTHON(py)                                                                                        \
  do {                                                                                                            \
    if (!fs::exists(py)) {                                                                                        \
      if (Env("IOTPIPE_REQUIRE_KAFKA") == "1") FAIL() << (py) << " missing (scripts/deps installs kafka-python)"; \
      GTEST_SKIP() << (py) << " missing";                                                                         \
    }                                                                                                             \
  } while (0)

class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    brokers_ = Env("IOTPIPE_KAFKA_BROKERS");
    dir_ = fs::temp_directory_path() / Unique("iotpipe-kafka");
    fs::create_directories(dir_);
    topic_ = Unique("it");
    group_ = Unique("g");
    // Another engineer's HTTP server may be on by default; these processes must not fight for a port.
    static int has_http = -1;
    if (has_http < 0) {
      std::string help = (dir_ / "help.txt").string();
      Child c({IOTPIPE_BIN, "process", "--help"}, help);
      c.Wait(30);
      has_http = ReadAll(help).find("--http") != std::string::npos;
    }
    if (has_http) extra_ = {"--http", "off"};
  }
  void TearDown() override {
    if (!HasFailure()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    } else {
      std::fprintf(stderr, "kept %s for inspection\n", dir_.c_str());
    }
  }
  std::string Log(const std::string& name) const { return (dir_ / (name + ".log")).string(); }
  std::string Data() const { return (dir_ / "data").string(); }

  std::vector<std::string> Simulate(int64_t events, const std::string& rate = "max", double malformed = 0,
                                    int partitions = 6, const std::string& topic = "") const {
    return {IOTPIPE_BIN,        "simulate",
            "--output",         "kafka",
            "--brokers",        brokers_,
            "--topic",          topic.empty() ? topic_ : topic,
            "--partitions",     std::to_string(partitions),
            "--sensors",        "1000",
            "--rate",           rate,
            "--events",         std::to_string(events),
            "--malformed-rate", std::to_string(malformed),
            "--seed",           "7"};
  }
  std::vector<std::string> Process(double idle_s, const std::vector<std::string>& more = {}) const {
    std::vector<std::string> a = {
        IOTPIPE_BIN,      "process", "--source", "kafka",      "--brokers", brokers_,           "--topic",
        topic_,           "--group", group_,     "--data-dir", Data(),      "--exit-when-idle", std::to_string(idle_s),
        "--no-checkpoint"};
    a.insert(a.end(), extra_.begin(), extra_.end());
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }

  struct Counts {
    int64_t stored = 0, distinct = 0, dead = 0;
  };
  Counts Count() const {
    Counts c;
    auto db = iotpipe::Duck::Open();
    EXPECT_TRUE(db.ok());
    auto has = [](const std::string& d) {
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(d, ec); !ec && it != fs::recursive_directory_iterator(); ++it)
        if (it->path().extension() == ".parquet" && it->path().filename().string()[0] != '.') return true;
      return false;
    };
    std::string r = Data() + "/sensor_readings", d = Data() + "/dead_letters";
    if (has(r)) {
      auto t = db.value()->Query("SELECT count(*), count(DISTINCT (sensor_id, timestamp)) FROM read_parquet(" +
                                 iotpipe::SqlQuote(r + "/**/*.parquet") + ", hive_partitioning = false)");
      EXPECT_TRUE(t.ok()) << t.status().message();
      if (t.ok()) {
        c.stored = t.value().Int(0, 0);
        c.distinct = t.value().Int(0, 1);
      }
    }
    if (has(d)) {
      auto t = db.value()->Query("SELECT count(*) FROM read_parquet(" + iotpipe::SqlQuote(d + "/**/*.parquet") +
                                 ", hive_partitioning = false)");
      EXPECT_TRUE(t.ok()) << t.status().message();
      if (t.ok()) c.dead = t.value().Int(0, 0);
    }
    return c;
  }
  void ExpectExact(int64_t produced) {
    Counts c = Count();
    EXPECT_EQ(c.stored + c.dead, produced) << "stored " << c.stored << " dead " << c.dead;
    EXPECT_EQ(c.distinct, c.stored) << "duplicate (sensor_id, timestamp) rows";
  }

  std::string brokers_, topic_, group_;
  fs::path dir_;
  std::vector<std::string> extra_;
};

// Reads a whole topic (all partitions, from the beginning) until it is quiet; counts records and
// those carrying a header `header`.
std::pair<int64_t, int64_t> ConsumeAll(const std::string& brokers, const std::string& topic,
                                       const std::string& header) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", Unique("reader").c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  int64_t n = 0, with = 0;
  auto quiet_since = std::chrono::steady_clock::now();
  auto deadline = quiet_since + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline &&
         std::chrono::steady_clock::now() - quiet_since < std::chrono::seconds(n ? 3 : 20)) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (!m) continue;
    if (!m->err) {
      n++;
      quiet_since = std::chrono::steady_clock::now();
      rd_kafka_headers_t* h = nullptr;
      const void* v = nullptr;
      size_t sz = 0;
      if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          rd_kafka_header_get_last(h, header.c_str(), &v, &sz) == RD_KAFKA_RESP_ERR_NO_ERROR && sz > 0)
        with++;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return {n, with};
}

TEST_F(KafkaTest, MillionRecordsStoredExactlyOnce) {
  REQUIRE_KAFKA();
  const int64_t n = 1000000;
  Child sim(Simulate(n, "max", 0.001), Log("simulate"));
  ASSERT_EQ(sim.Wait(300), 0) << ReadAll(Log("simulate"));
  Child proc(Process(4), Log("process"));
  ASSERT_EQ(proc.Wait(400), 0) << ReadAll(Log("process"));
  ExpectExact(n);
  Counts c = Count();
  EXPECT_GT(c.dead, 500);  // ~0.1% malformed
  EXPECT_LT(c.dead, 1500);
  // Every partition committed a marker.
  int markers = 0;
  for (auto& e : fs::directory_iterator(Data() + "/_offsets"))
    markers += e.path().filename().string().starts_with(topic_);
  EXPECT_EQ(markers, 6);
}

TEST_F(KafkaTest, SigkilledRepeatedlyWhileProducingLosesAndDuplicatesNothing) {
  REQUIRE_KAFKA();
  const int64_t n = 400000;
  // Create the topic first so the processor can subscribe while the producer runs.
  // The first batch's event times are far in the past, so they can never share a (sensor_id, timestamp)
  // with the real-time run that follows (a collision at the same millisecond counted as a duplicate once).
  auto first = Simulate(1000, "max", 0.01, 6);
  first.insert(first.end(), {"--start", "1732406400"});
  Child sim0(first, Log("simulate0"));
  ASSERT_EQ(sim0.Wait(120), 0) << ReadAll(Log("simulate0"));
  Child sim(Simulate(n - 1000, "20000", 0.01, 6), Log("simulate"));
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> ms(1200, 4000);
  int kills = 0;
  for (int i = 0; i < 6; i++) {
    std::string log = Log("process-" + std::to_string(i));
    // Static membership: the restarted member takes its partitions back without waiting for a timeout.
    Child proc(Process(0, {"--instance-id", "p0", "--quiet"}), log);
    ASSERT_TRUE(WaitForText(log, "assigned", 60)) << ReadAll(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng)));
    proc.Kill(SIGKILL);
    EXPECT_EQ(proc.Wait(30), -SIGKILL) << ReadAll(log);
    kills++;
  }
  ASSERT_EQ(sim.Wait(300), 0) << ReadAll(Log("simulate"));
  Child last(Process(5, {"--instance-id", "p0", "--quiet"}), Log("process-last"));
  ASSERT_EQ(last.Wait(300), 0) << ReadAll(Log("process-last"));
  EXPECT_GE(kills, 5);
  ExpectExact(n);
}

TEST_F(KafkaTest, TwoProcessorsInOneGroupOneKilledTotalsExact) {
  REQUIRE_KAFKA();
  const int64_t n = 300000;
  Child sim(Simulate(n, "max", 0.001, 6), Log("simulate"));
  ASSERT_EQ(sim.Wait(300), 0) << ReadAll(Log("simulate"));
  Child a(Process(25, {"--quiet"}), Log("a"));
  ASSERT_TRUE(WaitForText(Log("a"), "assigned", 60)) << ReadAll(Log("a"));
  Child b(Process(25, {"--quiet"}), Log("b"));
  // b joins: a rebalance hands b some partitions (a is revoked and re-assigned).
  ASSERT_TRUE(WaitForText(Log("b"), "assigned", 60)) << ReadAll(Log("b"));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  b.Kill(SIGKILL);
  EXPECT_EQ(b.Wait(30), -SIGKILL);
  // a takes over b's partitions once b's session expires, and finishes everything.
  ASSERT_EQ(a.Wait(300), 0) << ReadAll(Log("a"));
  EXPECT_GE(ReadAll(Log("a")).find("assigned") != std::string::npos, true);
  ExpectExact(n);
}

TEST_F(KafkaTest, MalformedRecordsReachBothDeadLetterOutputs) {
  REQUIRE_KAFKA();
  const int64_t n = 20000;
  Child sim(Simulate(n, "max", 0.02, 3), Log("simulate"));
  ASSERT_EQ(sim.Wait(120), 0) << ReadAll(Log("simulate"));
  Child proc(Process(3), Log("process"));
  ASSERT_EQ(proc.Wait(120), 0) << ReadAll(Log("process"));
  ExpectExact(n);
  Counts c = Count();
  EXPECT_GT(c.dead, 200);
  auto [dlq, with_reason] = ConsumeAll(brokers_, topic_ + ".dlq", "reason");
  EXPECT_EQ(dlq, c.dead);
  EXPECT_EQ(with_reason, dlq);
  // Reasons are stored with the dead letters too.
  auto db = iotpipe::Duck::Open();
  auto t = db.value()->Query("SELECT count(*) FROM read_parquet(" +
                             iotpipe::SqlQuote(Data() + "/dead_letters/**/*.parquet") +
                             ", hive_partitioning = false) WHERE coalesce(length(reason), 0) = 0");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t.value().Int(0, 0), 0);
}

// --kafka-property reaches every client (issue 17 point 4): the producer (lz4), the consumer (its fetch
// wait) and the admin client; a property librdkafka does not know fails at once, naming it.
TEST_F(KafkaTest, KafkaPropertiesReachEveryClientUnknownOnesFail) {
  REQUIRE_KAFKA();
  const int64_t n = 5000;
  auto sim = Simulate(n, "max", 0, 3);
  sim.insert(sim.end(), {"--kafka-property", "compression.codec=lz4", "--kafka-property", "linger.ms=20"});
  Child s(sim, Log("simulate"));
  ASSERT_EQ(s.Wait(120), 0) << ReadAll(Log("simulate"));
  Child proc(Process(3, {"--kafka-property", "fetch.wait.max.ms=20", "--kafka-property", "client.id=prop-test"}),
             Log("process"));
  ASSERT_EQ(proc.Wait(120), 0) << ReadAll(Log("process"));
  ExpectExact(n);
  Child bad(Process(3, {"--kafka-property", "no.such.property=1"}), Log("bad"));
  EXPECT_EQ(bad.Wait(60), 1);
  EXPECT_NE(ReadAll(Log("bad")).find("No such configuration property: \"no.such.property\""), std::string::npos)
      << ReadAll(Log("bad"));
}

TEST_F(KafkaTest, ThirdPartyKafkaPythonRecordAcceptedUnchanged) {
  REQUIRE_KAFKA();
  const std::string py = SourceDir() + "/.deps/pyvenv/bin/python";
  REQUIRE_PYTHON(py);
  std::string script = (dir_ / "produce.py").string();
  std::ofstream(script) << R"PY(
import json, sys
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
brokers, topic = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=brokers)
admin.create_topics([NewTopic(name=topic, num_partitions=2, replication_factor=1)])
admin.close()
# The original design's producer: JSON values, no key.
p = KafkaProducer(bootstrap_servers=brokers, value_serializer=lambda v: json.dumps(v).encode("utf-8"))
for i in range(100):
    p.send(topic, {"sensor_id": "sensor_%d" % (i % 10), "timestamp": 1732406400.123 + i,
                   "value": 25.3 + i, "is_anomaly_ground_truth": i == 50})
p.flush()
p.close()
)PY";
  Child c({py, script, brokers_, topic_}, Log("python"));
  ASSERT_EQ(c.Wait(120), 0) << ReadAll(Log("python"));
  Child proc(Process(3), Log("process"));
  ASSERT_EQ(proc.Wait(120), 0) << ReadAll(Log("process"));
  Counts n = Count();
  EXPECT_EQ(n.stored, 100);
  EXPECT_EQ(n.dead, 0);
  auto db = iotpipe::Duck::Open();
  auto t = db.value()->Query("SELECT value, is_anomaly_ground_truth, epoch_ms(timestamp) FROM read_parquet(" +
                             iotpipe::SqlQuote(Data() + "/sensor_readings/**/*.parquet") +
                             ", hive_partitioning = false) WHERE sensor_id = 'sensor_0' ORDER BY timestamp LIMIT 6");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t.value().rows.size(), 6u);
  EXPECT_DOUBLE_EQ(t.value().Num(5, 0), 25.3 + 50);
  EXPECT_EQ(t.value().Str(5, 1), "true");
  EXPECT_EQ(t.value().Int(5, 2), 1732406400123LL + 50000);
}

// A dead-letter record the broker refuses (its topic accepts at most 256-byte messages): the run
// ends with an error, nothing of the batch is stored or committed, and a run with a working
// dead-letter topic then stores everything exactly once (the batch was replayed, side records too).
TEST_F(KafkaTest, SideTopicDeliveryFailureCommitsNothingAndFails) {
  REQUIRE_KAFKA();
  const std::string py = SourceDir() + "/.deps/pyvenv/bin/python";
  REQUIRE_PYTHON(py);
  std::string script = (dir_ / "setup.py").string();
  std::ofstream(script) << R"PY(
import json, os, sys
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
brokers, topic = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=brokers)
admin.create_topics([NewTopic(name=topic, num_partitions=1, replication_factor=1),
                     NewTopic(name=topic + ".dlq", num_partitions=1, replication_factor=1,
                              topic_configs={"max.message.bytes": "256"})])
admin.close()
p = KafkaProducer(bootstrap_servers=brokers)
for i in range(100):
    p.send(topic, json.dumps({"sensor_id": "s%d" % (i % 10), "timestamp": 1732406400 + i,
                              "value": 25.0 + (i % 7), "is_anomaly_ground_truth": False}).encode())
# Incompressible (the side producer compresses): well over the dead-letter topic's limit.
p.send(topic, b'{"sensor_id": "' + os.urandom(2000).hex().encode() + b'", "timestamp": oops}')
p.flush()
p.close()
)PY";
  Child c({py, script, brokers_, topic_}, Log("python"));
  ASSERT_EQ(c.Wait(120), 0) << ReadAll(Log("python"));

  Child bad(Process(3, {"--anomalies-topic", "-"}), Log("process-bad"));
  int rc = bad.Wait(120);
  EXPECT_NE(rc, 0) << ReadAll(Log("process-bad"));
  EXPECT_NE(ReadAll(Log("process-bad")).find("failed delivery"), std::string::npos) << ReadAll(Log("process-bad"));
  Counts before = Count();
  EXPECT_LT(before.stored + before.dead, 101) << "the failing batch must not be stored";

  Child good(Process(3, {"--anomalies-topic", "-", "--dlq-topic", topic_ + ".dlq2"}), Log("process-good"));
  ASSERT_EQ(good.Wait(120), 0) << ReadAll(Log("process-good"));
  ExpectExact(101);
  EXPECT_EQ(Count().dead, 1);
  auto [dlq, with_reason] = ConsumeAll(brokers_, topic_ + ".dlq2", "reason");
  EXPECT_EQ(dlq, 1);
  EXPECT_EQ(with_reason, 1);
}

// A private broker (own port and data) is stopped and started while the producer and the
// processor run: both recover by themselves and nothing is lost or duplicated.
TEST_F(KafkaTest, BrokerRestartWhileRunningBothRecover) {
  REQUIRE_KAFKA();
  const int port = 20000 + static_cast<int>(getpid() % 5000) * 2;
  std::string home = (dir_ / "broker").string();
  std::vector<std::string> env = {"IOTPIPE_KAFKA_HOME=" + home, "IOTPIPE_KAFKA_PORT=" + std::to_string(port),
                                  "IOTPIPE_KAFKA_HEAP=384m"};
  std::string script = SourceDir() + "/scripts/kafka";
  struct BrokerGuard {
    std::string script;
    std::vector<std::string> env;
    std::string log;
    ~BrokerGuard() { Child({script, "stop"}, log, env).Wait(60); }
  } guard{script, env, Log("broker")};
  {
    Child start({script, "start"}, Log("broker"), env);
    ASSERT_EQ(start.Wait(180), 0) << ReadAll(Log("broker"));
  }
  brokers_ = "127.0.0.1:" + std::to_string(port);
  const int64_t n = 200000;
  // The first batch's event times are far in the past, so they can never share a (sensor_id, timestamp)
  // with the real-time run that follows (a collision at the same millisecond counted as a duplicate once).
  auto first = Simulate(1000, "max", 0, 4);
  first.insert(first.end(), {"--start", "1732406400"});
  Child sim0(first, Log("simulate0"));
  ASSERT_EQ(sim0.Wait(120), 0) << ReadAll(Log("simulate0"));
  Child sim(Simulate(n - 1000, "20000", 0, 4), Log("simulate"));
  Child proc(Process(45, {"--quiet"}), Log("process"));  // the idempotent producer may need a while after the restart
  ASSERT_TRUE(WaitForText(Log("process"), "assigned", 60)) << ReadAll(Log("process"));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  {
    Child stop({script, "stop"}, Log("broker"), env);
    ASSERT_EQ(stop.Wait(60), 0);
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  {
    Child start({script, "start"}, Log("broker"), env);
    ASSERT_EQ(start.Wait(180), 0) << ReadAll(Log("broker"));
  }
  ASSERT_EQ(sim.Wait(300), 0) << ReadAll(Log("simulate"));
  ASSERT_EQ(proc.Wait(300), 0) << ReadAll(Log("process"));
  ExpectExact(n);
}

// Per-sensor detector state follows its partition: saved with the partition's commit when it is
// revoked (or the processor stops), restored by whichever processor gets the partition next.
// The baseline detector's per-sensor reading count n must continue across owners, not restart.
std::map<std::string, uint32_t> BaselineCounts(const std::string& path) {
  std::map<std::string, uint32_t> out;
  std::string d = ReadAll(path);
  size_t pos = 0;
  std::vector<std::string> head;
  for (int i = 0; i < 4; i++) {
    size_t e = d.find('\n', pos);
    if (e == std::string::npos) return out;
    head.push_back(d.substr(pos, e - pos));
    pos = e + 1;
  }
  if (head[1] != "baseline") return out;
  size_t stride = 0;
  unsigned long long n = 0;
  if (std::sscanf(head[3].c_str(), "%zu %llu", &stride, &n) != 2) return out;
  iotpipe::BaselineDetector::State st;
  if (stride != sizeof st) return out;
  for (unsigned long long k = 0; k < n && pos + 4 <= d.size(); k++) {
    uint32_t len;
    std::memcpy(&len, d.data() + pos, 4);
    pos += 4;
    if (pos + len + stride > d.size()) break;
    std::string name = d.substr(pos, len);
    std::memcpy(&st, d.data() + pos + len, stride);
    out[name] = st.n;
    pos += len + stride;
  }
  return out;
}

TEST_F(KafkaTest, DetectorStateFollowsItsPartition) {
  REQUIRE_KAFKA();
  auto sim = [&](int64_t n, const std::string& seed, const std::string& log) {
    Child c({IOTPIPE_BIN, "simulate", "--output", "kafka", "--brokers", brokers_, "--topic", topic_, "--partitions",
             "2", "--sensors", "8", "--rate", "max", "--events", std::to_string(n), "--seed", seed},
            Log(log));
    return c.Wait(120);
  };
  auto counts = [&] {
    std::map<std::string, uint32_t> all;
    int files = 0;
    for (int p = 0; p < 2; p++) {
      std::string path = Data() + "/state/" + topic_ + "-p" + std::to_string(p) + ".ckpt";
      if (!fs::exists(path)) continue;
      files++;
      for (auto& [s, n] : BaselineCounts(path)) {
        EXPECT_EQ(all.count(s), 0u) << s << " in two partitions' state";
        all[s] = n;
      }
    }
    EXPECT_EQ(files, 2);
    return all;
  };
  ASSERT_EQ(sim(4000, "7", "sim1"), 0) << ReadAll(Log("sim1"));
  // Owner 1 takes both partitions, stops: their state is saved with their commits.
  Child a(Process(2), Log("a"));
  ASSERT_EQ(a.Wait(120), 0) << ReadAll(Log("a"));
  auto first = counts();
  ASSERT_EQ(first.size(), 8u);
  uint64_t sum1 = 0;
  for (auto& [s, n] : first) sum1 += n;
  ExpectExact(4000);
  EXPECT_EQ(sum1, static_cast<uint64_t>(Count().stored));
  // More data; two new processors share the group: one starts with both partitions, the other's
  // arrival revokes them (state saved at the drain) and splits them; each restores what it gets.
  ASSERT_EQ(sim(4000, "8", "sim2"), 0) << ReadAll(Log("sim2"));
  Child b(Process(4), Log("b"));
  ASSERT_TRUE(WaitForText(Log("b"), "assigned", 60)) << ReadAll(Log("b"));
  Child c(Process(4), Log("c"));
  ASSERT_EQ(b.Wait(180), 0) << ReadAll(Log("b"));
  ASSERT_EQ(c.Wait(180), 0) << ReadAll(Log("c"));
  // Both rounds simulate the same time span, so (sensor_id, timestamp) repeats by design: count only.
  Counts all = Count();
  EXPECT_EQ(all.stored + all.dead, 8000);
  auto second = counts();
  ASSERT_EQ(second.size(), 8u);
  uint64_t sum2 = 0;
  for (auto& [s, n] : second) {
    sum2 += n;
    EXPECT_GT(n, first[s]) << s << ": state reset instead of continued";
  }
  // Every reading of both rounds counted once in its sensor's state.
  EXPECT_EQ(sum2, static_cast<uint64_t>(Count().stored));
  std::string logs = ReadAll(Log("b")) + ReadAll(Log("c"));
  EXPECT_NE(logs.find("restored detector state"), std::string::npos) << logs;
}

// Issue 16: the corpus of real-world payload shapes (tests/records/cases.json), each file's lines sent
// as Kafka messages by a third-party client (kafka-python, one partition so a CSV header comes first),
// consumed by `process --source kafka` with the case's mapping; readings checked row by row and the
// dead-letter reasons exactly, as tests/records_test.cc does for `process --input`.
TEST_F(KafkaTest, RealRecordCorpusThroughKafkaRowByRow) {
  REQUIRE_KAFKA();
  const std::string py = SourceDir() + "/.deps/pyvenv/bin/python";
  REQUIRE_PYTHON(py);
  std::string script = (dir_ / "produce_lines.py").string();
  std::ofstream(script) << R"PY(
import sys
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
brokers, topic, path = sys.argv[1], sys.argv[2], sys.argv[3]
admin = KafkaAdminClient(bootstrap_servers=brokers)
admin.create_topics([NewTopic(name=topic, num_partitions=1, replication_factor=1)])
admin.close()
p = KafkaProducer(bootstrap_servers=brokers)
for line in open(path, "rb").read().split(b"\n"):
    if line:
        p.send(topic, line)
p.flush()
p.close()
)PY";
  std::ifstream f(SourceDir() + "/tests/records/cases.json");
  auto cases = nlohmann::json::parse(f)["cases"];
  int i = 0;
  for (const auto& c : cases) {
    const std::string file = c["file"].get<std::string>(), args = c["args"].get<std::string>();
    SCOPED_TRACE(file + " " + args);
    const std::string topic = Unique("rec"), group = Unique("g"), data = (dir_ / ("d" + std::to_string(i))).string();
    const std::string tag = std::to_string(i++);
    Child prod({py, script, brokers_, topic, SourceDir() + "/tests/records/" + file}, Log("py" + tag));
    ASSERT_EQ(prod.Wait(120), 0) << ReadAll(Log("py" + tag));
    std::vector<std::string> a = {IOTPIPE_BIN,        "process", "--source",       "kafka", "--brokers",  brokers_,
                                  "--topic",          topic,     "--group",        group,   "--data-dir", data,
                                  "--exit-when-idle", "3",       "--no-checkpoint"};
    a.insert(a.end(), extra_.begin(), extra_.end());
    std::istringstream ws(args);
    for (std::string w; ws >> w;) a.push_back(w);
    Child proc(a, Log("process" + tag));
    ASSERT_EQ(proc.Wait(120), 0) << ReadAll(Log("process" + tag));
    auto db = iotpipe::Duck::Open();
    ASSERT_TRUE(db.ok());
    std::vector<std::string> rows;
    if (!c["readings"].empty()) {
      auto t =
          db.value()->Query("SELECT sensor_id, epoch_us(timestamp), value, is_anomaly_ground_truth FROM read_parquet(" +
                            iotpipe::SqlQuote(data + "/sensor_readings/**/*.parquet") +
                            ", hive_partitioning = false) ORDER BY sensor_id, timestamp");
      ASSERT_TRUE(t.ok()) << t.status().message();
      ASSERT_EQ(t.value().rows.size(), c["readings"].size());
      for (size_t k = 0; k < t.value().rows.size(); k++) {
        const auto& w = c["readings"][k];
        EXPECT_EQ(t.value().Str(k, 0), w[0].get<std::string>());
        EXPECT_EQ(t.value().Int(k, 1), w[1].get<int64_t>());
        EXPECT_DOUBLE_EQ(t.value().Num(k, 2), w[2].get<double>());
        const bool null = !t.value().rows[k][3];
        if (w[3].is_null())
          EXPECT_TRUE(null) << k;
        else
          EXPECT_EQ(t.value().Str(k, 3), w[3].get<bool>() ? "true" : "false") << k;
      }
    }
    std::vector<std::string> dead;
    if (!c["dead"].empty()) {
      auto t = db.value()->Query("SELECT reason FROM read_parquet(" +
                                 iotpipe::SqlQuote(data + "/dead_letters/**/*.parquet") +
                                 ", hive_partitioning = false) ORDER BY reason");
      ASSERT_TRUE(t.ok()) << t.status().message();
      for (size_t k = 0; k < t.value().rows.size(); k++) dead.push_back(t.value().Str(k, 0));
    }
    EXPECT_EQ(nlohmann::json(dead), c["dead"]);
  }
}

}  // namespace
