#include "core/duck.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/tables.h"
#include "core/thrift_compact.h"
#include "core/timeutil.h"

namespace iotpipe {

// The views' and staging tables' columns come from the table descriptors (core/tables.h).
const std::string kReadingsSchema = ReadingsTable().SqlColumns();
const std::string kDeadLettersSchema = DeadLettersTable().SqlColumns();

double Table::Num(size_t r, size_t c) const {
  const auto& v = rows.at(r).at(c);
  return v ? std::stod(*v) : 0.0;
}
int64_t Table::Int(size_t r, size_t c) const {
  const auto& v = rows.at(r).at(c);
  return v ? std::stoll(*v) : 0;
}
std::string Table::Str(size_t r, size_t c) const {
  const auto& v = rows.at(r).at(c);
  return v ? *v : std::string();
}

Result<std::unique_ptr<Duck>> Duck::Open(const std::string& path, int threads,
                                         const std::vector<std::pair<std::string, std::string>>& config) {
  std::unique_ptr<Duck> d(new Duck());
  duckdb_config cfg;
  if (duckdb_create_config(&cfg) != DuckDBSuccess) return Status::Error("duckdb: cannot create config");
  if (threads > 0) duckdb_set_config(cfg, "threads", std::to_string(threads).c_str());
  for (auto& [k, v] : config) duckdb_set_config(cfg, k.c_str(), v.c_str());
  char* err = nullptr;
  if (duckdb_open_ext(path.empty() ? nullptr : path.c_str(), &d->db_, cfg, &err) != DuckDBSuccess) {
    std::string m = err ? err : "unknown error";
    duckdb_free(err);
    duckdb_destroy_config(&cfg);
    return Status::Error("duckdb: cannot open database: " + m);
  }
  duckdb_destroy_config(&cfg);
  if (duckdb_connect(d->db_, &d->con_) != DuckDBSuccess) return Status::Error("duckdb: cannot connect");
  // Progress estimates for SetProgress need the progress bar on (it never prints: we do). Set now, on
  // the session: a read-only query service locks its configuration after opening.
  if (Status s = d->Exec("SET enable_progress_bar = true; SET enable_progress_bar_print = false"); !s.ok()) return s;
  return d;
}

Duck::~Duck() {
  if (con_) duckdb_disconnect(&con_);
  if (db_) duckdb_close(&db_);
}

Status Duck::Exec(const std::string& sql) {
  if (progress_) return RunWithProgress(sql).status();
  duckdb_result res;
  if (duckdb_query(con_, sql.c_str(), &res) != DuckDBSuccess) {
    std::string m = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
    duckdb_destroy_result(&res);
    return Status::Error(m);
  }
  duckdb_destroy_result(&res);
  return Status::OK();
}

static Table ToTable(duckdb_result& res) {
  Table t;
  idx_t nc = duckdb_column_count(&res), nr = duckdb_row_count(&res);
  for (idx_t c = 0; c < nc; c++) {
    t.columns.emplace_back(duckdb_column_name(&res, c));
    t.types.push_back(duckdb_column_type(&res, c));
  }
  t.rows.resize(nr);
  for (idx_t r = 0; r < nr; r++) {
    t.rows[r].resize(nc);
    for (idx_t c = 0; c < nc; c++) {
      if (duckdb_value_is_null(&res, c, r)) continue;
      char* s = duckdb_value_varchar(&res, c, r);
      if (s) {
        t.rows[r][c] = std::string(s);
        duckdb_free(s);
      }
    }
  }
  return t;
}

// DuckDB's error type as a Status code (callers branch on codes, never on DuckDB's text).
static Status ResultError(duckdb_result& res) {
  std::string m = duckdb_result_error(&res) ? duckdb_result_error(&res) : "unknown error";
  switch (duckdb_result_error_type(&res)) {
    case DUCKDB_ERROR_IO:
      return m.find("No files found") != std::string::npos ? Status::NotFound(m) : Status::IOError(m);
    case DUCKDB_ERROR_PERMISSION:
      return Status::PermissionDenied(m);
    case DUCKDB_ERROR_INTERRUPT:
      return Status::TimedOut(m);
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_BINDER:
    case DUCKDB_ERROR_CATALOG:
    case DUCKDB_ERROR_INVALID_INPUT:
      return Status::InvalidArgument(m);
    case DUCKDB_ERROR_OUT_OF_MEMORY:
      return Status::Unavailable(m);
    default:
      return Status::Error(m);
  }
}

Result<Table> Duck::Query(const std::string& sql) {
  if (progress_) return RunWithProgress(sql);
  duckdb_result res;
  if (duckdb_query(con_, sql.c_str(), &res) != DuckDBSuccess) {
    Status s = ResultError(res);
    duckdb_destroy_result(&res);
    return s;
  }
  Table t = ToTable(res);
  duckdb_destroy_result(&res);
  return t;
}

Result<Table> Duck::QueryOfType(const std::string& sql, duckdb_statement_type allowed) {
  duckdb_prepared_statement ps = nullptr;
  if (duckdb_prepare(con_, sql.c_str(), &ps) != DuckDBSuccess) {
    std::string m = duckdb_prepare_error(ps) ? duckdb_prepare_error(ps) : "cannot prepare";
    duckdb_destroy_prepare(&ps);
    return m.find("Permission Error") != std::string::npos ? Status::PermissionDenied(m) : Status::InvalidArgument(m);
  }
  if (duckdb_prepared_statement_type(ps) != allowed) {
    duckdb_destroy_prepare(&ps);
    return Status::PermissionDenied("read-only: refused a statement of another type");
  }
  Result<Table> t = Execute(ps);
  duckdb_destroy_prepare(&ps);
  return t;
}

bool IsNumericType(duckdb_type t) {
  switch (t) {
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_DECIMAL:
      return true;
    default:
      return false;
  }
}

std::string SqlQuote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'') out += '\'';
    out += ch;
  }
  return out + "'";
}

