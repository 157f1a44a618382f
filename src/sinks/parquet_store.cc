#include "sinks/parquet_store.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "core/clock.h"
#include "core/fsutil.h"
#include "core/timeutil.h"
#include "sinks/parquet_merge.h"

namespace fs = std::filesystem;

namespace iotpipe {

namespace {
constexpr int kReadingCols = 9;
const duckdb_type kReadingTypes[kReadingCols] = {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_TIMESTAMP, DUCKDB_TYPE_DOUBLE,
                                                 DUCKDB_TYPE_BOOLEAN, DUCKDB_TYPE_VARCHAR,   DUCKDB_TYPE_TIMESTAMP,
                                                 DUCKDB_TYPE_BOOLEAN, DUCKDB_TYPE_FLOAT,     DUCKDB_TYPE_VARCHAR};

// <prefix>-p<partition>-o<first>-<last>.parquet (files named by source positions)
const std::regex& PositionedName() {
  static const std::regex re(R"(^(.+)-p(\d+)-o(\d+)-(\d+)\.parquet$)");
  return re;
}

bool PidAlive(const std::string& name) {
  // Temporary names end in ".<pid>.tmp" / ".<pid>.manifest".
  auto dot2 = name.rfind('.');
  if (dot2 == std::string::npos) return false;
  auto dot1 = name.rfind('.', dot2 - 1);
  if (dot1 == std::string::npos) return false;
  long pid = std::strtol(name.substr(dot1 + 1, dot2 - dot1 - 1).c_str(), nullptr, 10);
  if (pid <= 0) return false;
  if (pid == getpid()) return true;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}
}  // namespace

struct ParquetStore::Part {
  bool dead = false;
  int64_t hour = 0;
  int32_t kpart = -1;
  std::string table;
  std::string dir;
  bool open = false;  // buffering rows (native: in rc/dc; duckdb: in the buffer table)
  ReadingColumns rc;  // native writer buffers
  DeadLetterColumns dc;
  duckdb_appender app = nullptr;
  duckdb_data_chunk chunk = nullptr;
  idx_t n = 0;
  size_t rows = 0;
  int64_t first_mono = 0;
  int64_t first_off = INT64_MAX, last_off = -1;
  std::vector<int64_t> latency_samples;  // event times of every kLatencySample-th row (e2e latency)
  // Column pointers of the current chunk (readings).
  duckdb_vector vec[kReadingCols] = {};
  int64_t* ts = nullptr;
  double* val = nullptr;
  bool* gt = nullptr;
  int64_t* pts = nullptr;
  bool* pred = nullptr;
  float* score = nullptr;
  uint64_t* type_valid = nullptr;
  uint64_t* gt_valid = nullptr;

