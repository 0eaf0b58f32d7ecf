#include "runtime/io/hf_tokenizer.h"

#include <filesystem>
#include <fstream>

#include "runtime/core/error.h"
#include "runtime/io/byte_level.h"
#include "runtime/io/utf8.h"

namespace trident::io {

namespace {

using nlohmann::json;

// Ids index dense tables (bytes_of_id_, has_id_), so one stray large id would allocate a table
// that size: 2^24 leaves room for any real vocabulary (the largest have about 256K tokens) and
// keeps the table under 600 MB.
constexpr int64_t kMaxTokenIds = int64_t{1} << 24;

bool is_token_id(const json& id) {
  return id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < kMaxTokenIds;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  TRIDENT_USER_CHECK(in.good(), "cannot read tokenizer file '", path, "'");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    TRIDENT_USER_FAIL(path, ": not valid JSON (", e.what(), ")");
  }
}

bool is_empty_normalizer(const json& normalizer) {
  if (normalizer.is_null()) return true;
  return normalizer.value("type", std::string()) == "Sequence" &&
         normalizer.value("normalizers", json::array()).empty();
}

// A merge is "left right" (tokenizers < 0.20) or ["left", "right"].
std::pair<std::string, std::string> merge_pair(const json& merge, const std::string& where) {
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return {merge[0].get<std::string>(), merge[1].get<std::string>()};
  }
  TRIDENT_USER_CHECK(merge.is_string(), where, ": expected \"left right\" or [left, right], got ",
                     merge.dump());
  const std::string text = merge.get<std::string>();
  const size_t space = text.find(' ');
  TRIDENT_USER_CHECK(space != std::string::npos && space > 0 && space + 1 < text.size(), where,
                     ": \"", text, "\" is not two tokens separated by a space");
  const size_t second_end = text.find(' ', space + 1);
  return {text.substr(0, space), text.substr(space + 1, second_end - space - 1)};
}

// bos_token / eos_token in tokenizer_config.json: a string, {"content": ...} or null.
std::string special_token_text(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return {};
}

}  // namespace

HfTokenizer::~HfTokenizer() = default;

HfTokenizer::HfTokenizer(const std::string& path) : path_(path) {
  const json root = read_json(path);
  TRIDENT_USER_CHECK(root.is_object() && root.contains("model"), path,
                     ": not a Hugging Face tokenizer.json (no \"model\" object)");
  TRIDENT_USER_CHECK(is_empty_normalizer(root.value("normalizer", json())), path, ": normalizer ",
                     root["normalizer"].dump().substr(0, 200),
                     " is not supported (only null or an empty Sequence)");
  const json& decoder = root.value("decoder", json());
  TRIDENT_USER_CHECK(decoder.is_null() || decoder.value("type", std::string()) == "ByteLevel", path,
                     ": decoder ", decoder.dump().substr(0, 200),
                     " is not supported (only ByteLevel or null)");

  const json& added = root.value("added_tokens", json::array());
  TRIDENT_USER_CHECK(added.is_array(), path, ": \"added_tokens\" must be a list");
  for (size_t i = 0; i < added.size(); ++i) {
    const json& entry = added[i];
    const std::string where = path + ": added_tokens[" + std::to_string(i) + "]";
    TRIDENT_USER_CHECK(entry.is_object() && entry.contains("id") && is_token_id(entry["id"]) &&
                           entry.contains("content") && entry["content"].is_string(),
                       where, ": needs an integer \"id\" in [0, ", kMaxTokenIds,
                       ") and a string \"content\"");
    TRIDENT_USER_CHECK(!entry.value("single_word", false), where,
                       ": \"single_word\": true is not supported");
    AddedToken token;
    token.id = static_cast<int32_t>(entry["id"].get<int64_t>());
    token.content = entry["content"].get<std::string>();
    TRIDENT_USER_CHECK(!token.content.empty() && is_valid_utf8(token.content), where,
                       ": \"content\" must be non-empty UTF-8");
    token.special = entry.value("special", false);
    token.lstrip = entry.value("lstrip", false);
    token.rstrip = entry.value("rstrip", false);
    added_.push_back(token);
  }
  load_model(root["model"]);
  for (const AddedToken& token : added_) {
    const auto id = static_cast<size_t>(token.id);
    if (id >= bytes_of_id_.size()) {
      bytes_of_id_.resize(id + 1);
      has_id_.resize(id + 1, false);
    }
    bytes_of_id_[id] = token.content;
    has_id_[id] = true;
  }
  matcher_ = std::make_unique<AddedTokenMatcher>(added_);
  pre_tokenizer_ = std::make_unique<PreTokenizer>(root.value("pre_tokenizer", json()), path);
  load_special_tokens();
}

