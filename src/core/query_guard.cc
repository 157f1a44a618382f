#include "core/query_guard.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

namespace iotpipe {

namespace {

// Table functions that only read (within the directories the connection may reach) or generate rows.
const std::set<std::string>& AllowedTableFunctions() {
  static const std::set<std::string> k = {"read_parquet",
                                          "parquet_scan",
                                          "parquet_metadata",
                                          "parquet_schema",
                                          "parquet_file_metadata",
                                          "parquet_kv_metadata",
                                          "range",
                                          "generate_series",
                                          "unnest",
                                          "glob",
                                          "read_csv",
                                          "read_csv_auto",
                                          "read_json",
                                          "read_json_auto",
                                          "read_ndjson",
                                          "read_ndjson_auto",
                                          "pragma_table_info",
                                          "pragma_show",
                                          "duckdb_columns",
                                          "duckdb_tables",
                                          "duckdb_views",
                                          "duckdb_types",
                                          "duckdb_functions"};
  return k;
}

// Skips whitespace and SQL comments (-- to end of line, /* ... */) from position i.
size_t SkipBlank(const std::string& s, size_t i) {
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i]))) {
      i++;
    } else if (s.compare(i, 2, "--") == 0) {
      size_t e = s.find('\n', i);
      i = e == std::string::npos ? s.size() : e + 1;
    } else if (s.compare(i, 2, "/*") == 0) {
      size_t e = s.find("*/", i + 2);
      i = e == std::string::npos ? s.size() : e + 2;
    } else {
      break;
    }
  }
  return i;
}

// True if the word at position i (case-insensitive) is kw, followed by a non-identifier character.
bool WordAt(const std::string& s, size_t i, const char* kw) {
  size_t n = std::char_traits<char>::length(kw);
  if (s.size() < i + n) return false;
  for (size_t k = 0; k < n; k++)
    if (std::tolower(static_cast<unsigned char>(s[i + k])) != kw[k]) return false;
  return i + n == s.size() || !(std::isalnum(static_cast<unsigned char>(s[i + n])) || s[i + n] == '_');
}

void CollectTableFunctions(const nlohmann::json& j, std::vector<std::string>& out) {
  if (j.is_object()) {
    auto t = j.find("type");
    if (t != j.end() && t->is_string() && *t == "TABLE_FUNCTION") {
      auto f = j.find("function");
      if (f != j.end() && f->is_object() && f->contains("function_name") && (*f)["function_name"].is_string())
        out.push_back((*f)["function_name"].get<std::string>());
      else
        out.push_back("?");
    }
    for (auto& [k, v] : j.items()) CollectTableFunctions(v, out);
  } else if (j.is_array()) {
    for (auto& v : j) CollectTableFunctions(v, out);
  }
}

// Asks DuckDB's parser whether sql is exactly one SELECT tree; returns the refusal otherwise.
Status CheckSelectTree(Duck& db, const std::string& sql) {
  duckdb_prepared_statement ps = nullptr;
  if (duckdb_prepare(db.conn(), "SELECT json_serialize_sql($1::VARCHAR)", &ps) != DuckDBSuccess) {
    duckdb_destroy_prepare(&ps);
    return Status::PermissionDenied("read-only: the SQL parser is unavailable (json_serialize_sql)");
  }
  duckdb_bind_varchar_length(ps, 1, sql.data(), sql.size());
  duckdb_result res;
  bool ran = duckdb_execute_prepared(ps, &res) == DuckDBSuccess;
  std::string text;
  if (ran && duckdb_row_count(&res) == 1 && !duckdb_value_is_null(&res, 0, 0)) {
    char* v = duckdb_value_varchar(&res, 0, 0);
    if (v) text = v;
    duckdb_free(v);
  }
  duckdb_destroy_result(&res);
  duckdb_destroy_prepare(&ps);
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!ran || j.is_discarded() || !j.is_object())
    return Status::PermissionDenied("read-only: cannot parse the statement");
  if (j.value("error", true)) {
    std::string m = j.value("error_message", std::string("cannot parse"));
    if (m.find("Only SELECT") != std::string::npos)
      return Status::PermissionDenied("read-only: only SELECT queries are allowed");
    return Status::InvalidArgument("SQL error: " + m);
  }
  if (!j.contains("statements") || !j["statements"].is_array() || j["statements"].size() != 1)
    return Status::PermissionDenied("read-only: only one statement is allowed");
  std::vector<std::string> fns;
  CollectTableFunctions(j["statements"], fns);
  for (auto& f : fns) {
    std::string lower = f;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!AllowedTableFunctions().count(lower))
      return Status::PermissionDenied("read-only: the table function " + f + "() is not allowed");
  }
  return Status::OK();
}

}  // namespace

Result<ReadOnlyStatement> CheckReadOnly(Duck& db, const std::string& sql) {
  // One statement, as DuckDB splits them.
  duckdb_extracted_statements stmts = nullptr;
  idx_t n = duckdb_extract_statements(db.conn(), sql.c_str(), &stmts);
  if (n == 0) {
    std::string err =
        stmts && duckdb_extract_statements_error(stmts) ? duckdb_extract_statements_error(stmts) : "cannot parse";
    duckdb_destroy_extracted(&stmts);
    return Status::InvalidArgument("SQL error: " + err);
  }
  duckdb_destroy_extracted(&stmts);
  if (n > 1) return Status::PermissionDenied("read-only: only one statement is allowed");

  ReadOnlyStatement out;
  size_t at = SkipBlank(sql, 0);
  std::string body = sql;
  if (WordAt(sql, at, "explain")) {
    // Only "EXPLAIN <select>": whatever follows the keyword must itself be a SELECT tree, so
    // EXPLAIN ANALYZE / EXPLAIN (ANALYZE) / EXPLAIN COPY ... all fail the check below.
    body = sql.substr(at + 7);
    out.explain = true;
  }
  Status s = CheckSelectTree(db, body);
  if (!s.ok()) {
    if (out.explain)
      return Status::PermissionDenied("read-only: only EXPLAIN of a SELECT is allowed (not EXPLAIN ANALYZE)");
    return s;
  }
  out.sql = out.explain ? "EXPLAIN " + body : body;
  return out;
}

}  // namespace iotpipe
