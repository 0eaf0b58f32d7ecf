#include "runtime/io/chat_template.h"

#include "runtime/core/error.h"

namespace trident::io {

namespace {

constexpr const char* kUserMarker = "<｜User｜>";
constexpr const char* kAssistantMarker = "<｜Assistant｜>";

int32_t required_token(TextTokenizer& tokenizer, int32_t id, const std::string& what) {
  TRIDENT_USER_CHECK(id >= 0, "the DeepSeek chat template needs ", what, "; tokenizer ",
                     tokenizer.name(),
                     " has none (use DeepSeek's tokenizer.json with its "
                     "tokenizer_config.json beside it)");
  return id;
}

}  // namespace

DeepSeekChatTemplate::DeepSeekChatTemplate(TextTokenizer& tokenizer)
    : tokenizer_(tokenizer),
      bos_(required_token(tokenizer, tokenizer.bos_id(), "a BOS token (bos_token)")),
      eos_(required_token(tokenizer, tokenizer.eos_id(), "an EOS token (eos_token)")),
      user_(required_token(tokenizer, tokenizer.added_token_id(kUserMarker),
                           std::string("the added token ") + kUserMarker)),
      assistant_(required_token(tokenizer, tokenizer.added_token_id(kAssistantMarker),
                                std::string("the added token ") + kAssistantMarker)) {}

std::vector<ChatMessage> DeepSeekChatTemplate::parse(const nlohmann::json& record,
                                                     const std::string& field) {
  TRIDENT_USER_CHECK(record.is_object(), "expected a JSON object, got ", record.type_name());
  const auto found = record.find(field);
  TRIDENT_USER_CHECK(found != record.end() && found->is_array(), "no list field \"", field,
                     "\" (set --messages-field)");
  std::vector<ChatMessage> messages;
  bool any_assistant = false;
  for (size_t i = 0; i < found->size(); ++i) {
    const nlohmann::json& m = (*found)[i];
    const std::string where = field + "[" + std::to_string(i) + "]";
    TRIDENT_USER_CHECK(m.is_object() && m.contains("role") && m["role"].is_string(), where,
                       " needs a string \"role\"");
    const std::string role = m["role"].get<std::string>();
    TRIDENT_USER_CHECK(role == "system" || role == "user" || role == "assistant", where,
                       " has role \"", role,
                       "\"; valid: system, user, assistant (tool calls are not supported)");
    TRIDENT_USER_CHECK(
        !m.contains("tool_calls") || m["tool_calls"].is_null() || m["tool_calls"].empty(), where,
        " has tool_calls, which the chat template here does not support");
    TRIDENT_USER_CHECK(m.contains("content") && m["content"].is_string(), where,
                       " needs a string \"content\"");
    any_assistant = any_assistant || role == "assistant";
    messages.push_back(ChatMessage{role, m["content"].get<std::string>()});
  }
  TRIDENT_USER_CHECK(any_assistant, "\"", field,
                     "\" has no assistant message, so nothing in it would be trained");
  return messages;
}

ChatTokens DeepSeekChatTemplate::encode(const std::vector<ChatMessage>& messages) {
  ChatTokens out;
  const auto add = [&](uint8_t trained, auto&& fill) {
    const size_t before = out.tokens.size();
    fill();
    out.loss_mask.insert(out.loss_mask.end(), out.tokens.size() - before, trained);
  };
  // System prompts are gathered first and follow BOS, wherever they appear in the list.
  std::string system;
  bool first_system = true;
  for (const ChatMessage& m : messages) {
    if (m.role != "system") continue;
    system += (first_system ? "" : "\n\n") + m.content;
    first_system = false;
  }
  add(0, [&] {
    out.tokens.push_back(bos_);
    tokenizer_.encode(system, out.tokens);
  });
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      add(0, [&] {
        out.tokens.push_back(user_);
        tokenizer_.encode(m.content, out.tokens);
      });
    } else if (m.role == "assistant") {
      add(0, [&] { out.tokens.push_back(assistant_); });
      add(1, [&] {
        tokenizer_.encode(m.content, out.tokens);
        out.tokens.push_back(eos_);
      });
    }
  }
  return out;
}

}  // namespace trident::io
