// iotpipe simulate: the simulator alone, writing JSON lines (stdout or a file) for piping and replay.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cli/common.h"
#include "cli/kafka_cli.h"

namespace iotpipe::cli {

void AddSimulate(CLI::App& app) {
  auto* cmd = app.add_subcommand("simulate", "Simulate a sensor fleet and write its records");
  auto sim = std::make_shared<SimArgs>();
  auto output = std::make_shared<std::string>("stdout");
  auto path = std::make_shared<std::string>();
  auto ka = std::make_shared<KafkaArgs>();
  auto device_fields = std::make_shared<uint32_t>(0);
  sim->Add(cmd);
  cmd->add_option("--device-fields", *device_fields,
                  "Multi-field devices: K channels per asset, written as flat device JSON (one record per asset "
                  "and time: {\"device\", \"ts\" in ms, \"q0\" … \"q<K-1>\"}); read with process --format flat. "
                  "Needs --rate max and --output stdout or jsonl");
  cmd->add_option("--output", *output, "Where records go: stdout, jsonl (a file, see --path) or kafka")
      ->check(CLI::IsMember({"stdout", "jsonl", "kafka"}));
  ka->AddProducer(cmd);
  cmd->add_option("--path", *path, "Output file for --output jsonl");
  cmd->callback([sim, output, path, ka, device_fields] {
    SimSourceOptions so = sim->Resolve(RealClock::Get());
    if (so.max_events < 0 && so.max_steps < 0 && !so.realtime) Fail("--rate max needs --events or --duration", 2);
    if (*device_fields > 0) {
      if (so.realtime || *output == "kafka") Fail("--device-fields needs --rate max and --output stdout or jsonl", 2);
      if (so.max_events < 0) Fail("--device-fields needs --events (readings)", 2);
      so.sim.asset_size = *device_fields;
      so.sim.sensors = std::max<uint32_t>(so.sim.sensors, *device_fields) / *device_fields * *device_fields;
      FILE* out = stdout;
      std::string tmp;
      if (*output == "jsonl") {
        if (path->empty()) Fail("--output jsonl needs --path FILE", 2);
        tmp = *path + ".tmp";
        out = std::fopen(tmp.c_str(), "wb");
        if (!out) Fail("cannot write " + tmp);
      }
      FleetSimulator fs(so.sim);
      std::vector<std::vector<SimReading>> pending(so.sim.sensors / *device_fields);
      RawBatch b;
      int64_t readings = 0, records = 0;
      while (readings < so.max_events) {
        SimReading r = fs.Next();
        auto& g = pending[r.sensor / *device_fields];
        if (!g.empty() && g[0].ts_us != r.ts_us) g.clear();  // a device's channels are read together
        g.push_back(r);
        readings++;
        if (g.size() < *device_fields) continue;
        b.Clear();
        fs.EncodeDevice(g, b);
        g.clear();
        std::fwrite(b.data.data(), 1, b.data.size(), out);
        std::fputc('\n', out);
        records++;
      }
      if (out != stdout) {
        std::fflush(out);
        fsync(fileno(out));
        std::fclose(out);
        if (std::rename(tmp.c_str(), path->c_str()) != 0) Fail("cannot rename " + tmp);
      } else {
        std::fflush(stdout);
      }
      std::fprintf(stderr, "[iotpipe] simulated %lld readings as %lld device records of %u fields\n",
                   static_cast<long long>(readings), static_cast<long long>(records), *device_fields);
      std::exit(0);
    }
    if (*output == "kafka") {
      InstallSignalHandlers();
      ProduceStats st;
      Check(ProduceSimToKafka(so, *ka, g_stop, &st, true), "kafka");
      std::fprintf(stderr,
                   "[iotpipe] produced %lld records (%lld malformed) to %s on %s in %.2f s = %s rec/s; "
                   "delivered %lld, failed %lld%s%s\n",
                   static_cast<long long>(st.produced), static_cast<long long>(st.malformed), ka->topic.c_str(),
                   ka->brokers.c_str(), st.elapsed_s,
                   FormatCount(st.elapsed_s > 0 ? static_cast<double>(st.produced) / st.elapsed_s : 0).c_str(),
                   static_cast<long long>(st.delivered), static_cast<long long>(st.failed), st.failed ? ": " : "",
                   st.first_error.c_str());
      Exit(st.failed || st.delivered != st.produced ? 1 : 0);
    }
    FILE* out = stdout;
    std::string tmp;
    if (*output == "jsonl") {
      if (path->empty()) Fail("--output jsonl needs --path FILE", 2);
      tmp = *path + ".tmp";
      out = std::fopen(tmp.c_str(), "wb");
      if (!out) Fail("cannot write " + tmp);
    }
    InstallSignalHandlers();
    SimSource src(so, RealClock::Get());
    RawBatch b;
    while (!g_stop.load()) {
      PollResult r = src.Poll(b, 4096);
      if (r == PollResult::kEnd) break;
      for (size_t i = 0; i < b.size(); i++) {
        auto rec = b.record(i);
        std::fwrite(rec.data(), 1, rec.size(), out);
        std::fputc('\n', out);
      }
      if (so.realtime) std::fflush(out);
      if (std::ferror(out)) break;  // e.g. the reader of a pipe went away
    }
    if (out != stdout) {
      std::fflush(out);
      fsync(fileno(out));
      std::fclose(out);
      if (std::rename(tmp.c_str(), path->c_str()) != 0) Fail("cannot rename " + tmp);
    } else {
      std::fflush(stdout);
    }
    std::fprintf(stderr, "[iotpipe] simulated %lld records (%lld malformed)\n", static_cast<long long>(src.sent()),
                 static_cast<long long>(src.malformed()));
    Exit(0);
  });
}

}  // namespace iotpipe::cli
