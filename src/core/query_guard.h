// Read-only guard for user SQL, by construction rather than by keyword list.
//
// The statement is parsed by DuckDB itself (json_serialize_sql, which serializes SELECT trees only) and
// the text that finally runs is built from what passed:
//   - a plain SELECT (CTEs, set operations, subqueries, DESCRIBE/SHOW/SUMMARIZE, which DuckDB parses as
//     SELECTs) runs as itself;
//   - EXPLAIN <select> runs as "EXPLAIN " + <select>; EXPLAIN ANALYZE (which executes its statement) and
//     EXPLAIN of anything but a SELECT are refused;
//   - every table function in the tree must be on a small allow-list of readers (read_parquet, range, ...),
//     so checkpoint(), query('...') and friends are refused.
// Anything DuckDB cannot serialize as a SELECT tree is refused. The caller still runs the result on a
// connection restricted to the data directory (see QueryService).
#pragma once
#include <string>

#include "core/duck.h"

namespace iotpipe {

struct ReadOnlyStatement {
  std::string sql;       // what to run (a SELECT, or "EXPLAIN " + a SELECT)
  bool explain = false;  // the statement is a plain EXPLAIN (never ANALYZE)
};

// Refusals are kPermissionDenied ("read-only: ..."); an unparsable statement kInvalidArgument ("SQL error: ...").
Result<ReadOnlyStatement> CheckReadOnly(Duck& db, const std::string& sql);

}  // namespace iotpipe
