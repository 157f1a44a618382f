// The alert policy (min points / duration, severity, grouping) and delivery to Alertmanager's API v2,
// against a local fake Alertmanager (httplib on 127.0.0.1). The real Alertmanager and Prometheus are
// exercised by ctest monitoring_live (tests/monitoring_live.sh).
#include "sinks/alertmanager.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/clock.h"
#include "core/timeutil.h"
#include "sinks/alerts.h"

namespace iotpipe {
namespace {

struct Dicts {
  Interner sensors{1024}, types{64}, models{64}, assets{64};
  Dicts() {
    types.Intern("other");
    models.Intern("baseline-test");
  }
};

// Appends readings of one sensor, one per second from t0_s, flagged where score > 0 (with that score).
void Add(ReadingBatch& b, uint32_t sensor, int64_t t0_s, const std::vector<float>& scores, uint32_t asset = 0,
         bool with_asset = false) {
  for (size_t i = 0; i < scores.size(); i++) {
    b.Push(sensor, (t0_s + static_cast<int64_t>(i)) * 1000000, 25.0, false, ReadingBatch::kNoType);
    b.score.back() = scores[i];
    b.predicted.back() = scores[i] > 0;
    b.model.back() = 0;
    if (with_asset) {
      b.asset.resize(b.size(), ReadingBatch::kNoAsset);
      b.asset.back() = asset;
    }
  }
}

std::vector<float> Scores(std::initializer_list<std::pair<size_t, float>> runs) {
  std::vector<float> v;
  for (auto [n, s] : runs) v.insert(v.end(), n, s);
  return v;
}

AlertOptions Quiet() {
  AlertOptions o;
  o.log = false;
  o.quiet_period_s = 5;
  o.close_after_normal = 3;
  o.flap_opens = 0;
  return o;
}

// Waits up to `s` seconds for pred (conditions, not speed: the bound only ends a broken test).
template <typename F>
bool WaitFor(F pred, double s = 10) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(AlertPolicy, MinPointsGatesShortEpisodesAndFiftyPointsAreOneAlert) {
  Dicts d;
  AlertOptions o = Quiet();
  o.min_points = 3;
  AlertManager am(o, &d.sensors, &d.types, &d.models);
  ReadingBatch b;
  // Sensor a: three lone spikes, each its own episode (10 s apart > quiet period): below the policy.
  Add(b, d.sensors.Intern("a"), 1000, Scores({{1, .8f}, {10, 0}, {1, .8f}, {10, 0}, {1, .8f}, {10, 0}}));
  // Sensor b: an episode of 50 flagged readings with unflagged gaps inside (shorter than the quiet period).
  std::vector<float> ep(20, 0);
  for (int i = 0; i < 60; i++) ep.push_back(i % 6 == 5 ? 0 : 0.7f);
  ep.insert(ep.end(), 20, 0);
  Add(b, d.sensors.Intern("b"), 1000, ep);
  am.OnBatch(b);
  const auto& c = am.counters();
  EXPECT_EQ(c.below_policy.load(), 3);
  EXPECT_EQ(c.opened.load(), 1);
  EXPECT_EQ(c.closed.load(), 1);
  EXPECT_EQ(c.folded.load(), 49);
  auto ev = am.Recent();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, "open");
  EXPECT_EQ(ev[0].alert.sensor_id, "b");
  EXPECT_EQ(ev[0].alert.points, 3);                    // opened at the third flagged reading
  EXPECT_EQ(ev[0].alert.opened_us, 1020 * 1000000LL);  // the episode's first flagged reading
  EXPECT_EQ(ev[1].kind, "close");
  EXPECT_EQ(ev[1].alert.points, 50);
}

TEST(AlertPolicy, MinDurationInEventTime) {
  Dicts d;
  AlertOptions o = Quiet();
  o.min_duration_s = 10;
  AlertManager am(o, &d.sensors, &d.types, &d.models);
  ReadingBatch b;
  Add(b, d.sensors.Intern("short"), 0, Scores({{8, .9f}, {20, 0}}));  // spans 7 s: never opens
  Add(b, d.sensors.Intern("long"), 0, Scores({{15, .9f}, {20, 0}}));  // opens at its 11th reading (10 s)
  am.OnBatch(b);
  EXPECT_EQ(am.counters().below_policy.load(), 1);
  EXPECT_EQ(am.counters().opened.load(), 1);
  auto ev = am.Recent();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev[0].alert.sensor_id, "long");
  EXPECT_EQ(ev[0].alert.points, 11);
}

