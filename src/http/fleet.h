// The fleet in memory, for the dashboard's fleet-first view: per sensor and per time bucket of event
// time, the highest anomaly score and the number of flagged readings, over a sliding window of the
// last `buckets` buckets; plus per-sensor totals since the start. Fed by the pipeline's sink thread
// (LiveView::OnBatch); HTTP threads read aggregates under a short lock, so the page receives a heat
// map of N rows and a ranked list, never the series of a 100k-sensor fleet.
//
// Layout: one array per bucket slot, indexed by sensor id (1 byte of score, 1 of flagged count:
// 2 bytes per sensor and bucket; 100k sensors x 120 buckets = 24 MB). The slot of bucket n is n mod
// buckets; when event time moves into a new bucket its slot is cleared once for the whole fleet.
// Readings older than the window are left out of the buckets (counted) but still count in the totals.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/dictionaries.h"

namespace iotpipe::http {

struct FleetOptions {
  int64_t bucket_us = 5'000'000;  // width of a heat-map column, in event time
  size_t buckets = 120;           // the window: 10 minutes of event time by default
  size_t max_sensors = 1 << 20;   // sensors beyond this id are left out (counted in totals only)
};

// A heat map: rows x cols cells, row-major; score in percent (0..100) of the highest score in the
// cell, flagged = flagged readings in the cell (saturating at 255 per bucket).
struct FleetHeatmap {
  int64_t t0_us = 0, bucket_us = 0;  // start of the first column, column width
  size_t cols = 0;
  std::vector<std::string> rows;     // sensor ids (top mode) or "first … last" bands (fleet mode)
  std::vector<int64_t> row_flagged;  // flagged readings of the row over the columns
  std::vector<uint8_t> score;
  std::vector<uint32_t> flagged;
};

struct FleetRank {
  std::string sensor_id;
  int64_t flagged = 0;
  float max_score = 0;
  int64_t last_flagged_us = 0;  // 0 if unknown
};

struct FleetTotals {
  int64_t sensors = 0;          // sensors seen
  int64_t readings = 0;         // readings in the window
  int64_t flagged = 0;          // flagged readings in the window
  int64_t flagged_sensors = 0;  // sensors with a flagged reading in the window
  int64_t head_us = 0;          // end of the newest bucket (event time); 0 before any reading
  int64_t late = 0;             // readings older than the window, left out of the buckets
};

class FleetView {
 public:
  explicit FleetView(const Dictionaries* dicts, FleetOptions opt = {});
  void OnBatch(const ReadingBatch& b);

  // The `top` sensors with the most flagged readings over the last `cols` buckets (ties: highest
  // score, then lowest id), with their cells; sensors without a flagged reading are not listed.
  FleetHeatmap Top(size_t cols, size_t top) const;
  // The whole fleet in `rows` bands of consecutive sensor ids: a cell holds the band's highest score.
  FleetHeatmap Bands(size_t cols, size_t rows) const;
  // The `top` groups of sensors with the most flagged readings, by "asset" (the wire asset_id) or by
  // "device" (the sensor id up to its last '/', as the alert policy's default separator): a cell holds
  // the group's highest score and its flagged readings.
  FleetHeatmap Groups(size_t cols, size_t top, const std::string& by) const;
  // Whether any reading came with an asset_id, any sensor id names a device.
  bool has_assets() const {
    std::lock_guard<std::mutex> g(mu_);
    return assets_;
  }
  bool has_devices() const {
    std::lock_guard<std::mutex> g(mu_);
    return devices_;
  }
  // Sensors ranked by flagged readings in event time [from_us, to_us] (bucket granularity: buckets
  // overlapping it); from_us == INT64_MIN means since the start (the totals).
  std::vector<FleetRank> Rank(int64_t from_us, int64_t to_us, size_t limit) const;
  FleetTotals Totals() const;  // a scan of the window (the anomaly rate); the two below are cheap
  int64_t sensors() const {
    std::lock_guard<std::mutex> g(mu_);
    return static_cast<int64_t>(seen_);
  }
  int64_t head_us() const {  // end of the newest bucket (event time); 0 before any reading
    std::lock_guard<std::mutex> g(mu_);
    return head_ == INT64_MIN ? 0 : (head_ + 1) * opt_.bucket_us;
  }
  const FleetOptions& options() const { return opt_; }

 private:
  struct Slot {
    int64_t bucket = -1;  // the bucket number held; -1 = empty
    int64_t readings = 0, flagged = 0;
    std::vector<uint8_t> score, count;  // by sensor id
  };
  struct Tally {  // one sensor's flagged readings over some buckets
    uint32_t id;
    int64_t n;
    float best;  // highest score of the buckets (of flagged readings for the totals)
    int64_t last_us;
  };
  static constexpr char kDeviceSeparator = '/';
  void Advance(int64_t bucket);  // moves the head to `bucket`, clearing the slots it passes
  // The slots of buckets [lo, hi] within the window, oldest first (null where none is held).
  std::vector<const Slot*> Slots(int64_t lo, int64_t hi) const;
  // Sensors with flagged readings in `slots` (the first is bucket first_bucket).
  std::vector<Tally> TallyOf(const std::vector<const Slot*>& slots, int64_t first_bucket) const;
  // Keeps the n leading: most flagged, then highest score, then lowest id.
  static void Lead(std::vector<Tally>* t, size_t n);
  void Grow(size_t sensors);
  // The slots of the last `cols` buckets (fewer when event time began later), oldest first (null where
  // none was held).
  std::vector<const Slot*> Window(size_t cols, int64_t* first_bucket) const;
  // An empty heat map over the window of `cols` buckets, with its slots and the first one's bucket number.
  struct Framed {
    FleetHeatmap h;
    std::vector<const Slot*> win;
    int64_t first = 0;
  };
  Framed Frame(size_t cols) const;
  // Rows of groups (group_of: sensor id -> group index or UINT32_MAX; names: by index), the `top` with
  // the most flagged readings first, or all of them in order when top >= their number.
  void FillGroups(const Framed& f, const std::vector<uint32_t>& group_of, std::vector<std::string> names, size_t top,
                  FleetHeatmap* h) const;

  const Dictionaries* dicts_;
  FleetOptions opt_;
  mutable std::mutex mu_;
  std::vector<Slot> slots_;
  int64_t head_ = INT64_MIN;  // newest bucket number
  int64_t first_ = 0;         // the first bucket number seen (the heat map starts there at the earliest)
  size_t sensors_ = 0;        // capacity of the per-sensor arrays
  size_t seen_ = 0;           // highest sensor id seen + 1
  std::vector<int64_t> total_flagged_, last_flagged_us_;
  std::vector<float> max_score_;
  std::vector<uint32_t> asset_of_;  // by sensor id: the asset it last came with (kNoAsset: none)
  bool assets_ = false, devices_ = false;
  int64_t late_ = 0;
};

}  // namespace iotpipe::http
