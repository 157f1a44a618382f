// Real sensor records (issue 16), end to end through the binary: the corpus under tests/records/
// ingested with `process --input`, checked row by row in the stored data; unlabelled and
// half-labelled runs through `evaluate`.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "test_util.h"

namespace fs = std::filesystem;
using iotpipe::testing::Bin;
using iotpipe::testing::Query;
using iotpipe::testing::Sh;
using iotpipe::testing::TempDir;

namespace {

std::string Corpus() { return std::string(IOTPIPE_SOURCE_DIR) + "/tests/records"; }

TEST(Records, CorpusIngestedThroughProcessRowByRow) {
  std::ifstream f(Corpus() + "/cases.json");
  ASSERT_TRUE(f.good());
  auto cases = nlohmann::json::parse(f)["cases"];
  ASSERT_GE(cases.size(), 10u);
  int i = 0;
  for (const auto& c : cases) {
    const std::string file = c["file"].get<std::string>(), args = c["args"].get<std::string>();
    SCOPED_TRACE(file + " " + args);
    TempDir d("records_" + std::to_string(i++));
    auto r = Sh(Bin() + " process --http off --quiet --no-checkpoint --input " + Corpus() + "/" + file + " " + args +
                " --data-dir " + d.str() + " --summary-json -");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("all accounted for"), std::string::npos) << r.err;
    auto rows = Query(d.str(),
                      "select sensor_id, epoch_us(timestamp) as us, value, is_anomaly_ground_truth as gt "
                      "from sensor_readings order by sensor_id, timestamp");
    const auto& want = c["readings"];
    ASSERT_EQ(rows.size(), want.size()) << rows.dump();
    for (size_t k = 0; k < want.size(); k++) {
      SCOPED_TRACE("row " + std::to_string(k));
      EXPECT_EQ(rows[k]["sensor_id"].get<std::string>(), want[k][0].get<std::string>());
      EXPECT_EQ(rows[k]["us"].get<int64_t>(), want[k][1].get<int64_t>());
      EXPECT_DOUBLE_EQ(rows[k]["value"].get<double>(), want[k][2].get<double>());
      if (want[k][3].is_null())
        EXPECT_TRUE(rows[k]["gt"].is_null()) << rows[k].dump();
      else
        EXPECT_EQ(rows[k]["gt"], want[k][3]) << rows[k].dump();
    }
    std::vector<std::string> dead;
    if (!c["dead"].empty() || rows.empty()) {
      auto dl = Query(d.str(), "select reason from dead_letters order by reason");
      for (auto& x : dl) dead.push_back(x["reason"].get<std::string>());
    }
    EXPECT_EQ(nlohmann::json(dead), c["dead"]);
    if (c.contains("sensors")) {  // the sensors dataset: unit, tags, first and last seen
      auto ss = Query(d.str(),
                      "select sensor_id, unit, tags, epoch_us(first_seen) as f, epoch_us(last_seen) as l "
                      "from sensors order by sensor_id");
      nlohmann::json got = nlohmann::json::array();
      for (auto& x : ss) got.push_back({x["sensor_id"], x["unit"], x["tags"], x["f"], x["l"]});
      EXPECT_EQ(got, c["sensors"]);
    }
  }
}

