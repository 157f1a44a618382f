// libFuzzer target for the time and duration parsers (command-line and config input):
// any bytes give a value or a clear error, never a crash; a parsed time formats and re-parses
// to the same microsecond.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/timeutil.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  auto t = iotpipe::ParseTimeMicros(s);
  if (t.ok()) {
    auto again = iotpipe::ParseTimeMicros(iotpipe::FormatIsoMicros(t.value()));
    if (!again.ok() || again.value() != t.value()) __builtin_trap();
  }
  auto d = iotpipe::ParseDurationMicros(s);
  (void)d;
  return 0;
}
