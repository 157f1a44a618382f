// Helpers shared by the server's route files (server.cc, fleet_api.cc): JSON replies, parameters, bodies.
#pragma once
#include <httplib.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace iotpipe::http {

// JSON request bodies are small; the bound holds for chunked bodies too (read here, not by httplib,
// whose payload limit this version applies to Content-Length bodies only).
constexpr size_t kMaxJsonBody = 1 << 20;
std::string BodyTooLong();
// Reads the body (Content-Length or chunked) up to limit bytes; false as soon as it is longer.
bool ReadBody(const httplib::ContentReader& reader, size_t limit, std::string* body);

std::string ReadWholeFile(const std::string& path, bool* ok);
// A time parameter (ISO 8601 UTC or epoch seconds) in µs; dflt when absent or empty; *err when bad.
int64_t ParseTimeParam(const httplib::Request& req, const char* key, int64_t dflt, std::string* err);
// An integer parameter clamped to [lo, hi]; dflt when absent or not a number.
int64_t IntParam(const httplib::Request& req, const char* key, int64_t dflt, int64_t lo, int64_t hi);
void SendJson(httplib::Response& res, const nlohmann::json& j, int status = 200);
void SendError(httplib::Response& res, int status, const std::string& msg);

}  // namespace iotpipe::http
