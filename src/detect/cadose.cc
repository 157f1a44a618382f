#include "detect/cadose.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace iotpipe {

namespace {

constexpr uint32_t kNil = 0xFFFFFFFFu;
constexpr int kMaxBits = 3;
constexpr int kMaxRight = 27;  // right semi-contexts: non-empty subsets of one value's facts, <= 3^3 - 1
constexpr int kMaxGroup = 64;  // facts of a left facts group: sensor facts + active neurons
constexpr uint32_t kNeuronBase = 1u << 31;

struct RightSemi {
  int64_t hash;
  uint32_t facts[kMaxBits];
  uint8_t len, cnt, mask, pad;
};

struct Hdr {
  double lo, hi;
  uint64_t n;
  uint32_t n_ctx, n_left, n_facts, n_crossed;
  uint32_t new_ctx;     // newContextID (the original's False is 0, a quirk kept)
  uint32_t since_high;  // position from the end of the score history of the last score >= base threshold
  uint32_t group_len;
  uint32_t pred_mask;  // lastPredictionedFacts (sensor facts only), bit k = fact kSensorBase + k
  uint32_t n_right;
  uint8_t fixed, full, ranged, pad;
  uint32_t sens_head[2 * kMaxBits];
  uint32_t group[kMaxGroup];
  RightSemi right[kMaxRight];
};

struct Ctx {
  uint32_t n0, n1, n2;  // contextValues[0..2]
  uint32_t left;        // left semi-context id (its hash is contextValues[5])
  uint32_t next;        // next context in the left semi-context's dict, in Python 2 iteration order
  uint32_t post_head;   // left semi-contexts containing the neuron fact kNeuronBase + id
  uint8_t right, zl, slot, pad;
};

struct Left {
  int64_t hash;
  uint32_t facts_off;
  uint32_t mask;       // crossed facts (semiContextValues[0]) as bits of facts[]
  uint32_t dict_head;  // contexts (semiContextValues[3]) in Python 2 dict order
  uint8_t len, cnt, dict_n, pad;
};

struct Post {
  uint32_t semi_pos;  // semi id << 5 | position of the fact in the semi
  uint32_t next;
};

struct Active {
  uint32_t id, n2;
  int64_t lh, rh;
};
struct Potential {
  uint32_t left, lmask;
  uint8_t right, rmask;
};

struct Scratch {
  std::vector<Active> active;
  std::vector<Potential> pot;
  std::vector<std::pair<int64_t, int64_t>> uniq;
  std::vector<uint32_t> touched;
};
thread_local Scratch tls;

}  // namespace

int64_t Py2TupleHash(const uint32_t* items, size_t n) {
  // Objects/tupleobject.c (2.7), with C long wrap-around; hash(int i) = i for i >= 0.
  uint64_t x = 0x345678u;
  uint64_t mult = 1000003u;
  int64_t len = static_cast<int64_t>(n);
  for (size_t k = 0; k < n; k++) {
    --len;
    uint64_t y = items[k];
    x = (x ^ y) * mult;
    mult += static_cast<uint64_t>(82520 + len + len);
  }
  x += 97531u;
  int64_t r = static_cast<int64_t>(x);
  if (r == -1) r = -2;
  return r;
}

struct CadOseEngine {
  const CadOseDetector& d;
  const CadOseParams& p;
  Hdr* h;
  Ctx* ctx;
  Left* left;
  uint32_t* table;
  uint32_t* facts;
  Post* post;
  uint32_t* crossed;

  CadOseEngine(const CadOseDetector& det, std::byte* st)
      : d(det),
        p(det.p_),
        h(reinterpret_cast<Hdr*>(st)),
        ctx(reinterpret_cast<Ctx*>(st + det.off_ctx_)),
        left(reinterpret_cast<Left*>(st + det.off_left_)),
        table(reinterpret_cast<uint32_t*>(st + det.off_table_)),
        facts(reinterpret_cast<uint32_t*>(st + det.off_facts_)),
        post(reinterpret_cast<Post*>(st + det.off_post_)),
        crossed(reinterpret_cast<uint32_t*>(st + det.off_crossed_)) {}

