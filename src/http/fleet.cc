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

std::vector<const FleetView::Slot*> FleetView::Slots(int64_t lo, int64_t hi) const {
  const int64_t nb = static_cast<int64_t>(opt_.buckets);
  std::vector<const Slot*> out;
  if (head_ == INT64_MIN) return out;
  lo = std::max(lo, head_ - nb + 1);
  hi = std::min(hi, head_);
  for (int64_t k = lo; k <= hi; k++) {
    const Slot& s = slots_[static_cast<size_t>(((k % nb) + nb) % nb)];
    out.push_back(s.bucket == k ? &s : nullptr);
  }
  return out;
}

std::vector<const FleetView::Slot*> FleetView::Window(size_t cols, int64_t* first_bucket) const {
  cols = std::clamp<size_t>(cols, 1, opt_.buckets);
  if (head_ == INT64_MIN) {
    *first_bucket = 0;
    return std::vector<const Slot*>(cols, nullptr);
  }
  *first_bucket = std::max(head_ - static_cast<int64_t>(cols) + 1, first_);  // no empty past
  return Slots(*first_bucket, head_);
}

std::vector<FleetView::Tally> FleetView::TallyOf(const std::vector<const Slot*>& slots, int64_t first_bucket) const {
  std::vector<Tally> acc(seen_, Tally{0, 0, 0, 0});
  for (size_t c = 0; c < slots.size(); c++) {
    const Slot* s = slots[c];
    if (!s || !s->flagged) continue;
    for (size_t id = 0; id < seen_; id++)
      if (s->count[id]) {
        Tally& t = acc[id];
        t.n += s->count[id];
        t.best = std::max(t.best, static_cast<float>(s->score[id]) / 100.0f);
        t.last_us = std::min(last_flagged_us_[id], (first_bucket + static_cast<int64_t>(c) + 1) * opt_.bucket_us - 1);
      }
  }
  std::vector<Tally> out;
  for (size_t id = 0; id < seen_; id++)
    if (acc[id].n) {
      out.push_back(acc[id]);
      out.back().id = static_cast<uint32_t>(id);
    }
  return out;
}

void FleetView::Lead(std::vector<Tally>* t, size_t n) {
  n = std::min(n, t->size());
  std::partial_sort(t->begin(), t->begin() + static_cast<std::ptrdiff_t>(n), t->end(),
                    [](const Tally& a, const Tally& b) {
                      if (a.n != b.n) return a.n > b.n;
                      if (a.best != b.best) return a.best > b.best;
                      return a.id < b.id;
                    });
  t->resize(n);
}

FleetView::Framed FleetView::Frame(size_t cols) const {
  Framed f;
  f.win = Window(cols, &f.first);
  f.h.bucket_us = opt_.bucket_us;
  f.h.t0_us = f.first * opt_.bucket_us;
  f.h.cols = f.win.size();
  return f;
}

FleetHeatmap FleetView::Top(size_t cols, size_t top) const {
  std::lock_guard<std::mutex> g(mu_);
  auto [h, win, first] = Frame(cols);
  std::vector<Tally> lead = TallyOf(win, first);
  Lead(&lead, top);
  for (const Tally& t : lead) {
    h.rows.push_back(dicts_->sensors.Name(t.id));
    h.row_flagged.push_back(t.n);
    for (const Slot* s : win) {
      h.score.push_back(s ? s->score[t.id] : 0);
      h.flagged.push_back(s ? s->count[t.id] : 0);
    }
  }
  return h;
}

FleetHeatmap FleetView::Bands(size_t cols, size_t rows) const {
  std::lock_guard<std::mutex> g(mu_);
  auto [h, win, first] = Frame(cols);
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
  std::lock_guard<std::mutex> g(mu_);
  std::vector<Tally> rows;
  if (from_us == INT64_MIN) {
    for (size_t id = 0; id < seen_; id++)
      if (total_flagged_[id])
        rows.push_back(Tally{static_cast<uint32_t>(id), total_flagged_[id], max_score_[id], last_flagged_us_[id]});
  } else {
    const int64_t lo = std::max(BucketOf(from_us, opt_.bucket_us), head_ - static_cast<int64_t>(opt_.buckets) + 1);
    rows = TallyOf(Slots(lo, BucketOf(to_us, opt_.bucket_us)), lo);
  }
  Lead(&rows, limit);
  std::vector<FleetRank> out;
  for (const Tally& t : rows) out.push_back(FleetRank{dicts_->sensors.Name(t.id), t.n, t.best, t.last_us});
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
