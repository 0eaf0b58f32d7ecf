#pragma once
// Loading, overriding, importing and validating the run configuration.
// Validation happens once at start-up, before any rank allocates memory or opens a
// communicator, and every message names the field at fault and what would be valid.

#include <string>
#include <vector>

#include "runtime/config/trident.pb.h"

namespace trident::config {

// Defaults for every field a preset may leave out (e.g. parallel sizes 1, adam betas).
TridentConfig default_config();

// Parses a textproto file on top of default_config(). Unknown fields or syntax errors are a
// UserError naming the file, line and column.
TridentConfig load_config(const std::string& path);
// Parses textproto text (same rules), `origin` names it in messages.
TridentConfig parse_config_text(const std::string& text, const std::string& origin);

// Applies "path.to.field=value" overrides (the CLI's --set). Repeated fields take a
// comma-separated list. A wrong path names the closest valid fields; a bad value names the type.
void apply_override(TridentConfig& config, const std::string& assignment);
void apply_overrides(TridentConfig& config, const std::vector<std::string>& assignments);

// Reads a Hugging Face DeepSeek-V3 or DeepSeek-V2 config.json into a ModelConfig (unknown keys
// ignored; keys left out take the defaults of that family's config class).
ModelConfig import_hf_config(const std::string& path);
// Writes the ModelConfig as a Hugging Face config.json (for export/conversion).
std::string export_hf_config_json(const ModelConfig& model);

// Throws UserError with a message naming the field and the valid values. world_size = 0
// skips the checks that need the number of ranks.
void validate(const TridentConfig& config, int world_size = 0);
// What this build can run, beyond what is a valid layout (`trident plan` still plans the rest):
// throws UserError naming each field it does not run yet. Checked once, when a run's parallel
// context is made (parallel/context.h), identically on every rank.
void check_runnable_layout(const TridentConfig& config);

// textproto text of a config (stored inside checkpoints and printed by --print-config).
std::string to_text(const TridentConfig& config);

// Path of a named preset ("tiny" -> <source>/configs/tiny.textproto) or the path itself.
std::string resolve_config_path(const std::string& name_or_path);

}  // namespace trident::config