  uint32_t& PostHead(uint32_t fact) {
    if (fact >= kNeuronBase) return ctx[fact - kNeuronBase].post_head;
    return h->sens_head[fact - p.fact_base];
  }

  // semiContextDics[0].setdefault(hash(leftFacts)); creates the semi-context (and its fact postings).
  uint32_t LeftId(const uint32_t* f, uint32_t n, bool* ok) {
    int64_t hash = Py2TupleHash(f, n);
    uint32_t mask = d.table_size_ - 1;
    uint32_t i = static_cast<uint32_t>(static_cast<uint64_t>(hash) * 0x9E3779B97F4A7C15ull >> 32) & mask;
    while (table[i] != 0) {
      if (left[table[i] - 1].hash == hash) return table[i] - 1;
      i = (i + 1) & mask;
    }
    if (h->n_left >= p.max_left || h->n_facts + n > p.max_facts) {
      h->full = 1;
      *ok = false;
      return kNil;
    }
    uint32_t id = h->n_left++;
    table[i] = id + 1;
    Left& L = left[id];
    L.hash = hash;
    L.facts_off = h->n_facts;
    L.mask = 0;
    L.dict_head = kNil;
    L.len = static_cast<uint8_t>(n);
    L.cnt = 0;
    L.dict_n = 0;
    for (uint32_t k = 0; k < n; k++) {
      uint32_t slot = h->n_facts++;
      facts[slot] = f[k];
      uint32_t& head = PostHead(f[k]);
      post[slot] = {id << 5 | k, head};
      head = slot;
    }
    return id;
  }

  uint32_t RightId(const uint32_t* f, uint32_t n) {
    int64_t hash = Py2TupleHash(f, n);
    for (uint32_t r = 0; r < h->n_right; r++)
      if (h->right[r].hash == hash) return r;
    RightSemi& R = h->right[h->n_right];
    R.hash = hash;
    for (uint32_t k = 0; k < n; k++) R.facts[k] = f[k];
    R.len = static_cast<uint8_t>(n);
    R.cnt = 0;
    R.mask = 0;
    return h->n_right++;
  }

  // Inserts context c (key right id) into left semi-context L's dict, keeping Python 2.7's iteration order:
  // an 8-slot table while it holds <= 5 keys (open addressing with perturbation), then a 32/128-slot table
  // where each key (< 27) sits in its own slot.
  void DictInsert(Left& L, uint32_t c) {
    uint32_t key = ctx[c].right;
    uint32_t n = L.dict_n + 1u;
    if (n <= 5) {
      uint8_t used = 0;
      for (uint32_t e = L.dict_head; e != kNil; e = ctx[e].next) used |= static_cast<uint8_t>(1u << ctx[e].slot);
      uint64_t i = key & 7u;
      uint64_t perturb = key;
      while (used & (1u << (i & 7u))) {
        i = (i << 2) + i + perturb + 1;
        perturb >>= 5;
      }
      ctx[c].slot = static_cast<uint8_t>(i & 7u);
    } else {
      ctx[c].slot = static_cast<uint8_t>(key);
    }
    if (n == 6) {  // resize: every key moves to slot = key
      for (uint32_t e = L.dict_head; e != kNil; e = ctx[e].next) ctx[e].slot = ctx[e].right;
      uint32_t ids[kMaxRight];
      uint32_t m = 0;
      for (uint32_t e = L.dict_head; e != kNil; e = ctx[e].next) ids[m++] = e;
      std::sort(ids, ids + m, [&](uint32_t a, uint32_t b) { return ctx[a].slot < ctx[b].slot; });
      L.dict_head = kNil;
      for (uint32_t k = m; k-- > 0;) {
        ctx[ids[k]].next = L.dict_head;
        L.dict_head = ids[k];
      }
    }
    uint32_t* link = &L.dict_head;
    while (*link != kNil && ctx[*link].slot < ctx[c].slot) link = &ctx[*link].next;
    ctx[c].next = *link;
    *link = c;
    L.dict_n = static_cast<uint8_t>(n);
  }

