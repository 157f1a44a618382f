// Append-only string interner with stable ids. One writer (the parser) appends; any thread may
// look names up for ids it has been handed, without locks (storage never moves).
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace iotpipe {

class Interner {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  explicit Interner(uint32_t capacity) : capacity_(capacity), chunks_((capacity + kChunk - 1) / kChunk) {
    slots_.assign(64, kEmpty);
  }

  // Returns the id of s, adding it if new; kNone when full.
  uint32_t Intern(std::string_view s) {
    const uint64_t h = HashBytes(s.data(), s.size());
    size_t i = h & mask();
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (;; i = (i + 1) & mask()) {
      const uint64_t slot = slots_[i];
      if (slot == kEmpty) break;
      if (static_cast<uint32_t>(slot >> 32) == tag && Name(static_cast<uint32_t>(slot)) == s)
        return static_cast<uint32_t>(slot);
    }
    std::lock_guard<std::mutex> g(mu_);
    uint32_t id = size_.load(std::memory_order_relaxed);
    if (id >= capacity_) return kNone;
    auto& chunk = chunks_[id / kChunk];
    if (!chunk) chunk = std::make_unique<std::string[]>(kChunk);
    chunk[id % kChunk] = std::string(s);
    slots_[i] = static_cast<uint64_t>(tag) << 32 | id;
    size_.store(id + 1, std::memory_order_release);
    if ((static_cast<size_t>(id) + 1) * 2 > slots_.size()) Grow();
    return id;
  }
  // Lookup without insertion (writer thread only, like Intern).
  uint32_t Find(std::string_view s) const {
    const uint64_t h = HashBytes(s.data(), s.size());
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask();; i = (i + 1) & mask()) {
      const uint64_t slot = slots_[i];
      if (slot == kEmpty) return kNone;
      if (static_cast<uint32_t>(slot >> 32) == tag && Name(static_cast<uint32_t>(slot)) == s)
        return static_cast<uint32_t>(slot);
    }
  }
  const std::string& Name(uint32_t id) const { return chunks_[id / kChunk][id % kChunk]; }
  uint32_t size() const { return size_.load(std::memory_order_acquire); }
  uint32_t capacity() const { return capacity_; }

  // 64-bit hash of short byte strings (wyhash-style multiply-fold over 8-byte loads; ids are
  // typically 8-24 bytes). Not for adversarial keys' worst case beyond linear probing's.
  static uint64_t HashBytes(const char* p, size_t n) {
    auto mix = [](uint64_t a, uint64_t b) {
      const unsigned __int128 r =
          static_cast<unsigned __int128>(a ^ 0xa0761d6478bd642full) * (b ^ 0xe7037ed1a0b428dbull);
      return static_cast<uint64_t>(r >> 64) ^ static_cast<uint64_t>(r);
    };
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n > 16) {
      uint64_t a, b;
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + 8, 8);
      h = mix(a ^ h, b);
      p += 16;
      n -= 16;
    }
    uint64_t a = 0, b = 0;
    if (n >= 8) {
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + n - 8, 8);
    } else if (n >= 4) {
      uint32_t x, y;
      std::memcpy(&x, p, 4);
      std::memcpy(&y, p + n - 4, 4);
      a = x;
      b = y;
    } else if (n > 0) {
      a = static_cast<uint64_t>(static_cast<unsigned char>(p[0])) |
          static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
          static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16;
    }
    uint64_t r = mix(a ^ h, b ^ (n * 0x9E3779B97F4A7C15ull));
    r ^= r >> 33;                // murmur3's finaliser: the fold alone leaves low bits weak when keys differ only
    r *= 0xff51afd7ed558ccdull;  // in their high bytes ("sensor_12345" read little-endian)
    r ^= r >> 33;
    return r;
  }

 private:
  static constexpr uint32_t kChunk = 1 << 14;
  static constexpr uint64_t kEmpty = ~0ull;  // never a real slot: ids are < capacity <= UINT32_MAX
  size_t mask() const { return slots_.size() - 1; }
  // Doubles the open-addressing table (load <= 1/2); the writer thread only.
  void Grow() {
    std::vector<uint64_t> old(slots_.size() * 2, kEmpty);
    old.swap(slots_);
    for (uint64_t slot : old) {
      if (slot == kEmpty) continue;
      const std::string& name = Name(static_cast<uint32_t>(slot));
      size_t i = HashBytes(name.data(), name.size()) & mask();
      while (slots_[i] != kEmpty) i = (i + 1) & mask();
      slots_[i] = slot;
    }
  }
  uint32_t capacity_;
  std::vector<std::unique_ptr<std::string[]>> chunks_;
  std::vector<uint64_t> slots_;  // (hash high 32 bits << 32) | id, linear probing
  std::atomic<uint32_t> size_{0};
  std::mutex mu_;
};

}  // namespace iotpipe