  void Bind() {
    for (int c = 0; c < kReadingCols; c++) vec[c] = duckdb_data_chunk_get_vector(chunk, c);
    ts = static_cast<int64_t*>(duckdb_vector_get_data(vec[1]));
    val = static_cast<double*>(duckdb_vector_get_data(vec[2]));
    gt = static_cast<bool*>(duckdb_vector_get_data(vec[3]));
    pts = static_cast<int64_t*>(duckdb_vector_get_data(vec[5]));
    pred = static_cast<bool*>(duckdb_vector_get_data(vec[6]));
    score = static_cast<float*>(duckdb_vector_get_data(vec[7]));
    duckdb_vector_ensure_validity_writable(vec[4]);
    type_valid = duckdb_vector_get_validity(vec[4]);
    duckdb_vector_ensure_validity_writable(vec[3]);
    gt_valid = duckdb_vector_get_validity(vec[3]);
  }
};

Result<std::unique_ptr<ParquetStore>> ParquetStore::Open(const StoreOptions& opt, const Interner* sensors,
                                                         const Interner* types, const Interner* models) {
  std::unique_ptr<ParquetStore> s(new ParquetStore());
  s->opt_ = opt;
  s->sensors_ = sensors;
  s->types_ = types;
  s->models_ = models;
  if (opt.writer != "native" && opt.writer != "duckdb")
    return Status::Error("unknown Parquet writer '" + opt.writer + "' (native|duckdb)");
  s->native_ = opt.writer == "native" && ParquetWriter::Supports(opt.compression);
  if (s->native_) {
    ParquetWriterOptions wo;
    wo.compression = opt.compression;
    wo.env = s->env();
    s->writer_ = std::make_unique<ParquetWriter>(wo);
  }
  for (const char* sub : {"sensor_readings", "dead_letters"}) {
    Status st = MakeDirs(s->env(), opt.data_dir + "/" + sub);
    if (!st.ok()) return st;
    st = Recover(opt.data_dir + "/" + sub);
    if (!st.ok()) return st;
  }
  auto db = Duck::Open("", opt.duck_threads, {{"preserve_insertion_order", "true"}});
  if (!db.ok()) return db.status();
  s->db_ = std::move(db.value());
  std::ostringstream id;
  id << std::hex << RealClock::Get()->NowMicros() << "-" << std::dec << getpid();
  s->run_id_ = id.str();
  s->last_compact_mono_ = MonoMicros();
  // Only committed positions count: a file above them is not durable yet (the pipeline's ledger).
  if (s->positioned()) s->durable_ = opt.committed;
  return s;
}

ParquetStore::~ParquetStore() {
  for (auto& [k, p] : parts_) {
    if (p->chunk) duckdb_destroy_data_chunk(&p->chunk);
    if (p->app) duckdb_appender_destroy(&p->app);
  }
}

Status ParquetStore::FlushSourcePartition(int32_t spart) {
  for (auto& [k, p] : parts_) {
    if (p->kpart != spart) continue;
    Status s = FlushPart(p.get());
    if (!s.ok()) return s;
  }
  auto am = appended_max_.find(spart);
  if (am == appended_max_.end()) return Status::OK();
  auto [d, ins] = durable_.emplace(spart, am->second);
  if (!ins) d->second = std::max(d->second, am->second);
  return Status::OK();
}

void ParquetStore::ScanPositions(const std::string& dir, const std::string& files, OffsetMap* out) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::smatch m;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!std::regex_match(name, m, PositionedName()) || m[1].str() != files) continue;
    int32_t p = std::stoi(m[2].str());
    int64_t last = std::stoll(m[4].str());
    auto [pos, inserted] = out->emplace(p, last);
    if (!inserted) pos->second = std::max(pos->second, last);
  }
}

Status ParquetStore::Recover(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> manifests, temps;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() < 2 || name[0] != '.') continue;
    if (name.ends_with(".manifest") && !PidAlive(name)) manifests.push_back(it->path());
    if (name.ends_with(".tmp") && !PidAlive(name)) temps.push_back(it->path());
  }
  for (const auto& m : manifests) {
    auto text = ReadFile(m.string());
    if (text.ok()) {
      std::istringstream in(text.value());
      std::string output, line;
      std::getline(in, output);
      bool done = !output.empty() && fs::exists(m.parent_path() / output, ec);
      while (std::getline(in, line)) {
        // The compacted file exists: finish by removing its inputs. Otherwise keep them.
        if (done && !line.empty()) fs::remove(m.parent_path() / line, ec);
      }
    }
    fs::remove(m, ec);
    Status s = FsyncPath(m.parent_path().string());
    if (!s.ok()) return s;
  }
  for (const auto& t : temps) fs::remove(t, ec);
  return Status::OK();
}

ParquetStore::Part* ParquetStore::GetPart(bool dead, int64_t hour, int32_t kpart) {
  auto key = std::make_tuple(dead, hour, kpart);
  auto it = parts_.find(key);
  if (it == parts_.end()) {
    auto p = std::make_unique<Part>();
    p->dead = dead;
    p->hour = hour;
    p->kpart = kpart;
    p->table = std::string(dead ? "buf_d_" : "buf_r_") + std::to_string(table_seq_++);  // unique: parts come and go
    p->dir = opt_.data_dir + (dead ? "/dead_letters/" : "/sensor_readings/") + HourPartition(hour);
    it = parts_.emplace(key, std::move(p)).first;
  }
  Part* p = it->second.get();
  if (!p->open && native_) {
    p->open = true;
    p->first_mono = MonoMicros();
  } else if (!p->open) {
    Status s =
        db_->Exec("CREATE OR REPLACE TABLE " + p->table + " (" + (dead ? kDeadLettersSchema : kReadingsSchema) + ")");
    if (!s.ok()) return nullptr;
    if (duckdb_appender_create(db_->conn(), nullptr, p->table.c_str(), &p->app) != DuckDBSuccess) return nullptr;
    if (!dead) {
      duckdb_logical_type lt[kReadingCols];
      for (int c = 0; c < kReadingCols; c++) lt[c] = duckdb_create_logical_type(kReadingTypes[c]);
      p->chunk = duckdb_create_data_chunk(lt, kReadingCols);
      for (int c = 0; c < kReadingCols; c++) duckdb_destroy_logical_type(&lt[c]);
      p->Bind();
      p->n = 0;
    }
    p->open = true;
    p->first_mono = MonoMicros();
  }
  return p;
}

