// iotpipe bench: per-stage and end-to-end throughput, latency at fixed rates, memory, scaling.
// Prints a table and (with --json) a machine-readable report whose top-level keys are stable:
// e2e_baseline_events_per_s, e2e_lstm_events_per_s, lstm_windows_per_s, baseline_state_bytes_per_sensor,
// p99_latency_s_at_100k, ...
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/bench_kafka.h"
#include "cli/common.h"
#include "detect/baseline.h"
#include "detect/lstm.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/train.h"
#include "parse/mapping.h"
#include "parse/parser.h"
#include "sim/simulator.h"

namespace fs = std::filesystem;

namespace iotpipe::cli {
namespace {

struct Bench {
  bool quick = false;
  std::string tmp;
  nlohmann::json j;
  std::vector<std::array<std::string, 3>> rows;

  void Row(const std::string& what, double v, const std::string& unit, const std::string& key) {
    j[key] = v;
    char buf[64];
    if (v >= 100)
      std::snprintf(buf, sizeof buf, "%.0f", v);
    else
      std::snprintf(buf, sizeof buf, "%.4g", v);
    rows.push_back({what, buf, unit});
    std::fprintf(stderr, "  %-58s %14s %s\n", what.c_str(), buf, unit.c_str());
  }
};

double Secs(int64_t t0) { return static_cast<double>(MonoMicros() - t0) / 1e6; }

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

SimConfig Sim(uint32_t sensors) {
  SimConfig c;
  c.sensors = sensors;
  c.start_us = 1732406400LL * 1000000;
  return c;
}

// Per-detector cost (issue #8): every streaming detector that needs no model scores the same
// readings (20 sensors of the realistic profile, in 4,096-row batches) on one thread, each for at
// most a few seconds; its state
// is what the StateStore holds per sensor.
void Detectors(Bench& b) {
  const uint32_t sensors = 20;
  const size_t n = b.quick ? 40000 : 400000;
  SimConfig c = Sim(sensors);
  c.profile = Profile::kRealistic;
  FleetSimulator sim(c);
  std::vector<ReadingBatch> batches;
  for (size_t done = 0; done < n;) {
    ReadingBatch r;
    for (size_t k = 0; k < 4096 && done < n; k++, done++) {
      SimReading x = sim.Next();
      r.Push(x.sensor, x.ts_us, x.value, x.kind != AnomalyKind::kNone, ReadingBatch::kNoType);
    }
    batches.push_back(std::move(r));
  }
  for (const std::string& name : DetectorNames()) {
    if (ParseLstmMode(name).ok()) continue;  // model-based: see the LSTM rows
    auto det = MakeDetector(name);
    if (!det.ok()) continue;
    StateStore store((*det)->state_bytes());
    std::vector<ReadingBatch> work = batches;
    // Time-boxed (cadose scores ~1k events/s): the rate is over the batches scored in the box.
    const double box_s = b.quick ? 1.5 : 10;
    size_t scored = 0;
    int64_t t0 = MonoMicros();
    for (auto& r : work) {
      (*det)->ScoreBatch(r, store);
      scored += r.size();
      if (Secs(t0) > box_s) break;
    }
    double s = Secs(t0);
    b.Row("detector " + name + " (20 sensors, 1 thread)", static_cast<double>(scored) / s, "events/s",
          "detector_" + name + "_events_per_s");
    b.Row("detector " + name + " state", static_cast<double>((*det)->state_bytes()), "bytes/sensor",
          "detector_" + name + "_state_bytes_per_sensor");
  }
}

void Stages(Bench& b) {
  const size_t n = b.quick ? 1000000 : 5000000;
  const size_t batch = 8192;
  // Simulate (generate readings).
  {
    FleetSimulator sim(Sim(1000));
    double acc = 0;
    int64_t t0 = MonoMicros();
    for (size_t i = 0; i < n; i++) acc += sim.Next().value;
    if (acc == 42) std::fprintf(stderr, " ");
    b.Row("simulate (readings/s)", static_cast<double>(n) / Secs(t0), "readings/s", "simulate_per_s");
  }
  // Encode to wire JSON, then parse+validate the same batches.
  FleetSimulator sim(Sim(1000));
  std::vector<RawBatch> raws;
  size_t bytes = 0;
  int64_t t0 = MonoMicros();
  for (size_t done = 0; done < n;) {
    RawBatch r;
    for (size_t k = 0; k < batch && done < n; k++, done++) sim.Encode(sim.Next(), r);
    r.Seal();
    bytes += r.data.size();
    raws.push_back(std::move(r));
  }
  double enc_s = Secs(t0);
  b.Row("simulate + JSON encode", static_cast<double>(n) / enc_s, "records/s", "encode_per_s");
  Interner sensors(1 << 20), types(256);
  Parser parser(&sensors, &types);
  std::vector<ProcessedBatch> outs(raws.size());
  t0 = MonoMicros();
  for (size_t i = 0; i < raws.size(); i++) parser.Parse(raws[i], outs[i]);
  double parse_s = Secs(t0);
  b.Row("parse + validate (known-layout scan, simdjson fallback)", static_cast<double>(n) / parse_s, "records/s",
        "parse_per_s");
  b.Row("parse + validate", static_cast<double>(bytes) / parse_s / 1e6, "MB/s", "parse_mb_per_s");
  {  // The same records through simdjson only (the general path), for comparison.
    Interner s2(1 << 20), t2(256);
    ParserOptions po;
    po.known_layout = false;
    Parser general(&s2, &t2, po);
    ProcessedBatch scratch;
    t0 = MonoMicros();
    for (auto& r : raws) {
      scratch.readings.Clear();
      scratch.dead.Clear();
      general.Parse(r, scratch);
    }
    b.Row("parse + validate (simdjson only)", static_cast<double>(n) / Secs(t0), "records/s", "parse_simdjson_per_s");
  }
  // Baseline detection.
  BaselineDetector det;
  StateStore store(det.state_bytes());
  t0 = MonoMicros();
  for (auto& o : outs) det.ScoreBatch(o.readings, store);
  b.Row("baseline detect", static_cast<double>(n) / Secs(t0), "events/s", "baseline_detect_per_s");
  b.Row("baseline detector state", static_cast<double>(det.state_bytes()), "bytes/sensor",
        "baseline_state_bytes_per_sensor");
  // Parquet write (durable files), both writers side by side on the same rows.
  for (const char* writer : {"duckdb", "native"}) {
    Dictionaries d;
    for (uint32_t i = 0; i < sensors.size(); i++) d.sensors.Intern(sensors.Name(i));
    d.models.Intern("baseline-v1");
    StoreOptions so;
    so.data_dir = b.tmp + "/store-" + writer;
    so.writer = writer;
    auto st = ParquetStore::Open(so, &d.sensors, &d.types, &d.models);
    Check(st.status(), "bench store");
    t0 = MonoMicros();
    for (auto& o : outs) Check((*st)->Append(o));
    Check((*st)->Flush());
    double s = Secs(t0);
    const bool native = std::string(writer) == "native";
    const std::string key = native ? "parquet_native" : "parquet_duckdb";
    b.Row(native ? "Parquet write (native writer, zstd, fsync)" : "Parquet write (DuckDB appender + COPY, zstd, fsync)",
          static_cast<double>((*st)->stats().rows) / s, "rows/s", key + "_rows_per_s");
    b.Row(native ? "Parquet write (native)" : "Parquet write (DuckDB)",
          static_cast<double>((*st)->stats().bytes) / s / 1e6, "MB/s (compressed)", key + "_mb_per_s");
    b.j[key + "_bytes_per_row"] = static_cast<double>((*st)->stats().bytes) / static_cast<double>((*st)->stats().rows);
    if (native) {  // the figure the store uses by default
      b.j["parquet_rows_per_s"] = static_cast<double>((*st)->stats().rows) / s;
      b.j["parquet_mb_per_s"] = static_cast<double>((*st)->stats().bytes) / s / 1e6;
    }
  }
  // Compaction of closed hours: the same files (4 flushes per hour partition) merged by copying row
  // groups vs re-encoded through DuckDB (what compaction did before).
  for (const char* how : {"duckdb", "merge"}) {
    Dictionaries d;
    for (uint32_t i = 0; i < sensors.size(); i++) d.sensors.Intern(sensors.Name(i));
    d.models.Intern("baseline-v1");
    StoreOptions so;
    so.data_dir = b.tmp + "/compact-" + how;
    so.max_rows = n / 4;
    so.compact_merge_min_rows = std::string(how) == "merge" ? 0 : SIZE_MAX;
    auto st = ParquetStore::Open(so, &d.sensors, &d.types, &d.models);
    Check(st.status(), "bench store");
    for (auto& o : outs) Check((*st)->Append(o));
    Check((*st)->Flush());
    std::vector<std::string> dirs;
    for (auto& e : fs::recursive_directory_iterator(so.data_dir + "/sensor_readings"))
      if (e.is_directory() && e.path().filename().string().starts_with("hour=")) dirs.push_back(e.path().string());
    t0 = MonoMicros();
    for (auto& dir : dirs) Check((*st)->CompactDir(dir));
    double s = Secs(t0);
    const bool merge = std::string(how) == "merge";
    b.Row(merge ? "compaction: merge row groups (no re-encoding)" : "compaction: re-encode through DuckDB",
          static_cast<double>((*st)->stats().rows) / s, "rows/s",
          merge ? "compaction_merge_rows_per_s" : "compaction_duckdb_rows_per_s");
    fs::remove_all(so.data_dir);
  }
  // LSTM-AE forward pass (hand-written, batched), window 32 hidden 32.
  {
    ml::LstmAeWeights w = ml::TorchInitWeights(32, 32, 1);
    ml::LstmAeForward fwd(w);
    const size_t nw = b.quick ? 50000 : 300000, bs = 1024;
    std::vector<float> x(bs * 32), ew(bs), el(bs);
    std::mt19937 g(1);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(g);
    for (int threads : {1, 2}) {
      t0 = MonoMicros();
      for (size_t done = 0; done < nw; done += bs) fwd.Errors(x.data(), bs, ew.data(), el.data(), threads);
      double wps = static_cast<double>(nw) / Secs(t0);
      b.Row("LSTM-AE windows, W=32 H=32, batch 1024, " + std::to_string(threads) + " thread(s)", wps, "windows/s",
            threads == 1 ? "lstm_windows_per_s_1t" : "lstm_windows_per_s");
      if (threads == 2) b.Row("LSTM-AE compute", wps * w.FlopsPerWindow() / 1e9, "GFLOP/s", "lstm_gflops");
    }
    b.j["lstm_flops_per_window"] = w.FlopsPerWindow();
  }
}

// Runs the embedded pipeline in-process over a simulated fleet.
struct E2E {
  double events_per_s = 0, p50 = 0, p99 = 0, p999 = 0;
  int64_t sent = 0, stored = 0, dead = 0;
};

E2E RunE2E(Bench& b, std::shared_ptr<const Detector> det, uint32_t sensors, int64_t events, double rate,
           double seconds) {
  SimSourceOptions so;
  so.sim = Sim(sensors);
  if (rate > 0) {
    so.realtime = true;
    so.sim.interval_s = sensors / rate;
    so.sim.start_us = RealClock::Get()->NowMicros();
    so.max_steps = static_cast<int64_t>(seconds / so.sim.interval_s);
  } else {
    so.max_events = events;
  }
  SimSource src(so, RealClock::Get());
  PipelineOptions po;
  po.store.data_dir = b.tmp + "/e2e";
  po.progress_interval_s = 0;
  fs::remove_all(po.store.data_dir);
  Pipeline p(&src, std::move(det), po, RealClock::Get());
  std::atomic<bool> stop{false};
  Check(p.Run(stop), "bench pipeline");
  E2E r;
  auto& m = p.metrics();
  r.sent = m.sent.load();
  r.stored = static_cast<int64_t>(p.store_stats().rows);
  r.dead = static_cast<int64_t>(p.store_stats().dead);
  r.events_per_s = static_cast<double>(r.sent) / p.elapsed_s();
  r.p50 = m.e2e_seconds.Quantile(0.5);
  r.p99 = m.e2e_seconds.Quantile(0.99);
  r.p999 = m.e2e_seconds.Quantile(0.999);
  if (r.stored + r.dead != r.sent) Fail("bench: stored + dead != sent");
  return r;
}

std::shared_ptr<const Detector> SyntheticLstm(uint32_t sensors, int threads) {
  auto m = std::make_shared<ml::Model>();
  m->version = "bench";
  m->weights = ml::TorchInitWeights(32, 32, 1);
  for (uint32_t i = 0; i < sensors; i++) {
    m->scaler.names.push_back(FleetSimulator::SensorName(i));
    m->scaler.mean.push_back(25);
    m->scaler.std.push_back(5);
  }
  m->scaler.Reindex();
  m->thresholds.win.assign(sensors, 1.0f);
  m->thresholds.last.assign(sensors, 1.0f);
  return std::make_shared<LstmDetector>(m, LstmMode::kLstm, threads);
}

void EndToEnd(Bench& b) {
  const int64_t events = b.quick ? 1000000 : 10000000;
  E2E e = RunE2E(b, std::make_shared<BaselineDetector>(), 1000, events, 0, 0);
  b.Row("end to end, embedded, baseline, 1k sensors, --rate max", e.events_per_s, "events/s",
        "e2e_baseline_events_per_s");
  // LSTM inference split over 2 threads (the detector's worker pool; same scores as 1 thread).
  // 100 sensors x 3,000 readings (quick): a sensor's first 31 readings have no full window, so 99 %
  // of the readings are scored (with 1,000 sensors x 300 it was 90 %, flattering the figure).
  E2E l = RunE2E(b, SyntheticLstm(100, 2), 100, b.quick ? 300000 : 3000000, 0, 0);
  b.Row("end to end, embedded, LSTM-AE every reading, --rate max", l.events_per_s, "events/s", "e2e_lstm_events_per_s");
  if (!b.quick) {
    E2E l1 = RunE2E(b, SyntheticLstm(100, 1), 100, 3000000, 0, 0);
    b.Row("end to end, embedded, LSTM-AE, 1 inference thread", l1.events_per_s, "events/s", "e2e_lstm_events_per_s_1t");
  }
  std::vector<double> rates = b.quick ? std::vector<double>{10000, 100000} : std::vector<double>{10000, 100000, 500000};
  for (double rate : rates) {
    E2E r = RunE2E(b, std::make_shared<BaselineDetector>(), 10000, 0, rate, b.quick ? 4 : 15);
    std::string k = std::to_string(static_cast<int>(rate / 1000)) + "k";
    b.Row("latency stored-event at " + k + " events/s: p50", r.p50, "s", "p50_latency_s_at_" + k);
    b.Row("latency stored-event at " + k + " events/s: p99", r.p99, "s", "p99_latency_s_at_" + k);
    b.Row("latency stored-event at " + k + " events/s: p99.9", r.p999, "s", "p999_latency_s_at_" + k);
  }
}

// Peak RSS and scaling need fresh processes: run the CLI as a child.
nlohmann::json Child(const std::string& args) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) Fail("bench: cannot find own binary");
  self[n] = 0;
  std::string cmd = std::string(self) + " " + args + " --quiet --http off --no-checkpoint --summary-json - 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t k;
  while ((k = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, k);
  if (pclose(p) != 0) Fail("bench: child failed: " + cmd);
  return nlohmann::json::parse(out);
}

void MemoryAndScaling(Bench& b) {
  std::vector<uint32_t> fleets =
      b.quick ? std::vector<uint32_t>{1000, 100000} : std::vector<uint32_t>{1000, 100000, 1000000};
  for (uint32_t s : fleets) {
    int64_t events = std::max<int64_t>(2LL * s, b.quick ? 300000 : 2000000);
    auto j = Child("run --sensors " + std::to_string(s) + " --events " + std::to_string(events) +
                   " --rate max --data-dir " + b.tmp + "/mem");
    std::string k = s >= 1000000 ? std::to_string(s / 1000000) + "M" : std::to_string(s / 1000) + "k";
    b.Row("peak RSS, " + k + " sensors, baseline", j["peak_rss_mb"].get<double>(), "MB",
          "peak_rss_mb_" + k + "_sensors");
    fs::remove_all(b.tmp + "/mem");
  }
  const std::string ev = b.quick ? "1000000" : "5000000";
  auto one = Child("run --sensors 1000 --events " + ev + " --rate max --data-dir " + b.tmp + "/one --cpus 0");
  auto two = Child("run --sensors 1000 --events " + ev + " --rate max --data-dir " + b.tmp + "/two");
  b.Row("scaling: events/s on 1 core", one["events_per_s"].get<double>(), "events/s", "events_per_s_1_core");
  b.Row("scaling: events/s on 2 cores", two["events_per_s"].get<double>(), "events/s", "events_per_s_2_cores");
  fs::remove_all(b.tmp + "/one");
  fs::remove_all(b.tmp + "/two");
}

void Query(Bench& b) {
  // A day of data for a small fleet, then a typical dashboard aggregate over it.
  const uint32_t sensors = b.quick ? 20 : 200;
  Child("run --sensors " + std::to_string(sensors) + " --duration 1d --rate max --start 2024-11-24 --data-dir " +
        b.tmp + "/day");
  auto db = Duck::Open("", 0);
  Check(db.status());
  Check(CreateDataViews(**db, b.tmp + "/day"));
  int64_t t0 = MonoMicros();
  auto t = (*db)->Query(
      "SELECT sensor_id, date_trunc('hour', timestamp) AS h, avg(value), max(anomaly_score), "
      "count(*) FILTER (WHERE is_anomaly_predicted) FROM sensor_readings GROUP BY ALL");
  double s = Secs(t0);
  Check(t.status());
  double rows = static_cast<double>(sensors) * 86400;
  b.Row("query a day (" + std::to_string(sensors) + " sensors): hourly aggregate", s, "s", "query_day_s");
  b.Row("query a day: scan rate", rows / s, "rows/s", "query_rows_per_s");
  fs::remove_all(b.tmp + "/day");
}

}  // namespace

