// MQTT topic templates: how a message becomes the record the input mapping reads. (The source
// against a real broker, its WAL and acknowledgements: tests/mqtt_integration_test.cc.)
#include "sources/mqtt_source.h"

#include <gtest/gtest.h>

namespace iotpipe {
namespace {

MqttSourceOptions Opt(const std::string& tmpl, const std::string& id_key = "sensor_id") {
  MqttSourceOptions o;
  o.topic_template = tmpl;
  o.id_key = id_key;
  return o;
}

constexpr int64_t kArrival = 1764770000123456;

TEST(MqttTransform, PlainNumberBecomesAnOriginalRecordStampedOnArrival) {
  EXPECT_EQ(
      MqttSource::Transform(Opt("sensors/{device}/{quantity}"), "sensors/pump-3/temperature", " 61.25\n", kArrival),
      R"({"sensor_id":"pump-3/temperature","timestamp":1764770000.123456,"value":61.25})");
  EXPECT_EQ(MqttSource::Transform(Opt("s/{sensor}"), "s/t1", "-4e2", kArrival),
            R"({"sensor_id":"t1","timestamp":1764770000.123456,"value":-4e2})");
}

TEST(MqttTransform, JsonObjectGetsTheIdMemberFirst) {
  EXPECT_EQ(MqttSource::Transform(Opt("sensors/{device}/{quantity}"), "sensors/p/t", R"({"timestamp": 1, "value": 2})",
                                  kArrival),
            R"({"sensor_id":"p/t","timestamp": 1, "value": 2})");
  EXPECT_EQ(MqttSource::Transform(Opt("z2m/{device}", "device"), "z2m/kitchen", R"({"temperature": 21})", kArrival),
            R"({"device":"kitchen","temperature": 21})");
  EXPECT_EQ(MqttSource::Transform(Opt("z2m/{device}", "device"), "z2m/k\"x", "{}", kArrival), R"({"device":"k\"x"})");
}

TEST(MqttTransform, UnmatchedTopicsAndOtherPayloadsPassUnchanged) {
  auto o = Opt("sensors/{device}/{quantity}");
  EXPECT_EQ(MqttSource::Transform(o, "sensors/p", "1.5", kArrival), "1.5");            // too few levels
  EXPECT_EQ(MqttSource::Transform(o, "other/p/t", "1.5", kArrival), "1.5");            // literal differs
  EXPECT_EQ(MqttSource::Transform(o, "sensors//t", "1.5", kArrival), "1.5");           // empty level
  EXPECT_EQ(MqttSource::Transform(o, "sensors/p/t", "garbage", kArrival), "garbage");  // dead-lettered later
  EXPECT_EQ(MqttSource::Transform(o, "sensors/p/t", "nan", kArrival), "nan");
  EXPECT_EQ(MqttSource::Transform(o, "sensors/p/t", "0x10", kArrival), "0x10");
  EXPECT_EQ(MqttSource::Transform(o, "sensors/p/t", "", kArrival), "");
  EXPECT_EQ(MqttSource::Transform(Opt(""), "sensors/p/t", "1.5", kArrival), "1.5");  // no template
}

}  // namespace
}  // namespace iotpipe
