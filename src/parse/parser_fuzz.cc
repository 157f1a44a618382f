// libFuzzer target for the wire-record parser:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc src/parse/parser_fuzz.cc \
//     src/parse/parser.cc src/parse/known_layout.cc -lsimdjson -o parser_fuzz && ./parser_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parse/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static iotpipe::Interner sensors(1 << 16), types(256);
  static iotpipe::Parser parser(&sensors, &types);
  iotpipe::RawBatch raw;
  raw.Add(std::string_view(reinterpret_cast<const char*>(data), size));
  raw.Seal();
  iotpipe::ProcessedBatch out;
  parser.Parse(raw, out);
  if (out.readings.size() + out.dead.size() != 1) __builtin_trap();
  return 0;
}