// Record shapes (issue 16), side by side on the same readings: the original wire record (fast path),
// mapped JSON (format json, other member names, ms timestamps), line protocol (one field a line) and
// flat device JSON (4 quantities a record). Rounds alternate the formats; the median of each is kept.
void Formats(Bench& b) {
  const size_t n = b.quick ? 400000 : 2000000, batch = 8192;
  FleetSimulator sim(Sim(1000));
  std::vector<SimReading> rs(n);
  for (auto& r : rs) r = sim.Next();
  struct Shape {
    const char* name;
    const char* key;
    InputFormat format;
    std::vector<RawBatch> raws;
    std::vector<double> rates;
  };
  std::vector<Shape> shapes;
  shapes.push_back({"original wire record (fast path)", "original", InputFormat::kOriginal, {}, {}});
  shapes.push_back({"mapped JSON (JSON Pointers, ms times)", "mapped_json", InputFormat::kJson, {}, {}});
  shapes.push_back({"InfluxDB line protocol", "line_protocol", InputFormat::kInflux, {}, {}});
  shapes.push_back({"flat device JSON (4 quantities/record)", "flat_device", InputFormat::kFlat, {}, {}});
  char buf[64];
  for (size_t i = 0; i < n; i += batch) {
    RawBatch a, m, l;
    for (size_t k = i; k < std::min(n, i + batch); k++) {
      const SimReading& r = rs[k];
      sim.Encode(r, a);
      std::string v(buf, ToCharsMilli(buf, buf + sizeof buf, r.value));
      const int64_t ms = r.ts_us / 1000;
      m.Add("{\"device\": {\"id\": \"sensor_" + std::to_string(r.sensor) + "\"}, \"time_ms\": " + std::to_string(ms) +
            ", \"reading\": {\"v\": " + v + "}}");
      l.Add("sensor,id=sensor_" + std::to_string(r.sensor) + " value=" + v + " " + std::to_string(r.ts_us * 1000));
    }
    a.Seal(), m.Seal(), l.Seal();
    shapes[0].raws.push_back(std::move(a));
    shapes[1].raws.push_back(std::move(m));
    shapes[2].raws.push_back(std::move(l));
  }
  for (size_t i = 0; i < n; i += batch * 4) {  // 4 channels a device: groups of 4 consecutive readings
    RawBatch f;
    for (size_t k = i; k + 4 <= std::min(n, i + batch * 4); k += 4) {
      std::string s = "{\"device\": \"dev_" + std::to_string(rs[k].sensor / 4) +
                      "\", \"ts\": " + std::to_string(rs[k].ts_us / 1000);
      for (size_t c = 0; c < 4; c++)
        s += ", \"q" + std::to_string(c) +
             "\": " + std::string(buf, ToCharsMilli(buf, buf + sizeof buf, rs[k + c].value));
      f.Add(s + "}");
    }
    f.Seal();
    shapes[3].raws.push_back(std::move(f));
  }
  const int rounds = b.quick ? 3 : 5;
  for (int round = 0; round < rounds; round++) {
    for (auto& sh : shapes) {
      Interner sensors(1 << 20), types(256);
      Parser p(&sensors, &types);
      InputMapping im;
      im.format = sh.format;
      if (sh.format == InputFormat::kJson) im.id = "/device/id", im.time = "/time_ms", im.value = "/reading/v";
      Check(p.SetMapping(im), "bench mapping");
      ProcessedBatch out;
      size_t readings = 0;
      int64_t t0 = MonoMicros();
      for (auto& r : sh.raws) {
        out.readings.Clear();
        out.dead.Clear();
        p.Parse(r, out);
        readings += out.readings.size();
      }
      sh.rates.push_back(static_cast<double>(readings) / Secs(t0));
      if (readings != n) std::fprintf(stderr, "bench formats: %s gave %zu readings of %zu\n", sh.name, readings, n);
    }
  }
  double base = 0;
  for (auto& sh : shapes) {
    std::sort(sh.rates.begin(), sh.rates.end());
    const double med = sh.rates[sh.rates.size() / 2];
    if (base == 0) base = med;
    b.Row(std::string("parse ") + sh.name, med, "readings/s", std::string("format_") + sh.key + "_readings_per_s");
    b.j[std::string("format_") + sh.key + "_vs_original"] = med / base;
  }
  std::fprintf(stderr, "  (median of %d alternating rounds; ratios to the original record in the JSON report)\n",
               rounds);
}

