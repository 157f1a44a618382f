#include "sinks/alerts.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/duck.h"
#include "core/fault_env.h"
#include "sinks/test_webhook_receiver.h"

namespace iotpipe {
namespace {

struct Dicts {
  Interner sensors{1024}, types{64}, models{64};
  Dicts() {
    types.Intern("other");
    types.Intern("spike");
    models.Intern("baseline-test");
  }
};

// Appends n readings of one sensor, one per second from t0_s; flagged[i] says which are anomalous.
void Add(ReadingBatch& b, uint32_t sensor, int64_t t0_s, const std::vector<bool>& flagged, uint16_t type = 1) {
  for (size_t i = 0; i < flagged.size(); i++) {
    b.Push(sensor, (t0_s + static_cast<int64_t>(i)) * 1000000, flagged[i] ? 99.0 : 25.0, flagged[i],
           flagged[i] ? type : ReadingBatch::kNoType);
    b.score.back() = flagged[i] ? 0.9f : 0.1f;
    b.predicted.back() = flagged[i];
    b.model.back() = 0;
  }
}

// A 50-point anomaly episode with a few unflagged points inside it (the detector's gaps), framed by normal data.
std::vector<bool> Episode(size_t before, size_t points, size_t after) {
  std::vector<bool> f(before, false);
  for (size_t i = 0; i < points; i++) f.push_back(i % 7 != 3);  // gaps inside the episode
  f.resize(f.size() + after, false);
  return f;
}

using Receiver = testing::WebhookReceiver;

// A loopback port with nothing listening on it.
int DeadPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(fd);  // never listened: connections are refused
  return port;
}

TEST(Alerts, FiftyPointEpisodeYieldsOneOpenAndOneClose) {
  Dicts d;
  uint32_t s = d.sensors.Intern("sensor_7");
  Receiver rx;
  AlertOptions o;
  o.quiet_period_s = 20;
  o.close_after_normal = 10;
  o.log = false;
  o.webhook_url = "http://127.0.0.1:" + std::to_string(rx.port) + "/hook";
  AlertManager am(o, &d.sensors, &d.types, &d.models);
  auto flags = Episode(100, 50, 100);
  size_t flagged = 0;
  for (bool f : flags) flagged += f;
  // Fed in several batches, as the pipeline would.
  ReadingBatch all;
  Add(all, s, 1700000000, flags);
  for (size_t start = 0; start < all.size(); start += 37) {
    ReadingBatch b;
    for (size_t i = start; i < std::min(all.size(), start + 37); i++) {
      b.Push(all.sensor[i], all.ts_us[i], all.value[i], all.gt[i], all.type[i]);
      b.score.back() = all.score[i];
      b.predicted.back() = all.predicted[i];
    }
    am.OnBatch(b);
  }
  am.Stop(10);
  const auto& c = am.counters();
  EXPECT_EQ(c.opened.load(), 1);
  EXPECT_EQ(c.closed.load(), 1);
  EXPECT_EQ(c.folded.load(), static_cast<int64_t>(flagged) - 1);
  EXPECT_EQ(c.webhook_sent.load(), 2);
  EXPECT_EQ(c.webhook_failed.load(), 0);
  auto ev = rx.Events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0]["event"], "open");
  EXPECT_EQ(ev[1]["event"], "close");
  EXPECT_EQ(ev[0]["sensor_id"], "sensor_7");
  EXPECT_EQ(ev[1]["alert_id"], ev[0]["alert_id"]);
  EXPECT_EQ(ev[1]["points"], static_cast<int64_t>(flagged));
  EXPECT_EQ(ev[1]["anomaly_type"], "spike");
  EXPECT_EQ(ev[1]["model_version"], "baseline-test");
}

