#include "core/query_service.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/clock.h"
#include "core/query_guard.h"

namespace iotpipe {

Result<std::unique_ptr<QueryService>> QueryService::Open(const std::string& data_dir, size_t row_limit,
                                                         double timeout_s, size_t max_bytes, bool create_dir) {
  std::unique_ptr<QueryService> q(new QueryService());
  std::error_code ec;
  if (create_dir) std::filesystem::create_directories(data_dir, ec);
  auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(data_dir, ec), ec).string();
  if (abs.empty()) return Status::Error("query: cannot resolve data dir '" + data_dir + "'");
  q->data_dir_ = abs;
  q->row_limit_ = row_limit;
  q->timeout_s_ = timeout_s;
  q->max_bytes_ = max_bytes;
  auto db = Duck::Open("", 1, {{"autoinstall_known_extensions", "false"}, {"autoload_known_extensions", "false"}});
  if (!db.ok()) return db.status();
  q->db_ = std::move(db.value());
  // Only the data directory is reachable; then lock the configuration so SQL cannot undo it.
  for (std::string sql :
       {"SET allowed_directories = [" + SqlQuote(abs + "/") + "]", std::string("SET enable_external_access = false"),
        std::string("SET memory_limit = '1GB'"), std::string("SET lock_configuration = true")}) {
    Status s = q->db_->Exec(sql);
    if (!s.ok()) return Status::Error("query: " + sql + ": " + s.message());
  }
  Status s = CreateDataViews(*q->db_, abs);
  if (!s.ok()) return s;
  q->views_mono_ = MonoMicros();
  return q;
}

Result<Table> QueryService::WithTimeout(const std::string& sql, bool user, bool explain) {
  // Fresh views at most every 2 s (new files, compactions); retry once if a file vanished.
  if (MonoMicros() - views_mono_ > 2000000) {
    Status s = CreateDataViews(*db_, data_dir_);
    if (!s.ok()) return s;
    views_mono_ = MonoMicros();
  }
  auto run = [&] {
    return user ? db_->QueryOfType(sql, explain ? DUCKDB_STATEMENT_TYPE_EXPLAIN : DUCKDB_STATEMENT_TYPE_SELECT)
                : db_->Query(sql);
  };
  std::mutex m;
  std::condition_variable cv;
  bool done = false, fired = false;
  std::thread watchdog;
  if (timeout_s_ > 0) {
    watchdog = std::thread([&] {
      std::unique_lock<std::mutex> lk(m);
      if (!cv.wait_for(lk, std::chrono::microseconds(static_cast<int64_t>(timeout_s_ * 1e6)), [&] { return done; })) {
        fired = true;
        db_->Interrupt();
      }
    });
  }
  auto t = run();
  if (!t.ok() && t.status().IsNotFound()) {  // a compaction removed a file between listing and reading
    Status s = CreateDataViews(*db_, data_dir_);
    views_mono_ = MonoMicros();
    if (s.ok()) t = run();
  }
  {
    std::lock_guard<std::mutex> lk(m);
    done = true;
  }
  cv.notify_all();
  if (watchdog.joinable()) watchdog.join();
  if (fired && !t.ok()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3g", timeout_s_);
    return Status::TimedOut(std::string("query refused: exceeded the time limit of ") + buf + " s and was interrupted");
  }
  return t;
}

Result<Table> QueryService::Internal(const std::string& sql) {
  std::lock_guard<std::mutex> g(mu_);
  return WithTimeout(sql, false, false);
}

static const char* StatementName(duckdb_statement_type t) {
  switch (t) {
    case DUCKDB_STATEMENT_TYPE_INSERT:
      return "INSERT";
    case DUCKDB_STATEMENT_TYPE_UPDATE:
      return "UPDATE";
    case DUCKDB_STATEMENT_TYPE_DELETE:
      return "DELETE";
    case DUCKDB_STATEMENT_TYPE_CREATE:
      return "CREATE";
    case DUCKDB_STATEMENT_TYPE_DROP:
      return "DROP";
    case DUCKDB_STATEMENT_TYPE_ALTER:
      return "ALTER";
    case DUCKDB_STATEMENT_TYPE_COPY:
      return "COPY";
    case DUCKDB_STATEMENT_TYPE_ATTACH:
      return "ATTACH";
    case DUCKDB_STATEMENT_TYPE_DETACH:
      return "DETACH";
    case DUCKDB_STATEMENT_TYPE_LOAD:
      return "INSTALL/LOAD";
    case DUCKDB_STATEMENT_TYPE_SET:
      return "SET";
    case DUCKDB_STATEMENT_TYPE_PRAGMA:
      return "PRAGMA";
    case DUCKDB_STATEMENT_TYPE_EXPORT:
      return "EXPORT";
    case DUCKDB_STATEMENT_TYPE_TRANSACTION:
      return "transaction";
    case DUCKDB_STATEMENT_TYPE_CALL:
      return "CALL";
    case DUCKDB_STATEMENT_TYPE_VACUUM:
      return "VACUUM";
    case DUCKDB_STATEMENT_TYPE_VARIABLE_SET:
      return "SET VARIABLE";
    default:
      return nullptr;
  }
}

