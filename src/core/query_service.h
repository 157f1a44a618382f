// A read-only SQL door to the data directory, shared by `iotpipe query` and POST /api/query.
//
// Layers, each sufficient against the writes a hostile probe found (EXPLAIN ANALYZE COPY ..., COPY,
// checkpoint(), overwriting Parquet files or the detector checkpoint):
//   1. CheckReadOnly (core/query_guard.h): DuckDB's parser must see one SELECT tree (or EXPLAIN of one),
//      with only reader table functions; the statement that runs is rebuilt from what passed.
//   2. The rebuilt statement is prepared and run only if DuckDB types it SELECT (or EXPLAIN).
//   3. The connection reaches only the data directory (enable_external_access = false,
//      allowed_directories), loads no extension, and its configuration is locked.
// Limits: bytes of SQL, rows returned, wall time (interrupted), DuckDB memory limit.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "core/duck.h"

namespace iotpipe {

class QueryService {
 public:
  // create_dir: make data_dir first (else a missing one reads as empty views). row_limit 0 = none, timeout_s 0 = none.
  static Result<std::unique_ptr<QueryService>> Open(const std::string& data_dir, size_t row_limit, double timeout_s,
                                                    size_t max_bytes, bool create_dir = true);
  struct Answer {
    Table table;
    bool truncated = false;
  };
  // Refuses anything but one read-only statement over the data: refusals are kPermissionDenied or
  // kTimedOut ("query refused: ..."), SQL errors kInvalidArgument.
  Result<Answer> Run(const std::string& sql);
  // For internal queries (readings history): built by iotpipe, not by a user; same limits.
  Result<Table> Internal(const std::string& sql);
  // Progress of long statements (core/duck.h), for the command line; the HTTP endpoint leaves it off.
  Status SetProgress(std::function<void(double, int, double)> fn);

 private:
  QueryService() = default;
  Result<Table> WithTimeout(const std::string& sql, bool user, bool explain);
  std::unique_ptr<Duck> db_;
  std::string data_dir_;
  size_t row_limit_ = 0, max_bytes_ = 0;
  double timeout_s_ = 0;
  std::mutex mu_;
  int64_t views_mono_ = 0;
};

}  // namespace iotpipe
