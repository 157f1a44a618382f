// libFuzzer target for the wire-record parser and the declared input mappings (parse/mapping.h):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc src/parse/parser_fuzz.cc \
//     src/parse/parser.cc src/parse/known_layout.cc src/parse/mapping.cc src/parse/timestamp.cc \
//     -lsimdjson -o parser_fuzz && ./parser_fuzz -max_total_time=60
// Every input goes through the original format and through each mapped format (json, telegraf,
// line protocol, flat device JSON, CSV after a fixed header).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

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
  return 0;
}
