"""Writes the seed corpora under fuzz/corpus/ (committed; rerun only to change them).

Each seed is a small valid input of its parser, or a near miss, so that fuzzing starts from the
formats' real structure: configs from configs/, a config.json as `trident convert` writes it,
safetensors and token files laid out as runtime/io/safetensors.h and token_file.h document,
reward command outputs, a tokenizer.json, and byte strings for the checkpoint-metadata target (which builds its
state from raw bytes). usage: /usr/bin/python3 fuzz/make_seeds.py
"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "hardening"))
from file_formats import safetensors_bytes, token_file  # noqa: E402



def seed(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def textproto():
    for preset in ("tiny", "small", "deepseek-v3-671b"):
        shutil.copy(os.path.join(ROOT, "configs", preset + ".textproto"),
                    os.path.join(HERE, "corpus", "textproto_config", preset + ".textproto"))
    seed("textproto_config", "parallel.textproto", "parallel { dp: 2 tp: 2 ep: 4 pp: 2 }\n")
    seed("textproto_config", "lists.textproto",
         'model { name: "m" }\ngrpo { stop: "</answer>" stop: "x" }\nparallel { stage_layers: 1 }\n')
    seed("textproto_config", "unknown_field.textproto", "train { stepz: 3 }\n")
    seed("textproto_config", "comment_only.textproto", "# nothing\n")


def hf_config():
    config = {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
        "vocab_size": 256, "hidden_size": 32, "intermediate_size": 48,
        "moe_intermediate_size": 16, "num_hidden_layers": 4, "first_k_dense_replace": 2,
        "moe_layer_freq": 1, "num_attention_heads": 4, "q_lora_rank": 16, "kv_lora_rank": 16,
        "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8, "n_routed_experts": 8,
        "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 4, "topk_group": 2,
        "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
        "norm_topk_prob": True, "rms_norm_eps": 1e-6, "rope_theta": 10000,
        "max_position_embeddings": 256, "num_nextn_predict_layers": 1,
        "rope_scaling": {"type": "yarn", "factor": 4, "original_max_position_embeddings": 64,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1, "mscale_all_dim": 1},
        "torch_dtype": "float32"}
    seed("hf_config_json", "tiny.json", json.dumps(config, indent=2))
    plain = dict(config, rope_scaling=None)
    seed("hf_config_json", "no_yarn.json", json.dumps(plain))
    seed("hf_config_json", "wrong_type.json", json.dumps(dict(config, hidden_size="32")))
    seed("hf_config_json", "other_model.json", json.dumps({"model_type": "llama"}))


def tensors_file(tensors, metadata=None):
    """A safetensors file of {name: (dtype, shape, bytes)}, laid out back to back."""
    header, data = {}, b""
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata is not None:
        header["__metadata__"] = metadata
    return safetensors_bytes(header, data)


def safetensors():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    seed("safetensors_file", "f32.safetensors",
         tensors_file({"w": ("F32", [2, 2], f32)}, {"format": "pt"}))
    seed("safetensors_file", "mixed.safetensors", tensors_file({
        "a": ("BF16", [3], struct.pack("<3H", 0x3F80, 0xC000, 0x0000)),
        "b": ("F16", [2], struct.pack("<2H", 0x3C00, 0x7BFF)),
        "c": ("I64", [2], struct.pack("<2q", 7, -1)),
        "d": ("I32", [1, 1], struct.pack("<i", 5)),
        "e": ("F32", [0], b"")}))
    seed("safetensors_file", "overlap.safetensors", struct.pack("<Q", 96) + json.dumps(
        {"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
         "y": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}).encode().ljust(96)
        + b"\0" * 8)


def token_files():
    docs = [[2, 72, 105, 3], [2, 49, 43, 50, 61, 51, 3, 0, 7, 9, 11]]
    seed("token_file", "u16.bin", token_file(docs))
    seed("token_file", "u32_mask.bin", token_file(docs, dtype=2, mask=[0, 1, 1, 1] + [1] * 11))
    seed("token_file", "no_vocab.bin", token_file(docs, vocab=0))
    seed("token_file", "empty.bin", token_file([]))


def rewards():
    seed("reward_output", "three.txt", b"\x03" + b"1\n0.5\n -2e3 \n")
    seed("reward_output", "nan.txt", b"\x02" + b"1\nnan\n")
    seed("reward_output", "short.txt", b"\x04" + b"1\n2\n")
    seed("reward_output", "crlf.txt", b"\x02" + b"1\r\n0\r\n")


def tokenizer_json():
    """The test suite's tiny byte-level BPE (DeepSeek-V3's layout: added tokens, a digit Split
    and ByteLevel), preceded by a text to encode; and near misses."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "io"))
    import tempfile
    from tiny_hf_tokenizer import write  # noqa: E402
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = write(tmp)
        tiny = open(path, "rb").read()
    text = "the answer: 12345 <｜end▁of▁sentence｜>\n".encode()
    seed("tokenizer_json", "tiny.bin", bytes([len(text)]) + text + tiny)
    seed("tokenizer_json", "tiny_bad_utf8.bin", b"\x04\xff\xfeab" + tiny)
    broken = json.loads(tiny)
    broken["model"]["merges"].append("zz qq")
    seed("tokenizer_json", "unknown_merge.bin", b"\x00" + json.dumps(broken).encode())
    removed = json.loads(tiny)
    removed["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"
    seed("tokenizer_json", "split_removed.bin", b"\x06ab 123" + json.dumps(removed).encode())


def metadata():
    tiny = open(os.path.join(ROOT, "configs", "tiny.textproto"), "rb").read()[:255]
    state = struct.pack("<qQq", 12, 1234, 13) + b"\x00" + b"\x10" + b"0123456789abcdef"
    layout = bytes([1, 2, 1, 2, 1, 1])
    seed("checkpoint_metadata", "tiny_untampered.bin",
         state + layout + bytes([len(tiny)]) + tiny + b"\x01\x00")
    seed("checkpoint_metadata", "tampered_config.bin",
         state + layout + b"\x00" + b"\x01\x01\x06\x03\x10model { name: \"x\" }")
    seed("checkpoint_metadata", "negative_step.bin",
         struct.pack("<qQq", -1, 0, -5) + b"\x00\x00" + bytes(6) + b"\x00\x00\x00")


if __name__ == "__main__":
    shutil.rmtree(os.path.join(HERE, "corpus"), ignore_errors=True)
    os.makedirs(os.path.join(HERE, "corpus", "textproto_config"))
    textproto()
    hf_config()
    safetensors()
    token_files()
    rewards()
    metadata()
    tokenizer_json()
    print("seeds written under", os.path.join(HERE, "corpus"))
