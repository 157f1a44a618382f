#include "http/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "core/clock.h"
#include "detect/detector.h"
#include "model/registry.h"
#include "model/test_models.h"
#include "pipeline/pipeline.h"
#include "sinks/alerts.h"
#include "sources/source.h"

namespace iotpipe::http {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- A strict Prometheus text-format (0.0.4) checker -----------------------------------------
// Every sample belongs to a family declared by # HELP and # TYPE before it; families are contiguous
// and declared once; names and label names are valid; label values are properly escaped; no series
// repeats; counters end in _total; histograms have increasing le, cumulative buckets, a +Inf bucket
// equal to _count, and _sum. Returns the samples ("name{labels}" -> value) or fails the test.
struct Parsed {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
};

bool ParseValue(const std::string& s, double* v) {
  if (s == "NaN") {
    *v = NAN;
    return true;
  }
  if (s == "+Inf") {
    *v = INFINITY;
    return true;
  }
  if (s == "-Inf") {
    *v = -INFINITY;
    return true;
  }
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return !s.empty() && end && !*end;
}

::testing::AssertionResult CheckPrometheus(const std::string& text, Parsed* out) {
  static const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*"), label_re("[a-zA-Z_][a-zA-Z0-9_]*");
  if (text.empty() || text.back() != '\n') return ::testing::AssertionFailure() << "must end with a newline";
  std::istringstream in(text);
  std::string line, family, ftype;
  std::set<std::string> declared, helped;
  int lineno = 0;
  // Histogram state of the current family, per label set without le.
  std::map<std::string, std::pair<double, double>> hist_last;  // key -> (last le, last count)
  std::map<std::string, double> hist_inf;
  auto fail = [&](const std::string& m) {
    return ::testing::AssertionFailure() << "line " << lineno << ": " << m << ": " << line;
  };
  while (std::getline(in, line)) {
    lineno++;
    if (line.empty()) return fail("empty line");
    if (line[0] == '#') {
      std::istringstream ls(line);
      std::string hash, kw, name;
      ls >> hash >> kw >> name;
      if (hash != "#" || (kw != "HELP" && kw != "TYPE")) return fail("unknown comment form");
      if (!std::regex_match(name, name_re)) return fail("bad metric name");
      if (kw == "HELP") {
        if (!helped.insert(name).second) return fail("HELP repeated");
        continue;
      }
      std::string type, extra;
      ls >> type >> extra;
      if (!extra.empty()) return fail("trailing text after TYPE");
      if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
        return fail("bad type");
      if (!declared.insert(name).second) return fail("family declared twice");
      if (!helped.count(name)) return fail("TYPE without HELP before it");
      if (type == "counter" && name.size() < 6) return fail("counter name too short");
      if (type == "counter" && name.compare(name.size() - 6, 6, "_total") != 0)
        return fail("counter not ending in _total");
      family = name;
      ftype = type;
      out->types[name] = type;
      hist_last.clear();
      hist_inf.clear();
      continue;
    }
    // name{labels} value
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') i++;
    std::string name = line.substr(0, i);
    if (!std::regex_match(name, name_re)) return fail("bad sample name");
    std::string base = name;
    if (ftype == "histogram") {
      for (const char* suf : {"_bucket", "_sum", "_count"}) {
        std::string s(suf);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
            name.substr(0, name.size() - s.size()) == family)
          base = family;
      }
    }
    if (base != family) return fail("sample outside its family (" + family + ")");
    std::vector<std::pair<std::string, std::string>> labels;
    if (i < line.size() && line[i] == '{') {
      i++;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos) return fail("label without =");
        std::string ln = line.substr(i, eq - i);
        if (!std::regex_match(ln, label_re)) return fail("bad label name");
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') return fail("label value not quoted");
        i++;
        std::string v;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size()) return fail("dangling escape");
            char e = line[i + 1];
            if (e != '\\' && e != '"' && e != 'n') return fail("bad escape");
            v += e == 'n' ? '\n' : e;
            i += 2;
          } else {
            v += line[i++];
          }
        }
        if (i >= line.size()) return fail("unterminated label value");
        i++;
        for (auto& [k, _] : labels)
          if (k == ln) return fail("label repeated");
        labels.emplace_back(ln, v);
        if (i < line.size() && line[i] == ',')
          i++;
        else if (i < line.size() && line[i] != '}')
          return fail("expected , or }");
      }
      if (i >= line.size()) return fail("unterminated labels");
      i++;
    }
    if (i >= line.size() || line[i] != ' ') return fail("expected one space before the value");
    std::string rest = line.substr(i + 1);
    std::string vs = rest.substr(0, rest.find(' '));
    double v;
    if (!ParseValue(vs, &v)) return fail("bad value");
    if (ftype == "counter" && !(v >= 0)) return fail("negative counter");
    std::string key = name + "{";
    std::string key_no_le = name.substr(0, name.rfind('_')) + "{";
    std::string le;
    for (auto& [k, val] : labels) {
      key += k + "=" + val + ",";
      if (k == "le")
        le = val;
      else
        key_no_le += k + "=" + val + ",";
    }
    key += "}";
    if (!out->samples.emplace(key, v).second) return fail("series repeated");
    if (ftype == "histogram") {
      if (name == family + "_bucket") {
        double lev;
        if (!ParseValue(le, &lev)) return fail("bucket without a numeric le");
        auto it = hist_last.find(key_no_le);
        if (it != hist_last.end()) {
          if (!(lev > it->second.first)) return fail("le not increasing");
          if (v < it->second.second) return fail("bucket counts not cumulative");
        }
        hist_last[key_no_le] = {lev, v};
        if (std::isinf(lev)) hist_inf[key_no_le] = v;
      } else if (name == family + "_count") {
        if (!hist_inf.count(key_no_le)) return fail("_count without a +Inf bucket");
        if (hist_inf[key_no_le] != v) return fail("+Inf bucket differs from _count");
      }
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(PromChecker, RejectsMalformedText) {
  Parsed p;
  EXPECT_FALSE(CheckPrometheus("x_total 1\n", &p));                          // no TYPE
  EXPECT_FALSE(CheckPrometheus("# HELP x h\n# TYPE x counter\nx 1\n", &p));  // counter without _total
  EXPECT_FALSE(CheckPrometheus("# HELP a_total h\n# TYPE a_total counter\na_total{l=\"x} 1\n", &p));
  EXPECT_FALSE(CheckPrometheus("# HELP g h\n# TYPE g gauge\ng 1\ng 2\n", &p));  // repeated series
  EXPECT_FALSE(CheckPrometheus(
      "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", &p));
  EXPECT_FALSE(CheckPrometheus("# HELP g h\n# TYPE g gauge\ng 1", &p));  // no final newline
  EXPECT_TRUE(CheckPrometheus("# HELP g h\n# TYPE g gauge\ng{a=\"q\\\"\\n\"} 1.5\n", &p));
}

// ---- listen address ----------------------------------------------------------------------------
// /metrics labels are bounded (issue 19): the per-sensor family keeps the N sensors with the most
// flagged readings, most first, whatever their ids.
TEST(Metrics, PerSensorSeriesAreTheTopN) {
  Dictionaries d;
  d.models.Intern("m");
  LiveView live(&d, 10, 1000);
  ProcessedBatch b;
  // Sensor k has k flagged readings (k = 0..29), interned in an order unrelated to their counts.
  for (int k = 29; k >= 0; k--) {
    const uint32_t id = d.sensors.Intern("s" + std::to_string(k));
    for (int i = 0; i < 30; i++) {
      b.readings.Push(id, (1000 + i) * 1000000LL, 1.0, false, ReadingBatch::kNoType);
      b.readings.predicted.back() = i < k;
      b.readings.score.back() = i < k ? 0.9f : 0.1f;
      b.readings.model.back() = 0;
    }
  }
  live.OnBatch(b);
  auto top = live.AnomaliesBySensor(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], (std::pair<std::string, int64_t>{"s29", 29}));
  EXPECT_EQ(top[1], (std::pair<std::string, int64_t>{"s28", 28}));
  EXPECT_EQ(top[2], (std::pair<std::string, int64_t>{"s27", 27}));
  EXPECT_EQ(live.AnomaliesBySensor(100).size(), 29u);  // sensors with anomalies only
}

