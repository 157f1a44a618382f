// iotpipe query: read-only SQL over the stored data (views sensor_readings, dead_letters, alerts).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/duck.h"
#include "core/query_service.h"

namespace iotpipe::cli {

static std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

void PrintTable(const Table& t, const std::string& format) {
  if (format == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (auto& row : t.rows) {
      nlohmann::json o = nlohmann::json::object();
      for (size_t c = 0; c < t.columns.size(); c++) {
        if (!row[c]) {
          o[t.columns[c]] = nullptr;
          continue;
        }
        if (t.types[c] == DUCKDB_TYPE_BOOLEAN)
          o[t.columns[c]] = *row[c] == "true";
        else if (IsNumericType(t.types[c])) {
          try {
            if (t.types[c] == DUCKDB_TYPE_FLOAT || t.types[c] == DUCKDB_TYPE_DOUBLE ||
                t.types[c] == DUCKDB_TYPE_DECIMAL)
              o[t.columns[c]] = std::stod(*row[c]);
            else
              o[t.columns[c]] = std::stoll(*row[c]);
          } catch (...) {
            o[t.columns[c]] = *row[c];  // inf, nan, hugeint beyond int64
          }
        } else
          o[t.columns[c]] = *row[c];
      }
      arr.push_back(std::move(o));
    }
    std::printf("%s\n", arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  if (format == "csv") {
    for (size_t c = 0; c < t.columns.size(); c++) std::printf("%s%s", c ? "," : "", Csv(t.columns[c]).c_str());
    std::printf("\n");
    for (auto& row : t.rows) {
      for (size_t c = 0; c < row.size(); c++) std::printf("%s%s", c ? "," : "", row[c] ? Csv(*row[c]).c_str() : "");
      std::printf("\n");
    }
    return;
  }
  std::vector<size_t> w(t.columns.size());
  for (size_t c = 0; c < w.size(); c++) w[c] = t.columns[c].size();
  for (auto& row : t.rows)
    for (size_t c = 0; c < w.size(); c++) w[c] = std::max(w[c], row[c] ? row[c]->size() : 4);
  auto line = [&] {
    for (size_t c = 0; c < w.size(); c++) std::printf("+%s", std::string(w[c] + 2, '-').c_str());
    std::printf("+\n");
  };
  line();
  for (size_t c = 0; c < w.size(); c++) std::printf("| %-*s ", static_cast<int>(w[c]), t.columns[c].c_str());
  std::printf("|\n");
  line();
  for (auto& row : t.rows) {
    for (size_t c = 0; c < w.size(); c++) {
      const char* v = row[c] ? row[c]->c_str() : "NULL";
      if (IsNumericType(t.types[c]))
        std::printf("| %*s ", static_cast<int>(w[c]), v);
      else
        std::printf("| %-*s ", static_cast<int>(w[c]), v);
    }
    std::printf("|\n");
  }
  line();
  std::printf("(%zu row%s)\n", t.rows.size(), t.rows.size() == 1 ? "" : "s");
}

void AddQuery(CLI::App& app) {
  auto* cmd = app.add_subcommand("query", "Run read-only SQL over the stored data");
  auto data_dir = std::make_shared<std::string>("data");
  auto format = std::make_shared<std::string>("table");
  auto sql = std::make_shared<std::string>();
  cmd->add_option("--data-dir", *data_dir, "Data directory");
  cmd->add_option("--format", *format, "Output format")->check(CLI::IsMember({"table", "csv", "json"}));
  cmd->add_option("sql", *sql, "SQL over views sensor_readings, dead_letters, alerts")->required();
  auto timeout = std::make_shared<double>(0);
  cmd->add_option("--timeout", *timeout, "Interrupt the query after this many seconds (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([data_dir, format, sql, timeout] {
    // The same read-only door as POST /api/query (core/query_service.h), without its row limit.
    auto q = QueryService::Open(*data_dir, 0, *timeout, 0, /*create_dir=*/false);
    if (!q.ok()) Fail(q.status().message());
    Check((*q)->SetProgress(Duck::ProgressPrinter("query")), "query progress");
    auto a = (*q)->Run(*sql);
    if (!a.ok())
      Fail(a.status().IsPermissionDenied() || a.status().IsTimedOut() ? a.status().message()
                                                                      : "query failed: " + a.status().message());
    PrintTable(a->table, *format);
    Exit(0);
  });
}

}  // namespace iotpipe::cli
