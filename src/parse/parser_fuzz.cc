// libFuzzer target for the wire-record parser and the declared input mappings (parse/mapping.h):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc src/parse/parser_fuzz.cc \
//     src/parse/parser.cc src/parse/known_layout.cc src/parse/mapping.cc src/parse/plain_scan.cc \
//     src/parse/timestamp.cc \
//     -lsimdjson -o parser_fuzz && ./parser_fuzz -max_total_time=60
// Every input goes through the original format and through each mapped format (json, telegraf,
// line protocol, flat device JSON, CSV after a fixed header).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parse/mapping.h"
#include "parse/parser.h"

namespace {

struct Mapped {
  iotpipe::Interner sensors{1 << 16}, types{256}, assets{1 << 12};
  iotpipe::ManualClock clock{1764770000000000};
  std::unique_ptr<iotpipe::Parser> parser;
  explicit Mapped(iotpipe::InputMapping m) {
    parser = std::make_unique<iotpipe::Parser>(&sensors, &types);
    parser->SetAssets(&assets);
    parser->SetClock(&clock);
    if (!parser->SetMapping(m).ok()) __builtin_trap();
  }
};

iotpipe::InputMapping Of(iotpipe::InputFormat f, bool arrival = false) {
  iotpipe::InputMapping m;
  m.format = f;
  m.arrival_time = arrival;
  return m;
}

void Run(iotpipe::Parser& p, std::string_view rec, bool one_reading) {
  iotpipe::RawBatch raw;
  raw.Add(rec);
  raw.Seal();
  iotpipe::ProcessedBatch out;
  p.Parse(raw, out);
  if (out.dead.size() > 1) __builtin_trap();
  if (out.dead.size() == 1 && out.readings.size() != 0) __builtin_trap();
  if (one_reading && out.readings.size() + out.dead.size() != 1) __builtin_trap();
  for (size_t i = 0; i < out.readings.size(); i++)
    if (out.readings.gt[i] > iotpipe::ReadingBatch::kNoLabel) __builtin_trap();
}

// The json mapping's fast path (parse/plain_scan.h) against its DOM path: the same readings or the same
// rejection and detail, for the default paths and for nested ones.
void SameOnBothPaths(std::string_view rec) {
  static auto decoders = [] {
    std::vector<std::unique_ptr<iotpipe::MappedDecoder>> d;
    for (bool nested : {false, true}) {
      iotpipe::InputMapping m = Of(iotpipe::InputFormat::kJson);
      if (nested) m.id = "/device/id", m.time = "/t", m.value = "/r/v";
      auto r = iotpipe::ResolveMapping(m);
      if (!r.ok()) __builtin_trap();
      for (bool fast : {true, false}) {
        d.push_back(std::make_unique<iotpipe::MappedDecoder>(r.value(), iotpipe::ParserOptions{}));
        d.back()->UseFastPath(fast);
      }
    }
    return d;
  }();
  std::string padded(rec);
  padded.append(64, '\0');
  const std::string_view r(padded.data(), rec.size());
  for (size_t i = 0; i < decoders.size(); i += 2) {
    size_t n1 = 0, n2 = 0;
    std::string d1, d2;
    if (decoders[i]->Decode(r, 1764770000000000, &n1, &d1) != decoders[i + 1]->Decode(r, 1764770000000000, &n2, &d2) ||
        n1 != n2 || d1 != d2)
      __builtin_trap();
    for (size_t k = 0; k < n1; k++) {
      const auto &a = decoders[i]->out()[k], &b = decoders[i + 1]->out()[k];
      if (a.id != b.id || a.asset != b.asset || a.ts_us != b.ts_us || a.label != b.label ||
          std::memcmp(&a.value, &b.value, sizeof a.value) != 0)
        __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static iotpipe::Interner sensors(1 << 16), types(256);
  static iotpipe::Parser parser(&sensors, &types);
  static Mapped json(Of(iotpipe::InputFormat::kJson)), telegraf(Of(iotpipe::InputFormat::kTelegraf)),
      influx(Of(iotpipe::InputFormat::kInflux, true)), flat(Of(iotpipe::InputFormat::kFlat)),
      csv(Of(iotpipe::InputFormat::kCsv, true));
  static bool csv_header = [] {
    Run(*csv.parser, "sensor_id,timestamp,value,is_anomaly_ground_truth", false);
    return true;
  }();
  (void)csv_header;
  const std::string_view rec(reinterpret_cast<const char*>(data), size);
  Run(parser, rec, true);
  Run(*json.parser, rec, true);
  Run(*telegraf.parser, rec, false);
  Run(*influx.parser, rec, false);
  Run(*flat.parser, rec, false);
  Run(*csv.parser, rec, true);
  SameOnBothPaths(rec);
  return 0;
}