// The first word of a statement, upper-cased (for a clear refusal before DuckDB binds anything).
static std::string FirstWord(const std::string& sql) {
  size_t b = 0;
  while (b < sql.size() && (std::isspace(static_cast<unsigned char>(sql[b])) || sql[b] == '(')) b++;
  size_t e = b;
  while (e < sql.size() && std::isalpha(static_cast<unsigned char>(sql[e]))) e++;
  std::string w = sql.substr(b, e - b);
  std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::toupper(c); });
  return w;
}

Result<QueryService::Answer> QueryService::Run(const std::string& sql_in) {
  std::string sql = sql_in;
  if (max_bytes_ && sql.size() > max_bytes_)
    return Status::PermissionDenied("query refused: " + std::to_string(sql.size()) +
                                    " bytes is longer than the limit of " + std::to_string(max_bytes_));
  while (!sql.empty() && (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';')) sql.pop_back();
  if (sql.empty()) return Status::PermissionDenied("query refused: empty");
  // Statements that are never reads, named by their first word: only for a clear message. The
  // guard below is the authority.
  static const char* kNever[] = {"COPY",   "ATTACH",   "DETACH", "INSTALL",    "LOAD",   "FORCE",  "INSERT",   "UPDATE",
                                 "DELETE", "CREATE",   "DROP",   "ALTER",      "SET",    "RESET",  "PRAGMA",   "EXPORT",
                                 "IMPORT", "CALL",     "VACUUM", "CHECKPOINT", "BEGIN",  "COMMIT", "ROLLBACK", "ABORT",
                                 "USE",    "TRUNCATE", "MERGE",  "UPSERT",     "REPLACE"};
  const std::string w = FirstWord(sql);
  for (const char* k : kNever)
    if (w == k)
      return Status::PermissionDenied("query refused: " + w + " statements are not allowed (read-only: SELECT only)");
  std::lock_guard<std::mutex> g(mu_);
  // Name the kind of statement refused (a message only; the guard below is the authority).
  duckdb_extracted_statements stmts = nullptr;
  if (duckdb_extract_statements(db_->conn(), sql.c_str(), &stmts) == 1) {
    duckdb_prepared_statement ps = nullptr;
    if (duckdb_prepare_extracted_statement(db_->conn(), stmts, 0, &ps) == DuckDBSuccess) {
      const char* kind = StatementName(duckdb_prepared_statement_type(ps));
      duckdb_destroy_prepare(&ps);
      duckdb_destroy_extracted(&stmts);
      if (kind)
        return Status::PermissionDenied(std::string("query refused: ") + kind +
                                        " statements are not allowed (read-only: SELECT only)");
    } else {
      std::string err = duckdb_prepare_error(ps) ? duckdb_prepare_error(ps) : "cannot prepare";
      duckdb_destroy_prepare(&ps);
      duckdb_destroy_extracted(&stmts);
      if (err.find("Permission Error") != std::string::npos)  // DuckDB's prepare reports no error type
        return Status::PermissionDenied("query refused: only the data directory can be read (" +
                                        err.substr(0, err.find('\n')) + ")");
      return Status::InvalidArgument("SQL error: " + err);
    }
  } else {
    duckdb_destroy_extracted(&stmts);
  }
  auto guard = CheckReadOnly(*db_, sql);
  if (!guard.ok()) {
    if (!guard.status().IsPermissionDenied()) return guard.status();  // a syntax error, not a refusal (HTTP 400)
    return Status::PermissionDenied("query refused: " + guard.status().message());
  }
  // A row limit without materialising more: wrap SELECTs (the wrapper is itself a SELECT, so a statement
  // that is not one cannot be smuggled through it); EXPLAIN output is small.
  std::string run = guard->sql;
  if (!guard->explain && row_limit_)
    run = "SELECT * FROM (\n" + guard->sql + "\n) AS q LIMIT " + std::to_string(row_limit_ + 1);
  auto t = WithTimeout(run, true, guard->explain);
  if (!t.ok()) {
    const Status& st = t.status();
    if (st.IsPermissionDenied() && st.message().rfind("read-only:", 0) == 0)
      return Status::PermissionDenied("query refused: " + st.message());
    if (st.IsPermissionDenied())
      return Status::PermissionDenied("query refused: only the data directory can be read (" +
                                      st.message().substr(0, st.message().find('\n')) + ")");
    return st;
  }
  Answer a;
  a.table = std::move(t.value());
  if (row_limit_ && a.table.rows.size() > row_limit_) {
    a.table.rows.resize(row_limit_);
    a.truncated = true;
  }
  return a;
}

Status QueryService::SetProgress(std::function<void(double, int, double)> fn) {
  std::lock_guard<std::mutex> g(mu_);
  return db_->SetProgress(std::move(fn));
}

}  // namespace iotpipe