  // getContextByFacts for one (left, right) pair. Returns 1 if a context was added.
  int AddContext(const uint32_t* lf, uint32_t ln, const uint32_t* rf, uint32_t rn, bool zerolevel) {
    bool ok = true;
    uint32_t lid = LeftId(lf, ln, &ok);
    if (!ok) return 0;
    uint32_t rid = RightId(rf, rn);
    Left& L = left[lid];
    for (uint32_t e = L.dict_head; e != kNil; e = ctx[e].next) {
      if (ctx[e].right == rid) {
        if (zerolevel) ctx[e].zl = 1;
        return 0;
      }
    }
    if (h->n_ctx >= p.max_contexts) {
      h->full = 1;
      return 0;
    }
    uint32_t c = h->n_ctx++;
    ctx[c] = Ctx{0, 0, 0, lid, kNil, kNil, static_cast<uint8_t>(rid), static_cast<uint8_t>(zerolevel), 0, 0};
    DictInsert(L, c);
    if (zerolevel) h->new_ctx = c;
    return 1;
  }

  uint32_t LeftFacts(uint32_t lid, uint32_t mask, uint32_t* out) const {
    const Left& L = left[lid];
    uint32_t n = 0;
    for (uint32_t k = 0; k < L.len; k++)
      if (mask >> k & 1u) out[n++] = facts[L.facts_off + k];
    return n;
  }
  uint32_t RightFacts(uint32_t rid, uint32_t mask, uint32_t* out) const {
    const RightSemi& R = h->right[rid];
    uint32_t n = 0;
    for (uint32_t k = 0; k < R.len; k++)
      if (mask >> k & 1u) out[n++] = R.facts[k];
    return n;
  }