TEST(AlertPolicy, SeverityFromTheHighestScoreAtOpening) {
  Dicts d;
  AlertOptions o = Quiet();
  o.warning_score = 0.5;
  o.critical_score = 0.9;
  o.min_points = 2;
  AlertManager am(o, &d.sensors, &d.types, &d.models);
  ReadingBatch b;
  Add(b, d.sensors.Intern("info"), 0, Scores({{2, .3f}}));
  Add(b, d.sensors.Intern("warn"), 0, Scores({{1, .3f}, {1, .6f}}));
  Add(b, d.sensors.Intern("crit"), 0, Scores({{1, .95f}, {1, .3f}}));
  am.OnBatch(b);
  std::map<std::string, std::string> sev;
  for (auto& e : am.Recent()) sev[e.alert.sensor_id] = e.alert.severity;
  EXPECT_EQ(sev["info"], "info");
  EXPECT_EQ(sev["warn"], "warning");
  EXPECT_EQ(sev["crit"], "critical");
  EXPECT_NE(am.Recent()[0].ToJson().find("\"severity\""), std::string::npos);
}

TEST(AlertPolicy, GroupByDeviceAndByAsset) {
  Dicts d;
  {
    AlertOptions o = Quiet();
    o.group_by = "device";
    AlertManager am(o, &d.sensors, &d.types, &d.models);
    ReadingBatch b;
    // Two quantities of pump-1 in one episode, one of pump-2, and a sensor without a device part.
    Add(b, d.sensors.Intern("pump-1/temperature"), 0, Scores({{5, .8f}}));
    Add(b, d.sensors.Intern("pump-1/pressure"), 3, Scores({{5, .8f}}));
    Add(b, d.sensors.Intern("pump-2/pressure"), 0, Scores({{2, .8f}}));
    Add(b, d.sensors.Intern("loose"), 0, Scores({{2, .8f}}));
    am.OnBatch(b);
    EXPECT_EQ(am.counters().opened.load(), 3);
    EXPECT_EQ(am.counters().folded.load(), 5 + 5 - 1 + 1 + 1);
    std::map<std::string, std::string> groups;
    for (auto& e : am.Recent()) groups[e.alert.sensor_id] = e.alert.group;
    EXPECT_EQ(groups,
              (std::map<std::string, std::string>{{"pump-1", "device"}, {"pump-2", "device"}, {"loose", "sensor"}}));
  }
  {
    AlertOptions o = Quiet();
    o.group_by = "asset";
    AlertManager am(o, &d.sensors, &d.types, &d.models);
    am.SetAssets(&d.assets);
    uint32_t line = d.assets.Intern("line-7");
    ReadingBatch b;
    Add(b, d.sensors.Intern("s1"), 0, Scores({{3, .8f}}), line, true);
    Add(b, d.sensors.Intern("s2"), 1, Scores({{3, .8f}}), line, true);
    am.OnBatch(b);
    EXPECT_EQ(am.counters().opened.load(), 1);
    ASSERT_EQ(am.Recent().size(), 1u);
    EXPECT_EQ(am.Recent()[0].alert.sensor_id, "line-7");
    EXPECT_EQ(am.Recent()[0].alert.group, "asset");
    EXPECT_EQ(am.Recent()[0].alert.trigger_sensor, "s1");
  }
}

