// The detector checkpoint format, one codec for every reader and writer of it (the processor's
// checkpoint files and the per-partition state files of the offset ledger).
//
// Layout: four header lines, then the payload:
//   "IOTPCKP 3"                      magic and format version (2, without name and version in the sum, is read)
//   <detector name>                  detectors with one name share a state layout
//   <detector version>
//   "<stride> <count> <fnv64 hex>"   state bytes per sensor, sensors, FNV-1a 64 of "name\nversion\n" + payload
//   per sensor: u32 name length (host order), name bytes, `stride` state bytes.
// Invariant: Parse(Format(x)) == x; Parse refuses anything else (foreign, truncated, corrupt).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/env.h"
#include "core/status.h"

namespace iotpipe {

struct CheckpointView {
  std::string_view name, version;  // of the detector that wrote it
  size_t stride = 0;
  std::vector<std::pair<std::string_view, std::string_view>> entries;  // sensor name, state bytes
};

// Appends one sensor's entry to a payload.
void AppendCheckpointEntry(std::string* payload, std::string_view sensor, const void* state, size_t stride);
// The checkpoint bytes for a payload of `count` entries.
std::string FormatCheckpoint(std::string_view name, std::string_view version, size_t stride, const std::string& payload,
                             uint64_t count);
// Parses and validates (magic, format, header, checksum, sizes). `what` names the bytes in errors
// (e.g. "checkpoint <path>"). Views point into `bytes`.
Status ParseCheckpoint(std::string_view bytes, const std::string& what, CheckpointView* out);
// Reads a checkpoint file, refusing (Corruption) one larger than its header allows before reading it
// all: a huge or padded file costs no memory (issue 14: a 4 GB file cost 8.4 GB before it was refused).
Result<std::string> ReadCheckpointFile(Env* env, const std::string& path, const std::string& what);

}  // namespace iotpipe