  // One step of ContextualAnomalyDetectorOSE.step; returns (percentSelectedContextActive,
  // percentAddedContextToUniqPotNew) and leaves the new predictions in h->pred_mask.
  void Step(const uint32_t* sens, uint32_t ns, double* sel_active, double* added) {
    Scratch& s = tls;
    s.uniq.clear();
    bool new_flag = false;
    if (h->group_len > 0 && ns > 0) {
      s.uniq.emplace_back(Py2TupleHash(h->group, h->group_len), Py2TupleHash(sens, ns));
      new_flag = AddContext(h->group, h->group_len, sens, ns, true) == 1;
    }
    // Right crossing with the current sensor facts.
    for (uint32_t r = 0; r < h->n_right; r++) {
      RightSemi& R = h->right[r];
      R.cnt = 0;
      R.mask = 0;
      for (uint32_t k = 0; k < R.len; k++)
        for (uint32_t j = 0; j < ns; j++)
          if (R.facts[k] == sens[j]) {
            R.cnt++;
            R.mask |= static_cast<uint8_t>(1u << k);
          }
    }
    // updateContextsAndGetActive over the left semi-contexts crossed at the previous step.
    s.active.clear();
    s.pot.clear();
    uint32_t num_selected = 0;
    for (uint32_t ci = 0; ci < h->n_crossed; ci++) {
      uint32_t lid = crossed[ci];
      const Left& L = left[lid];
      for (uint32_t e = L.dict_head; e != kNil; e = ctx[e].next) {
        if (h->new_ctx == e) continue;
        Ctx& C = ctx[e];
        const RightSemi& R = h->right[C.right];
        if (L.len == L.cnt) {
          num_selected++;
          C.n0 += R.len;
          if (R.cnt > 0) {
            C.n1 += R.cnt;
            if (R.len == R.cnt) {
              C.n2++;
              s.active.push_back({e, C.n2, L.hash, R.hash});
            } else if (C.zl && new_flag && L.cnt <= p.max_left_len) {
              s.pot.push_back({lid, L.mask, C.right, R.mask});
            }
          }
        } else if (C.zl && new_flag && R.cnt > 0 && L.cnt <= p.max_left_len) {
          s.pot.push_back({lid, L.mask, C.right, R.mask});
        }
      }
    }
    h->new_ctx = 0;
    uint32_t lf[kMaxGroup], rf[kMaxBits];
    for (const Potential& q : s.pot) {
      uint32_t ln = LeftFacts(q.left, q.lmask, lf);
      uint32_t rn = RightFacts(q.right, q.rmask, rf);
      s.uniq.emplace_back(Py2TupleHash(lf, ln), Py2TupleHash(rf, rn));
    }
    std::sort(s.uniq.begin(), s.uniq.end());
    size_t num_uniq = static_cast<size_t>(std::unique(s.uniq.begin(), s.uniq.end()) - s.uniq.begin());
    *sel_active = num_selected > 0 ? static_cast<double>(s.active.size()) / static_cast<double>(num_selected) : 0.0;
    // The most active contexts (sorted by activations, then the Python hashes) become the neurons.
    auto less = [](const Active& a, const Active& b) {
      if (a.n2 != b.n2) return a.n2 < b.n2;
      if (a.lh != b.lh) return a.lh < b.lh;
      return a.rh < b.rh;
    };
    size_t keep = std::min<size_t>(s.active.size(), static_cast<size_t>(p.max_active));
    if (keep < s.active.size()) {
      std::nth_element(s.active.begin(), s.active.end() - static_cast<ptrdiff_t>(keep), s.active.end(), less);
    }
    uint32_t group[kMaxGroup];
    uint32_t g = 0;
    for (uint32_t j = 0; j < ns; j++) group[g++] = sens[j];
    for (size_t k = s.active.size() - keep; k < s.active.size(); k++) group[g++] = kNeuronBase + s.active[k].id;
    std::sort(group, group + g);
    g = static_cast<uint32_t>(std::unique(group, group + g) - group);
    std::memcpy(h->group, group, g * sizeof(uint32_t));
    h->group_len = g;
    // contextCrosser(0): learn the potential new contexts, then cross the left semi-contexts with the group.
    int num_new = 0;
    for (const Potential& q : s.pot) {
      uint32_t ln = LeftFacts(q.left, q.lmask, lf);
      uint32_t rn = RightFacts(q.right, q.rmask, rf);
      num_new += AddContext(lf, ln, rf, rn, false);
    }
    for (uint32_t ci = 0; ci < h->n_crossed; ci++) {
      left[crossed[ci]].cnt = 0;
      left[crossed[ci]].mask = 0;
    }
    s.touched.clear();
    for (uint32_t j = 0; j < g; j++) {
      for (uint32_t e = PostHead(group[j]); e != kNil; e = post[e].next) {
        uint32_t id = post[e].semi_pos >> 5, pos = post[e].semi_pos & 31u;
        Left& L = left[id];
        if (L.cnt == 0) s.touched.push_back(id);
        L.cnt++;
        L.mask |= 1u << pos;
      }
    }
    std::sort(s.touched.begin(), s.touched.end());
    std::memcpy(crossed, s.touched.data(), s.touched.size() * sizeof(uint32_t));
    h->n_crossed = static_cast<uint32_t>(s.touched.size());
    double max_w = 0.0;
    uint32_t pred = 0;
    for (uint32_t id : s.touched) {
      const Left& L = left[id];
      if (L.cnt != L.len) continue;
      for (uint32_t e = L.dict_head; e != kNil; e = ctx[e].next) {
        const Ctx& C = ctx[e];
        double w = C.n0 > 0 ? static_cast<double>(C.n1) / static_cast<double>(C.n0) : 0.0;
        uint32_t m = 0;
        const RightSemi& R = h->right[C.right];
        for (uint32_t k = 0; k < R.len; k++) m |= 1u << (R.facts[k] - p.fact_base);
        if (w > max_w) {
          max_w = w;
          pred = m;
        } else if (w == max_w) {
          pred |= m;
        }
      }
    }
    h->pred_mask = pred;
    num_new += new_flag ? 1 : 0;
    *added = (new_flag && num_uniq > 0) ? static_cast<double>(num_new) / static_cast<double>(num_uniq) : 0.0;
  }