TEST(AlertPolicy, OptionsAreValidated) {
  AlertOptions o;
  EXPECT_TRUE(ValidateAlertOptions(o).ok());
  o.group_by = "building";
  EXPECT_TRUE(ValidateAlertOptions(o).IsInvalidArgument());
  o = AlertOptions{};
  o.alertmanager_labels = {"env=prod", "9bad=x"};
  EXPECT_FALSE(ValidateAlertOptions(o).ok());
  o.alertmanager_labels = {"env=prod"};
  o.alertmanager_url = "https://am:9093";
  EXPECT_FALSE(ValidateAlertOptions(o).ok());
  o.alertmanager_url = "http://127.0.0.1:9093";
  EXPECT_TRUE(ValidateAlertOptions(o).ok());
  o.critical_score = 0.1;
  o.warning_score = 0.5;
  EXPECT_FALSE(ValidateAlertOptions(o).ok());
}

// A fake Alertmanager: keeps every alert object POSTed to /api/v2/alerts; can hold requests.
struct FakeAm {
  httplib::Server srv;
  std::thread th;
  int port = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<nlohmann::json> posts;
  bool hold = false;
  int in_flight = 0;
  FakeAm() {
    srv.Post("/api/v2/alerts", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock<std::mutex> g(mu);
      in_flight++;
      cv.notify_all();
      cv.wait(g, [this] { return !hold; });
      in_flight--;
      posts.push_back(nlohmann::json::parse(req.body, nullptr, false));
      res.set_content("", "application/json");
    });
    port = srv.bind_to_any_port("127.0.0.1");
    th = std::thread([this] { srv.listen_after_bind(); });
    // A stop() before the listening loop runs would be lost (the destructor would wait forever).
    while (!srv.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeAm() {
    Release();
    srv.stop();
    th.join();
  }
  void Release() {
    std::lock_guard<std::mutex> g(mu);
    hold = false;
    cv.notify_all();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  std::vector<nlohmann::json> Alerts() {  // every alert object of every post
    std::lock_guard<std::mutex> g(mu);
    std::vector<nlohmann::json> out;
    for (auto& p : posts)
      if (p.is_array())
        for (auto& a : p) out.push_back(a);
    return out;
  }
};

TEST(Alertmanager, FiringIsResentThenResolvedWithEndsAt) {
  Dicts d;
  FakeAm am_srv;
  AlertOptions o = Quiet();
  o.alertmanager_url = am_srv.url();
  o.alertmanager_resend_s = 0.2;
  o.alertmanager_labels = {"env=test"};
  o.generator_url = "http://127.0.0.1:8080/";
  AlertManager am(o, &d.sensors, &d.types, &d.models);
  ASSERT_NE(am.alertmanager(), nullptr);
  const int64_t t0 = RealClock::Get()->NowMicros() / 1000000 - 100;
  ReadingBatch b;
  Add(b, d.sensors.Intern("pump-1/pressure"), t0, Scores({{50, .95f}}));
  am.OnBatch(b);
  // Re-sent while firing: the same alert (same labels) more than once, endsAt ahead of now.
  ASSERT_TRUE(WaitFor([&] { return am_srv.Alerts().size() >= 3; }));
  const int64_t now = RealClock::Get()->NowMicros();
  for (auto& a : am_srv.Alerts()) {
    EXPECT_EQ(a["labels"], (nlohmann::json{{"alertname", "IotpipeAnomaly"},
                                           {"sensor", "pump-1/pressure"},
                                           {"severity", "critical"},
                                           {"env", "test"}}));
    EXPECT_EQ(a["startsAt"], FormatIsoMicros(t0 * 1000000));
    EXPECT_GT(ParseTimeMicros(a["endsAt"].get<std::string>()).value(), now);
    EXPECT_EQ(a["generatorURL"], "http://127.0.0.1:8080/");
    EXPECT_EQ(a["annotations"]["points"], "1");
  }
  EXPECT_EQ(am.alertmanager()->counters().firing.load(), 1);
  // The episode ends: one resolved update with endsAt <= now.
  ReadingBatch b2;
  Add(b2, d.sensors.Intern("pump-1/pressure"), t0 + 50, Scores({{10, 0}}));
  am.OnBatch(b2);
  ASSERT_TRUE(WaitFor([&] {
    auto all = am_srv.Alerts();
    return ParseTimeMicros(all.back()["endsAt"].get<std::string>()).value() <= RealClock::Get()->NowMicros();
  }));
  EXPECT_EQ(am_srv.Alerts().back()["annotations"]["points"], "50");
  am.Stop(5);
  const auto& c = am.alertmanager()->counters();
  EXPECT_EQ(c.failed.load(), 0);
  EXPECT_EQ(c.dropped.load(), 0);
  EXPECT_EQ(c.up.load(), 1);
  EXPECT_EQ(c.firing.load(), 0);
  EXPECT_EQ(c.sent.load(), static_cast<int64_t>(am_srv.Alerts().size()));
}

TEST(Alertmanager, FullQueueDropsWithCountAndNeverBlocks) {
  FakeAm am_srv;
  am_srv.hold = true;
  AlertmanagerOptions o;
  o.url = am_srv.url();
  o.queue = 4;
  o.resend_s = 60;
  o.timeout_s = 30;
  AlertmanagerClient cl(o);
  ASSERT_TRUE(cl.Start().ok());
  auto alert = [](int i) {
    AmAlert a;
    a.labels = {{"alertname", "T"}, {"sensor", "s" + std::to_string(i)}};
    a.starts_us = RealClock::Get()->NowMicros();
    return a;
  };
  cl.Fire(alert(0));
  {  // the worker is inside its post of alert 0, held by the receiver
    std::unique_lock<std::mutex> g(am_srv.mu);
    ASSERT_TRUE(am_srv.cv.wait_for(g, std::chrono::seconds(10), [&] { return am_srv.in_flight == 1; }));
  }
  for (int i = 1; i <= 10; i++) cl.Fire(alert(i));  // returns at once: 4 queued, 6 dropped
  EXPECT_EQ(cl.counters().dropped.load(), 6);
  am_srv.Release();
  ASSERT_TRUE(WaitFor([&] { return cl.counters().sent.load() == 5; }));
  cl.Stop(5);
  EXPECT_EQ(am_srv.Alerts().size(), 5u);
}

TEST(Alertmanager, ReceiverDownIsCountedAndLoggedRateLimited) {
  // A loopback port with nothing listening on it: bound, never listened, closed.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  const int port = ntohs(sa.sin_port);
  close(fd);
  AlertmanagerOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port);
  o.resend_s = 0.05;
  o.timeout_s = 1;
  o.log_every_s = 3600;
  AlertmanagerClient cl(o);
  ASSERT_TRUE(cl.Start().ok());
  AmAlert a;
  a.labels = {{"alertname", "T"}};
  a.starts_us = RealClock::Get()->NowMicros();
  cl.Fire(a);
  ASSERT_TRUE(WaitFor([&] { return cl.counters().failed.load() >= 3; }));
  EXPECT_EQ(cl.counters().up.load(), 0);
  EXPECT_EQ(cl.counters().sent.load(), 0);
  EXPECT_EQ(cl.counters().logged.load(), 1);  // one line for the outage, the rest counted
  EXPECT_GE(cl.counters().unlogged.load(), 1);
  cl.Stop(0);
}

TEST(Alertmanager, FailureLogWritesOneLinePerPeriod) {
  FailureLog log("webhook http://x", 3600);
  EXPECT_TRUE(log.Failed("first"));
  EXPECT_FALSE(log.Failed("second"));
  EXPECT_FALSE(log.Failed("third"));
  EXPECT_EQ(log.unlogged_total(), 2);
  log.Succeeded();                   // recovery resets the period
  EXPECT_TRUE(log.Failed("again"));  // a new outage is logged at once
}

TEST(Alertmanager, BodyClampsAStartAheadOfTheClock) {
  AmAlert a;
  a.labels = {{"alertname", "T"}};
  const int64_t now = 1'700'000'000'000'000;
  a.starts_us = now + 60'000'000;  // a producer clock running fast
  auto j = nlohmann::json::parse(AlertmanagerClient::Body({a}, now, 10));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["startsAt"], FormatIsoMicros(now));
  EXPECT_EQ(j[0]["endsAt"], FormatIsoMicros(now + 40'000'000));
  EXPECT_FALSE(j[0].contains("generatorURL"));
}

}  // namespace
}  // namespace iotpipe
