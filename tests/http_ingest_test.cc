// End to end: `iotpipe process --source http` on a loopback port, written to by cpp-httplib clients
// (Telegraf-style line protocol on the InfluxDB v2 write path, JSON lines and arrays on /api/ingest),
// checked row for row in the stored Parquet through the query views. Status paths (400 413 415 429
// 401), concurrent clients, and a SIGKILL after answered requests.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <regex>
#include <thread>

#include "test_util.h"

namespace iotpipe::testing {
namespace {

// A running `process --source http` on 127.0.0.1:<any free port>.
struct Ingestor {
  std::string data, log;
  std::unique_ptr<Child> child;
  int port = -1;
  Ingestor(const TempDir& d, const std::vector<std::string>& extra, const std::string& listen = "127.0.0.1:0") {
    data = d.str() + "/data";
    static int runs = 0;
    log = d.str() + "/process-" + std::to_string(runs++) + ".log";
    std::vector<std::string> argv = {Bin(),  "process",    "--source", "http",    "--http",
                                     listen, "--data-dir", data,       "--quiet", "--no-checkpoint"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = std::make_unique<Child>(argv, log);
    EXPECT_TRUE(WaitForText(log, "dashboard: http://", 30)) << ReadAll(log);
    std::smatch m;
    std::string text = ReadAll(log);
    if (std::regex_search(text, m, std::regex(R"(dashboard: http://[^ ]*:(\d+)/)"))) port = std::stoi(m[1]);
  }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    c.set_write_timeout(30, 0);
    return c;
  }
  int Stop() {
    child->Kill(SIGINT);
    return child->Wait(60);
  }
};

int64_t Count(const std::string& data, const std::string& sql) {
  auto rows = Query(data, sql);
  return rows.empty() ? -1 : rows[0]["n"].get<int64_t>();
}

// Telegraf's line protocol: measurement,tags fields timestamp (here in seconds).
std::string CpuLines(int n, int64_t t0) {
  std::string body;
  for (int i = 0; i < n; i++)
    body += "cpu,cpu=cpu0,host=gw-1 usage_user=" + std::to_string(i) + ",usage_system=0.5,cores=4i " +
            std::to_string(t0 + i) + "\n";
  return body;
}

std::string JsonLines(const std::string& sensor, int first, int n) {
  std::string body;
  for (int i = first; i < first + n; i++)
    body += R"({"sensor_id":")" + sensor + R"(","timestamp":)" + std::to_string(1764770000 + i) + R"(,"value":)" +
            std::to_string(i) + "}\n";
  return body;
}

TEST(HttpIngest, TelegrafLineProtocolAndJsonBodiesStoredRowForRow) {
  TempDir d("http_ingest_rows");
  Ingestor ing(d, {});
  ASSERT_GT(ing.port, 0);
  auto c = ing.Client();
  c.set_compress(true);        // Telegraf's outputs.influxdb_v2 sends gzip by default
  auto ping = c.Get("/ping");  // InfluxDB clients may probe first
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->status, 204);
  httplib::Headers token = {{"Authorization", "Token ignored-on-loopback"}};
  auto r = c.Post("/api/v2/write?org=o&bucket=b&precision=s", token, CpuLines(100, 1764770000), "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204) << r->body;
  c.set_compress(false);
  std::string lines = JsonLines("json-lines", 0, 50) + "{\"sensor_id\":\"x\"}\nnot json\n";
  r = c.Post("/api/ingest", lines, "application/x-ndjson");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["records"], 52);
  EXPECT_EQ(j["accepted"], 50);
  EXPECT_EQ(j["dead_letters"], 2);
  EXPECT_EQ(j["readings"], 50);
  std::string array = "[";
  for (int i = 0; i < 30; i++)
    array += std::string(i ? "," : "") + R"({"sensor_id":"json-array","timestamp":)" + std::to_string(1764770000 + i) +
             R"(,"value":)" + std::to_string(i * 2) + "}";
  r = c.Post("/api/ingest", array + "]", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(nlohmann::json::parse(r->body)["readings"], 30) << r->body;
  // Answered: the rows are durable and visible now, row for row.
  EXPECT_EQ(Count(ing.data, "select count(*) as n from sensor_readings"), 300 + 50 + 30);
  const std::vector<std::pair<std::string, int64_t>> expect = {
      {"sensor_id = 'cpu,cpu=cpu0,host=gw-1/usage_user' and epoch(timestamp) - 1764770000 = value", 100},
      {"sensor_id = 'cpu,cpu=cpu0,host=gw-1/cores' and value = 4", 100},
      {"sensor_id = 'json-lines' and epoch(timestamp) - 1764770000 = value", 50},
      {"sensor_id = 'json-array' and (epoch(timestamp) - 1764770000) * 2 = value", 30}};
  for (auto& [where, n] : expect)
    EXPECT_EQ(Count(ing.data, "select count(*) as n from sensor_readings where " + where), n) << where;
  EXPECT_EQ(Count(ing.data, "select count(*) as n from dead_letters where source = 'http:ingest' and reason <> ''"), 2);
  EXPECT_EQ(ing.Stop(), 0);
}

TEST(HttpIngest, OversizeUnknownTypeAndBadBodiesAreRefused) {
  TempDir d("http_ingest_status");
  Ingestor ing(d, {"--ingest-max-body", "4096"});
  auto c = ing.Client();
  auto r = c.Post("/api/ingest", JsonLines("big", 0, 100), "application/x-ndjson");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body;
  r = c.Post("/api/ingest", "<a/>", "application/xml");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415) << r->body;
  r = c.Post("/api/ingest", "[{", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  r = c.Post("/api/v2/write?precision=h", "m f=1 1", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("\"message\""), std::string::npos);  // InfluxDB's error shape
  EXPECT_EQ(Count(ing.data, "select count(*) as n from sensor_readings"), 0);
  EXPECT_EQ(ing.Stop(), 0);
}

TEST(HttpIngest, WithoutItsServerTheRunIsRefused) {
  TempDir d("http_ingest_off");
  CmdResult r = Sh(Bin() + " process --source http --http off --quiet --no-checkpoint --data-dir " + d.str());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--source http needs --http HOST:PORT"), std::string::npos) << r.err;
}

TEST(HttpIngest, BeyondLoopbackTheTokenIsRequiredBearerOrInfluxToken) {
  TempDir d("http_ingest_auth");
  Ingestor ing(d, {"--http-token", "s3cret"}, "0.0.0.0:0");
  auto c = ing.Client();
  auto r = c.Post("/api/v2/write?precision=s", "m,k=v f=1 1764770000", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c.Post("/api/v2/write?precision=s", {{"Authorization", "Token wrong"}}, "m,k=v f=1 1764770000", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c.Post("/api/v2/write?precision=s", {{"Authorization", "Token s3cret"}}, "m,k=v f=1 1764770000", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204) << r->body;
  r = c.Post("/api/ingest", {{"Authorization", "Bearer s3cret"}}, JsonLines("auth", 0, 3), "application/jsonl");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Count(ing.data, "select count(*) as n from sensor_readings"), 4);
  EXPECT_EQ(ing.Stop(), 0);
}

// Each client sends `requests` bodies of `per` records of its own sensor, retrying on 429/503.
struct Writers {
  std::atomic<int> refused{0}, failed{0}, retry_after{0};
  void Run(const Ingestor& ing, int clients, int requests, int per) {
    std::vector<std::thread> ts;
    for (int k = 0; k < clients; k++)
      ts.emplace_back([&, k] {
        auto c = ing.Client();
        for (int q = 0; q < requests; q++) {
          const std::string sensor = "client-" + std::to_string(k);
          const bool lp = k % 2;
          std::string body = lp ? "" : JsonLines(sensor, q * per, per);
          for (int i = q * per; lp && i < (q + 1) * per; i++)
            body += sensor + " v=" + std::to_string(i) + " " + std::to_string(1764770000 + i) + "\n";
          while (true) {
            auto r = lp ? c.Post("/api/v2/write?precision=s", body, "text/plain")
                        : c.Post("/api/ingest", body, "application/x-ndjson");
            if (r && (r->status == 429 || r->status == 503)) {
              refused++;
              retry_after += r->has_header("Retry-After");
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
              continue;
            }
            if (!r || (r->status != 200 && r->status != 204)) failed++;
            break;
          }
        }
      });
    for (auto& t : ts) t.join();
  }
};

void ExpectEveryRecordOnce(const std::string& data, int clients, int per_client) {
  EXPECT_EQ(Count(data, "select count(*) as n from sensor_readings"), clients * per_client);
  EXPECT_EQ(Count(data, "select count(*) as n from (select distinct sensor_id, timestamp from sensor_readings)"),
            clients * per_client);
  // Every client's sequence, complete: values 0 .. per_client-1 under its own sensor id.
  EXPECT_EQ(Count(data,
                  "select count(*) as n from (select sensor_id, count(*) c, min(value) lo, max(value) hi from "
                  "sensor_readings group by 1) where c = " +
                      std::to_string(per_client) + " and lo = 0 and hi = " + std::to_string(per_client - 1)),
            clients);
}

TEST(HttpIngest, EightConcurrentClientsNothingLostNothingDoubled) {
  TempDir d("http_ingest_concurrent");
  Ingestor ing(d, {});
  Writers w;
  w.Run(ing, 8, 10, 50);  // 8 clients x 500 records, JSON lines and line protocol
  EXPECT_EQ(w.failed.load(), 0);
  ExpectEveryRecordOnce(ing.data, 8, 500);
  EXPECT_EQ(ing.Stop(), 0);
}

TEST(HttpIngest, FullQueueAnswers429WithRetryAfterAndRetriedBodiesAreStoredOnce) {
  TempDir d("http_ingest_429");
  // A queue of 64 KiB and a slow hand-off (small batches, one batch between stages): writers of
  // ~100 KiB bodies find it full.
  Ingestor ing(d, {"--ingest-queue-bytes", "65536", "--batch-size", "500", "--queue-depth", "1"});
  Writers w;
  w.Run(ing, 8, 3, 2000);
  EXPECT_EQ(w.failed.load(), 0);
  EXPECT_GT(w.refused.load(), 0);
  EXPECT_EQ(w.retry_after.load(), w.refused.load());
  ExpectEveryRecordOnce(ing.data, 8, 6000);
  EXPECT_EQ(ing.Stop(), 0);
}

TEST(HttpIngest, AnsweredRequestsSurviveSigkillAndRestart) {
  TempDir d("http_ingest_kill");
  {
    Ingestor ing(d, {});
    Writers w;
    w.Run(ing, 4, 3, 100);  // every request answered
    ASSERT_EQ(w.failed.load(), 0);
    // More in flight while the process dies: no answer, so no promise (stored at most once).
    std::thread late([&] {
      auto c = ing.Client();
      (void)c.Post("/api/ingest", JsonLines("late", 0, 1000), "application/x-ndjson");
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ing.child->Kill(SIGKILL);
    EXPECT_EQ(ing.child->Wait(10), -SIGKILL);
    late.join();
  }
  Ingestor again(d, {});
  auto c = again.Client();
  auto r = c.Post("/api/ingest", JsonLines("after", 0, 10), "application/x-ndjson");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Count(again.data, "select count(*) as n from sensor_readings where sensor_id like 'client-%'"), 1200);
  EXPECT_EQ(Count(again.data,
                  "select count(*) as n from (select distinct sensor_id, timestamp from sensor_readings "
                  "where sensor_id like 'client-%')"),
            1200);
  EXPECT_LE(Count(again.data, "select count(*) as n from sensor_readings where sensor_id = 'late'"), 1000);
  EXPECT_EQ(Count(again.data, "select count(*) as n from sensor_readings where sensor_id = 'after'"), 10);
  EXPECT_EQ(again.Stop(), 0);
}

}  // namespace
}  // namespace iotpipe::testing
