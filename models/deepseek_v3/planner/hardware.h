#pragma once
// The hardware figures the cost model is evaluated with. Every number is a named field so a
// prediction says exactly what it assumed; the defaults describe one H800 GPU in a node of
// eight (docs/planner.md): the compute of an H100 SXM, NVLink cut to 400 GB/s and one
// 400 Gb/s InfiniBand NIC per GPU.
#include <string>
#include <vector>

namespace trident::models::planner {

struct HardwareSpec {
  std::string name = "h800";
  double peak_tflops_bf16 = 989.0;     // dense bf16 tensor-core peak (H100/H800 SXM)
  double hbm_gib = 80.0;               // HBM per GPU
  double hbm_usable_fraction = 0.92;   // left after CUDA context, NCCL buffers, fragmentation
  double hbm_bandwidth_gbps = 3350.0;  // GB/s, for the memory-bound optimizer step
  double nvlink_gbps = 400.0;          // NVLink per GPU, both directions together (200 each way)
  double ib_gbps = 50.0;               // InfiniBand per GPU and direction (8 × 400 Gb/s per node)
  int gpus_per_node = 8;
  // Achievable fractions.
  double mfu = 0.5;                 // of peak reached by the training step's GEMMs and attention
  double nvlink_efficiency = 0.77;  // all-to-all over NVLink (~153 of 200 GB/s each way)
  double ib_efficiency = 0.9;       // all-to-all / collectives over InfiniBand
  double comm_sm_fraction = 0.0;    // SMs given to communication kernels (DeepSeek-V3: 20/132)

  double usable_hbm_bytes() const;
  double compute_flops_per_s() const;  // peak · mfu · (1 − comm_sm_fraction)
  double nvlink_bytes_per_s() const;   // one direction, achievable
  double ib_bytes_per_s() const;       // one direction, achievable
};

// Named hardware: "h800" (the default), "h100" (NVLink 900 GB/s), "h200" (141 GB HBM).
HardwareSpec hardware_preset(const std::string& name);
// "field=value" for any field above (e.g. "mfu=0.4"); a wrong name lists the valid ones.
void apply_hardware_override(HardwareSpec& spec, const std::string& assignment);
// One line per field, "name = value  # meaning", for reports.
std::vector<std::string> describe_hardware(const HardwareSpec& spec);

}  // namespace trident::models::planner
