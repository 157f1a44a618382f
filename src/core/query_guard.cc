#include "core/query_guard.h"

namespace iotpipe {

Status CheckReadOnly(Duck& db, const std::string& sql) {
  duckdb_extracted_statements stmts = nullptr;
  idx_t n = duckdb_extract_statements(db.conn(), sql.c_str(), &stmts);
  if (n == 0) {
    std::string err = stmts ? duckdb_extract_statements_error(stmts) : "cannot parse";
    duckdb_destroy_extracted(&stmts);
    return Status::Error("SQL error: " + err);
  }
  if (n > 1) {
    duckdb_destroy_extracted(&stmts);
    return Status::Error("only one statement is allowed");
  }
  duckdb_prepared_statement ps = nullptr;
  if (duckdb_prepare_extracted_statement(db.conn(), stmts, 0, &ps) != DuckDBSuccess) {
    std::string err = duckdb_prepare_error(ps) ? duckdb_prepare_error(ps) : "cannot prepare";
    duckdb_destroy_prepare(&ps);
    duckdb_destroy_extracted(&stmts);
    return Status::Error("SQL error: " + err);
  }
  duckdb_statement_type t = duckdb_prepared_statement_type(ps);
  duckdb_destroy_prepare(&ps);
  duckdb_destroy_extracted(&stmts);
  if (t != DUCKDB_STATEMENT_TYPE_SELECT && t != DUCKDB_STATEMENT_TYPE_EXPLAIN)
    return Status::Error("read-only: only SELECT queries are allowed");
  return Status::OK();
}

}  // namespace iotpipe
