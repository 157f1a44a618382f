#include "http/ingest.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "parse/timestamp.h"
#include "sources/http_source.h"

namespace iotpipe::http {

namespace {

using json = nlohmann::json;

constexpr const char* kIngest = "/api/ingest";
constexpr const char* kInfluxWrite = "/api/v2/write";

// The media type without parameters, lower case ("text/plain; charset=utf-8" -> "text/plain").
std::string MediaType(const httplib::Request& req) {
  std::string t = req.get_header_value("Content-Type");
  t = t.substr(0, t.find(';'));
  t.erase(std::remove_if(t.begin(), t.end(), [](unsigned char c) { return std::isspace(c); }), t.end());
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  return t;
}

std::optional<BodyFormat> FormatOf(const std::string& media) {
  if (media == "application/x-ndjson" || media == "application/jsonl" || media == "application/x-jsonlines" ||
      media == "application/json")
    return BodyFormat::kJson;
  if (media == "text/plain") return BodyFormat::kLineProtocol;
  return std::nullopt;
}

// Errors: ours {"error"}, InfluxDB's {"code","message"} (what its clients print).
void Fail(httplib::Response& res, bool influx, int status, const std::string& msg, int retry_after_s = 0) {
  static const std::map<int, std::string> kCodes = {{400, "invalid"},           {401, "unauthorized"},
                                                    {413, "too large"},         {415, "unsupported media type"},
                                                    {429, "too many requests"}, {503, "unavailable"}};
  res.status = status;
  if (retry_after_s > 0) res.set_header("Retry-After", std::to_string(retry_after_s));
  auto code = kCodes.find(status);
  json j = influx ? json{{"code", code == kCodes.end() ? "internal error" : code->second}, {"message", msg}}
                  : json{{"error", msg}};
  res.set_content(j.dump(), "application/json");
}

// Reads the body (Content-Length or chunked; gzip already inflated by cpp-httplib) up to limit bytes.
bool ReadLimited(const httplib::ContentReader& reader, size_t limit, std::string* body) {
  size_t total = 0;
  reader([&](const char* data, size_t n) {
    total += n;
    if (total <= limit) body->append(data, n);
    return total <= limit;
  });
  return total <= limit;
}

void Answer(httplib::Response& res, bool influx, const IngestReply& r) {
  switch (r.code) {
    case IngestReply::kDurable:
      if (influx) {
        res.status = 204;
        return;
      }
      res.status = 200;
      res.set_content(json{{"records", r.records},
                           {"accepted", r.records - r.dead_letters},
                           {"dead_letters", r.dead_letters},
                           {"readings", r.readings}}
                          .dump(),
                      "application/json");
      return;
    case IngestReply::kBadBody:
      return Fail(res, influx, 400, r.error);
    case IngestReply::kQueueFull:
      return Fail(res, influx, 429, r.error, 1);
    case IngestReply::kUnavailable:
    case IngestReply::kTimeout:
      return Fail(res, influx, 503, r.error, 5);
  }
}

// The whole exchange once the format is known: precision, body, queue, answer.
void Handle(HttpSource* src, const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
            BodyFormat format, bool influx) {
  TimeUnit unit = influx ? TimeUnit::kNanos : TimeUnit::kAuto;  // InfluxDB's default precision is ns
  if (req.has_param("precision") && !ParseTimeUnit(req.get_param_value("precision"), &unit))
    return Fail(res, influx, 400, "precision must be ns, us, ms or s");
  const size_t limit = src->options().max_body_bytes;
  std::string body;
  if (!ReadLimited(reader, limit, &body))
    return Fail(res, influx, 413, "request body longer than " + std::to_string(limit) + " bytes");
  Answer(res, influx, src->Ingest(body, format, unit));
}

}  // namespace

bool IsIngestPath(const std::string& path) { return path == kIngest || path == kInfluxWrite; }

void RegisterIngest(httplib::Server& s, HttpSource* src) {
  // A waiting request holds a worker until its records are durable (about a flush, <= 1 s): more
  // workers than httplib's default 8, so concurrent writers do not starve the dashboard and /metrics.
  s.new_task_queue = [] { return new httplib::ThreadPool(64); };
  s.set_payload_max_length(std::max<size_t>(src->options().max_body_bytes, 8u << 20));
  s.Post(kIngest, [src](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    const std::string media = MediaType(req);
    auto format = FormatOf(media);
    if (!format)
      return Fail(res, false, 415,
                  "Content-Type '" + media +
                      "': expected application/x-ndjson, application/jsonl, application/json or text/plain "
                      "(line protocol)");
    Handle(src, req, res, reader, *format, false);
  });
  // InfluxDB's liveness probe, which some clients send before writing.
  s.Get("/ping", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("X-Influxdb-Build", "iotpipe");
  });
  s.Post(kInfluxWrite,
         [src](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
           Handle(src, req, res, reader, BodyFormat::kLineProtocol, true);  // any Content-Type, as InfluxDB
         });
}

}  // namespace iotpipe::http
