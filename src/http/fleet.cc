#include "http/fleet.h"

#include <algorithm>
#include <climits>
#include <cmath>

namespace iotpipe::http {

namespace {

int64_t BucketOf(int64_t ts_us, int64_t width) { return ts_us >= 0 ? ts_us / width : -((-ts_us + width - 1) / width); }

uint8_t Quantize(float score) {
  if (!(score > 0)) return 0;  // NaN and negatives as 0
  return static_cast<uint8_t>(std::lround(std::min(score, 1.0f) * 100.0f));
}

}  // namespace

FleetView::FleetView(const Dictionaries* dicts, FleetOptions opt) : dicts_(dicts), opt_(opt) {
  opt_.buckets = std::max<size_t>(opt_.buckets, 1);
  opt_.bucket_us = std::max<int64_t>(opt_.bucket_us, 1);
  slots_.resize(opt_.buckets);
}

void FleetView::Grow(size_t sensors) {
  size_t n = std::max(sensors, sensors_ * 2);
  n = std::min(n, opt_.max_sensors);
  for (auto& s : slots_) {
    s.score.resize(n, 0);
    s.count.resize(n, 0);
  }
  total_flagged_.resize(n, 0);
  last_flagged_us_.resize(n, 0);
  max_score_.resize(n, 0);
  sensors_ = n;
}

void FleetView::Advance(int64_t bucket) {
  const int64_t nb = static_cast<int64_t>(opt_.buckets);
  if (head_ == INT64_MIN) first_ = bucket;
  const int64_t from = head_ == INT64_MIN ? bucket : std::max(head_ + 1, bucket - nb + 1);
  for (int64_t k = from; k <= bucket; k++) {
    Slot& s = slots_[static_cast<size_t>(((k % nb) + nb) % nb)];
    s.bucket = k;
    s.readings = s.flagged = 0;
    std::fill(s.score.begin(), s.score.end(), 0);
    std::fill(s.count.begin(), s.count.end(), 0);
  }
  head_ = bucket;
}

void FleetView::OnBatch(const ReadingBatch& b) {
  const int64_t nb = static_cast<int64_t>(opt_.buckets);
  std::lock_guard<std::mutex> g(mu_);
  for (size_t i = 0; i < b.size(); i++) {
    const uint32_t id = b.sensor[i];
    if (id >= opt_.max_sensors) continue;
    if (id >= sensors_) Grow(static_cast<size_t>(id) + 1);
    seen_ = std::max<size_t>(seen_, static_cast<size_t>(id) + 1);
    const bool flag = b.predicted[i] != 0;
    if (flag) {
      total_flagged_[id]++;
      last_flagged_us_[id] = std::max(last_flagged_us_[id], b.ts_us[i]);
      max_score_[id] = std::max(max_score_[id], b.score[i]);
    }
    const int64_t bucket = BucketOf(b.ts_us[i], opt_.bucket_us);
    if (head_ == INT64_MIN || bucket > head_) Advance(bucket);
    if (bucket <= head_ - nb) {
      late_++;
      continue;
    }
    first_ = std::min(first_, bucket);
    Slot& s = slots_[static_cast<size_t>(((bucket % nb) + nb) % nb)];
    s.readings++;
    s.score[id] = std::max(s.score[id], Quantize(b.score[i]));
    if (flag) {
      s.flagged++;
      if (s.count[id] < 255) s.count[id]++;
    }
  }
}

std::vector<const FleetView::Slot*> FleetView::Window(size_t cols, int64_t* first_bucket) const {
  const int64_t nb = static_cast<int64_t>(opt_.buckets);
  cols = std::clamp<size_t>(cols, 1, opt_.buckets);
  if (head_ != INT64_MIN) cols = std::min<size_t>(cols, static_cast<size_t>(head_ - first_ + 1));  // no empty past
  std::vector<const Slot*> out(cols, nullptr);
  *first_bucket = head_ == INT64_MIN ? 0 : head_ - static_cast<int64_t>(cols) + 1;
  if (head_ == INT64_MIN) return out;
  for (size_t c = 0; c < cols; c++) {
    const int64_t k = *first_bucket + static_cast<int64_t>(c);
    const Slot& s = slots_[static_cast<size_t>(((k % nb) + nb) % nb)];
    if (s.bucket == k) out[c] = &s;
  }
  return out;
}

FleetHeatmap FleetView::Frame(size_t cols, int64_t first_bucket) const {
  FleetHeatmap h;
  h.bucket_us = opt_.bucket_us;
  h.t0_us = first_bucket * opt_.bucket_us;
  h.cols = cols;
  return h;
}

FleetHeatmap FleetView::Top(size_t cols, size_t top) const {
  std::lock_guard<std::mutex> g(mu_);
  int64_t first = 0;
  const auto win = Window(cols, &first);
  FleetHeatmap h = Frame(win.size(), first);
  // (flagged, highest score, -id) per sensor with a flagged reading in the window.
  std::vector<int64_t> flagged(seen_, 0);
  std::vector<uint8_t> best(seen_, 0);
  for (const Slot* s : win) {
    if (!s || !s->flagged) continue;
    for (size_t id = 0; id < seen_; id++) {
      flagged[id] += s->count[id];
      if (s->count[id]) best[id] = std::max(best[id], s->score[id]);
    }
  }
  std::vector<uint32_t> ids;
  for (size_t id = 0; id < seen_; id++)
    if (flagged[id]) ids.push_back(static_cast<uint32_t>(id));
  const size_t n = std::min(top, ids.size());
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(), [&](uint32_t a, uint32_t b) {
    if (flagged[a] != flagged[b]) return flagged[a] > flagged[b];
    if (best[a] != best[b]) return best[a] > best[b];
    return a < b;
  });
  for (size_t r = 0; r < n; r++) {
    const uint32_t id = ids[r];
    h.rows.push_back(dicts_->sensors.Name(id));
    h.row_flagged.push_back(flagged[id]);
    for (const Slot* s : win) {
      h.score.push_back(s ? s->score[id] : 0);
      h.flagged.push_back(s ? s->count[id] : 0);
    }
  }
  return h;
}