TEST(Alerts, StaysOpenUntilEnoughNormalReadings) {
  Dicts d;
  uint32_t s = d.sensors.Intern("s");
  AlertOptions o;
  o.quiet_period_s = 0;
  o.close_after_normal = 5;
  o.log = false;
  AlertManager am(o, &d.sensors, &d.types, &d.models);
  ReadingBatch b;
  Add(b, s, 1000, {true, false, false, false, false, true, false, false, false, false});  // 4 normal < 5: folded
  am.OnBatch(b);
  EXPECT_EQ(am.counters().opened.load(), 1);
  EXPECT_EQ(am.counters().closed.load(), 0);
  EXPECT_EQ(am.counters().open_now.load(), 1);
  ReadingBatch b2;
  Add(b2, s, 1010, {false});
  am.OnBatch(b2);
  EXPECT_EQ(am.counters().closed.load(), 1);
  EXPECT_EQ(am.counters().open_now.load(), 0);
}

TEST(Alerts, FlappingIsReportedOnceAndSuppressesOpens) {
  Dicts d;
  uint32_t s = d.sensors.Intern("flappy");
  AlertOptions o;
  o.quiet_period_s = 0;
  o.close_after_normal = 2;
  o.flap_opens = 3;
  o.flap_window_s = 3600;
  o.log = false;
  AlertManager am(o, &d.sensors, &d.types, &d.models);
  std::vector<bool> f;
  for (int i = 0; i < 8; i++) f.insert(f.end(), {true, false, false});  // 8 short alerts in 24 s
  ReadingBatch b;
  Add(b, s, 5000, f);
  am.OnBatch(b);
  const auto& c = am.counters();
  EXPECT_EQ(c.opened.load(), 8);
  EXPECT_EQ(c.flapping.load(), 1);
  EXPECT_EQ(c.suppressed.load(), 5);  // opens 4..8
  int opens = 0, flaps = 0, closes = 0;
  for (auto& e : am.Recent(100)) {
    opens += e.kind == "open";
    flaps += e.kind == "flapping";
    closes += e.kind == "close";
  }
  EXPECT_EQ(opens, 2);
  EXPECT_EQ(flaps, 1);
  EXPECT_EQ(closes, 2);  // closes of flapping alerts are not delivered
}

TEST(Alerts, ReceiverDownRetriesThenCountsFailedWithoutBlocking) {
  Dicts d;
  AlertOptions o;
  o.quiet_period_s = 0;
  o.close_after_normal = 3;
  o.log = false;
  o.webhook_url = "http://127.0.0.1:" + std::to_string(DeadPort()) + "/hook";
  o.webhook_retries = 2;
  o.webhook_backoff_s = 0.01;
  o.webhook_timeout_s = 0.5;
  o.webhook_queue = 8;
  o.flap_opens = 0;
  AlertManager am(o, &d.sensors, &d.types, &d.models);
  // Many sensors alert at once: far more events than the queue holds. OnBatch must return anyway
  // (the pipeline is never held up by delivery); what does not fit is dropped and counted.
  ReadingBatch b;
  for (int k = 0; k < 200; k++) Add(b, d.sensors.Intern("s" + std::to_string(k)), 100, {true, false, false, false});
  am.OnBatch(b);
  const auto& c = am.counters();
  EXPECT_EQ(c.opened.load(), 200);
  EXPECT_EQ(c.closed.load(), 200);
  am.Stop(30);
  int64_t delivered_or_not = c.webhook_sent.load() + c.webhook_failed.load() + c.webhook_dropped.load();
  EXPECT_EQ(delivered_or_not, 400);
  EXPECT_EQ(c.webhook_sent.load(), 0);
  EXPECT_GE(c.webhook_failed.load(), 1);
  EXPECT_GE(c.webhook_dropped.load(), 1);
  EXPECT_EQ(c.webhook_retries.load(), 2 * c.webhook_failed.load());  // every failure was retried twice
}

