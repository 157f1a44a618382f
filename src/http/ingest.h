// HTTP ingestion endpoints (sources/http_source.h does the queueing and the acknowledgement):
//   POST /api/ingest[?precision=s|ms|us|ns]   JSON lines (application/x-ndjson, application/jsonl),
//        a JSON array or object (application/json), InfluxDB line protocol (text/plain).
//        200 {"records","accepted","dead_letters","readings"} once every record is durable.
//   POST /api/v2/write?org=&bucket=&precision=  InfluxDB v2 write path (line protocol, precision
//        default ns, gzip bodies through cpp-httplib): 204 once durable, errors as {"code","message"}.
//   GET /ping  204, InfluxDB's liveness probe.
// Statuses: 400 body not JSON / bad precision, 413 body over the limit, 415 other content types,
// 429 (Retry-After) ingest queue full, 503 (Retry-After) shutting down or not durable in time.
// Authentication (Bearer or "Token <t>", InfluxDB style) is the server's pre-routing handler's.
#pragma once
#include <string>

namespace httplib {
class Server;
}

namespace iotpipe {
class HttpSource;
namespace http {

// Registers the routes on s (before it listens); src outlives the server.
void RegisterIngest(httplib::Server& s, HttpSource* src);
// The ingestion paths (they take non-JSON bodies; the server's JSON-only rule skips them).
bool IsIngestPath(const std::string& path);

}  // namespace http
}  // namespace iotpipe
