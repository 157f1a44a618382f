// Append-only string interner with stable ids. One writer (the parser) appends; any thread may
// look names up for ids it has been handed, without locks (storage never moves).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace iotpipe {

class Interner {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  explicit Interner(uint32_t capacity) : capacity_(capacity), chunks_((capacity + kChunk - 1) / kChunk) {}

  // Returns the id of s, adding it if new; kNone when full.
  uint32_t Intern(std::string_view s) {
    auto it = map_.find(s);
    if (it != map_.end()) return it->second;
    std::lock_guard<std::mutex> g(mu_);
    uint32_t id = size_.load(std::memory_order_relaxed);
    if (id >= capacity_) return kNone;
    auto& chunk = chunks_[id / kChunk];
    if (!chunk) chunk = std::make_unique<std::string[]>(kChunk);
    chunk[id % kChunk] = std::string(s);
    map_.emplace(std::string_view(chunk[id % kChunk]), id);
    size_.store(id + 1, std::memory_order_release);
    return id;
  }
  // Lookup without insertion (writer thread only, like Intern).
  uint32_t Find(std::string_view s) const {
    auto it = map_.find(s);
    return it == map_.end() ? kNone : it->second;
  }
  const std::string& Name(uint32_t id) const { return chunks_[id / kChunk][id % kChunk]; }
  uint32_t size() const { return size_.load(std::memory_order_acquire); }
  uint32_t capacity() const { return capacity_; }

 private:
  static constexpr uint32_t kChunk = 1 << 14;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  uint32_t capacity_;
  std::vector<std::unique_ptr<std::string[]>> chunks_;
  std::unordered_map<std::string_view, uint32_t, Hash, std::equal_to<>> map_;
  std::atomic<uint32_t> size_{0};
  std::mutex mu_;
};

}  // namespace iotpipe
