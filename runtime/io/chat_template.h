#pragma once
// DeepSeek's chat template (the chat_template of DeepSeek-V3's tokenizer_config.json) turned
// into SFT tokens with a loss mask:
//
//   <｜begin▁of▁sentence｜>{system prompts, joined by "\n\n"}
//   user       <｜User｜>{content}
//   assistant  <｜Assistant｜>{content}<｜end▁of▁sentence｜>
//
// Only the assistant turns train the model: their content and the end-of-sentence token after
// it have mask 1, everything else (BOS, system prompt, user turns, the <｜Assistant｜> marker)
// mask 0. Each piece is encoded on its own; since every boundary is an added token, the ids are
// those of encoding the whole rendered conversation. Tool calls and tool messages are not
// supported (a record with them is refused with that reason).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/io/text_tokenizer.h"

namespace trident::io {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

struct ChatTokens {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> loss_mask;
};

class DeepSeekChatTemplate {
 public:
  // Throws UserError when the tokenizer lacks the template's tokens (BOS, EOS, <｜User｜>,
  // <｜Assistant｜>), naming the missing one.
  explicit DeepSeekChatTemplate(TextTokenizer& tokenizer);

  // The messages of one record: `record[field]` must be a list of {"role", "content"} objects
  // with at least one assistant turn. Throws UserError saying what is wrong with the record.
  static std::vector<ChatMessage> parse(const nlohmann::json& record, const std::string& field);

  ChatTokens encode(const std::vector<ChatMessage>& messages);

 private:
  TextTokenizer& tokenizer_;
  int32_t bos_, eos_, user_, assistant_;
};

}  // namespace trident::io