void AddBench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Benchmark every stage, the pipeline end to end, memory and scaling");
  auto json = std::make_shared<std::string>();
  auto quick = std::make_shared<bool>(false);
  auto only = std::make_shared<std::string>("all");
  cmd->add_option("--json", *json, "Write the report as JSON to this file ('-' = stdout)");
  cmd->add_flag("--quick", *quick, "Smaller runs (under a minute), for CI smoke tests");
  auto brokers =
      std::make_shared<std::string>(std::getenv("IOTPIPE_KAFKA_BROKERS") ? std::getenv("IOTPIPE_KAFKA_BROKERS") : "");
  cmd->add_option("--only", *only, "Run one group")
      ->check(CLI::IsMember({"all", "stages", "formats", "detectors", "e2e", "memory", "query", "kafka"}));
  cmd->add_option("--brokers", *brokers,
                  "Kafka broker for the kafka group (default $IOTPIPE_KAFKA_BROKERS; none: skipped)");
  cmd->callback([json, quick, only, brokers] {
    Bench b;
    b.quick = *quick;
    b.tmp = (fs::temp_directory_path() / ("iotpipe_bench_" + std::to_string(getpid()))).string();
    fs::create_directories(b.tmp);
    struct utsname u {};
    uname(&u);
    b.j["machine"] = {{"cpu", CpuModel()}, {"cores", std::thread::hardware_concurrency()}, {"kernel", u.release}};
    b.j["version"] = IOTPIPE_VERSION;
    b.j["quick"] = b.quick;
    int64_t t0 = MonoMicros();
    std::fprintf(stderr, "iotpipe bench%s on %s (%u cores)\n", b.quick ? " --quick" : "", CpuModel().c_str(),
                 std::thread::hardware_concurrency());
    if (*only == "all" || *only == "stages") Stages(b);
    if (*only == "all" || *only == "formats") Formats(b);
    if (*only == "all" || *only == "detectors") Detectors(b);
    if (*only == "all" || *only == "e2e") EndToEnd(b);
    if (*only == "all" || *only == "memory") MemoryAndScaling(b);
    if (*only == "all" || *only == "query") Query(b);
    if (*only == "kafka" || (*only == "all" && !b.quick))  // --quick (the ctest smoke run) leaves the broker alone
      KafkaBench(
          *brokers, b.quick ? 300000 : 2000000, b.tmp,
          [&b](const std::string& w, double v, const std::string& u, const std::string& k) { b.Row(w, v, u, k); }, b.j);
    b.j["bench_seconds"] = Secs(t0);
    fs::remove_all(b.tmp);
    if (!json->empty()) WriteJson(*json, b.j.dump(2));
    Exit(0);
  });
}

}  // namespace iotpipe::cli
