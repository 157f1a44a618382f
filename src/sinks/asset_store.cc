#include "sinks/asset_store.h"

#include <cstdio>

#include "core/clock.h"
#include "core/duck.h"
#include "core/fsutil.h"
#include "core/tables.h"
#include "core/timeutil.h"

namespace iotpipe {

struct AssetScoreStore::Impl {
  duckdb_appender app = nullptr;
};

AssetScoreStore::AssetScoreStore(AssetStoreOptions opt) : opt_(std::move(opt)), impl_(std::make_unique<Impl>()) {
  run_id_ = std::to_string(RealClock::Get()->NowMicros());
}

AssetScoreStore::~AssetScoreStore() {
  Status s = Close();
  if (!s.ok()) std::fprintf(stderr, "iotpipe: asset scores: %s\n", s.message().c_str());
}

Status AssetScoreStore::Open() {
  auto db = Duck::Open("", 1);
  if (!db.ok()) return db.status();
  db_ = std::move(db.value());
  Status s = db_->Exec(std::string("CREATE TABLE buf (") + AssetScoresTable().SqlColumns() + ")");
  if (!s.ok()) return s;
  if (duckdb_appender_create(db_->conn(), nullptr, "buf", &impl_->app) != DuckDBSuccess)
    return Status::Error("asset scores: cannot create the appender");
  last_flush_mono_ = MonoMicros();
  return Status::OK();
}

Status AssetScoreStore::Append(const std::vector<AssetScore>& rows, const AssetScorer& scorer, const Interner* types,
                               int64_t processing_ts_us) {
  if (!db_) return Status::Error("asset scores: store not open");
  duckdb_appender app = impl_->app;
  for (const AssetScore& r : rows) {
    const std::string& asset = scorer.AssetName(r.asset);
    duckdb_append_varchar_length(app, asset.data(), asset.size());
    duckdb_append_timestamp(app, duckdb_timestamp{r.tick_us});
    duckdb_append_timestamp(app, duckdb_timestamp{processing_ts_us});
    duckdb_append_int32(app, r.channels);
    duckdb_append_int32(app, r.present);
    duckdb_append_double(app, r.t2);
    duckdb_append_double(app, r.q);
    duckdb_append_float(app, r.score);
    duckdb_append_bool(app, r.predicted);
    if (r.top_channel >= 0) {
      const std::string& ch = scorer.ChannelName(r.asset, r.top_channel);
      duckdb_append_varchar_length(app, ch.data(), ch.size());
    } else {
      duckdb_append_null(app);
    }
    duckdb_append_float(app, r.top_share);
    duckdb_append_bool(app, r.gt);
    if (r.type != ReadingBatch::kNoType && types) {
      const std::string& t = types->Name(r.type);
      duckdb_append_varchar_length(app, t.data(), t.size());
    } else {
      duckdb_append_null(app);
    }
    duckdb_append_varchar_length(app, opt_.model_version.data(), opt_.model_version.size());
    if (duckdb_appender_end_row(app) != DuckDBSuccess)
      return Status::Error(std::string("asset scores: append: ") + duckdb_appender_error(app));
    buffered_++;
  }
  if (buffered_ >= static_cast<int64_t>(opt_.flush_rows) ||
      (buffered_ > 0 && MonoMicros() - last_flush_mono_ > static_cast<int64_t>(opt_.flush_interval_s * 1e6)))
    return Flush();
  return Status::OK();
}

Status AssetScoreStore::Flush() {
  last_flush_mono_ = MonoMicros();
  if (!db_ || buffered_ == 0) return Status::OK();
  if (duckdb_appender_flush(impl_->app) != DuckDBSuccess)
    return Status::Error(std::string("asset scores: flush: ") + duckdb_appender_error(impl_->app));
  auto days = db_->Query("SELECT DISTINCT CAST(timestamp AS DATE)::VARCHAR FROM buf ORDER BY 1");
  if (!days.ok()) return days.status();
  for (size_t i = 0; i < days->rows.size(); i++) {
    const std::string day = days->Str(i, 0);
    const std::string dir = opt_.data_dir + "/asset_scores/date=" + day;
    Status s = MakeDirs(dir);
    if (!s.ok()) return s;
    const std::string name = "assets-" + run_id_ + "-" + std::to_string(seq_++) + ".parquet";
    const std::string tmp = dir + "/." + name + ".tmp", fin = dir + "/" + name;
    s = db_->Exec("COPY (SELECT * FROM buf WHERE CAST(timestamp AS DATE) = " + SqlQuote(day) +
                  "::DATE ORDER BY asset_id, timestamp) TO " + SqlQuote(tmp) + " (FORMAT parquet, COMPRESSION zstd)");
    if (s.ok()) s = CommitFile(tmp, fin);
    if (!s.ok()) {
      std::remove(tmp.c_str());
      return s;
    }
    files_++;
  }
  Status s = db_->Exec("DELETE FROM buf");
  if (!s.ok()) return s;
  written_ += buffered_;
  buffered_ = 0;
  return Status::OK();
}

Status AssetScoreStore::Close() {
  if (closed_) return Status::OK();
  closed_ = true;
  Status s = Flush();
  if (impl_->app) duckdb_appender_destroy(&impl_->app);
  db_.reset();
  return s;
}

}  // namespace iotpipe
