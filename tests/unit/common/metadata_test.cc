#include "common/metadata.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "common/duration.h"

namespace strait::common {
namespace {

using namespace std::chrono_literals;

Metadata with(const std::string& key, google::protobuf::Value value) {
  Metadata metadata;
  (*metadata.mutable_fields())[key] = std::move(value);
  return metadata;
}

google::protobuf::Value number(double value) {
  google::protobuf::Value out;
  out.set_number_value(value);
  return out;
}

google::protobuf::Value text(const std::string& value) {
  google::protobuf::Value out;
  out.set_string_value(value);
  return out;
}

TEST(MetadataDuration, ReadsStringsAndSecondsCaseInsensitively) {
  EXPECT_EQ(**metadata_duration(with("ReadTimeout", text("1m30s")), "readTimeout"), 90s);
  EXPECT_EQ(**metadata_duration(with("readTimeout", number(2.5)), "readTimeout"), 2500ms);
  EXPECT_FALSE(metadata_duration(Metadata(), "readTimeout")->has_value());
}

TEST(MetadataDuration, RefusesNumbersAndTextOutOfRangeNamingTheKey) {
  for (double bad : {1e300, -1.0, std::numeric_limits<double>::infinity(), std::nan(""), 4e8}) {
    auto value = metadata_duration(with("readTimeout", number(bad)), "readTimeout");
    ASSERT_FALSE(value.ok()) << bad;
    EXPECT_NE(value.status().message().find("metadata readTimeout"), std::string::npos) << value.status().message();
  }
  for (const std::string& bad : {std::string(400, '9') + "s", std::string("-5s"), std::string("100000h"),
                                 std::string("soon")}) {
    auto value = metadata_duration(with("idleTimeout", text(bad)), "idleTimeout");
    ASSERT_FALSE(value.ok()) << bad;
    EXPECT_NE(value.status().message().find("metadata idleTimeout"), std::string::npos) << value.status().message();
  }
}

TEST(MetadataInt, EnforcesTheKeysRange) {
  EXPECT_EQ(**metadata_int(with("backlog", text("128")), "backlog"), 128);
  EXPECT_EQ(**metadata_int(with("backlog", number(65535)), "backlog"), 65535);
  for (auto bad : {number(0), number(70000), number(1e300), number(1.5), text("12abc"), text("99999999999999999999")}) {
    auto value = metadata_int(with("backlog", bad), "backlog");
    ASSERT_FALSE(value.ok());
    EXPECT_NE(value.status().message().find("an integer from 1 to 65535"), std::string::npos)
        << value.status().message();
  }
}

TEST(MetadataBool, AcceptsGoSpellingsOnly) {
  EXPECT_TRUE(**metadata_bool(with("udp", text("T")), "udp"));
  EXPECT_FALSE(**metadata_bool(with("udp", number(0)), "udp"));
  EXPECT_FALSE(metadata_bool(with("udp", number(7)), "udp").ok());
  EXPECT_FALSE(metadata_bool(with("udp", text("yes please")), "udp").ok());
}

TEST(MetadataString, PrintsIntegersWithoutFractionsAndHugeNumbersSafely) {
  EXPECT_EQ(*metadata_string(with("relay", number(42)), "relay"), "42");
  EXPECT_FALSE(metadata_string(with("relay", number(1e300)), "relay")->empty());
}

TEST(ValidateMetadata, ChecksKnownKeysAndCollectsUnknownOnes) {
  Metadata metadata = with("readTimeout", text("10s"));
  (*metadata.mutable_fields())["sniffing"] = text("true");
  std::vector<std::string> unknown;
  EXPECT_TRUE(validate_metadata(metadata, "handler.metadata", &unknown).ok());
  EXPECT_EQ(unknown, std::vector<std::string>{"sniffing"});
  (*metadata.mutable_fields())["keepalive.count"] = number(500);
  auto status = validate_metadata(metadata, "handler.metadata", nullptr);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("handler.metadata: metadata keepalive.count"), std::string::npos) << status.message();
}

// `header` is a map of names to strings (HTTP headers of ws and h2 dialers).
TEST(ValidateMetadata, HeaderIsAMapOfStrings) {
  google::protobuf::Value headers;
  (*headers.mutable_struct_value()->mutable_fields())["User-Agent"] = text("strait");
  std::vector<std::string> unknown;
  EXPECT_TRUE(validate_metadata(with("header", headers), "dialer.metadata", &unknown).ok());
  EXPECT_TRUE(unknown.empty());
  auto scalar = validate_metadata(with("header", text("User-Agent: strait")), "dialer.metadata", nullptr);
  EXPECT_FALSE(scalar.ok());
  EXPECT_NE(scalar.message().find("metadata header: expected a map"), std::string::npos) << scalar.message();
  (*headers.mutable_struct_value()->mutable_fields())["X-Count"] = number(3);
  auto nested = validate_metadata(with("header", headers), "dialer.metadata", nullptr);
  EXPECT_FALSE(nested.ok());
  EXPECT_NE(nested.message().find("header.X-Count"), std::string::npos) << nested.message();
}

}  // namespace
}  // namespace strait::common
