"""An offline CLIP BPE tokenizer over a closed vocabulary (the toy world's words).

The vocabulary holds every byte-level character (alone and as a word end, ``c</w>``), so any text tokenizes,
plus merges that build each given word from its characters, so known words mostly become one or a few tokens.
It is a real ``transformers.CLIPTokenizer``: saved and loaded like the SD-1.5 tokenizer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from transformers import CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")


def _word_merges(word: str) -> list[tuple[str, str]]:
    """Merges building ``word</w>`` left to right: (w0, w1), (w0w1, w2), ..., (w0..w_{n-2}, w_{n-1}</w>)."""
    merges, prefix = [], word[0]
    for i, ch in enumerate(word[1:], start=1):
        right = ch + "</w>" if i == len(word) - 1 else ch
        merges.append((prefix, right))
        prefix += ch
    return merges


def write_word_tokenizer_files(words: Iterable[str], out_dir: str | Path) -> Path:
    """Write ``vocab.json`` + ``merges.txt`` for ``words`` into ``out_dir`` and return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    seen = set()
    for word in sorted({w.lower() for w in words if len(w) > 1}):
        for left, right in _word_merges(word):
            if (left, right) in seen:
                continue
            seen.add((left, right))
            merges.append((left, right))
            merged = left + right
            if merged not in vocab_list:
                vocab_list.append(merged)
    # Shorter merges first, so a word's prefixes are built before longer pieces compete for its characters.
    merges.sort(key=lambda m: len(m[0] + m[1].replace("</w>", "")))
    vocab_list += list(SPECIAL_TOKENS)
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    (out_dir / "vocab.json").write_text(json.dumps(vocab))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return out_dir


def build_word_tokenizer(words: Iterable[str], out_dir: str | Path, model_max_length: int = 77) -> CLIPTokenizer:
    """Build, save (``save_pretrained`` layout) and return a CLIPTokenizer for ``words``."""
    out_dir = write_word_tokenizer_files(words, out_dir)
    vocab = json.loads((out_dir / "vocab.json").read_text())
    merges = [tuple(line.split(" ")) for line in (out_dir / "merges.txt").read_text().splitlines()[1:] if line]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    tokenizer.save_pretrained(out_dir)
    return tokenizer