// ---- fleet view ----------------------------------------------------------------------------------
// A fleet of 1,000 sensors over 20 s of event time in 1 s buckets, a window of 10: sensor 7 flagged at
// 15..19 s, sensor 300 three times at 18 s, sensor 999 once at 2 s (out of the window by the end).
struct SmallFleet {
  Dictionaries d;
  FleetView fleet{&d, FleetOptions{1000000, 10, 1 << 20}};
  SmallFleet() {
    d.models.Intern("m");
    for (int i = 0; i < 1000; i++) d.sensors.Intern("s" + std::to_string(i));
    ReadingBatch b;
    for (int t = 0; t < 20; t++)
      for (uint32_t id = 0; id < 1000; id++) {
        const bool f = (id == 7 && t >= 15) || (id == 999 && t == 2);
        Push(b, id, t * 1000000LL + 500, f ? 0.9f : 0.1f, f);
        if (id == 300 && t == 18)
          for (int k = 0; k < 3; k++) Push(b, id, t * 1000000LL + 600 + k, 0.7f, true);
      }
    fleet.OnBatch(b);
  }
  static void Push(ReadingBatch& b, uint32_t id, int64_t ts, float score, bool flagged) {
    b.Push(id, ts, 1.0, false, ReadingBatch::kNoType);
    b.score.back() = score;
    b.predicted.back() = flagged;
    b.model.back() = 0;
  }
};

TEST(Fleet, HeatMapOfTheTopSensorsOverTheWindow) {
  SmallFleet f;
  FleetHeatmap h = f.fleet.Top(10, 5);
  EXPECT_EQ(h.cols, 10u);
  EXPECT_EQ(h.t0_us, 10 * 1000000LL);                           // the window: buckets 10..19
  ASSERT_EQ(h.rows, (std::vector<std::string>{"s7", "s300"}));  // s999's flag left the window
  EXPECT_EQ(h.row_flagged, (std::vector<int64_t>{5, 3}));
  ASSERT_EQ(h.score.size(), 20u);
  for (size_t c = 0; c < 10; c++) {
    EXPECT_EQ(h.score[c], c >= 5 ? 90 : 10) << c;
    EXPECT_EQ(h.flagged[c], c >= 5 ? 1u : 0u) << c;
    EXPECT_EQ(h.flagged[10 + c], c == 8 ? 3u : 0u) << c;
  }
  EXPECT_EQ(f.fleet.Top(4, 1).rows, (std::vector<std::string>{"s7"}));
  EXPECT_EQ(f.fleet.Top(4, 1).cols, 4u);
  EXPECT_EQ(f.fleet.Top(500, 1).cols, 10u);  // at most the window
}

TEST(Fleet, BandsCoverTheWholeFleet) {
  SmallFleet f;
  FleetHeatmap h = f.fleet.Bands(10, 4);
  ASSERT_EQ(h.rows.size(), 4u);
  EXPECT_EQ(h.rows[0], "s0 … s249");
  EXPECT_EQ(h.rows[3], "s750 … s999");
  EXPECT_EQ(h.row_flagged, (std::vector<int64_t>{5, 3, 0, 0}));
  EXPECT_EQ(h.score[9], 90);       // band 0 holds s7
  EXPECT_EQ(h.score[10 + 8], 70);  // band 1 holds s300 at 18 s
  EXPECT_EQ(h.score[20 + 8], 10);
}

TEST(Fleet, RankingSinceTheStartAndInARange) {
  SmallFleet f;
  auto all = f.fleet.Rank(INT64_MIN, INT64_MAX, 10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].sensor_id, "s7");
  EXPECT_EQ(all[0].flagged, 5);
  EXPECT_FLOAT_EQ(all[0].max_score, 0.9f);
  EXPECT_EQ(all[0].last_flagged_us, 19 * 1000000LL + 500);
  EXPECT_EQ(all[1].sensor_id, "s300");
  EXPECT_EQ(all[2].sensor_id, "s999");
  auto late = f.fleet.Rank(18 * 1000000LL, 19 * 1000000LL, 10);  // buckets 18 and 19
  ASSERT_EQ(late.size(), 2u);
  EXPECT_EQ(late[0].sensor_id, "s300");
  EXPECT_EQ(late[0].flagged, 3);
  EXPECT_EQ(late[1].sensor_id, "s7");
  EXPECT_EQ(late[1].flagged, 2);
  EXPECT_EQ(f.fleet.Rank(INT64_MIN, INT64_MAX, 1).size(), 1u);
}

