// Hugging Face DeepSeek-V3 / DeepSeek-V2 config.json <-> ModelConfig. The schema's field names
// are the config.json keys, so both directions walk the descriptor instead of listing fields by
// hand. model_type picks the defaults for keys a file leaves out (those of the Hugging Face
// config class of that family) and the architecture written back on export.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <climits>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/config/config.h"
#include "runtime/core/error.h"

namespace trident::config {

namespace gp = google::protobuf;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::string json_kind(const json& value) {
  return std::string(value.type_name()) + " " + value.dump();
}

void read_field(const json& value, gp::Message& message, const gp::FieldDescriptor& field,
                const std::string& where) {
  const gp::Reflection& r = *message.GetReflection();
  const std::string key = where + field.name();
  switch (field.cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_INT64: {
      // 4096 and 4096.0 both mean an integer; 4096.5 does not, nor one beyond int64.
      constexpr double kInt64Bound = 9223372036854775808.0;  // 2^63
      const bool integral =
          (value.is_number_integer() &&
           !(value.is_number_unsigned() &&
             value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) ||
          (value.is_number_float() && std::floor(value.get<double>()) == value.get<double>() &&
           std::fabs(value.get<double>()) < kInt64Bound);
      TRIDENT_USER_CHECK(integral, key, " must be an integer in int64's range, got ",
                         json_kind(value));
      r.SetInt64(&message, &field,
                 value.is_number_integer() ? value.get<int64_t>()
                                           : static_cast<int64_t>(value.get<double>()));
      return;
    }
    case gp::FieldDescriptor::CPPTYPE_DOUBLE:
      TRIDENT_USER_CHECK(value.is_number(), key, " must be a number, got ", json_kind(value));
      r.SetDouble(&message, &field, value.get<double>());
      return;
    case gp::FieldDescriptor::CPPTYPE_BOOL:
      TRIDENT_USER_CHECK(value.is_boolean(), key, " must be true or false, got ", json_kind(value));
      r.SetBool(&message, &field, value.get<bool>());
      return;
    case gp::FieldDescriptor::CPPTYPE_STRING:
      TRIDENT_USER_CHECK(value.is_string(), key, " must be a string, got ", json_kind(value));
      r.SetString(&message, &field, value.get<std::string>());
      return;
    default:
      TRIDENT_FAIL("ModelConfig field ", field.full_name(), " has a type config.json cannot hold");
  }
}

// Keys missing or null keep the message's current (default) value; keys the schema does not
// know (quantization_config, hidden_act, ...) are ignored.
void read_object(const json& object, gp::Message& message, const std::string& where) {
  const gp::Descriptor& descriptor = *message.GetDescriptor();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const gp::FieldDescriptor& field = *descriptor.field(i);
    auto found = object.find(field.name());
    // Newer transformers versions write rope_scaling.rope_type instead of rope_scaling.type.
    if (found == object.end() && field.name() == "type") found = object.find("rope_type");
    if (found == object.end() || found->is_null()) continue;
    if (field.cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE) {
      TRIDENT_USER_CHECK(found->is_object(), where, field.name(),
                         " must be an object or null, got ", json_kind(*found));
      read_object(*found, *message.GetReflection()->MutableMessage(&message, &field),
                  where + field.name() + ".");
      continue;
    }
    read_field(*found, message, field, where);
  }
}

ordered_json write_object(const gp::Message& message) {
  ordered_json object = ordered_json::object();
  const gp::Descriptor& descriptor = *message.GetDescriptor();
  const gp::Reflection& r = *message.GetReflection();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const gp::FieldDescriptor& field = *descriptor.field(i);
    switch (field.cpp_type()) {
      case gp::FieldDescriptor::CPPTYPE_INT64:
        object[field.name()] = r.GetInt64(message, &field);
        break;
      case gp::FieldDescriptor::CPPTYPE_DOUBLE:
        object[field.name()] = r.GetDouble(message, &field);
        break;
      case gp::FieldDescriptor::CPPTYPE_BOOL:
        object[field.name()] = r.GetBool(message, &field);
        break;
      case gp::FieldDescriptor::CPPTYPE_STRING:
        object[field.name()] = r.GetString(message, &field);
        break;
      case gp::FieldDescriptor::CPPTYPE_MESSAGE:
        object[field.name()] = write_object(r.GetMessage(message, &field));
        break;
      default:
        TRIDENT_FAIL("ModelConfig field ", field.full_name(), " cannot be exported");
    }
  }
  return object;
}

