// Fuzzes typed metadata reads and the config validation pass (common/metadata,
// common/config_validate) with values as a controller or a YAML file could send them: every
// known key, as text, as any double (NaN, infinities, 1e300), as a boolean. Never a throw,
// an overflow or a value outside the key's range.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/config_validate.h"
#include "common/duration.h"
#include "common/metadata.h"

namespace common = strait::common;

namespace {

// Consumes `count` bytes from the front of the input (fewer at its end).
std::string take(const uint8_t*& data, size_t& size, size_t count) {
  count = std::min(count, size);
  std::string out(reinterpret_cast<const char*>(data), count);
  data += count;
  size -= count;
  return out;
}

void read_every_key(const common::Metadata& metadata) {
  for (const auto& key : common::known_metadata_keys()) {
    switch (key.kind) {
      case common::MetadataKind::kDuration: {
        auto value = common::metadata_duration(metadata, key.name);
        if (value.ok() && *value && ((*value)->count() < 0 || **value > common::kMaxDuration)) __builtin_trap();
        break;
      }
      case common::MetadataKind::kInteger: {
        auto value = common::metadata_int(metadata, key.name);
        if (value.ok() && *value && (**value < key.min || **value > key.max)) __builtin_trap();
        break;
      }
      case common::MetadataKind::kBool:
        (void)common::metadata_bool(metadata, key.name);
        break;
      case common::MetadataKind::kString:
        (void)common::metadata_string(metadata, key.name);
        break;
      case common::MetadataKind::kStringMap:
        (void)common::validate_metadata(metadata, "fuzz", nullptr);
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  common::Metadata metadata;
  const auto& keys = common::known_metadata_keys();
  while (size >= 2) {
    const auto& key = keys[data[0] % keys.size()];
    uint8_t form = data[1] % 3;
    data += 2;
    size -= 2;
    google::protobuf::Value value;
    if (form == 0) {
      std::string bytes = take(data, size, 8);
      double number = 0;
      std::memcpy(&number, bytes.data(), std::min(bytes.size(), sizeof number));
      value.set_number_value(number);
    } else if (form == 1) {
      size_t length = size > 0 ? data[0] % 48 : 0;
      take(data, size, 1);
      value.set_string_value(take(data, size, length));
    } else {
      value.set_bool_value(size > 0 && (take(data, size, 1)[0] & 1) != 0);
    }
    (*metadata.mutable_fields())[std::string(key.name)] = value;
  }
  read_every_key(metadata);
  std::vector<std::string> unknown;
  (void)common::validate_metadata(metadata, "metadata", &unknown);
  strait::config::v1::Config config;
  auto& service = *config.add_services();
  service.set_name("s");
  service.set_addr(":8080");
  *service.mutable_handler()->mutable_metadata() = metadata;
  *service.mutable_listener()->mutable_metadata() = metadata;
  (void)common::validate_config(config, {}, nullptr);
  return 0;
}