TEST(Fleet, TotalsOverTheWindowAndLateReadings) {
  SmallFleet f;
  FleetTotals t = f.fleet.Totals();
  EXPECT_EQ(t.sensors, 1000);
  EXPECT_EQ(t.readings, 10 * 1000 + 3);
  EXPECT_EQ(t.flagged, 8);
  EXPECT_EQ(t.flagged_sensors, 2);
  EXPECT_EQ(t.head_us, 20 * 1000000LL);
  ReadingBatch old;
  SmallFleet::Push(old, 5, 1000000, 0.9f, true);  // 1 s: before the window
  f.fleet.OnBatch(old);
  EXPECT_EQ(f.fleet.Totals().late, 1);
  EXPECT_EQ(f.fleet.Totals().flagged, 8);
  EXPECT_EQ(f.fleet.Rank(INT64_MIN, INT64_MAX, 10).size(), 4u);  // counted since the start all the same
}

// Groups: devices are sensor ids up to their last '/', assets come with the readings.
TEST(Fleet, DeviceAndAssetGroups) {
  Dictionaries d;
  d.models.Intern("m");
  FleetView fleet(&d, FleetOptions{1000000, 10, 1 << 20});
  const uint32_t pump = d.assets.Intern("pump-1");
  ReadingBatch b;
  for (const char* n : {"dev-a/t", "dev-a/p", "dev-b/t", "loose"}) d.sensors.Intern(n);
  for (int t = 0; t < 5; t++)
    for (uint32_t id = 0; id < 4; id++) {
      const bool f = id == 1 || (id == 2 && t == 4);
      SmallFleet::Push(b, id, t * 1000000LL, f ? 0.8f : 0.2f, f);
      b.asset.push_back(id < 2 ? pump : ReadingBatch::kNoAsset);
    }
  EXPECT_FALSE(fleet.has_devices());
  fleet.OnBatch(b);
  EXPECT_TRUE(fleet.has_devices());
  EXPECT_TRUE(fleet.has_assets());
  FleetHeatmap dev = fleet.Groups(10, 10, "device");
  ASSERT_EQ(dev.rows, (std::vector<std::string>{"dev-a", "dev-b"}));
  EXPECT_EQ(dev.row_flagged, (std::vector<int64_t>{5, 1}));
  EXPECT_EQ(dev.cols, 5u);
  EXPECT_EQ(dev.score[0], 80);      // dev-a/p's score over dev-a/t's
  EXPECT_EQ(dev.score[5 + 3], 20);  // dev-b at 3 s
  EXPECT_EQ(dev.score[5 + 4], 80);
  EXPECT_EQ(fleet.Groups(10, 1, "device").rows, (std::vector<std::string>{"dev-a"}));
  FleetHeatmap as = fleet.Groups(10, 10, "asset");
  ASSERT_EQ(as.rows, (std::vector<std::string>{"pump-1"}));
  EXPECT_EQ(as.row_flagged, (std::vector<int64_t>{5}));
}

