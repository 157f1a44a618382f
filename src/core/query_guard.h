// Read-only guard for user SQL: only SELECT/EXPLAIN statements, a single statement.
#pragma once
#include <string>

#include "core/duck.h"

namespace iotpipe {

Status CheckReadOnly(Duck& db, const std::string& sql);

}  // namespace iotpipe
