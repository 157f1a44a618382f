// The declared input mapping as flags (and, through cli/config.cc, as a [<command>.input] table).
#include "cli/common.h"

namespace iotpipe::cli {

void AddInputOptions(CLI::App* app, InputMapping* m) {
  auto format = std::make_shared<std::string>("original");
  app->add_option_function<std::string>(
         "--input-format,--format",
         [m](const std::string& s) {
           if (!ParseInputFormat(s, &m->format)) throw CLI::ValidationError("--input-format", "unknown format " + s);
         },
         "Record shape: original (the wire record, fast path), json (declared JSON Pointers), telegraf, influx "
         "(line protocol), flat (device JSON), csv (header line + rows)")
      ->check(CLI::IsMember({"original", "json", "telegraf", "influx", "line-protocol", "flat", "csv"}))
      ->default_str("original");
  app->add_option("--input-id", m->id,
                  "JSON Pointer (csv: column) of the sensor id, or of the device id (multi-field)");
  app->add_option("--input-time", m->time,
                  "JSON Pointer (csv: column) of the event time, or \"arrival\" to stamp records when decoded");
  app->add_option("--input-time-unit", m->time_unit, "Unit of numeric times: auto (by magnitude), s, ms, us, ns")
      ->check(CLI::IsMember({"auto", "s", "ms", "us", "ns"}));
  app->add_option("--input-value", m->value, "JSON Pointer (csv: column) of the value; \"-\" for multi-field records");
  app->add_option("--input-label", m->label, "JSON Pointer (csv: column) of the optional boolean label");
  app->add_option("--input-asset", m->asset, "JSON Pointer (csv: column) of the optional asset id");
  app->add_option(
      "--input-unit", m->unit,
      "JSON Pointer of the unit: a string, or an object of units by quantity (stored in the sensors dataset)");
  app->add_option(
      "--input-tags", m->tags,
      "JSON Pointer of the tags object (stored in the sensors dataset; telegraf: also part of the device id)");
  app->add_option("--input-fields", m->fields,
                  "JSON Pointer of the object holding the quantities (multi-field); \"\" = top level");
  app->add_option("--input-quantities", m->quantities,
                  "Only these quantities (comma-separated); default: every numeric field")
      ->delimiter(',');
  app->add_option("--input-pattern", m->pattern, "Only quantities whose name matches this glob (* and ?)");
  app->add_option("--input-separator", m->separator, "Between device and quantity in sensor ids (device/quantity)");
  app->add_option_function<std::string>(
      "--input-csv-delimiter",
      [m](const std::string& s) {
        if (s.size() != 1) throw CLI::ValidationError("--input-csv-delimiter", "one character");
        m->csv_delimiter = s[0];
      },
      "CSV cell delimiter (one character)");
  (void)format;
}

}  // namespace iotpipe::cli
