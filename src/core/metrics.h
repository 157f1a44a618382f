// Counters every component keeps (Vector's component spec): records in/out/rejected, bytes,
// latency, queue depth. Lock-free to update; exported as Prometheus text by http/.
#pragma once
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace iotpipe {

// Log-scale histogram of seconds: buckets 1e-5 .. ~1e3 s, 8 per decade.
class Histogram {
 public:
  static constexpr int kBuckets = 64;
  static double UpperBound(int i) { return 1e-5 * std::pow(10.0, (i + 1) / 8.0); }
  void Observe(double seconds, uint64_t n = 1) {
    int i = seconds <= 1e-5 ? 0 : static_cast<int>(std::ceil(std::log10(seconds / 1e-5) * 8.0)) - 1;
    if (i < 0) i = 0;
    if (i >= kBuckets) i = kBuckets - 1;
    counts_[i].fetch_add(n, std::memory_order_relaxed);
    count_.fetch_add(n, std::memory_order_relaxed);
    // Sum in microseconds to keep it an integer.
    sum_us_.fetch_add(static_cast<uint64_t>(seconds * 1e6 * n), std::memory_order_relaxed);
  }
  uint64_t count() const { return count_.load(); }
  double sum() const { return static_cast<double>(sum_us_.load()) / 1e6; }
  uint64_t bucket(int i) const { return counts_[i].load(); }
  // Approximate quantile (upper bound of the bucket holding it).
  double Quantile(double q) const {
    uint64_t total = count();
    if (!total) return 0;
    uint64_t target = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total))), acc = 0;
    for (int i = 0; i < kBuckets; i++) {
      acc += bucket(i);
      if (acc >= target) return UpperBound(i);
    }
    return UpperBound(kBuckets - 1);
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> count_{0}, sum_us_{0};
};

// Consumer lag per source partition (records), as last measured; set by the sink thread, read by
// the progress line and /metrics.
class PartitionLag {
 public:
  void Set(std::map<int32_t, int64_t> lag) {
    std::lock_guard<std::mutex> l(mu_);
    lag_ = std::move(lag);
  }
  std::map<int32_t, int64_t> Get() const {
    std::lock_guard<std::mutex> l(mu_);
    return lag_;
  }

 private:
  mutable std::mutex mu_;
  std::map<int32_t, int64_t> lag_;
};

// Named figures of the source (Source::Counters: e.g. mqtt_reconnects), as last read by the sink thread.
class NamedFigures {
 public:
  void Set(std::map<std::string, int64_t> v) {
    std::lock_guard<std::mutex> l(mu_);
    v_ = std::move(v);
  }
  std::map<std::string, int64_t> Get() const {
    std::lock_guard<std::mutex> l(mu_);
    return v_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int64_t> v_;
};

struct PipelineMetrics {
  std::atomic<int64_t> sent{0};  // records the source handed out
  std::atomic<int64_t> received_bytes{0};
  std::atomic<int64_t> parsed{0};       // decoded readings
  std::atomic<int64_t> dead_letter{0};  // rejected records (dead letters buffered)
  std::atomic<int64_t> stored{0};       // readings durably written
  std::atomic<int64_t> dead_stored{0};  // dead letters durably written
  std::atomic<int64_t> files{0};
  std::atomic<int64_t> bytes_written{0};
  std::atomic<int64_t> predicted{0};  // is_anomaly_predicted
  std::atomic<int64_t> truth{0};      // is_anomaly_ground_truth
  std::atomic<int64_t> tp{0};
  std::atomic<int64_t> unlabelled{0};  // readings without a label (left out of precision/recall)
  std::atomic<int64_t> unlabelled_predicted{0};
  std::atomic<int64_t> skipped{0};   // records with no reading and no rejection (a CSV header)
  std::atomic<int64_t> expanded{0};  // readings beyond the first of multi-field records
  std::atomic<int64_t> queue_raw{0}, queue_processed{0};
  std::atomic<int64_t> lag{-1};
  PartitionLag lag_by_partition;  // per source partition (Kafka), empty otherwise
  NamedFigures source_figures;    // Source::Counters (MQTT connection, reconnects, duplicates)
  std::atomic<int64_t> sensors{0};
  std::array<std::atomic<int64_t>, 16> rejected_by_reason{};
  Histogram batch_seconds;  // processing time per batch (parse + detect)
  Histogram e2e_seconds;    // stored time - event time, per row (sampled per batch)
  Histogram flush_seconds;  // durable write time per flush
};

}  // namespace iotpipe
