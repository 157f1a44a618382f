// A fast path for records of the known wire layout.
//
// Producers (the simulator, the Python peer, most devices) write records as
//   {"sensor_id": "...", "timestamp": N, "value": N, "is_anomaly_ground_truth": B[, "anomaly_type": "..."|null]}
// ParseKnownLayout reads exactly that shape (any JSON whitespace between tokens; ASCII strings
// without escapes; JSON number grammar, at most 19 digits; finite values) in one forward scan,
// without building a simdjson document. Anything else (other field orders, extra fields, escapes,
// non-ASCII, long numbers, malformed input) returns false and the general simdjson parser decides.
// Where it returns true, the fields are what simdjson would give (numbers correctly rounded by
// std::from_chars, as simdjson rounds them); the caller still applies the same validation rules
// (sensor id length and characters, timestamp and value ranges).
#pragma once
#include <string_view>

#include "parse/parser.h"

namespace iotpipe {

// rec: one record without leading blanks or trailing blanks/newline.
bool ParseKnownLayout(std::string_view rec, ParsedRecord* out);

}  // namespace iotpipe