// The same payload twice: declared through a [process.input] table; `config check` refuses a bad mapping.
TEST(Records, InputTableInTheConfigAndConfigCheck) {
  TempDir d("records_cfg");
  const std::string good = d.str() + "/good.toml", bad = d.str() + "/bad.toml";
  std::ofstream(good) << "[process]\nhttp = \"off\"\n[process.input]\nformat = \"json\"\nid = \"/meta/id\"\n"
                         "time = \"/time\"\nvalue = \"/payload/temp\"\n";
  std::ofstream(bad) << "[process.input]\nformat = \"json\"\ntime = \"time\"\ntime-unit = \"minutes\"\n";
  auto ok = Sh(Bin() + " config check " + good);
  EXPECT_EQ(ok.code, 0) << ok.err;
  auto no = Sh(Bin() + " config check " + bad);
  EXPECT_EQ(no.code, 2);
  EXPECT_NE(no.err.find("time-unit"), std::string::npos) << no.err;
  const std::string bad2 = d.str() + "/bad2.toml";
  std::ofstream(bad2) << "[process.input]\nformat = \"json\"\ntime = \"time\"\n";
  auto no2 = Sh(Bin() + " config check " + bad2);
  EXPECT_EQ(no2.code, 2);
  EXPECT_NE(no2.err.find("input time = 'time' is not a JSON Pointer"), std::string::npos) << no2.err;
  auto r = Sh(Bin() + " process --config " + good + " --quiet --no-checkpoint --input " + Corpus() +
              "/nested.jsonl --data-dir " + d.str() + "/data");
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = Query(d.str() + "/data", "select sensor_id, value from sensor_readings");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["sensor_id"], "room-1");
  auto bad_flag = Sh(Bin() + " process --http off --quiet --input - --format json --input-id meta --data-dir " +
                     d.str() + "/x </dev/null");
  EXPECT_EQ(bad_flag.code, 2);
  EXPECT_NE(bad_flag.err.find("input id = 'meta' is not a JSON Pointer"), std::string::npos) << bad_flag.err;
}

// Strips is_anomaly_ground_truth from the records of sensors `strip` says.
void Rewrite(const std::string& in, const std::string& out, const std::function<int(const std::string&)>& keep) {
  std::ifstream f(in);
  std::ofstream o(out);
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line);
    int k = keep(j["sensor_id"].get<std::string>());
    if (k == 0) continue;  // drop the record
    if (k == 1) j.erase("is_anomaly_ground_truth");
    o << j.dump() << "\n";
  }
}

