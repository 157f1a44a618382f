#include "pipeline/checkpoint.h"

#include <cstdio>
#include <cstring>

#include "core/checksum.h"

namespace iotpipe {

namespace {
constexpr const char* kCkptMagic = "IOTPCKP";
constexpr int kCkptFormat = 2;
}  // namespace

void AppendCheckpointEntry(std::string* payload, std::string_view sensor, const void* state, size_t stride) {
  uint32_t len = static_cast<uint32_t>(sensor.size());
  payload->append(reinterpret_cast<const char*>(&len), 4);
  payload->append(sensor);
  payload->append(static_cast<const char*>(state), stride);
}

std::string FormatCheckpoint(std::string_view name, std::string_view version, size_t stride, const std::string& payload,
                             uint64_t count) {
  char head[160];
  std::snprintf(head, sizeof head, "%zu %llu %016llx\n", stride, static_cast<unsigned long long>(count),
                static_cast<unsigned long long>(Fnv1a64(payload)));
  std::string out;
  out.reserve(payload.size() + 256);
  out.append(kCkptMagic).append(" ").append(std::to_string(kCkptFormat)).append("\n");
  out.append(name).append("\n").append(version).append("\n").append(head);
  out += payload;
  return out;
}

Status ParseCheckpoint(std::string_view d, const std::string& what, CheckpointView* v) {
  size_t pos = 0;
  auto line = [&](std::string_view* out) {
    size_t e = d.find('\n', pos);
    if (e == std::string_view::npos || e - pos > 4096) return false;
    *out = d.substr(pos, e - pos);
    pos = e + 1;
    return true;
  };
  std::string_view magic, dims;
  if (!line(&magic) || !line(&v->name) || !line(&v->version) || !line(&dims) || !magic.starts_with(kCkptMagic))
    return Status::Error(what + " is not an iotpipe checkpoint");
  const std::string want = std::string(kCkptMagic) + " " + std::to_string(kCkptFormat);
  if (magic != want) return Status::Error(what + " has format '" + std::string(magic) + "', expected '" + want + "'");
  unsigned long long n = 0, sum = 0;
  if (std::sscanf(std::string(dims).c_str(), "%zu %llu %llx", &v->stride, &n, &sum) != 3)
    return Status::Error(what + " has a malformed header");
  if (Fnv1a64(d.substr(pos)) != sum) return Status::Error(what + " is corrupt (checksum mismatch)");
  v->entries.clear();
  for (unsigned long long k = 0; k < n; k++) {
    uint32_t len;
    if (pos + 4 > d.size()) return Status::Error(what + " is truncated");
    std::memcpy(&len, d.data() + pos, 4);
    pos += 4;
    if (len > 4096 || pos + len + v->stride > d.size()) return Status::Error(what + " is truncated");
    v->entries.emplace_back(d.substr(pos, len), d.substr(pos + len, v->stride));
    pos += len + v->stride;
  }
  if (pos != d.size()) return Status::Error(what + " has trailing bytes");
  return Status::OK();
}

}  // namespace iotpipe
