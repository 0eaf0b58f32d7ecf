"""Held-out evaluation under Hugging Face weights with the PyTorch reference, as `trident eval`
does it: the arithmetic eval split's prompts as bytes, the prompts of one length in one batch,
prefilled and then decoded greedily one token per step against the MLA latent cache
(generate_reference.py), each completion ending at "</answer>" or EOS, then scored with the rule
rewards (docs/grpo.md): the answer between the <answer> tags against the expected one, and the
<think>…</think><answer>…</answer> format. The baseline that `trident bench eval` times as a
whole process, start-up and loading included.

    eval_reference.py --hf-dir DIR --follow TRIDENT_EVAL.json --threads T --output OUT.json

TRIDENT_EVAL.json is what `trident eval --output` writes: the problems (prompt and expected
answer) and trident's completions. Each decode step is fed trident's token (the same work, the
same cache contents); as in trident, a batch runs until its longest completion ends, rows that
ended earlier fed EOS. OUT.json: {"accuracy", "format_rate", "correct": [...], "format_ok": [...],
"max_regret"}, the rewards computed here from the followed completions, and the largest gap
between this run's best logit and the logit of the token trident chose."""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_ref as ref  # noqa: E402
import generate_reference as gen  # noqa: E402

EOS = 0x03  # the byte tokenizer's end of sequence
SPACE = " \t\n\r\f\v"  # what the rule rewards trim
TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def completion_text(tokens):
    """The decoded bytes, one character each; a final EOS ends the completion and is not text."""
    if tokens and tokens[-1] == EOS:
        tokens = tokens[:-1]
    return "".join(chr(t) for t in tokens if 0 <= t < 256)


def canonical_integer(text):
    """"-0042" -> "-42", "+0" -> "0"; None if not an integer."""
    text = text.strip(SPACE)
    negative = text[:1] == "-"
    if text[:1] in ("-", "+"):
        text = text[1:]
    if not text or any(c not in "0123456789" for c in text):
        return None
    text = text.lstrip("0") or "0"
    return ("-" if negative and text != "0" else "") + text


def is_correct(text, expected):
    start = text.find("<answer>")
    if start < 0:
        return False
    start += len("<answer>")
    end = text.find("</answer>", start)
    if end < 0:
        return False
    given = text[start:end]
    a, b = canonical_integer(given), canonical_integer(expected)
    if a is not None and b is not None:
        return a == b
    return given.strip(SPACE) == expected.strip(SPACE)


def format_ok(text):
    """Exactly one <think>…</think> then one <answer>…</answer> with a non-empty answer, only
    whitespace around them, no tag inside either."""
    if text.endswith("\x03"):
        text = text[:-1]
    rest = text.strip(SPACE)
    for open_tag, close_tag in (("<think>", "</think>"), ("<answer>", "</answer>")):
        rest = rest.lstrip(SPACE)
        if not rest.startswith(open_tag):
            return False
        rest = rest[len(open_tag):]
        end = rest.find(close_tag)
        if end < 0:
            return False
        body = rest[:end]
        if any(tag in body for tag in TAGS):
            return False
        rest = rest[end + len(close_tag):]
    return bool(body.strip(SPACE)) and not rest.strip(SPACE)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hf-dir", required=True)
    parser.add_argument("--follow", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    weights, cfg = ref.load_for_inference(args.hf_dir, args.threads)
    with open(args.follow) as f:
        problems = json.load(f)["problems"]
    prompts = [list(p["prompt"].encode("latin-1")) for p in problems]
    followed = [p["completion"] for p in problems]

    completions = [None] * len(problems)
    max_regret = 0.0
    with torch.inference_mode():
        for indices in ref.indices_by_length(prompts).values():
            ids = torch.tensor([prompts[i] for i in indices], dtype=torch.int64)
            steps = max(len(followed[i]) for i in indices)
            follow = torch.tensor([followed[i] + [EOS] * (steps - len(followed[i]))
                                   for i in indices], dtype=torch.int64)
            lengths = torch.tensor([len(followed[i]) for i in indices])
            _, regret = gen.generate(weights, cfg, ids, steps, follow, lengths)
            max_regret = max(max_regret, regret)
            for i in indices:
                completions[i] = completion_text(followed[i])

    correct = [is_correct(text, p["answer"]) for text, p in zip(completions, problems)]
    formatted = [format_ok(text) for text in completions]
    n = len(problems)
    with open(args.output, "w") as f:
        json.dump({"accuracy": sum(correct) / n, "format_rate": sum(formatted) / n,
                   "correct": correct, "format_ok": formatted, "max_regret": max_regret}, f)


if __name__ == "__main__":
    main()
