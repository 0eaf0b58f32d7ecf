"""Writes a small byte-level BPE tokenizer.json (ids 0..255 are the bytes, then one token per
merge, then the added tokens) and a tokenizer_config.json naming BOS and EOS, in the layout of
DeepSeek-V3's files, for tests that need a Hugging Face tokenizer without downloading one."""
import json
import os


def byte_level_alphabet():
    """GPT-2's byte -> code point table (printable Latin-1 bytes stand for themselves)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def spell(raw):
    table = byte_level_alphabet()
    return "".join(table[b] for b in raw)


ADDED = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]


def write(directory, merges=((b"t", b"h"), (b"th", b"e"), (b" ", b"a"), (b"i", b"n"))):
    """Returns (tokenizer.json path, {content: id} of the added tokens)."""
    vocab = {spell(bytes([b])): b for b in range(256)}
    merge_list = []
    for i, (left, right) in enumerate(merges):
        vocab[spell(left + right)] = 256 + i
        merge_list.append(spell(left) + " " + spell(right))
    added = {content: 256 + len(merges) + i for i, content in enumerate(ADDED)}
    tokenizer = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": c, "special": True, "lstrip": False,
                          "rstrip": False, "single_word": False, "normalized": False}
                         for c, i in added.items()],
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}]},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": None, "byte_fallback": False, "vocab": vocab,
                  "merges": merge_list},
    }
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tokenizer.json")
    with open(path, "w") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": True, "bos_token": ADDED[0], "eos_token": ADDED[1]}, f,
                  ensure_ascii=False)
    return path, added