Status ParquetStore::Append(const ProcessedBatch& b) {
  Status s = AppendReadings(b.readings);
  if (!s.ok()) return s;
  s = AppendDead(b.dead);
  if (!s.ok() || !positioned()) return s;
  // Positioned mode flushes a partition only between batches, once all of a batch's rows (readings
  // and dead letters, which are not in offset order with each other) are buffered.
  std::set<int32_t> full;
  for (auto& [k, p] : parts_)
    if (p->open && p->rows >= opt_.max_rows) full.insert(p->kpart);
  for (int32_t kp : full) {
    s = FlushSourcePartition(kp);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status ParquetStore::AppendReadings(const ReadingBatch& b) {
  const size_t n = b.size();
  if (n == 0) return Status::OK();
  if (native_) return AppendReadingsNative(b);
  const bool with_origin = !b.origins.empty();
  const idx_t cap = duckdb_vector_size();
  Part* p = nullptr;
  int64_t cur_hour = INT64_MIN;
  int32_t cur_kpart = INT32_MIN;
  const std::string* model_names = nullptr;
  (void)model_names;
  for (size_t i = 0; i < n; i++) {
    int32_t kpart = with_origin ? b.origins[i].partition : -1;
    if (with_origin) {
      auto hw = durable_.find(kpart);
      if (hw != durable_.end() && b.origins[i].offset <= hw->second) continue;  // already stored
    }
    int64_t hour = HourIndex(b.ts_us[i]);
    if (hour != cur_hour || kpart != cur_kpart || !p || !p->open) {
      p = GetPart(false, hour, kpart);
      if (!p) return Status::Error("cannot create buffer table for partition " + HourPartition(hour));
      cur_hour = hour;
      cur_kpart = kpart;
    }
    const idx_t r = p->n;
    const std::string& sid = sensors_->Name(b.sensor[i]);
    duckdb_vector_assign_string_element_len(p->vec[0], r, sid.data(), sid.size());
    p->ts[r] = b.ts_us[i];
    p->val[r] = b.value[i];
    p->gt[r] = ReadingBatch::Positive(b.gt[i]);
    if (ReadingBatch::Labelled(b.gt[i]))
      duckdb_validity_set_row_valid(p->gt_valid, r);
    else
      duckdb_validity_set_row_invalid(p->gt_valid, r);
    if (b.type[i] == ReadingBatch::kNoType) {
      duckdb_validity_set_row_invalid(p->type_valid, r);
    } else {
      duckdb_validity_set_row_valid(p->type_valid, r);
      const std::string& t = types_->Name(b.type[i]);
      duckdb_vector_assign_string_element_len(p->vec[4], r, t.data(), t.size());
    }
    p->pts[r] = b.processing_ts_us;
    p->pred[r] = b.predicted[i] != 0;
    p->score[r] = b.score[i];
    const std::string& mv = models_->Name(b.model[i]);
    duckdb_vector_assign_string_element_len(p->vec[8], r, mv.data(), mv.size());
    if (with_origin) {
      p->first_off = std::min(p->first_off, b.origins[i].offset);
      p->last_off = std::max(p->last_off, b.origins[i].offset);
      auto [am, ins] = appended_max_.emplace(kpart, b.origins[i].offset);
      if (!ins) am->second = std::max(am->second, b.origins[i].offset);
    }
    max_event_us_ = std::max(max_event_us_, b.ts_us[i]);
    if (opt_.e2e_latency && (p->rows % kLatencySample) == 0) p->latency_samples.push_back(b.ts_us[i]);
    p->rows++;
    buffered_++;
    if (++p->n == cap) {
      duckdb_data_chunk_set_size(p->chunk, p->n);
      if (duckdb_append_data_chunk(p->app, p->chunk) != DuckDBSuccess)
        return Status::Error(std::string("duckdb append: ") + duckdb_appender_error(p->app));
      duckdb_data_chunk_reset(p->chunk);
      p->Bind();
      p->n = 0;
    }
    if (p->rows >= opt_.max_rows && !positioned()) {
      Status s = FlushPart(p);
      if (!s.ok()) return s;
      p = nullptr;
    }
  }
  return Status::OK();
}

Status ParquetStore::AppendDead(const DeadLetterBatch& d) {
  const size_t n = d.size();
  if (n == 0) return Status::OK();
  const bool with_origin = !d.origins.empty();
  int64_t hour = HourIndex(d.received_ts_us);
  for (size_t i = 0; i < n; i++) {
    int32_t kpart = with_origin ? d.origins[i].partition : -1;
    if (with_origin) {
      auto hw = durable_.find(kpart);
      if (hw != durable_.end() && d.origins[i].offset <= hw->second) continue;
    }
    Part* p = GetPart(true, hour, kpart);
    if (!p) return Status::Error("cannot create dead-letter buffer table");
    if (native_) {
      p->dc.received_ts_us.push_back(d.received_ts_us);
      p->dc.reason.push_back(d.reason[i]);
      p->dc.raw.push_back(d.raw[i]);
      p->dc.has_origin.push_back(with_origin);
      p->dc.source.push_back(with_origin ? opt_.source_label : std::string("embedded"));
      p->dc.kafka_partition.push_back(with_origin ? kpart : 0);
      p->dc.kafka_offset.push_back(with_origin ? d.origins[i].offset : 0);
      if (with_origin) {
        p->first_off = std::min(p->first_off, d.origins[i].offset);
        p->last_off = std::max(p->last_off, d.origins[i].offset);
        auto [am, ins] = appended_max_.emplace(kpart, d.origins[i].offset);
        if (!ins) am->second = std::max(am->second, d.origins[i].offset);
      }
      p->rows++;
      buffered_++;
      continue;
    }
    duckdb_append_timestamp(p->app, duckdb_timestamp{d.received_ts_us});
    duckdb_append_varchar_length(p->app, d.reason[i].data(), d.reason[i].size());
    duckdb_append_blob(p->app, d.raw[i].data(), d.raw[i].size());
    if (with_origin) {
      const std::string& src = opt_.source_label;
      duckdb_append_varchar_length(p->app, src.data(), src.size());
      duckdb_append_int32(p->app, kpart);
      duckdb_append_int64(p->app, d.origins[i].offset);
      p->first_off = std::min(p->first_off, d.origins[i].offset);
      p->last_off = std::max(p->last_off, d.origins[i].offset);
      auto [am, ins] = appended_max_.emplace(kpart, d.origins[i].offset);
      if (!ins) am->second = std::max(am->second, d.origins[i].offset);
    } else {
      duckdb_append_varchar(p->app, "embedded");
      duckdb_append_null(p->app);
      duckdb_append_null(p->app);
    }
    if (duckdb_appender_end_row(p->app) != DuckDBSuccess)
      return Status::Error(std::string("duckdb append: ") + duckdb_appender_error(p->app));
    p->rows++;
    buffered_++;
  }
  return Status::OK();
}

// The native path: rows go to plain columnar buffers, runs of one hour partition at a time.
Status ParquetStore::AppendReadingsNative(const ReadingBatch& b) {
  const size_t n = b.size();
  const bool with_origin = !b.origins.empty();
  Part* p = nullptr;
  size_t i = 0;
  while (i < n) {
    int32_t kpart = with_origin ? b.origins[i].partition : -1;
    if (with_origin) {
      auto hw = durable_.find(kpart);
      if (hw != durable_.end() && b.origins[i].offset <= hw->second) {  // already stored
        i++;
        continue;
      }
    }
    const int64_t hour = HourIndex(b.ts_us[i]);
    p = GetPart(false, hour, kpart);
    if (!p) return Status::Error("cannot create buffer for partition " + HourPartition(hour));
    // The run of rows of this partition (one row at a time with origins: offsets are checked per row).
    size_t j = i + 1;
    const size_t room = opt_.max_rows > p->rows ? opt_.max_rows - p->rows : 1;
    const size_t limit = with_origin ? i + 1 : std::min(n, i + room);
    const int64_t lo = hour * 3600000000LL, hi = lo + 3600000000LL;  // HourIndex floors
    while (j < limit && b.ts_us[j] >= lo && b.ts_us[j] < hi) j++;
    p->rc.AppendRange(b, i, j);
    for (size_t k = i; k < j; k++) {
      if (opt_.e2e_latency && ((p->rows + (k - i)) % kLatencySample) == 0) p->latency_samples.push_back(b.ts_us[k]);
      max_event_us_ = std::max(max_event_us_, b.ts_us[k]);
    }
    if (with_origin) {
      p->first_off = std::min(p->first_off, b.origins[i].offset);
      p->last_off = std::max(p->last_off, b.origins[i].offset);
      auto [am, ins] = appended_max_.emplace(kpart, b.origins[i].offset);
      if (!ins) am->second = std::max(am->second, b.origins[i].offset);
    }
    p->rows += j - i;
    buffered_ += j - i;
    i = j;
    if (p->rows >= opt_.max_rows && !positioned()) {
      Status s = FlushPart(p);
      if (!s.ok()) return s;
    }
  }
  return Status::OK();
}

Status ParquetStore::WritePartNative(Part* p, const std::string& tmp, uint64_t* bytes) {
  if (p->dead) return writer_->WriteDeadLetters(tmp, p->dc, bytes);
  return writer_->WriteReadings(tmp, p->rc, *sensors_, *types_, *models_, bytes);
}

Status ParquetStore::FlushPart(Part* p) {
  if (!p->open) return Status::OK();
  p->open = false;
  if (!native_ && p->chunk) {
    if (p->n > 0) {
      duckdb_data_chunk_set_size(p->chunk, p->n);
      if (duckdb_append_data_chunk(p->app, p->chunk) != DuckDBSuccess)
        return Status::Error(std::string("duckdb append: ") + duckdb_appender_error(p->app));
    }
    duckdb_destroy_data_chunk(&p->chunk);
    p->chunk = nullptr;
    p->n = 0;
  }
  if (!native_) {
    if (duckdb_appender_close(p->app) != DuckDBSuccess)
      return Status::Error(std::string("duckdb appender: ") + duckdb_appender_error(p->app));
    duckdb_appender_destroy(&p->app);
    p->app = nullptr;
  }
  if (p->rows > 0) {
    if (!dirs_made_.count(p->dir)) {
      Status s = MakeDirs(env(), p->dir);
      if (!s.ok()) return s;
      dirs_made_[p->dir] = true;
    }
    std::string name;
    if (p->kpart >= 0 && positioned()) {
      name = opt_.position_files + "-p" + std::to_string(p->kpart) + "-o" + std::to_string(p->first_off) + "-" +
             std::to_string(p->last_off) + ".parquet";
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%06llu", static_cast<unsigned long long>(seq_++));
      name = "part-" + run_id_ + "-" + buf + ".parquet";
    }
    std::string final_path = p->dir + "/" + name;
    std::string tmp = p->dir + "/." + name + "." + std::to_string(getpid()) + ".tmp";
    uint64_t native_bytes = 0;
    Status s = native_ ? WritePartNative(p, tmp, &native_bytes)
                       : db_->Exec("COPY " + p->table + " TO " + SqlQuote(tmp) + " (FORMAT parquet, COMPRESSION " +
                                   opt_.compression + ", ROW_GROUP_SIZE 122880)");
    if (!s.ok()) {
      (void)env()->RemoveFile(tmp);         // a torn temp file (e.g. disk full) is never left behind
      return s.Prefixed("writing " + tmp);  // keeps the code (IOError for the disk)
    }
    s = CommitFile(env(), tmp, final_path);
    if (!s.ok()) return s;
    if (opt_.e2e_latency) {
      // Stored time - event time, for the sampled rows of this file.
      const int64_t now = RealClock::Get()->NowMicros();
      for (int64_t t : p->latency_samples)
        opt_.e2e_latency->Observe(static_cast<double>(std::max<int64_t>(now - t, 0)) / 1e6, kLatencySample);
    }
    p->latency_samples.clear();
    std::error_code ec;
    stats_.bytes += fs::file_size(final_path, ec);
    stats_.files++;
    (p->dead ? stats_.dead : stats_.rows) += p->rows;
    if (p->kpart >= 0 && p->last_off >= 0 && !positioned()) {
      auto [pos, inserted] = durable_.emplace(p->kpart, p->last_off);
      if (!inserted) pos->second = std::max(pos->second, p->last_off);
    }
  }
  if (native_) {
    p->rc.Clear();
    p->dc.Clear();
  } else {
    Status s = db_->Exec("DROP TABLE " + p->table);
    if (!s.ok()) return s;
  }
  buffered_ -= p->rows;
  p->rows = 0;
  p->first_off = INT64_MAX;
  p->last_off = -1;
  return Status::OK();
}

Status ParquetStore::Tick(int64_t now_mono_us) {
  Status s = FlushDue(now_mono_us);
  if (!s.ok() || now_mono_us - last_compact_mono_ <= 5000000) return s;
  last_compact_mono_ = now_mono_us;
  return CompactClosed();
}

Status ParquetStore::FlushDue(int64_t now_mono_us) {
  if (positioned()) {
    std::set<int32_t> due;
    for (auto& [k, p] : parts_)
      if (p->open && p->rows > 0 && now_mono_us - p->first_mono >= opt_.max_delay_us) due.insert(p->kpart);
    for (int32_t kp : due) {
      Status s = FlushSourcePartition(kp);
      if (!s.ok()) return s;
    }
    return Status::OK();
  }
  for (auto& [k, p] : parts_) {
    if (p->open && p->rows > 0 && now_mono_us - p->first_mono >= opt_.max_delay_us) {
      Status s = FlushPart(p.get());
      if (!s.ok()) return s;
    }
  }
  return Status::OK();
}

Status ParquetStore::Flush() {
  if (positioned()) {
    std::set<int32_t> kps;
    for (auto& [k, p] : parts_) kps.insert(p->kpart);
    for (auto& [kp, off] : appended_max_) kps.insert(kp);
    for (int32_t kp : kps) {
      Status s = FlushSourcePartition(kp);
      if (!s.ok()) return s;
    }
    return Status::OK();
  }
  for (auto& [k, p] : parts_) {
    Status s = FlushPart(p.get());
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status ParquetStore::CompactClosed(int64_t grace_us) {
  if (max_event_us_ == INT64_MIN) return Status::OK();
  const int64_t closed_before = HourIndex(max_event_us_ - grace_us);
  std::vector<std::tuple<bool, int64_t, int32_t>> done;
  std::map<std::string, bool> dirs;
  for (auto& [k, p] : parts_) {
    if (p->dead || p->hour >= closed_before || p->open) continue;
    dirs[p->dir] = true;
    done.push_back(k);
  }
  for (auto& [dir, _] : dirs) {
    Status s = CompactDir(dir);
    if (!s.ok()) {
      // Several processors of one group may share a data directory and race to compact it;
      // a failed compaction leaves its inputs in place, so it is not fatal.
      if (!positioned()) return s;
      spdlog::warn("{}", s.message());
    }
  }
  for (auto& k : done) parts_.erase(k);
  return Status::OK();
}

// Writes the compaction of `files` (in dir; `list`: their quoted paths) to tmp. Large row groups
// are concatenated as written; small ones are re-encoded by DuckDB.
Status ParquetStore::WriteCompacted(const std::string& dir, const std::vector<std::string>& files,
                                    const std::string& list, const std::string& tmp) {
  std::error_code ec;
  Status s;
  int64_t rows = 0, groups_n = 0;
  std::vector<std::string> paths;
  bool known = true;
  for (auto& f : files) {
    paths.push_back(dir + "/" + f);
    auto info = ReadParquetInfo(paths.back());
    if (!info.ok()) {
      known = false;
      break;
    }
    rows += info->rows;
    groups_n += info->row_groups;
  }
  if (known && groups_n > 0 && static_cast<size_t>(rows / groups_n) >= opt_.compact_merge_min_rows) {
    s = MergeParquetFiles(env(), paths, tmp);
    if (s.ok() || s.IsIOError()) return s;  // a failing disk fails the compaction; a format problem re-encodes
    spdlog::debug("compaction of {} re-encodes: {}", dir, s.message());
    fs::remove(tmp, ec);
  }
  return db_->Exec("COPY (SELECT * FROM read_parquet([" + list + "], hive_partitioning = false)) TO " + SqlQuote(tmp) +
                   " (FORMAT parquet, COMPRESSION " + opt_.compression + ", ROW_GROUP_SIZE 122880)");
}

Status ParquetStore::CompactDir(const std::string& dir) {
  std::error_code ec;
  std::map<std::string, std::vector<std::string>> groups;  // source partition -> files
  std::map<std::string, std::pair<int64_t, int64_t>> ranges;
  std::smatch m;
  // Positioned mode: only committed files of partitions this store writes are merged.
  const OffsetMap markers = !positioned() ? OffsetMap() : opt_.committed_now ? opt_.committed_now() : durable_;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name[0] == '.' || !name.ends_with(".parquet")) continue;
    std::string key;
    if (std::regex_match(name, m, PositionedName())) {
      if (positioned()) {
        int32_t kp = std::stoi(m[2].str());
        auto mk = markers.find(kp);
        if (m[1].str() != opt_.position_files || !appended_max_.count(kp) || mk == markers.end() ||
            std::stoll(m[4].str()) > mk->second)
          continue;
      }
      key = m[1].str() + "-p" + m[2].str();
      auto [pos, inserted] = ranges.emplace(key, std::make_pair(std::stoll(m[3].str()), std::stoll(m[4].str())));
      if (!inserted) {
        pos->second.first = std::min<int64_t>(pos->second.first, std::stoll(m[3].str()));
        pos->second.second = std::max<int64_t>(pos->second.second, std::stoll(m[4].str()));
      }
    }
    groups[key].push_back(name);
  }
  for (auto& [key, files] : groups) {
    if (files.size() < 2) continue;
    std::sort(files.begin(), files.end());
    std::string out;
    if (key.empty()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%06llu", static_cast<unsigned long long>(seq_++));
      out = "part-" + run_id_ + "-c" + buf + ".parquet";
    } else {
      out = key + "-o" + std::to_string(ranges[key].first) + "-" + std::to_string(ranges[key].second) + ".parquet";
      // A compacted positioned file may take the name of one of its inputs; write under a distinct name.
      if (std::find(files.begin(), files.end(), out) != files.end()) continue;
    }
    std::string pid = std::to_string(getpid());
    std::string manifest_text = out + "\n";
    std::string list;
    for (auto& f : files) {
      manifest_text += f + "\n";
      if (!list.empty()) list += ", ";
      list += SqlQuote(dir + "/" + f);
    }
    std::string manifest = dir + "/.compact-" + out + "." + pid + ".manifest";
    Status s = WriteFileAtomic(env(), manifest, manifest_text);
    if (!s.ok()) return s;
    std::string tmp = dir + "/." + out + "." + pid + ".tmp";
    s = WriteCompacted(dir, files, list, tmp);
    if (!s.ok()) {
      fs::remove(tmp, ec);
      fs::remove(manifest, ec);
      return s.Prefixed("compacting " + dir);
    }
    s = CommitFile(env(), tmp, dir + "/" + out);
    if (!s.ok()) {
      // Not renamed (e.g. its fsync failed on a full disk): the inputs stay the data, nothing is left over.
      // Renamed: the manifest stays, so readers hide the inputs and recovery finishes the compaction.
      if (!env()->FileExists(dir + "/" + out)) {
        fs::remove(tmp, ec);
        fs::remove(manifest, ec);
      }
      return s.Prefixed("compacting " + dir);
    }
    for (auto& f : files) (void)env()->RemoveFile(dir + "/" + f);
    s = env()->SyncPath(dir);
    if (!s.ok()) return s;
    fs::remove(manifest, ec);
    stats_.compactions++;
  }
  return Status::OK();
}

}  // namespace iotpipe