namespace {

// What a footer check found, cached per (path, size, mtime) so a refresh reads only new files.
struct FileCheck {
  uint64_t size = 0;
  int64_t mtime = 0;
  std::string problem;  // empty: readable with the table's columns
};
std::mutex g_check_mu;
std::map<std::string, FileCheck> g_checks;
std::atomic<int64_t> g_skipped{0};

// A Parquet file is readable as table t if its footer decodes and names every column of t.
std::string CheckParquetFile(const std::string& path, uint64_t size, const TableDesc& t) {
  if (size < 12) return "shorter than a Parquet file (" + std::to_string(size) + " bytes)";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot open: ") + std::strerror(errno);
  std::string head(4, '\0'), tail(8, '\0');
  bool ok = ::pread(fd, head.data(), 4, 0) == 4 && ::pread(fd, tail.data(), 8, static_cast<off_t>(size - 8)) == 8;
  uint32_t len = 0;
  if (ok) std::memcpy(&len, tail.data(), 4);
  std::string footer;
  if (ok && head == "PAR1" && tail.compare(4, 4, "PAR1") == 0 && len > 0 && len <= size - 12) {
    footer.resize(len);
    ok = ::pread(fd, footer.data(), len, static_cast<off_t>(size - 8 - len)) == static_cast<ssize_t>(len);
  }
  ::close(fd);
  if (!ok) return "unreadable";
  if (head != "PAR1" || tail.compare(4, 4, "PAR1") != 0) return "not a Parquet file (no PAR1 magic)";
  if (footer.empty()) return "damaged Parquet footer length";
  thrift::TVal meta;
  if (!thrift::DecodeStruct(footer.data(), footer.size(), &meta)) return "damaged Parquet footer";
  thrift::TVal* schema = meta.Field(2);
  if (!schema || schema->type != thrift::kList || !meta.Field(3)) return "Parquet footer without schema or rows";
  std::set<std::string> names;
  for (auto& el : schema->items)
    if (thrift::TVal* n = el.Field(4); n && n->type == thrift::kBinary) names.insert(n->s);
  for (const auto& c : t.columns)
    if (!names.count(c.name)) return std::string("foreign schema (no column ") + c.name + ")";
  return "";
}

// The Parquet files a reader may see under dir: committed (no dot-files), not the inputs of a committed
// compaction (its manifest names them and its output exists: readers must never see both), and readable.
std::vector<std::string> VisibleParquetFiles(const std::string& dir, const TableDesc& t) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::set<std::string> hidden;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const auto& p = it->path();
    const std::string name = p.filename().string();
    if (name.rfind(".compact-", 0) == 0 && name.ends_with(".manifest")) {
      std::ifstream in(p);
      std::string output, line;
      std::error_code e2;
      if (std::getline(in, output) && !output.empty() && fs::exists(p.parent_path() / output, e2))
        while (std::getline(in, line))
          if (!line.empty()) hidden.insert((p.parent_path() / line).string());
      continue;
    }
    if (p.extension() != ".parquet" || name[0] == '.' || !it->is_regular_file(ec)) continue;
    files.push_back(p.string());
  }
  std::vector<std::string> out;
  for (auto& f : files) {
    if (hidden.count(f)) continue;
    std::error_code e2;
    const uint64_t size = fs::file_size(f, e2);
    if (e2) continue;  // removed meanwhile (a compaction finished)
    const int64_t mtime = static_cast<int64_t>(fs::last_write_time(f, e2).time_since_epoch().count());
    std::string problem;
    bool fresh = false;
    {
      std::lock_guard<std::mutex> g(g_check_mu);
      auto c = g_checks.find(f);
      if (c != g_checks.end() && c->second.size == size && c->second.mtime == mtime)
        problem = c->second.problem;
      else
        fresh = true;
    }
    if (fresh) {
      problem = CheckParquetFile(f, size, t);
      std::lock_guard<std::mutex> g(g_check_mu);
      g_checks[f] = FileCheck{size, mtime, problem};
      if (!problem.empty()) {
        g_skipped++;
        spdlog::warn("data: skipping {}: {}", f, problem);
      }
    }
    if (problem.empty()) out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int64_t SkippedDataFiles() { return g_skipped.load(); }

std::vector<std::string> ReadableDataFiles(const std::string& data_dir, const TableDesc& t) {
  return VisibleParquetFiles(data_dir + "/" + t.name, t);
}

Status CreateDataViews(Duck& db, const std::string& data_dir) {
  for (const TableDesc* t : StoredTables()) {
    const std::string name = t->name, dir = data_dir + "/" + name;
    std::string sql;
    const std::vector<std::string> files = VisibleParquetFiles(dir, *t);
    if (!files.empty()) {
      std::string list;
      for (const auto& f : files) list += (list.empty() ? "" : ", ") + SqlQuote(f);
      const std::string src = "read_parquet([" + list + "]" + ", hive_partitioning = true, union_by_name = true" +
                              (t->hour_partitioned ? ", hive_types = {'date': DATE, 'hour': INTEGER}" : "") + ")";
      sql = t->merge_select ? "CREATE OR REPLACE VIEW " + name + " AS SELECT " + t->merge_select + " FROM " + src +
                                  " GROUP BY " + t->columns[0].name
                            : "CREATE OR REPLACE VIEW " + name + " AS SELECT * FROM " + src;
    } else if (t->merge_select) {
      std::string cols;
      for (const auto& c : t->columns)
        if (std::string_view(c.name) != "updated")
          cols += std::string(cols.empty() ? "" : ", ") + "NULL::" + SqlType(c.type) + " AS " + c.name;
      sql = "CREATE OR REPLACE VIEW " + name + " AS SELECT " + cols + " WHERE false";
    } else {
      // An empty view with the stored schema (plus the partition columns), so queries still bind.
      std::string cols;
      for (const auto& c : t->columns)
        cols += std::string(cols.empty() ? "" : ", ") + "NULL::" + SqlType(c.type) + " AS " + c.name;
      cols += ", NULL::DATE AS date, NULL::INTEGER AS hour";
      sql = "CREATE OR REPLACE VIEW " + name + " AS SELECT " + cols + " WHERE false";
    }
    Status s = db.Exec(sql);
    if (!s.ok()) return s.Prefixed("creating view " + name);
  }
  return Status::OK();
}

Status Duck::SetProgress(std::function<void(double, int, double)> fn, double after_s, double every_s) {
  progress_ = std::move(fn);
  progress_every_s_ = every_s;
  if (after_s == 2) return Status::OK();  // DuckDB's default wait before it estimates
  return Exec("SET progress_bar_time = " + std::to_string(static_cast<int64_t>(after_s * 1000)));
}

Result<Table> Duck::RunWithProgress(const std::string& sql) {
  duckdb_extracted_statements stmts = nullptr;
  const idx_t n = duckdb_extract_statements(con_, sql.c_str(), &stmts);
  if (n == 0) {
    std::string m = duckdb_extract_statements_error(stmts) ? duckdb_extract_statements_error(stmts) : "no statement";
    duckdb_destroy_extracted(&stmts);
    return Status::InvalidArgument(m);
  }
  Result<Table> last = Table{};
  for (idx_t i = 0; i < n && last.ok(); i++) {
    duckdb_prepared_statement ps = nullptr;
    if (duckdb_prepare_extracted_statement(con_, stmts, i, &ps) != DuckDBSuccess)
      last = Status::InvalidArgument(duckdb_prepare_error(ps) ? duckdb_prepare_error(ps) : "cannot prepare");
    else
      last = Execute(ps);
    duckdb_destroy_prepare(&ps);
  }
  duckdb_destroy_extracted(&stmts);
  return last;
}

// A prepared statement's result; with progress_ set, through the pending API, reporting between tasks.
Result<Table> Duck::Execute(duckdb_prepared_statement ps) {
  duckdb_result res;
  duckdb_state state = DuckDBError;
  duckdb_pending_result pending = nullptr;
  if (!progress_) {
    state = duckdb_execute_prepared(ps, &res);
  } else if (duckdb_pending_prepared(ps, &pending) != DuckDBSuccess) {
    std::string m = duckdb_pending_error(pending) ? duckdb_pending_error(pending) : "cannot execute";
    duckdb_destroy_pending(&pending);
    return Status::Error(m);
  } else {
    const int statement = ++statements_;
    const int64_t t0 = MonoMicros(), every = static_cast<int64_t>(progress_every_s_ * 1e6);
    int64_t next = t0 + every;
    duckdb_pending_state st;
    while ((st = duckdb_pending_execute_task(pending)) == DUCKDB_PENDING_RESULT_NOT_READY ||
           st == DUCKDB_PENDING_NO_TASKS_AVAILABLE) {
      if (st == DUCKDB_PENDING_NO_TASKS_AVAILABLE) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (const int64_t now = MonoMicros(); now >= next) {
        next = now + every;
        progress_(duckdb_query_progress(con_).percentage, statement, static_cast<double>(now - t0) / 1e6);
      }
    }
    state = duckdb_execute_pending(pending, &res);  // also after a task error: res carries it and its type
    duckdb_destroy_pending(&pending);
  }
  Result<Table> out = state == DuckDBSuccess ? Result<Table>(ToTable(res)) : Result<Table>(ResultError(res));
  duckdb_destroy_result(&res);
  return out;
}

std::function<void(double, int, double)> Duck::ProgressPrinter(std::string what) {
  return [what = std::move(what)](double pct, int statement, double secs) {
    if (pct >= 0)
      std::fprintf(stderr, "[%s] statement %d: %.0f%% (%s)\n", what.c_str(), statement, pct, FormatSpan(secs).c_str());
    else
      std::fprintf(stderr, "[%s] statement %d: running (%s)\n", what.c_str(), statement, FormatSpan(secs).c_str());
  };
}

}  // namespace iotpipe
