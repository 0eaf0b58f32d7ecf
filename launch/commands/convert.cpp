// trident convert: Trident checkpoint (.h5) <-> Hugging Face directory, streamed tensor by
// tensor. The direction follows the input: a file converts to a directory, a directory to a file.
//   trident convert --input run/ckpt/step_1000.h5 --output hf_out [--shard-size-mb 5000]
//                   [--dtype f32|bf16|f16]
//   trident convert --input hf_dir --output step_0.h5 [--config tiny]
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "launch/cli.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/io/checkpoint_convert.h"

namespace {

// A one-line progress bar on stderr, redrawn at most ten times a second and at the end.
class ProgressBar {
 public:
  void operator()(int64_t done, int64_t total, const std::string& name) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    constexpr int kWidth = 30;
    const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
    std::fprintf(stderr, "\r[%-*s] %lld/%lld %-60.60s", kWidth,
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 static_cast<long long>(done), static_cast<long long>(total), name.c_str());
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::chrono::steady_clock::time_point last_{};
};

trident::io::StDType parse_dtype(const std::string& text) {
  if (text == "f32" || text == "float32") return trident::io::StDType::F32;
  if (text == "bf16" || text == "bfloat16") return trident::io::StDType::BF16;
  if (text == "f16" || text == "float16") return trident::io::StDType::F16;
  TRIDENT_USER_FAIL("--dtype: '", text, "' is not one of f32, bf16, f16");
}

}  // namespace

TRIDENT_COMMAND(convert_command, "convert",
                "convert a checkpoint (.h5) to a Hugging Face directory or back") {
  trident::launch::ArgParser parser("convert");
  std::string input, output, dtype = "f32", config_name;
  double shard_size_mb = 5000;
  bool quiet = false;
  parser.add_string("--input", &input, "checkpoint file (.h5) or Hugging Face directory");
  parser.add_string("--output", &output, "Hugging Face directory or checkpoint file to write");
  parser.add_double("--shard-size-mb", &shard_size_mb,
                    "largest safetensors shard in MiB (h5 -> HF)");
  parser.add_string("--dtype", &dtype, "weights dtype of the HF export: f32, bf16, f16");
  parser.add_string(
      "--config", &config_name,
      "preset or textproto whose non-model sections go into the checkpoint (HF -> h5)");
  parser.add_bool("--quiet", &quiet, "no progress bar");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(!input.empty() && !output.empty(),
                     "trident convert needs --input PATH and --output PATH");
  namespace fs = std::filesystem;
  TRIDENT_USER_CHECK(fs::exists(input), "--input: '", input, "' does not exist");
  ProgressBar bar;
  trident::io::ConvertProgress progress;
  if (!quiet)
    progress = [&bar](int64_t done, int64_t total, const std::string& name) {
      bar(done, total, name);
    };

  trident::io::ConversionSummary summary;
  if (fs::is_directory(input)) {
    const trident::config::TridentConfig base =
        config_name.empty()
            ? trident::config::default_config()
            : trident::config::load_config(trident::config::resolve_config_path(config_name));
    summary = trident::io::hf_to_checkpoint(input, output, base, progress);
  } else {
    trident::io::HfExportConversion options;
    options.dtype = parse_dtype(dtype);
    options.shard_size_mb = shard_size_mb;
    summary = trident::io::checkpoint_to_hf(input, output, options, progress);
  }
  std::fprintf(
      stderr, "converted %lld tensors (%.1f MiB, %lld file%s) to %s\n",
      static_cast<long long>(summary.tensors), static_cast<double>(summary.bytes) / (1 << 20),
      static_cast<long long>(summary.shards), summary.shards == 1 ? "" : "s", output.c_str());
  return 0;
}