TEST(Records, EvaluateAndMonitorUseLabelledRowsOnly) {
  TempDir d("records_eval");
  const std::string all = d.str() + "/all.jsonl";
  auto s =
      Sh(Bin() +
         " simulate --sensors 20 --events 60000 --rate max --seed 5 --anomaly-rate 0.02 --output jsonl --path " + all);
  ASSERT_EQ(s.code, 0) << s.err;
  auto odd = [](const std::string& id) { return (id.back() - '0') % 2 == 1; };
  // half: odd sensors unlabelled; labelled: only the even sensors; none: no label at all.
  Rewrite(all, d.str() + "/half.jsonl", [&](const std::string& id) { return odd(id) ? 1 : 2; });
  Rewrite(all, d.str() + "/labelled.jsonl", [&](const std::string& id) { return odd(id) ? 0 : 2; });
  Rewrite(all, d.str() + "/none.jsonl", [](const std::string&) { return 1; });
  for (const char* n : {"half", "labelled", "none"}) {
    auto r = Sh(Bin() + " process --http off --quiet --no-checkpoint --input " + d.str() + "/" + n +
                ".jsonl --data-dir " + d.str() + "/" + n);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  auto ev = [&](const std::string& n) {
    auto r = Sh(Bin() + " evaluate --json --data-dir " + d.str() + "/" + n);
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  };
  auto half = ev("half"), lab = ev("labelled"), none = ev("none");
  EXPECT_GT(half["unlabelled_rows_ignored"].get<int64_t>(), 0);
  EXPECT_EQ(half["labelled_rows"], lab["labelled_rows"]);
  EXPECT_EQ(lab["unlabelled_rows_ignored"], 0);
  EXPECT_GT(lab["episodes"].get<int64_t>(), 0);
  for (const char* k : {"point_precision", "point_recall", "point_f1", "episode_precision", "episode_recall",
                        "episode_f1", "tp", "fp", "fn", "episodes", "false_alarms"})
    EXPECT_EQ(half[k], lab[k]) << k;
  EXPECT_GT(lab["point_f1"].get<double>(), 0.1);
  // No label at all: alert rates, exit 0.
  EXPECT_EQ(none["labelled_rows"], 0);
  EXPECT_EQ(none["unlabelled_rows_ignored"], none["total_rows"]);
  EXPECT_GT(none["alert_rate"].get<double>(), 0);
  auto t = Sh(Bin() + " evaluate --data-dir " + d.str() + "/none");
  EXPECT_EQ(t.code, 0);
  EXPECT_NE(t.out.find("no labelled rows"), std::string::npos) << t.out;
  // monitor: one model (trained on the labelled half) over the three stores. Its stored-row figures use
  // labelled rows only (half == labelled alone); with no label it reports the alert rate, not a failure.
  auto tr = Sh(Bin() + " train --data-dir " + d.str() + "/labelled --model-dir " + d.str() +
               "/models --since 2h --epochs 2 --max-windows 2000 --window 16 --hidden 16 --tod-bins 0");
  ASSERT_EQ(tr.code, 0) << tr.err;
  auto mon = [&](const std::string& n) {
    auto r = Sh(Bin() + " monitor --json --window 2h --model v1 --model-dir " + d.str() + "/models --data-dir " +
                d.str() + "/" + n);
    EXPECT_TRUE(r.code == 0 || r.code == 3) << r.err;  // 3: drift, judged on errors, not labels
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(r.code, j["drifted"].get<bool>() ? 3 : 0);
    return j["stored"];
  };
  auto mhalf = mon("half"), mlab = mon("labelled"), mnone = mon("none");
  EXPECT_GT(mhalf["unlabelled_rows_ignored"].get<int64_t>(), 0);
  for (const char* k : {"labelled", "precision", "recall", "f1"}) EXPECT_EQ(mhalf[k], mlab[k]) << k;
  EXPECT_GT(mlab["f1"].get<double>(), 0.1);
  EXPECT_EQ(mnone["labelled"], 0);
  EXPECT_TRUE(mnone["f1"].is_null());
  EXPECT_EQ(mnone["unlabelled_rows_ignored"], mnone["rows"]);
  EXPECT_GT(mnone["alert_rate"].get<double>(), 0);
  // Stored as NULL, read back as NULL.
  auto rows = Query(d.str() + "/half",
                    "select count(*) filter (where is_anomaly_ground_truth is null) as n, count(*) as t "
                    "from sensor_readings");
  EXPECT_GT(rows[0]["n"].get<int64_t>(), 0);
  EXPECT_LT(rows[0]["n"].get<int64_t>(), rows[0]["t"].get<int64_t>());
}

// A simulated fleet sent as multi-field devices: per quantity by the univariate detector and per
// device by the asset detector, in the same run, with no asset configuration.
TEST(Records, MultiFieldDevicesScoredPerQuantityAndPerDevice) {
  TempDir d("records_devices");
  const std::string in = d.str() + "/devices.jsonl";
  auto s =
      Sh(Bin() + " simulate --device-fields 4 --sensors 16 --events 64000 --rate max --seed 9 --output jsonl --path " +
         in);
  ASSERT_EQ(s.code, 0) << s.err;
  auto r = Sh(Bin() + " process --http off --quiet --no-checkpoint --format flat --input " + in + " --data-dir " +
              d.str() + "/data --summary-json -");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("all accounted for"), std::string::npos) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["stored"].get<int64_t>(), 64000);
  EXPECT_EQ(j["dead_letter"].get<int64_t>(), 0);
  EXPECT_EQ(j["sent"].get<int64_t>(), 16000);  // 4 readings a record
  EXPECT_EQ(j["sensors"].get<int64_t>(), 16);
  ASSERT_TRUE(j.contains("assets")) << j.dump();
  EXPECT_EQ(j["assets"]["assets"].get<int64_t>(), 4);
  EXPECT_EQ(j["assets"]["max_channels"].get<int64_t>(), 4);
  EXPECT_GT(j["assets"]["scored"].get<int64_t>(), 3000);
  auto rows = Query(d.str() + "/data",
                    "select count(distinct sensor_id) as n, min(sensor_id) as a, "
                    "count(*) filter (where model_version is not null) as scored from sensor_readings");
  EXPECT_EQ(rows[0]["n"], 16);
  EXPECT_EQ(rows[0]["a"], "asset_0/q0");
  EXPECT_EQ(rows[0]["scored"], 64000);
  auto a = Query(d.str() + "/data", "select count(distinct asset_id) as n from asset_scores");
  EXPECT_EQ(a[0]["n"], 4);
}

}  // namespace