FleetHeatmap FleetView::Bands(size_t cols, size_t rows) const {
  std::lock_guard<std::mutex> g(mu_);
  int64_t first = 0;
  const auto win = Window(cols, &first);
  FleetHeatmap h = Frame(win.size(), first);
  const size_t seen = seen_;
  if (!seen || !rows) return h;
  const size_t per = (seen + rows - 1) / rows;
  for (size_t lo = 0; lo < seen; lo += per) {
    const size_t hi = std::min(seen, lo + per);
    h.rows.push_back(dicts_->sensors.Name(static_cast<uint32_t>(lo)) + " … " +
                     dicts_->sensors.Name(static_cast<uint32_t>(hi - 1)));
    int64_t row_total = 0;
    for (const Slot* s : win) {
      uint8_t sc = 0;
      uint32_t fl = 0;
      if (s)
        for (size_t id = lo; id < hi; id++) {
          sc = std::max(sc, s->score[id]);
          fl += s->count[id];
        }
      h.score.push_back(sc);
      h.flagged.push_back(fl);
      row_total += fl;
    }
    h.row_flagged.push_back(row_total);
  }
  return h;
}

std::vector<FleetRank> FleetView::Rank(int64_t from_us, int64_t to_us, size_t limit) const {
  struct Row {
    uint32_t id;
    int64_t n;
    float best;
    int64_t last_us;
  };
  std::vector<Row> rows;
  std::lock_guard<std::mutex> g(mu_);
  if (from_us == INT64_MIN) {
    for (size_t id = 0; id < seen_; id++)
      if (total_flagged_[id])
        rows.push_back(Row{static_cast<uint32_t>(id), total_flagged_[id], max_score_[id], last_flagged_us_[id]});
  } else {
    const int64_t nb = static_cast<int64_t>(opt_.buckets);
    const int64_t lo = BucketOf(from_us, opt_.bucket_us), hi = BucketOf(to_us, opt_.bucket_us);
    std::vector<Row> acc(seen_, Row{0, 0, 0, 0});
    for (int64_t k = std::max(lo, head_ - nb + 1); head_ != INT64_MIN && k <= std::min(hi, head_); k++) {
      const Slot& s = slots_[static_cast<size_t>(((k % nb) + nb) % nb)];
      if (s.bucket != k || !s.flagged) continue;
      for (size_t id = 0; id < seen_; id++)
        if (s.count[id]) {
          acc[id].n += s.count[id];
          acc[id].best = std::max(acc[id].best, static_cast<float>(s.score[id]) / 100.0f);
          acc[id].last_us = std::min(last_flagged_us_[id], (k + 1) * opt_.bucket_us - 1);
        }
    }
    for (size_t id = 0; id < seen_; id++)
      if (acc[id].n) rows.push_back(Row{static_cast<uint32_t>(id), acc[id].n, acc[id].best, acc[id].last_us});
  }
  const size_t n = std::min(limit, rows.size());
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n), rows.end(),
                    [](const Row& a, const Row& b) {
                      if (a.n != b.n) return a.n > b.n;
                      if (a.best != b.best) return a.best > b.best;
                      return a.id < b.id;
                    });
  std::vector<FleetRank> out;
  for (size_t i = 0; i < n; i++)
    out.push_back(FleetRank{dicts_->sensors.Name(rows[i].id), rows[i].n, rows[i].best, rows[i].last_us});
  return out;
}

FleetTotals FleetView::Totals() const {
  std::lock_guard<std::mutex> g(mu_);
  FleetTotals t;
  t.sensors = static_cast<int64_t>(seen_);
  t.late = late_;
  if (head_ == INT64_MIN) return t;
  t.head_us = (head_ + 1) * opt_.bucket_us;
  std::vector<uint8_t> any(seen_, 0);
  for (const Slot& s : slots_) {
    if (s.bucket < 0) continue;
    t.readings += s.readings;
    t.flagged += s.flagged;
    if (s.flagged)
      for (size_t id = 0; id < seen_; id++) any[id] |= s.count[id] != 0;
  }
  t.flagged_sensors = std::count(any.begin(), any.end(), 1);
  return t;
}

}  // namespace iotpipe::http