TEST(Listen, ParsesAddresses) {
  auto a = ParseListen("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value()->first, "127.0.0.1");
  EXPECT_EQ(a.value()->second, 8080);
  EXPECT_EQ(ParseListen(":9000").value()->first, "127.0.0.1");
  EXPECT_EQ(ParseListen("9001").value()->second, 9001);
  EXPECT_EQ(ParseListen("[::1]:80").value()->first, "::1");
  EXPECT_FALSE(ParseListen("off").value().has_value());
  EXPECT_FALSE(ParseListen("host:port").ok());
  EXPECT_FALSE(ParseListen("1.2.3.4:70000").ok());
  EXPECT_TRUE(IsLoopback("127.0.0.1"));
  EXPECT_TRUE(IsLoopback("localhost"));
  EXPECT_TRUE(IsLoopback("::1"));
  EXPECT_FALSE(IsLoopback("0.0.0.0"));
  // Issue 14, finding 6: the decision follows the resolved address, not the spelling.
  EXPECT_FALSE(IsLoopback("127.attacker.test"));
  EXPECT_FALSE(IsLoopback("127.0.0.1.nip.invalid"));
  EXPECT_FALSE(IsLoopback(""));
}

// ---- fixtures: a finished in-process pipeline with its data dir ----------------------------------
fs::path TempDir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("iotpipe-http-" + tag + "-" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

struct RanPipeline {
  fs::path dir;
  std::unique_ptr<SimSource> src;
  std::unique_ptr<Pipeline> p;
  std::unique_ptr<LiveView> live;
  std::unique_ptr<AlertManager> alerts;
  explicit RanPipeline(const std::string& tag, int64_t events = 20000, double malformed = 0.01) {
    dir = TempDir(tag);
    SimSourceOptions so;
    so.sim.sensors = 50;
    so.sim.malformed_rate = malformed;
    so.sim.anomaly_rate = 0.01;
    so.sim.start_us = 1732406400LL * 1000000;
    so.max_events = events;
    so.realtime = false;
    src = std::make_unique<SimSource>(so, RealClock::Get());
    auto det = MakeDetector("baseline");
    EXPECT_TRUE(det.ok());
    PipelineOptions po;
    po.store.data_dir = dir.string();
    po.progress_interval_s = 0;
    po.batch_size = 1000;
    po.on_batch = [this](const ProcessedBatch& b) {
      live->OnBatch(b);
      alerts->OnBatch(b.readings);
    };
    p = std::make_unique<Pipeline>(src.get(), std::shared_ptr<const Detector>(std::move(det.value())), po,
                                   RealClock::Get());
    live = std::make_unique<LiveView>(&p->dicts(), 100, 1000);
    AlertOptions ao;
    ao.log = false;
    alerts = std::make_unique<AlertManager>(ao, &p->dicts().sensors, &p->dicts().types, &p->dicts().models);
    std::atomic<bool> stop{false};
    Status s = p->Run(stop);
    EXPECT_TRUE(s.ok()) << s.message();
  }
  ~RanPipeline() {
    alerts.reset();
    p.reset();
    fs::remove_all(dir);
  }
  ServerDeps Deps() {
    ServerDeps d;
    d.metrics = &p->metrics();
    d.live = live.get();
    d.processor = &p->processor();
    d.alerts = alerts.get();
    return d;
  }
};

ServerOptions LocalOptions(const fs::path& data) {
  ServerOptions o;
  o.port = 0;
  o.data_dir = data.string();
  o.tick_s = 0.05;
  return o;
}

// ---- /metrics ---------------------------------------------------------------------------------
TEST(Metrics, StrictTextFormatAndCountersAgreeWithTheRun) {
  RanPipeline rp("metrics");
  Server srv(LocalOptions(rp.dir), rp.Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
  Parsed p;
  ASSERT_TRUE(CheckPrometheus(res->body, &p)) << res->body.substr(0, 2000);
  const auto& st = rp.p->store_stats();
  EXPECT_EQ(p.samples["iotpipe_records_received_total{}"], 20000);
  EXPECT_EQ(p.samples["iotpipe_readings_stored_total{}"], static_cast<double>(st.rows));
  EXPECT_EQ(p.samples["iotpipe_dead_letters_stored_total{}"], static_cast<double>(st.dead));
  EXPECT_EQ(st.rows + st.dead, 20000u);
  EXPECT_GT(st.dead, 0u);
  double rejected = 0;
  for (auto& [k, v] : p.samples)
    if (k.rfind("iotpipe_records_rejected_total{", 0) == 0) rejected += v;
  EXPECT_EQ(rejected, static_cast<double>(st.dead));
  EXPECT_EQ(p.samples["iotpipe_anomalies_predicted_total{}"], static_cast<double>(rp.p->metrics().predicted.load()));
  double by_type = 0;
  for (auto& [k, v] : p.samples)
    if (k.rfind("iotpipe_anomalies_by_type_total{", 0) == 0) by_type += v;
  EXPECT_EQ(by_type, p.samples["iotpipe_anomalies_predicted_total{}"]);
  EXPECT_EQ(p.types["iotpipe_batch_processing_seconds"], "histogram");
  EXPECT_GT(p.samples["iotpipe_batch_processing_seconds_count{}"], 0);
  EXPECT_EQ(p.samples["iotpipe_alerts_opened_total{}"], static_cast<double>(rp.alerts->counters().opened.load()));
  EXPECT_EQ(p.samples["iotpipe_model_info{detector=baseline,version=" +
                      std::string(rp.p->processor().detector()->version()) + ",}"],
            1);
  srv.Stop();
}

TEST(Metrics, ConsumerLagPerPartition) {
  RanPipeline rp("lag");
  rp.p->metrics().lag = 1200;
  rp.p->metrics().lag_by_partition.Set({{0, 200}, {1, 1000}});
  Server srv(LocalOptions(rp.dir), rp.Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res);
  Parsed p;
  ASSERT_TRUE(CheckPrometheus(res->body, &p)) << res->body.substr(0, 2000);
  EXPECT_EQ(p.samples["iotpipe_consumer_lag_records{}"], 1200);
  EXPECT_EQ(p.samples["iotpipe_consumer_lag_records{partition=0,}"], 200);
  EXPECT_EQ(p.samples["iotpipe_consumer_lag_records{partition=1,}"], 1000);
  EXPECT_EQ(p.samples.count("iotpipe_consumer_lag_records{partition=2,}"), 0u);
  srv.Stop();
}

// The source's own figures (MQTT: connection, reconnects, duplicates) as iotpipe_source_<name>.
TEST(Metrics, SourceFiguresExported) {
  RanPipeline rp("figures");
  rp.p->metrics().source_figures.Set({{"mqtt_connected", 1}, {"mqtt_reconnects", 3}, {"mqtt_duplicates", 7}});
  Server srv(LocalOptions(rp.dir), rp.Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res);
  Parsed p;
  ASSERT_TRUE(CheckPrometheus(res->body, &p)) << res->body.substr(0, 2000);
  EXPECT_EQ(p.samples["iotpipe_source_mqtt_connected{}"], 1);
  EXPECT_EQ(p.samples["iotpipe_source_mqtt_reconnects{}"], 3);
  EXPECT_EQ(p.samples["iotpipe_source_mqtt_duplicates{}"], 7);
  srv.Stop();
}

// ---- REST ---------------------------------------------------------------------------------------
TEST(Api, SensorsReadingsAnomaliesModelsHealth) {
  RanPipeline rp("api");
  Server srv(LocalOptions(rp.dir), rp.Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());

  auto h = cli.Get("/api/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");

  auto s = cli.Get("/api/sensors");
  ASSERT_TRUE(s);
  auto sj = json::parse(s->body);
  ASSERT_EQ(sj["sensors"].size(), 50u);
  std::string id = sj["sensors"][0]["sensor_id"];

  // Recent readings come from memory (ring of 100 per sensor here).
  auto r = cli.Get("/api/sensors/" + id + "/readings");
  ASSERT_TRUE(r);
  auto rj = json::parse(r->body);
  EXPECT_EQ(rj["t"].size(), 100u);
  EXPECT_EQ(rj["from_disk"], 0);
  EXPECT_EQ(rj["threshold"], kScoreThreshold);
  // Asking from the start of the run also reads the older ones from the stored Parquet.
  auto r2 = cli.Get("/api/sensors/" + id + "/readings?from=1732406400");
  ASSERT_TRUE(r2);
  auto r2j = json::parse(r2->body);
  EXPECT_GT(r2j["from_disk"].get<int>(), 0);
  EXPECT_GT(r2j["t"].size(), rj["t"].size());
  auto& t = r2j["t"];
  for (size_t i = 1; i < t.size(); i++) ASSERT_LT(t[i - 1].get<double>(), t[i].get<double>());
  EXPECT_EQ(cli.Get("/api/sensors/" + id + "/readings?from=yesterday")->status, 400);

  auto a = cli.Get("/api/anomalies?limit=5");
  ASSERT_TRUE(a);
  auto aj = json::parse(a->body);
  EXPECT_EQ(aj["anomalies"].size(), 5u);
  EXPECT_TRUE(aj["anomalies"][0].contains("model_version"));
  EXPECT_TRUE(aj["anomalies"][0].contains("anomaly_type"));

  auto m = cli.Get("/api/models");
  ASSERT_TRUE(m);
  auto mj = json::parse(m->body);
  EXPECT_EQ(mj["in_use"]["detector"], "baseline");
  EXPECT_EQ(mj["can_rollback"], false);
  // Promote and roll back (hot swap through the processor).
  auto pr = cli.Post("/api/models/promote", R"({"detector":"baseline"})", "application/json");
  ASSERT_TRUE(pr);
  EXPECT_EQ(pr->status, 200);
  EXPECT_EQ(cli.Post("/api/models/promote", R"({"detector":"nope"})", "application/json")->status, 400);
  EXPECT_EQ(cli.Post("/api/models/rollback", "", "application/json")->status, 200);
  srv.Stop();
}

// The fleet endpoints over a finished run: the figures agree with the pipeline, the alerts and each other.
TEST(Api, FleetSummaryHeatmapAndRankingFromMemoryAndStore) {
  RanPipeline rp("fleet", 20000, 0);
  Server srv(LocalOptions(rp.dir), rp.Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  auto get = [&](const std::string& path) {
    auto r = cli.Get(path);
    EXPECT_TRUE(r && r->status == 200) << path;
    return r ? json::parse(r->body) : json();
  };
  const json s = get("/api/fleet/summary");
  EXPECT_EQ(s["time_zone"], "UTC");
  EXPECT_EQ(s["sensors"], 50);
  EXPECT_EQ(s["readings_window"], rp.p->metrics().parsed.load());  // 400 s of sensor time < the 600 s window
  EXPECT_EQ(s["flagged_window"], rp.p->metrics().predicted.load());
  EXPECT_GT(s["flagged_window"].get<int64_t>(), 0);
  EXPECT_DOUBLE_EQ(s["anomaly_rate"].get<double>(),
                   s["flagged_window"].get<double>() / s["readings_window"].get<double>());
  const auto open = rp.alerts->OpenAlerts();
  std::set<std::string> alerting;
  for (auto& a : open) alerting.insert(a.sensor_id);
  EXPECT_EQ(s["open_alerts"], rp.alerts->counters().open_now.load());
  EXPECT_EQ(s["open_alerts"], open.size());
  EXPECT_EQ(s["sensors_alerting"], alerting.size());
  EXPECT_EQ(get("/api/alerts?state=open")["open"], open.size());
  EXPECT_EQ(s["health"]["dead_letters"], 0);
  EXPECT_EQ(s["health"]["drops"], 0);

  // The heat map of the top 5 over the last 60 buckets ranks as the memory ranking of the same 300 s.
  const json h = get("/api/fleet/heatmap?top=5&buckets=60");
  EXPECT_EQ(h["mode"], "top");
  EXPECT_EQ(h["cols"], 60);
  EXPECT_EQ(h["bucket_s"], 5.0);
  ASSERT_EQ(h["rows"].size(), 5u);
  ASSERT_EQ(h["score"].size(), 5u);
  EXPECT_EQ(h["score"][0].size(), 60u);
  const json r = get("/api/fleet/top?range=300&limit=5");
  ASSERT_EQ(r["sensors"].size(), 5u);
  for (size_t i = 0; i < 5; i++) {
    EXPECT_EQ(h["rows"][i], r["sensors"][i]["sensor_id"]) << i;
    EXPECT_EQ(h["row_flagged"][i], r["sensors"][i]["flagged"]) << i;
    int64_t sum = 0;
    for (auto& c : h["flagged"][i]) sum += c.get<int64_t>();
    EXPECT_EQ(sum, h["row_flagged"][i].get<int64_t>());
  }
  const json bands = get("/api/fleet/heatmap?mode=fleet&top=10&buckets=60");
  EXPECT_EQ(bands["rows"].size(), 10u);
  int64_t band_total = 0;  // every sensor in one band: the bands hold all flagged readings of the 300 s
  for (auto& v : bands["row_flagged"]) band_total += v.get<int64_t>();
  EXPECT_EQ(band_total, get("/api/fleet/heatmap?mode=fleet&top=1&buckets=60")["row_flagged"][0]);
  EXPECT_NE(bands["rows"][0].get<std::string>().find(" … "), std::string::npos);

  // Since the start: memory and the stored Parquet agree.
  const json mem = get("/api/fleet/top?limit=10"), store = get("/api/fleet/top?limit=10&source=store");
  EXPECT_EQ(store["source"], "store");
  ASSERT_EQ(mem["sensors"].size(), 10u);
  ASSERT_EQ(store["sensors"].size(), 10u);
  for (size_t i = 0; i < 10; i++) {
    EXPECT_EQ(mem["sensors"][i]["sensor_id"], store["sensors"][i]["sensor_id"]) << i;
    EXPECT_EQ(mem["sensors"][i]["flagged"], store["sensors"][i]["flagged"]) << i;
    EXPECT_EQ(mem["sensors"][i]["last_flagged"], store["sensors"][i]["last_flagged"]) << i;
  }
  // A stored range: only the readings in it.
  const json early = get("/api/fleet/top?limit=50&source=store&from=2024-11-24T00:00:00Z&to=2024-11-24T00:01:00Z");
  int64_t n = 0;
  for (auto& e : early["sensors"]) n += e["flagged"].get<int64_t>();
  EXPECT_GT(n, 0);
  EXPECT_LT(n, s["flagged_window"].get<int64_t>());
  EXPECT_EQ(cli.Get("/api/fleet/heatmap?mode=all")->status, 400);
  EXPECT_EQ(s["has_assets"], false);
  EXPECT_EQ(s["has_devices"], false);
  EXPECT_EQ(get("/api/fleet/heatmap?mode=device")["rows"].size(), 0u);
  EXPECT_EQ(cli.Get("/api/fleet/top?source=disk")->status, 400);
  EXPECT_EQ(cli.Get("/api/fleet/top?from=yesterday")->status, 400);
  // The chart of a sensor names the model version of its points.
  const json rd = get("/api/sensors/" + mem["sensors"][0]["sensor_id"].get<std::string>() + "/readings");
  EXPECT_EQ(rd["model_versions"], json::array({"baseline-v1"}));
  EXPECT_EQ(rd["model"].size(), rd["t"].size());
  srv.Stop();
}

// The model controls act on the registry's aliases; a worse model is refused unless forced.
TEST(Api, RegistryPromoteRollbackShadowAndTheEvaluationCheck) {
  RanPipeline rp("registry", 2000, 0);
  ml::testutil::Tmp models("http_registry");
  for (auto [v, loss] : {std::pair{"v1", 0.75}, {"v2", 15.6}, {"v3", 0.7}}) {
    ml::Model m = ml::testutil::SmallModel(v);
    m.card["best_val_loss"] = loss;
    ASSERT_TRUE(m.Save(models.str()).ok());
  }
  ml::Registry reg(models.str());
  ASSERT_TRUE(reg.Promote("v1").ok());
  ASSERT_TRUE(reg.AddEvaluation("v3", json{{"kind", "shadow"}, {"f1", 0.8}, {"shadow_at_least_as_good", true}}).ok());
  ServerOptions o = LocalOptions(rp.dir);
  o.model_dir = models.str();
  Server srv(o, rp.Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  auto post = [&](const std::string& path, const json& body) {
    auto r = cli.Post(path, body.dump(), "application/json");
    return r ? std::make_pair(r->status, json::parse(r->body)) : std::make_pair(0, json());
  };
  const json l = json::parse(cli.Get("/api/registry")->body);
  ASSERT_EQ(l["versions"].size(), 3u);
  EXPECT_EQ(l["aliases"]["production"], "v1");
  EXPECT_EQ(l["versions"][0]["best_val_loss"], 0.75);
  EXPECT_EQ(l["versions"][0]["aliases"], json::array({"production"}));
  EXPECT_EQ(l["versions"][2]["evaluations"][0]["f1"], 0.8);
  EXPECT_EQ(l["in_use"], "baseline-v1");

  auto [st, body] = post("/api/registry/promote", {{"version", "v2"}});
  EXPECT_EQ(st, 409);
  EXPECT_NE(body["error"].get<std::string>().find("validation loss"), std::string::npos) << body;
  EXPECT_EQ(reg.Alias("production"), "v1");
  EXPECT_EQ(post("/api/registry/promote", {{"version", "v2"}, {"force", true}}).first, 200);
  EXPECT_EQ(reg.Alias("production"), "v2");
  auto rb = post("/api/registry/rollback", json::object());
  EXPECT_EQ(rb.first, 200);
  EXPECT_EQ(rb.second["version"], "v1");
  EXPECT_EQ(reg.Alias("production"), "v1");
  EXPECT_EQ(post("/api/registry/promote", {{"version", "v3"}, {"alias", "shadow"}}).first, 200);
  EXPECT_EQ(reg.Alias("shadow"), "v3");
  EXPECT_EQ(post("/api/registry/clear", {{"alias", "shadow"}}).first, 200);
  EXPECT_EQ(reg.Alias("shadow"), "");
  EXPECT_EQ(post("/api/registry/promote", json::object()).first, 400);
  EXPECT_EQ(post("/api/registry/promote", {{"version", "v9"}}).first, 400);
  srv.Stop();

  Server none(LocalOptions(rp.dir), rp.Deps());  // no registry: listed as unavailable, actions refused
  ASSERT_TRUE(none.Start().ok());
  httplib::Client c2("127.0.0.1", none.port());
  EXPECT_EQ(json::parse(c2.Get("/api/registry")->body)["available"], false);
  EXPECT_EQ(c2.Post("/api/registry/promote", R"({"version":"v1"})", "application/json")->status, 501);
  none.Stop();
}

TEST(Api, TokenIsRequiredWhenSetAndForNonLoopbackBinds) {
  RanPipeline rp("token", 2000, 0);
  ServerOptions o = LocalOptions(rp.dir);
  o.host = "0.0.0.0";
  {
    Server srv(o, rp.Deps());
    Status s = srv.Start();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("--http-token"), std::string::npos);
  }
  o.host = "127.0.0.1";
  o.token = "s3cret";
  Server srv(o, rp.Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  EXPECT_EQ(cli.Get("/api/health")->status, 401);
  EXPECT_EQ(cli.Get("/metrics")->status, 401);
  EXPECT_EQ(cli.Post("/api/query", "select 1", "text/plain")->status, 401);
  EXPECT_EQ(cli.Post("/api/models/rollback", "", "application/json")->status, 401);
  httplib::Headers auth = {{"Authorization", "Bearer s3cret"}};
  EXPECT_EQ(cli.Get("/api/health", auth)->status, 200);
  EXPECT_EQ(cli.Get("/api/health", {{"Authorization", "Bearer wrong"}})->status, 401);
  EXPECT_EQ(cli.Post("/api/query", auth, R"({"sql":"select 1 as one"})", "application/json")->status, 200);
  // With the token, a text/plain post (what a cross-site form or fetch can send without a preflight)
  // is still refused.
  EXPECT_EQ(cli.Post("/api/query", auth, "select 1 as one", "text/plain")->status, 415);
  srv.Stop();
}

// A port another server holds is never shared (httplib's default SO_REUSEPORT let a second process bind
// it and take half the connections): the second Start fails, naming the address.
TEST(Api, ATakenPortIsNeverShared) {
  RanPipeline rp("port", 2000, 0);
  Server first(LocalOptions(rp.dir), rp.Deps());
  ASSERT_TRUE(first.Start().ok());
  ServerOptions o = LocalOptions(rp.dir);
  o.port = first.port();
  Server second(o, rp.Deps());
  Status s = second.Start();
  ASSERT_FALSE(s.ok()) << "a second server bound port " << o.port;
  EXPECT_TRUE(s.IsAlreadyExists()) << s.message();
  EXPECT_NE(s.message().find(":" + std::to_string(o.port)), std::string::npos) << s.message();
  first.Stop();
}

TEST(Api, ServerSentEventsCarryPerSecondFigures) {
  RanPipeline rp("sse", 2000, 0);
  Server srv(LocalOptions(rp.dir), rp.Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  cli.set_read_timeout(10, 0);
  std::string got;
  auto res = cli.Get("/api/stream", [&](const char* data, size_t n) {
    got.append(data, n);
    return got.find("event: stats") == std::string::npos;  // stop once a stats event arrived
  });
  size_t at = got.find("event: stats\ndata: ");
  ASSERT_NE(at, std::string::npos) << got;
  std::string data = got.substr(at + 19, got.find('\n', at + 19) - at - 19);
  auto j = json::parse(data);
  EXPECT_EQ(j["sent"], 2000);
  EXPECT_TRUE(j.contains("events_per_s"));
  srv.Stop();
}

// ---- POST /api/query: read-only, limited, data dir only ---------------------------------------------
class QueryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { rp_ = new RanPipeline("query", 5000, 0.01); }
  static void TearDownTestSuite() {
    delete rp_;
    rp_ = nullptr;
  }
  void SetUp() override {
    auto q = QueryService::Open(rp_->dir.string(), 100, 0.5, 2000);
    ASSERT_TRUE(q.ok()) << q.status().message();
    q_ = std::move(q.value());
  }
  std::string Refusal(const std::string& sql) {
    auto r = q_->Run(sql);
    return r.ok() ? std::string("ACCEPTED") : r.status().message();
  }
  static RanPipeline* rp_;
  std::unique_ptr<QueryService> q_;
};
RanPipeline* QueryTest::rp_ = nullptr;

TEST_F(QueryTest, AnswersSelectsOverTheData) {
  auto r = q_->Run("select count(*) as n from sensor_readings;");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->table.Int(0, 0), static_cast<int64_t>(rp_->p->store_stats().rows));
  auto d = q_->Run("select reason from dead_letters -- trailing comment");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_GT(d->table.rows.size(), 0u);
  EXPECT_TRUE(q_->Run("explain select * from sensor_readings").ok());
}

TEST_F(QueryTest, RowLimitTruncates) {
  auto r = q_->Run("select * from sensor_readings");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->table.rows.size(), 100u);
  EXPECT_TRUE(r->truncated);
  auto s = q_->Run("select * from range(100)");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->truncated);
}

TEST_F(QueryTest, RefusesWrites) {
  EXPECT_NE(Refusal("create table t as select 1").find("CREATE statements are not allowed"), std::string::npos);
  EXPECT_NE(Refusal("insert into sensor_readings select * from sensor_readings").find("refused"), std::string::npos);
  EXPECT_NE(Refusal("delete from sensor_readings").find("refused"), std::string::npos);
  EXPECT_NE(Refusal("drop view sensor_readings").find("DROP"), std::string::npos);
  EXPECT_NE(Refusal("select 1; drop view alerts").find("only one statement"), std::string::npos);
}

TEST_F(QueryTest, RefusesCopy) {
  std::string to = (rp_->dir / "out.csv").string();
  EXPECT_NE(Refusal("copy (select 1) to '" + to + "'").find("COPY statements are not allowed"), std::string::npos);
  EXPECT_NE(Refusal("copy sensor_readings to '/tmp/x.parquet'").find("refused"), std::string::npos);
  EXPECT_FALSE(fs::exists(to));
}

TEST_F(QueryTest, RefusesAttachInstallLoadSetPragma) {
  EXPECT_NE(Refusal("attach '" + (rp_->dir / "x.duckdb").string() + "' as x").find("ATTACH statements are not allowed"),
            std::string::npos);
  EXPECT_NE(Refusal("install httpfs").find("refused"), std::string::npos);
  EXPECT_NE(Refusal("load httpfs").find("refused"), std::string::npos);
  EXPECT_NE(Refusal("set enable_external_access = true").find("refused"), std::string::npos);
  EXPECT_NE(Refusal("pragma version").find("refused"), std::string::npos);
}

TEST_F(QueryTest, RefusesFileReadingFunctionsOutsideTheDataDir) {
  for (std::string sql :
       std::vector<std::string>{"select * from read_csv('/etc/passwd')", "select * from read_text('/etc/hostname')",
                                "select * from '/etc/passwd'", "select * from glob('/etc/*')",
                                "select * from read_parquet('/tmp/elsewhere/*.parquet')",
                                "select * from read_json_auto('/proc/self/environ')",
                                "select * from read_parquet('" + rp_->dir.string() + "/../x.parquet')"}) {
    std::string m = Refusal(sql);
    EXPECT_NE(m, "ACCEPTED") << sql;
    EXPECT_EQ(m.find("root:"), std::string::npos) << m;  // nothing of the file leaks into the message
    if (sql.find("read_") != std::string::npos || sql.find("glob") != std::string::npos) {
      EXPECT_NE(m.find("query refused: only the data directory can be read"), std::string::npos) << sql << " -> " << m;
    }
  }
}

TEST_F(QueryTest, RefusesOverLongQueries) {
  std::string big = "select " + std::string(3000, '1');
  EXPECT_NE(Refusal(big).find("longer than the limit"), std::string::npos);
  // Running longer than the time limit (0.5 s here): interrupted, with a clear message.
  std::string m = Refusal("select count(*) from range(1000000000000) a, range(10) b where a.range + b.range < 0");
  EXPECT_NE(m.find("exceeded the time limit"), std::string::npos) << m;
  // The service still works after an interrupted query.
  EXPECT_TRUE(q_->Run("select 42").ok());
}

TEST_F(QueryTest, HttpEndpointMapsRefusalsTo403) {
  Server srv(LocalOptions(rp_->dir), rp_->Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  auto ok = cli.Post("/api/query", R"({"sql":"select count(*) as n from sensor_readings"})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto j = json::parse(ok->body);
  EXPECT_EQ(j["columns"][0], "n");
  auto bad = cli.Post("/api/query", R"({"sql":"copy sensor_readings to '/tmp/x.csv'"})", "application/json");
  EXPECT_EQ(bad->status, 403);
  EXPECT_NE(json::parse(bad->body)["error"].get<std::string>().find("COPY"), std::string::npos);
  EXPECT_EQ(cli.Post("/api/query", R"({"nope":1})", "application/json")->status, 400);
  EXPECT_EQ(cli.Post("/api/query", R"({"sql":"select from where"})", "application/json")->status, 400);
  srv.Stop();
}

// Issue 14, finding 1: EXPLAIN ANALYZE ran its statement, so the read-only door wrote files.
TEST_F(QueryTest, RefusesExplainAnalyzeAndWritingTableFunctions) {
  const fs::path zz = rp_->dir / "sensor_readings" / "zz.parquet";
  const std::string copy = "COPY (SELECT 1) TO '" + zz.string() + "' (FORMAT parquet)";
  const std::string nested = "SELECT * FROM query('COPY (SELECT 1) TO ''" + zz.string() + "''')";
  for (const std::string& sql :
       {"EXPLAIN ANALYZE " + copy, "explain analyze " + copy, "EXPLAIN (ANALYZE) " + copy,
        "/* x */ EXPLAIN -- y\n ANALYZE " + copy, "EXPLAIN " + copy,
        std::string("EXPLAIN ANALYZE SELECT count(*) FROM sensor_readings"),
        std::string("EXPLAIN ANALYZE CREATE TABLE big AS SELECT * FROM range(5000000)"),
        std::string("SELECT * FROM checkpoint()"), std::string("SELECT * FROM force_checkpoint()"),
        std::string("PIVOT sensor_readings ON sensor_id")}) {
    std::string m = Refusal(sql);
    EXPECT_EQ(m.rfind("query refused", 0), 0u) << sql << " -> " << m;
  }
  // DuckDB itself rejects these before anything runs (an error, never an answer).
  for (const std::string& sql :
       {nested, std::string("EXPLAIN ANALYZE INSERT INTO sensor_readings SELECT * FROM sensor_readings")})
    EXPECT_NE(Refusal(sql), "ACCEPTED") << sql;
  EXPECT_FALSE(fs::exists(zz));
  // Reads of every usual shape still pass.
  for (const char* sql : {"EXPLAIN SELECT count(*) FROM sensor_readings", "explain select 1",
                          "WITH a AS (SELECT 1 AS x) SELECT * FROM a UNION ALL SELECT 2", "DESCRIBE sensor_readings",
                          "SUMMARIZE dead_letters", "FROM alerts", "SELECT * FROM range(3)"}) {
    auto r = q_->Run(sql);
    EXPECT_TRUE(r.ok()) << sql << " -> " << r.status().message();
  }
}

// Issue 14, finding 1: cross-site requests (text/plain, foreign Origin, foreign Host) are refused.
TEST_F(QueryTest, HttpQueryRefusesCrossSiteRequests) {
  Server srv(LocalOptions(rp_->dir), rp_->Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  const fs::path zz = rp_->dir / "sensor_readings" / "zz2.parquet";
  const std::string explain = "EXPLAIN ANALYZE COPY (SELECT 1) TO '" + zz.string() + "' (FORMAT parquet)";
  auto r = cli.Post("/api/query", json{{"sql", explain}}.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_EQ(cli.Post("/api/query", "select 1", "text/plain")->status, 415);
  EXPECT_EQ(cli.Post("/api/query", json{{"sql", "select 1"}}.dump(), "text/plain")->status, 415);
  EXPECT_EQ(cli.Post("/api/query", "sql=select+1", "application/x-www-form-urlencoded")->status, 415);
  const std::string self = "http://127.0.0.1:" + std::to_string(srv.port());
  EXPECT_EQ(
      cli.Post("/api/query", {{"Origin", "http://evil.example"}}, R"({"sql":"select 1"})", "application/json")->status,
      403);
  EXPECT_EQ(cli.Post("/api/query", {{"Origin", self}}, R"({"sql":"select 1"})", "application/json")->status, 200);
  // DNS rebinding: a foreign name resolving to 127.0.0.1 arrives with its own Host header.
  httplib::Headers rebound = {{"Host", "attacker.example:" + std::to_string(srv.port())}};
  EXPECT_EQ(cli.Post("/api/query", rebound, R"({"sql":"select 1"})", "application/json")->status, 403);
  EXPECT_EQ(cli.Get("/api/health", rebound)->status, 403);
  EXPECT_EQ(cli.Post("/api/models/rollback", {{"Origin", "http://evil.example"}}, "", "application/json")->status, 403);
  EXPECT_EQ(cli.Post("/api/models/promote", R"({"detector":"baseline"})", "text/plain")->status, 415);
  EXPECT_FALSE(fs::exists(zz));
  srv.Stop();
}

// Issue 14, finding 4: a chunked body bypassed the 1 MiB limit (50 MiB were read in full).
TEST_F(QueryTest, HttpBodiesAreBoundedChunkedIncluded) {
  Server srv(LocalOptions(rp_->dir), rp_->Deps());
  ASSERT_TRUE(srv.Start().ok());
  httplib::Client cli("127.0.0.1", srv.port());
  size_t sent = 0;
  const std::string block(64 * 1024, ' ');
  auto r = cli.Post(
      "/api/query",
      [&](size_t, httplib::DataSink& sink) {
        if (sent >= (50u << 20)) {
          sink.done();
          return true;
        }
        sent += block.size();
        return sink.write(block.data(), block.size());
      },
      "application/json");
  if (r) {
    EXPECT_EQ(r->status, 413);  // or the server closed the connection before answering
  }
  EXPECT_LT(sent, 50u << 20) << "the whole chunked body was read";
  auto big = cli.Post("/api/query", std::string(2 << 20, ' '), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(cli.Post("/api/query", R"({"sql":"select 1"})", "application/json")->status, 200);
  srv.Stop();
}

}  // namespace
}  // namespace iotpipe::http