  double Score(double v) {
    if (!std::isfinite(v)) return 0.0;
    if (!h->fixed) {
      if (!h->ranged) {
        h->lo = h->hi = v;
        h->ranged = 1;
      }
      h->lo = std::min(h->lo, v);
      h->hi = std::max(h->hi, v);
    }
    const double max_bin = std::pow(2.0, p.value_bits) - 1.0;
    double range = h->hi - h->lo;
    if (range == 0.0) range = max_bin;
    double step = range / max_bin;
    double q = std::trunc((v - h->lo) / step);
    int norm = static_cast<int>(std::clamp(q, 0.0, max_bin));
    uint32_t sens[kMaxBits];
    uint32_t ns = 0;
    double sum_deltas = 0;
    for (int b = 0; b < p.value_bits; b++) {
      uint32_t f = p.fact_base + static_cast<uint32_t>(b * 2 + ((norm >> b) & 1));
      sens[ns++] = f;
      if (!(h->pred_mask >> (f - p.fact_base) & 1u)) sum_deltas += std::pow(2.0, b);
    }
    std::sort(sens, sens + ns);
    double sel = 0, added = 0;
    Step(sens, ns, &sel, &added);
    double current = (!p.predict_gate || sum_deltas > 0) ? (1.0 - sel + added) / 2.0 : 0.0;
    double out = h->since_high <= static_cast<uint32_t>(p.rest_period) ? 0.0 : current;
    if (current >= p.base_threshold) {
      h->since_high = 1;
    } else if (h->since_high < 0x7FFFFFFFu) {
      h->since_high++;
    }
    h->n++;
    return out;
  }
};

CadOseDetector::CadOseDetector(CadOseParams p) : p_(p) {
  p_.value_bits = std::clamp(p_.value_bits, 1, kMaxBits);
  p_.fact_base = std::min<uint32_t>(p_.fact_base, kNeuronBase - 2 * kMaxBits);
  p_.max_active = std::clamp(p_.max_active, 0, kMaxGroup - kMaxBits);
  p_.max_left_len = std::clamp(p_.max_left_len, 1, 31);
  p_.max_contexts = std::clamp<uint32_t>(p_.max_contexts, 16, 1u << 26);
  p_.max_left = std::clamp<uint32_t>(p_.max_left, 16, 1u << 26);
  p_.max_facts = std::clamp<uint32_t>(p_.max_facts, 64, 1u << 28);
  table_size_ = 1;
  while (table_size_ < 2 * p_.max_left) table_size_ <<= 1;
  auto align = [](size_t x) { return (x + 7) & ~size_t{7}; };
  size_t off = align(sizeof(Hdr));
  off_ctx_ = off;
  off = align(off + sizeof(Ctx) * p_.max_contexts);
  off_left_ = off;
  off = align(off + sizeof(Left) * p_.max_left);
  off_table_ = off;
  off = align(off + sizeof(uint32_t) * table_size_);
  off_facts_ = off;
  off = align(off + sizeof(uint32_t) * p_.max_facts);
  off_post_ = off;
  off = align(off + sizeof(Post) * p_.max_facts);
  off_crossed_ = off;
  off = align(off + sizeof(uint32_t) * p_.max_left);
  stride_ = off;
}

void CadOseDetector::InitState(std::byte* st) const {
  std::memset(st, 0, sizeof(Hdr));
  Hdr* h = reinterpret_cast<Hdr*>(st);
  h->since_high = 1;  // aScoresHistory starts as [1.0]
  for (auto& x : h->sens_head) x = kNil;
  if (p_.fixed_range || p_.lo < p_.hi) {
    h->fixed = 1;
    h->lo = p_.lo;
    h->hi = p_.hi;
  }
  std::memset(st + off_table_, 0, sizeof(uint32_t) * table_size_);
}

double CadOseDetector::Step(std::byte* st, double value) const {
  CadOseEngine e(*this, st);
  return e.Score(value);
}

CadOseDetector::Usage CadOseDetector::usage(const std::byte* st) const {
  const Hdr* h = reinterpret_cast<const Hdr*>(st);
  return {h->n_ctx, h->n_left, h->n_facts, h->full != 0};
}

void CadOseDetector::ScoreBatch(ReadingBatch& b, StateStore& store) const {
  const size_t n = b.size();
  for (size_t i = 0; i < n; i++) {
    bool fresh;
    std::byte* st = store.Get(b.sensor[i], &fresh);
    if (fresh) {
      InitState(st);
      if (const auto* r = ranges_.Find(b.sensor[i])) {
        Hdr* h = reinterpret_cast<Hdr*>(st);
        h->fixed = 1, h->lo = r->first, h->hi = r->second;
      }
    }
    double s = Step(st, b.value[i]);
    b.score[i] = static_cast<float>(s);
    b.predicted[i] = s >= p_.alert_threshold;
  }
}

}  // namespace iotpipe
