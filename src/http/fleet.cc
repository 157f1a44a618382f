#include "http/fleet.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <unordered_map>

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
  asset_of_.resize(n, ReadingBatch::kNoAsset);
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
    if (id >= seen_) {
      const std::string& name = dicts_->sensors.Name(id);
      devices_ = devices_ || (name.rfind(kDeviceSeparator) != std::string::npos && name[0] != kDeviceSeparator);
      seen_ = static_cast<size_t>(id) + 1;
    }
    if (!b.asset.empty() && b.asset[i] != ReadingBatch::kNoAsset) {
      asset_of_[id] = b.asset[i];
      assets_ = true;
    }
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

void FleetView::FillGroups(const Framed& f, const std::vector<uint32_t>& group_of, std::vector<std::string> names,
                           size_t top, FleetHeatmap* h) const {
  const size_t ng = names.size(), nc = f.win.size();
  std::vector<uint8_t> score(ng * nc, 0);
  std::vector<uint32_t> flagged(ng * nc, 0);
  std::vector<int64_t> total(ng, 0);
  for (size_t c = 0; c < nc; c++) {
    const Slot* s = f.win[c];
    if (!s) continue;
    for (size_t id = 0; id < seen_; id++) {
      const uint32_t gi = group_of[id];
      if (gi == UINT32_MAX) continue;
      score[gi * nc + c] = std::max(score[gi * nc + c], s->score[id]);
      flagged[gi * nc + c] += s->count[id];
      total[gi] += s->count[id];
    }
  }
  std::vector<uint32_t> order(ng);
  for (size_t i = 0; i < ng; i++) order[i] = static_cast<uint32_t>(i);
  const size_t n = std::min(top, ng);
  if (top < ng)  // the leading groups; all of them (bands) keep their order
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                      [&](uint32_t a, uint32_t b) { return total[a] != total[b] ? total[a] > total[b] : a < b; });
  for (size_t r = 0; r < n; r++) {
    const uint32_t gi = order[r];
    h->rows.push_back(std::move(names[gi]));
    h->row_flagged.push_back(total[gi]);
    h->score.insert(h->score.end(), score.begin() + gi * nc, score.begin() + (gi + 1) * nc);
    h->flagged.insert(h->flagged.end(), flagged.begin() + gi * nc, flagged.begin() + (gi + 1) * nc);
  }
}

FleetHeatmap FleetView::Bands(size_t cols, size_t rows) const {
  std::lock_guard<std::mutex> g(mu_);
  Framed f = Frame(cols);
  if (!seen_ || !rows) return f.h;
  const size_t per = (seen_ + rows - 1) / rows;
  std::vector<uint32_t> group_of(seen_);
  std::vector<std::string> names;
  for (size_t id = 0; id < seen_; id++) {
    group_of[id] = static_cast<uint32_t>(id / per);
    if (id % per == 0)
      names.push_back(dicts_->sensors.Name(static_cast<uint32_t>(id)) + " … " +
                      dicts_->sensors.Name(static_cast<uint32_t>(std::min(seen_, id + per) - 1)));
  }
  const size_t n = names.size();
  FillGroups(f, group_of, std::move(names), n, &f.h);
  return f.h;
}

FleetHeatmap FleetView::Groups(size_t cols, size_t top, const std::string& by) const {
  std::lock_guard<std::mutex> g(mu_);
  Framed f = Frame(cols);
  std::vector<uint32_t> group_of(seen_, UINT32_MAX);
  std::vector<std::string> names;
  if (by == "asset") {
    std::vector<uint32_t> index;  // asset id -> group + 1
    for (size_t id = 0; id < seen_; id++) {
      const uint32_t a = asset_of_[id];
      if (a == ReadingBatch::kNoAsset) continue;
      if (index.size() <= a) index.resize(a + 1, 0);
      if (!index[a]) {
        names.push_back(dicts_->assets.Name(a));
        index[a] = static_cast<uint32_t>(names.size());
      }
      group_of[id] = index[a] - 1;
    }
  } else {
    std::unordered_map<std::string, uint32_t> index;  // device -> group
    for (size_t id = 0; id < seen_; id++) {
      const std::string& name = dicts_->sensors.Name(static_cast<uint32_t>(id));
      const size_t cut = name.rfind(kDeviceSeparator);
      if (cut == std::string::npos || cut == 0) continue;
      auto [it, added] = index.emplace(name.substr(0, cut), static_cast<uint32_t>(names.size()));
      if (added) names.push_back(it->first);
      group_of[id] = it->second;
    }
  }
  FillGroups(f, group_of, std::move(names), top, &f.h);
  return f.h;
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