TEST(Alerts, StoredAsParquetAndQueryable) {
  auto dir = std::filesystem::temp_directory_path() / ("iotpipe-alerts-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  {
    Dicts d;
    AlertOptions o;
    o.quiet_period_s = 0;
    o.close_after_normal = 2;
    o.log = false;
    o.data_dir = dir.string();
    AlertManager am(o, &d.sensors, &d.types, &d.models);
    ReadingBatch b;
    Add(b, d.sensors.Intern("a"), 1732406400, {true, true, false, false, false});  // closes
    Add(b, d.sensors.Intern("b"), 1732406400, {false, true, true});                // still open at Stop
    am.OnBatch(b);
    am.Stop(0);
    EXPECT_EQ(am.counters().stored.load(), 2);
  }
  auto db = Duck::Open();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(CreateDataViews(**db, dir.string()).ok());
  auto t = (*db)->Query("select sensor_id, state, points, anomaly_type, closed is null from alerts order by sensor_id");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->Str(0, 0), "a");
  EXPECT_EQ(t->Str(0, 1), "closed");
  EXPECT_EQ(t->Int(0, 2), 2);
  EXPECT_EQ(t->Str(0, 3), "spike");
  EXPECT_EQ(t->Str(0, 4), "false");
  EXPECT_EQ(t->Str(1, 1), "open");
  EXPECT_EQ(t->Str(1, 4), "true");
  std::filesystem::remove_all(dir);
}

// Alerts are stored through the Env: a failed rename or a full disk is counted as a store error, leaves no
// file a reader sees (nor a temp file), and the alerts are written at the next store once the disk is back.
TEST(Alerts, StoreFaultsAreCountedAndRetried) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("iotpipe-alerts-faults-" + std::to_string(getpid()));
  fs::remove_all(dir);
  FaultInjectionEnv env;
  {
    Dicts d;
    AlertOptions o;
    o.quiet_period_s = 0;
    o.close_after_normal = 2;
    o.log = false;
    o.data_dir = dir.string();
    o.env = &env;
    o.store_interval_s = 0;
    AlertManager am(o, &d.sensors, &d.types, &d.models);
    env.FailRename(true);
    ReadingBatch b;
    Add(b, d.sensors.Intern("a"), 1732406400, {true, true, false, false, false});  // closes
    am.OnBatch(b);
    EXPECT_GE(am.counters().store_errors.load(), 1);
    EXPECT_EQ(am.counters().stored.load(), 0);
    for (auto& e : fs::recursive_directory_iterator(dir)) EXPECT_FALSE(e.is_regular_file()) << e.path();
    env.Reset();
    am.Stop(0);
    EXPECT_EQ(am.counters().stored.load(), 1);
  }
  auto db = Duck::Open();
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(CreateDataViews(**db, dir.string()).ok());
  auto t = (*db)->Query("select sensor_id from alerts");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->rows.size(), 1u);
  EXPECT_EQ(t->Str(0, 0), "a");
  fs::remove_all(dir);
}

// Issue 14, finding 7: a kill between COPY and rename left .alerts-*.parquet.tmp forever.
TEST(Alerts, StaleTempFilesFromAKillAreRemoved) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("iotpipe-alerts-tmp-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "alerts" / "date=2024-11-24");
  const fs::path stale = dir / "alerts" / "date=2024-11-24" / ".alerts-123-0.parquet.tmp";
  const fs::path young = dir / "alerts" / "date=2024-11-24" / ".alerts-456-0.parquet.tmp";
  const fs::path other = dir / "alerts" / "date=2024-11-24" / "alerts-123-1.parquet";
  for (const auto& p : {stale, young, other}) std::ofstream(p) << "x";
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));
  {
    Dicts d;
    AlertOptions o;
    o.log = false;
    o.data_dir = dir.string();
    AlertManager am(o, &d.sensors, &d.types, &d.models);
    am.Stop(0);
  }
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(young));  // may belong to a live writer sharing the directory
  EXPECT_TRUE(fs::exists(other));
  fs::remove_all(dir);
}

TEST(Alerts, RejectsNonHttpWebhookUrl) {
  std::string a, b;
  EXPECT_FALSE(SplitHttpUrl("https://x/y", &a, &b).ok());
  EXPECT_FALSE(SplitHttpUrl("http:///y", &a, &b).ok());
  ASSERT_TRUE(SplitHttpUrl("http://127.0.0.1:9/a/b", &a, &b).ok());
  EXPECT_EQ(a, "http://127.0.0.1:9");
  EXPECT_EQ(b, "/a/b");
}

}  // namespace
}  // namespace iotpipe