// Keys a DeepSeek-V2 config.json may leave out take the DeepseekV2Config defaults, which differ
// from V3's in the router and in having no multi-token prediction at all.
void apply_v2_defaults(ModelConfig& model) {
  model.set_model_type("deepseek_v2");
  model.set_scoring_func("softmax");
  model.set_topk_method("greedy");
  model.set_norm_topk_prob(false);
  model.set_routed_scaling_factor(1.0);
  model.set_n_group(1);
  model.set_topk_group(1);
  model.set_num_nextn_predict_layers(0);
}

constexpr const char* kArchitectureV3 = "DeepseekV3ForCausalLM";
constexpr const char* kArchitectureV2 = "DeepseekV2ForCausalLM";

}  // namespace

ModelConfig import_hf_config(const std::string& path) {
  std::ifstream file(path);
  TRIDENT_USER_CHECK(file.good(), "cannot read Hugging Face config '", path, "'");
  json root;
  try {
    root = json::parse(file);
  } catch (const json::exception& e) {
    TRIDENT_USER_FAIL(path, ": not valid JSON (", e.what(), ")");
  }
  TRIDENT_USER_CHECK(root.is_object(), path, ": expected a JSON object at the top level, got ",
                     root.type_name());
  std::string model_type = "deepseek_v3";
  if (auto type = root.find("model_type"); type != root.end() && !type->is_null()) {
    TRIDENT_USER_CHECK(type->is_string() && (type->get<std::string>() == "deepseek_v3" ||
                                             type->get<std::string>() == "deepseek_v2"),
                       path, ": model_type is ", type->dump(),
                       "; Trident imports DeepSeek-V3 and DeepSeek-V2 configs (model_type "
                       "\"deepseek_v3\" or \"deepseek_v2\")");
    model_type = type->get<std::string>();
  }
  ModelConfig model = default_config().model();
  if (model_type == "deepseek_v2") apply_v2_defaults(model);
  // A config.json with no rope_scaling (or null) means plain RoPE.
  model.mutable_rope_scaling()->set_type("");
  // q_lora_rank null means a plain q_proj (DeepSeek-V2-Lite); a missing key keeps the default.
  if (auto q_lora = root.find("q_lora_rank"); q_lora != root.end() && q_lora->is_null()) {
    model.set_q_lora_rank(0);
  }
  try {
    read_object(root, model, path + ": ");
  } catch (const json::exception& e) {
    TRIDENT_USER_FAIL(path, ": ", e.what());
  }
  // A rope_scaling object whose type is missing (a typo, a version's other key) would
  // silently mean plain RoPE with its factor ignored.
  if (auto rope = root.find("rope_scaling"); rope != root.end() && rope->is_object()) {
    TRIDENT_USER_CHECK(!model.rope_scaling().type().empty(), path,
                       ": rope_scaling has no \"type\" (or \"rope_type\"); give \"yarn\", "
                       "or null for plain RoPE");
  }
  // The name comes from the checkpoint's own record when the file has no "name".
  if (!root.contains("name")) {
    if (auto source = root.find("_name_or_path");
        source != root.end() && source->is_string() && !source->get<std::string>().empty()) {
      model.set_name(source->get<std::string>());
    }
  }
  return model;
}

std::string export_hf_config_json(const ModelConfig& model) {
  ordered_json root = ordered_json::object();
  const bool v2 = model.model_type() == "deepseek_v2";
  root["architectures"] = {v2 ? kArchitectureV2 : kArchitectureV3};
  root["model_type"] = v2 ? "deepseek_v2" : "deepseek_v3";
  root["hidden_act"] = "silu";
  root["attention_bias"] = false;
  ordered_json fields = write_object(model);
  if (model.rope_scaling().type().empty()) fields["rope_scaling"] = nullptr;
  // The Hugging Face modelling code tests `q_lora_rank is None` for the plain q_proj.
  if (model.q_lora_rank() == 0) fields["q_lora_rank"] = nullptr;
  for (auto& [key, value] : fields.items()) root[key] = value;
  return root.dump(2) + "\n";
}

}  // namespace trident::config
