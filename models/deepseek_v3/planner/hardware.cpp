#include "models/deepseek_v3/planner/hardware.h"

#include <cstdlib>
#include <sstream>

#include "runtime/core/error.h"

namespace trident::models::planner {

namespace {

struct NumberField {
  const char* name;
  double HardwareSpec::*field;
  const char* meaning;
};

constexpr NumberField kNumberFields[] = {
    {"peak_tflops_bf16", &HardwareSpec::peak_tflops_bf16, "dense bf16 peak TFLOPS per GPU"},
    {"hbm_gib", &HardwareSpec::hbm_gib, "HBM per GPU, GiB"},
    {"hbm_usable_fraction", &HardwareSpec::hbm_usable_fraction, "of HBM a layout may plan for"},
    {"hbm_bandwidth_gbps", &HardwareSpec::hbm_bandwidth_gbps, "HBM bandwidth, GB/s"},
    {"nvlink_gbps", &HardwareSpec::nvlink_gbps, "NVLink per GPU, GB/s, both directions"},
    {"ib_gbps", &HardwareSpec::ib_gbps, "InfiniBand per GPU, GB/s, each direction"},
    {"mfu", &HardwareSpec::mfu, "achieved fraction of peak FLOPS"},
    {"nvlink_efficiency", &HardwareSpec::nvlink_efficiency, "achieved fraction of NVLink"},
    {"ib_efficiency", &HardwareSpec::ib_efficiency, "achieved fraction of InfiniBand"},
    {"comm_sm_fraction", &HardwareSpec::comm_sm_fraction, "SMs reserved for communication"},
};

std::string field_list() {
  std::string names = "gpus_per_node";
  for (const NumberField& f : kNumberFields) names += std::string(", ") + f.name;
  return names;
}

double parse_number(const std::string& field, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  TRIDENT_USER_CHECK(end != text.c_str() && *end == '\0', "hardware field '", field, "': '", text,
                     "' is not a number");
  return value;
}

}  // namespace

double HardwareSpec::usable_hbm_bytes() const {
  return hbm_gib * hbm_usable_fraction * 1024.0 * 1024.0 * 1024.0;
}
double HardwareSpec::compute_flops_per_s() const {
  return peak_tflops_bf16 * 1e12 * mfu * (1.0 - comm_sm_fraction);
}
double HardwareSpec::nvlink_bytes_per_s() const {
  return nvlink_gbps / 2.0 * 1e9 * nvlink_efficiency;
}
double HardwareSpec::ib_bytes_per_s() const { return ib_gbps * 1e9 * ib_efficiency; }

HardwareSpec hardware_preset(const std::string& name) {
  HardwareSpec spec;
  if (name.empty() || name == "h800") return spec;
  if (name == "h100") {
    spec.name = "h100";
    spec.nvlink_gbps = 900.0;
    return spec;
  }
  if (name == "h200") {
    spec.name = "h200";
    spec.nvlink_gbps = 900.0;
    spec.hbm_gib = 141.0 * 1e9 / (1024.0 * 1024.0 * 1024.0);
    spec.hbm_bandwidth_gbps = 4800.0;
    return spec;
  }
  TRIDENT_USER_FAIL("unknown hardware '", name, "': valid are h800, h100, h200");
}

void apply_hardware_override(HardwareSpec& spec, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  TRIDENT_USER_CHECK(eq != std::string::npos, "hardware override '", assignment,
                     "' is not field=value; fields: ", field_list());
  const std::string field = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  if (field == "gpus_per_node") {
    const double n = parse_number(field, value);
    TRIDENT_USER_CHECK(n >= 1 && n == static_cast<int>(n),
                       "gpus_per_node must be a positive integer, got ", value);
    spec.gpus_per_node = static_cast<int>(n);
    return;
  }
  for (const NumberField& f : kNumberFields) {
    if (field == f.name) {
      const double number = parse_number(field, value);
      TRIDENT_USER_CHECK(number >= 0, "hardware field '", field, "' must be ≥ 0, got ", value);
      spec.*(f.field) = number;
      return;
    }
  }
  TRIDENT_USER_FAIL("unknown hardware field '", field, "'; valid fields: ", field_list());
}

std::vector<std::string> describe_hardware(const HardwareSpec& spec) {
  std::vector<std::string> lines;
  lines.push_back("hardware = " + spec.name);
  lines.push_back("gpus_per_node = " + std::to_string(spec.gpus_per_node));
  for (const NumberField& f : kNumberFields) {
    std::ostringstream line;
    line << f.name << " = " << spec.*(f.field) << "  # " << f.meaning;
    lines.push_back(line.str());
  }
  return lines;
}

}  // namespace trident::models::planner