void HfTokenizer::load_model(const json& model) {
  const std::string where = path_ + ": model";
  TRIDENT_USER_CHECK(model.is_object() && model.value("type", std::string("BPE")) == "BPE", where,
                     ".type must be \"BPE\" (byte-level BPE), got ",
                     model.is_object() ? model.value("type", std::string()) : model.dump());
  TRIDENT_USER_CHECK(!model.value("byte_fallback", false), where,
                     ".byte_fallback: true is not supported (a byte-level vocabulary needs none)");
  const json dropout = model.value("dropout", json());
  TRIDENT_USER_CHECK(dropout.is_null() || (dropout.is_number() && dropout.get<double>() == 0.0),
                     where, ".dropout must be null or 0, got ", dropout.dump());
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json value = model.value(key, json());
    TRIDENT_USER_CHECK(value.is_null() || value == "", where, ".", key, " must be null, got ",
                       value.dump());
  }
  ignore_merges_ = model.value("ignore_merges", false);

  const json& vocab = model.value("vocab", json());
  TRIDENT_USER_CHECK(vocab.is_object() && !vocab.empty(), where,
                     ".vocab must be a non-empty object of token -> id");
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab.items()) {
    TRIDENT_USER_CHECK(is_token_id(id), where, ".vocab[\"", token,
                       "\"] must be an integer id in [0, ", kMaxTokenIds, "), got ", id.dump());
    max_id = std::max(max_id, id.get<int64_t>());
  }
  bytes_of_id_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  id_of_bytes_.reserve(vocab.size() * 2);
  for (const auto& [token, id_json] : vocab.items()) {
    const auto id = static_cast<int32_t>(id_json.get<int64_t>());
    // A token outside the byte-level alphabet (a special token kept in the vocabulary) is
    // literal text: it decodes to itself and no merge can produce it.
    const std::optional<std::string> bytes = byte_level_decode(token);
    bytes_of_id_[static_cast<size_t>(id)] = bytes ? *bytes : token;
    has_id_[static_cast<size_t>(id)] = true;
    if (bytes) id_of_bytes_.emplace(*bytes, id);
  }

  std::vector<int32_t> byte_tokens(256);
  for (int b = 0; b < 256; ++b) {
    const auto it = id_of_bytes_.find(std::string(1, static_cast<char>(b)));
    TRIDENT_USER_CHECK(it != id_of_bytes_.end(), where, ".vocab has no token for byte ", b, " (\"",
                       byte_level_encode(std::string(1, static_cast<char>(b))),
                       "\"): not a byte-level BPE vocabulary");
    byte_tokens[static_cast<size_t>(b)] = it->second;
  }

  const json& merges = model.value("merges", json::array());
  TRIDENT_USER_CHECK(merges.is_array(), where, ".merges must be a list");
  std::vector<BpeMerge> rules;
  rules.reserve(merges.size());
  const auto id_of = [&](const std::string& token, const std::string& at) {
    const std::optional<std::string> bytes = byte_level_decode(token);
    const auto it = bytes ? id_of_bytes_.find(*bytes) : id_of_bytes_.end();
    TRIDENT_USER_CHECK(it != id_of_bytes_.end(), at, ": \"", token,
                       "\" is not a token of the vocabulary");
    return std::make_pair(*bytes, it->second);
  };
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string at = where + ".merges[" + std::to_string(i) + "]";
    const auto [left, right] = merge_pair(merges[i], at);
    const auto [left_bytes, left_id] = id_of(left, at);
    const auto [right_bytes, right_id] = id_of(right, at);
    const auto result = id_of_bytes_.find(left_bytes + right_bytes);
    TRIDENT_USER_CHECK(result != id_of_bytes_.end(), at, ": the merge of \"", left, "\" and \"",
                       right, "\" is not a token of the vocabulary");
    rules.push_back(BpeMerge{left_id, right_id, result->second});
  }
  merges_ = rules.size();
  bpe_ = std::make_unique<BpeEncoder>(std::move(byte_tokens), rules);
}

int32_t HfTokenizer::added_token_id(std::string_view content) const {
  for (const AddedToken& token : added_) {
    if (token.content == content) return token.id;
  }
  return -1;
}

int32_t HfTokenizer::id_of_text(const std::string& content) const {
  const int32_t added = added_token_id(content);
  if (added >= 0) return added;
  for (size_t id = 0; id < bytes_of_id_.size(); ++id) {
    if (has_id_[id] && bytes_of_id_[id] == content) return static_cast<int32_t>(id);
  }
  return -1;
}

void HfTokenizer::load_special_tokens() {
  const std::filesystem::path config_path =
      std::filesystem::path(path_).parent_path() / "tokenizer_config.json";
  std::error_code error;
  if (!std::filesystem::is_regular_file(config_path, error)) return;
  const json config = read_json(config_path.string());
  TRIDENT_USER_CHECK(config.is_object(), config_path.string(), ": expected a JSON object");
  for (const auto& [key, slot] : {std::pair{"bos_token", &bos_}, std::pair{"eos_token", &eos_}}) {
    const std::string text = special_token_text(config, key);
    if (text.empty()) continue;
    *slot = id_of_text(text);
    TRIDENT_USER_CHECK(*slot >= 0, config_path.string(), ": ", key, " \"", text,
                       "\" is not a token of ", path_);
  }
  const json add_bos = config.value("add_bos_token", json(false));
  add_bos_ = add_bos.is_boolean() && add_bos.get<bool>() && bos_ >= 0;
}

void HfTokenizer::encode(std::string_view text, std::vector<int32_t>& out) {
  if (is_valid_utf8(text)) {
    encode_valid(text, out);
    return;
  }
  const Utf8Repair repaired = repair_utf8(text);
  encode_valid(repaired.text, out);
}

void HfTokenizer::encode_valid(std::string_view text, std::vector<int32_t>& out) {
  matcher_->split(text, sections_);
  for (const TextSection& section : sections_) {
    if (section.added_id >= 0) {
      out.push_back(section.added_id);
      continue;
    }
    pre_tokenizer_->split(section.text, pieces_);
    for (std::string_view piece : pieces_) {
      if (ignore_merges_) {
        if (const auto it = id_of_bytes_.find(std::string(piece)); it != id_of_bytes_.end()) {
          out.push_back(it->second);
          continue;
        }
      }
      bpe_->encode(piece, out);
    }
  }
}

std::string HfTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    TRIDENT_USER_CHECK(id >= 0 && id < vocab_size() && has_id_[static_cast<size_t>(id)],
                       "tokenizer ", path_, ": id ", id, " at position ", i,
                       " is not a token (valid ids are below ", vocab_size(), ")");
    text += bytes_of_id_[static_cast<size_t>(id)];
  }
  return text;
}

}  // namespace trident::io
