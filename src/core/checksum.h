// FNV-1a 64: the checksum of iotpipe's checkpoint files (detector, Kafka partition and asset state).
// Detects damage (flipped or missing bytes), not tampering.
#pragma once
#include <cstdint>
#include <string_view>

namespace iotpipe {

// h: the hash so far, to hash several pieces as one (Fnv1a64(b, Fnv1a64(a)) == Fnv1a64(a + b)).
inline uint64_t Fnv1a64(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

}  // namespace iotpipe
