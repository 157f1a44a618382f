#include "pipeline/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "core/checksum.h"

namespace iotpipe {

namespace {
constexpr const char* kCkptMagic = "IOTPCKP";
// 3: the checksum covers the name and version lines too (in 2 they were outside it: "v1" edited to
// "v9" was accepted, issue 14). 2 is still read.
constexpr int kCkptFormat = 3;

uint64_t Sum(int format, std::string_view name, std::string_view version, std::string_view payload) {
  if (format == 2) return Fnv1a64(payload);
  uint64_t h = Fnv1a64(name);
  h = Fnv1a64("\n", h);
  h = Fnv1a64(version, h);
  h = Fnv1a64("\n", h);
  return Fnv1a64(payload, h);
}

// The largest file a header of `count` entries of `stride` bytes allows (names are at most 4096 bytes).
uint64_t MaxBytes(size_t header, uint64_t count, size_t stride) {
  return header + count * (4 + 4096 + static_cast<uint64_t>(stride));
}
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
                static_cast<unsigned long long>(Sum(kCkptFormat, name, version, payload)));
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
  const std::string legacy = std::string(kCkptMagic) + " 2";
  if (magic != want && magic != legacy)
    return Status::Error(what + " has format '" + std::string(magic) + "', expected '" + want + "'");
  unsigned long long n = 0, sum = 0;
  if (std::sscanf(std::string(dims).c_str(), "%zu %llu %llx", &v->stride, &n, &sum) != 3)
    return Status::Error(what + " has a malformed header");
  if (Sum(magic == legacy ? 2 : kCkptFormat, v->name, v->version, d.substr(pos)) != sum)
    return Status::Error(what + " is corrupt (checksum mismatch)");
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

Result<std::string> ReadCheckpointFile(Env* env, const std::string& path, const std::string& what) {
  auto size = env->FileSize(path);
  if (!size.ok()) return size.status();
  if (size.value() > (1u << 20)) {  // big enough to matter: check it against its header before reading it all
    std::string head(16384, '\0');
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::IOError("cannot open " + path);
    const bool ok = PreadAll(fd, head.data(), head.size(), 0);
    ::close(fd);
    if (!ok) return Status::Corruption(what + " is not an iotpipe checkpoint");
    size_t pos = 0, lines = 0;
    while (lines < 4 && (pos = head.find('\n', pos)) != std::string::npos) pos++, lines++;
    unsigned long long n = 0, sum = 0;
    size_t stride = 0;
    const size_t dims = lines == 4 ? head.rfind('\n', pos - 2) + 1 : 0;
    if (lines < 4 || std::sscanf(head.c_str() + dims, "%zu %llu %llx", &stride, &n, &sum) != 3)
      return Status::Corruption(what + " is not an iotpipe checkpoint");
    if (size.value() > MaxBytes(pos, n, stride))
      return Status::Corruption(what + " is " + std::to_string(size.value()) + " bytes, more than its header (" +
                                std::to_string(n) + " entries of " + std::to_string(stride) + " bytes) allows");
  }
  return env->ReadFile(path);
}

}  // namespace iotpipe
