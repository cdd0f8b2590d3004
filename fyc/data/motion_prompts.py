"""Short motion prompts from WebVid captions (WebVid-Motion style): caption → objects + short motion phrases.

Two extractors, one output format (``MotionPrompt``: ``short_prompt`` str — motion phrases joined with
``" and "``, ``""`` when nothing moves — plus the ``objects`` list ``[{"object": str, "motion": str}]``):

- :class:`RuleBasedExtractor` — offline: a motion-verb lexicon (~200 verbs with their inflections and irregular
  forms) and light parsing: gerunds (``smiling``) are preferred over finite forms (``turns``) and bare base forms
  after a determiner are read as nouns (``a big wave``); a following body part (``turns her head`` → ``turn
  head``) or ``around`` is kept; posture/state verbs (sit, stand, look, sleep, hold) are not motion. Its accuracy
  on the hand-labelled ``data/motion_prompts/labelled.jsonl`` is measured by :func:`evaluate_extractor`.
- :class:`LLMExtractor` — an instruction-tuned causal LM through ``transformers`` (hub id or local folder), with
  the ~50 in-context examples of ``data/motion_prompts/examples.json`` (JSON, as in the paper), batched greedy
  generation, robust parsing of the first JSON object in the answer; an answer that does not parse falls back to
  the rule-based extractor (``source="rule_fallback"``).

:func:`make_motion_prompts` runs either over a WebVid CSV into a resumable JSONL file (and optionally a copy of
the CSV with a ``short_prompt`` column for ``WebVidDataset(require_short_prompt=True)``).
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "motion_prompts"
EXAMPLES_PATH = DATA_DIR / "examples.json"
LABELLED_PATH = DATA_DIR / "labelled.jsonl"


@dataclass
class MotionPrompt:
    """short_prompt: motion phrases joined with " and " ("" = no motion); objects: [{"object", "motion"}];
    source: "rule" | "llm" | "rule_fallback"."""

    short_prompt: str
    objects: list[dict] = field(default_factory=list)
    source: str = "rule"


# ------------------------------------------------------------------------------------------------ rule-based

MOTION_VERBS = """
walk run jog sprint jump hop skip leap dance spin rotate turn twist roll swing sway wave flap fly glide soar hover
swim dive float drift flow pour splash drip fall drop rise climb crawl ride drive sail row paddle surf skate
skateboard ski snowboard march gallop trot race chase kick throw catch hit punch clap wag shake nod blink wink smile
laugh cry weep yawn sneeze cough talk speak sing shout scream yell whisper chat eat drink chew bite lick sip kiss hug
type write draw paint knit sew cut chop slice stir cook bake mix knead hammer saw dig play fight wrestle box stretch
bend bow kneel squat lift push pull carry raise lower open close move pass cross flicker burn blaze sparkle twinkle
glow flash blow crash ripple bubble boil steam melt stream rush bounce shiver tremble vibrate fidget scratch brush
comb wash clean wipe shave dry sweep mop pet stroke feed graze peck hunt stalk pounce run rock shuffle stroll hike
trek wander step tiptoe limp stumble slide skid spin swirl whirl circle orbit zoom speed accelerate fire shoot
explode erupt splash spray sprinkle gush swell crumble collapse shatter break tear fold unfold pack unpack
bloom blossom grow shrink sprout wilt flutter quiver wiggle wriggle slither squirm crawl paw nuzzle cuddle
juggle dribble serve swing bat pitch golf bowl row pedal cycle fish cast reel sing strum drum perform
exercise train stretch meditate breathe inhale exhale whistle hum giggle grin frown scowl pout sigh gasp
read salute point beckon applaud cheer celebrate greet shake-hands handshake nod roar bark howl meow chirp
"""

NOT_MOTION = {"sit", "stand", "lie", "lay", "look", "pose", "sleep", "rest", "wait", "hold", "wear", "stay", "be",
              "have", "show", "see", "watch", "relax", "think", "smell", "listen", "feel", "use", "work", "enjoy"}
IRREGULAR = {"ran": "run", "flew": "fly", "flown": "fly", "swam": "swim", "fell": "fall", "fallen": "fall",
             "rose": "rise", "risen": "rise", "rode": "ride", "ridden": "ride", "threw": "throw", "thrown": "throw",
             "sang": "sing", "sung": "sing", "drove": "drive", "driven": "drive", "ate": "eat", "eaten": "eat",
             "drank": "drink", "drunk": "drink", "blew": "blow", "blown": "blow", "dove": "dive", "spun": "spin",
             "swung": "swing", "bit": "bite", "caught": "catch", "fought": "fight", "shook": "shake",
             "shaken": "shake", "wrote": "write", "drew": "draw", "broke": "break", "tore": "tear", "grew": "grow",
             "leapt": "leap", "slid": "slide", "dug": "dig", "rang": "ring", "wept": "weep", "lying": "lie",
             "dying": "die"}
BODY_PARTS = {"head", "heads", "hand", "hands", "arm", "arms", "tail", "wing", "wings", "eye", "eyes", "hair",
              "leg", "legs", "finger", "fingers", "teeth", "paw", "paws", "shoulder", "shoulders", "lips", "face",
              "fist", "fists", "hips", "body", "ears", "nose", "feet", "foot"}
SINGULAR_PART = {"heads": "head", "eye": "eyes", "fists": "fist"}
DETERMINERS = {"a", "an", "the", "his", "her", "its", "their", "my", "your", "our", "this", "that", "these",
               "those", "big", "small", "large", "huge", "giant", "little", "one", "two", "some", "of", "new"}
PARTICLES = {"around"}
EXERCISES = {("push", "ups"): "do push ups", ("pushups",): "do push ups", ("sit", "ups"): "do sit ups",
             ("pull", "ups"): "do pull ups", ("jumping", "jacks"): "do jumping jacks"}
_VOWELS = set("aeiou")
_LEXICON = {w for w in MOTION_VERBS.split() if "-" not in w} - NOT_MOTION


def _lemma_candidates(token: str) -> list[tuple[str, str]]:
    """(lemma, form) candidates of a lower-case token: form is "ing", "s", "ed" or "base"."""
    if token in IRREGULAR:
        return [(IRREGULAR[token], "ed")]
    out = [(token, "base")]
    if token.endswith("ing") and len(token) > 4:
        stem = token[:-3]
        out += [(stem, "ing"), (stem + "e", "ing")]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            out.append((stem[:-1], "ing"))  # running → run
        if stem.endswith("y"):
            out.append((stem[:-1] + "ie", "ing"))
    if token.endswith("ies") and len(token) > 4:
        out.append((token[:-3] + "y", "s"))
    if token.endswith("es") and len(token) > 3:
        out.append((token[:-2], "s"))
    if token.endswith("s") and not token.endswith("ss") and len(token) > 2:
        out.append((token[:-1], "s"))
    if token.endswith("ed") and len(token) > 3:
        stem = token[:-2]
        out += [(stem, "ed"), (token[:-1], "ed")]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            out.append((stem[:-1], "ed"))
        if stem.endswith("i"):
            out.append((stem[:-1] + "y", "ed"))
    return out


def _tokenize(caption: str) -> list[str]:
    return re.findall(r"[a-z]+", caption.lower().replace("-", " "))


class RuleBasedExtractor:
    """Offline caption → :class:`MotionPrompt` (see the module docstring). ``max_phrases`` caps the output."""

    def __init__(self, max_phrases: int = 3, lexicon: Iterable[str] | None = None):
        self.max_phrases = max_phrases
        self.lexicon = set(lexicon) if lexicon is not None else set(_LEXICON)

    def _verb_at(self, tokens: list[str], i: int) -> tuple[str, str] | None:
        for lemma, form in _lemma_candidates(tokens[i]):
            if lemma in self.lexicon:
                return lemma, form
        return None

    def __call__(self, caption: str) -> MotionPrompt:
        tokens = _tokenize(caption)
        found: list[tuple[int, str, str]] = []  # (position, lemma, form)
        skip_until = -1
        phrases_at: dict[int, str] = {}
        for i in range(len(tokens)):
            if i < skip_until:
                continue
            for pattern, phrase in EXERCISES.items():
                if tuple(tokens[i:i + len(pattern)]) == pattern:
                    found.append((i, phrase, "ing"))
                    phrases_at[i] = phrase
                    skip_until = i + len(pattern)
                    break
            if i < skip_until:
                continue
            if tokens[i] in ("slow", "time") and i + 1 < len(tokens) and tokens[i + 1] in ("motion", "lapse"):
                skip_until = i + 2  # camera terms, not the subject's motion
                continue
            hit = self._verb_at(tokens, i)
            if hit is None:
                continue
            lemma, form = hit
            previous = tokens[i - 1] if i > 0 else ""
            if form == "base" and (i == 0 or previous in DETERMINERS):
                continue  # "a big wave", "the run": a noun
            if form == "s" and (i == 0 or previous in DETERMINERS):
                continue  # "waves rolling", "the waves": a plural noun
            found.append((i, lemma, form))
        if any(form == "ing" for _, _, form in found):  # WebVid captions are gerund-style: trust -ing first
            found = [f for f in found if f[2] == "ing" or f[1] in phrases_at.values()]
        phrases: list[str] = []
        for i, lemma, form in found:
            phrase = phrases_at.get(i) or self._phrase(tokens, i, lemma)
            if phrase not in phrases:
                phrases.append(phrase)
        phrases = phrases[: self.max_phrases]
        subject = self._subject(tokens, found[0][0]) if found else ""
        return MotionPrompt(" and ".join(phrases), [{"object": subject, "motion": p} for p in phrases], "rule")

    @staticmethod
    def _phrase(tokens: list[str], i: int, lemma: str) -> str:
        j = i + 1
        if j < len(tokens) and tokens[j] in PARTICLES:
            return f"{lemma} {tokens[j]}"
        while j < len(tokens) and tokens[j] in DETERMINERS - {"of"}:
            j += 1
        if j < len(tokens) and tokens[j] in BODY_PARTS and j - i <= 3:
            return f"{lemma} {SINGULAR_PART.get(tokens[j], tokens[j])}"
        return lemma

    @staticmethod
    def _subject(tokens: list[str], verb_at: int) -> str:
        """The last non-determiner word before the first verb (a cheap head-noun guess)."""
        for token in reversed(tokens[:verb_at]):
            if token not in DETERMINERS and token not in ("and", "with", "in", "on", "up", "close", "shot", "view"):
                return token
        return ""


def load_labelled(path: str | Path = LABELLED_PATH) -> list[dict]:
    """Hand-labelled captions: dicts with ``caption``, ``short_prompt`` (gold, "" = no motion) and ``verbs``."""
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                row = json.loads(line)
                for key in ("caption", "short_prompt", "verbs"):
                    if key not in row:
                        raise ValueError(f"{path}:{n}: missing field {key!r}")
                rows.append(row)
    return rows


def evaluate_extractor(extractor, rows: Sequence[dict] | None = None) -> dict:
    """Accuracy of ``extractor(caption) -> MotionPrompt`` on labelled rows (default: the shipped set).

    Returns ``primary_verb_accuracy`` (first predicted verb == first gold verb; both empty counts as right),
    ``exact_match`` (whole short prompt), ``verb_f1`` (micro F1 over verb sets), ``n`` and the ``errors``.
    """
    rows = load_labelled() if rows is None else rows
    primary = exact = tp = fp = fn = 0
    errors = []
    for row in rows:
        pred = extractor(row["caption"]).short_prompt
        pred_verbs = [p.split()[0] for p in pred.split(" and ")] if pred else []
        gold_verbs = list(row["verbs"])
        ok = (pred_verbs[:1] == gold_verbs[:1])
        primary += ok
        exact += pred == row["short_prompt"]
        tp += len(set(pred_verbs) & set(gold_verbs))
        fp += len(set(pred_verbs) - set(gold_verbs))
        fn += len(set(gold_verbs) - set(pred_verbs))
        if not ok:
            errors.append({"caption": row["caption"], "gold": row["short_prompt"], "predicted": pred})
    n = len(rows)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"n": n, "primary_verb_accuracy": primary / n, "exact_match": exact / n, "verb_f1": f1,
            "errors": errors}


# ------------------------------------------------------------------------------------------------------- LLM

def load_examples(path: str | Path = EXAMPLES_PATH) -> tuple[str, list[dict]]:
    """(instruction, examples) from the in-context JSON file; each example has ``caption`` and ``objects``."""
    with open(path) as f:
        data = json.load(f)
    for k, ex in enumerate(data["examples"]):
        if not isinstance(ex.get("caption"), str) or not isinstance(ex.get("objects"), list):
            raise ValueError(f"{path}: example {k} needs 'caption' (str) and 'objects' (list)")
    return data["instruction"], data["examples"]


def parse_llm_answer(text: str) -> MotionPrompt | None:
    """The first JSON object in ``text`` with an ``objects`` list of ``{"object", "motion"}`` → MotionPrompt;
    None when there is none. Motions are lower-cased, stripped, capped at 6 words, de-duplicated."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if not isinstance(value, dict) or not isinstance(value.get("objects"), list):
            continue
        objects, phrases = [], []
        for item in value["objects"]:
            if not isinstance(item, dict) or not isinstance(item.get("motion"), str):
                continue
            motion = " ".join(re.sub(r"[^a-z ]", " ", item["motion"].lower()).split()[:6])
            if not motion:
                continue
            objects.append({"object": str(item.get("object", "")).strip().lower(), "motion": motion})
            if motion not in phrases:
                phrases.append(motion)
        if value["objects"] and not objects:
            continue  # a list of junk: keep looking
        return MotionPrompt(" and ".join(phrases), objects, "llm")
    return None


class LLMExtractor:
    """Captions → :class:`MotionPrompt` with a causal LM (``model``: hub id or local folder).

    Args:
        max_examples: in-context examples used (fewer are used automatically when the prompt would not fit
            the model's context with ``max_new_tokens``).
        batch_size: captions per ``generate`` call (left-padded, greedy).
        fallback: extractor for answers that do not parse (default: :class:`RuleBasedExtractor`).
    """

    def __init__(self, model: str | Path, *, examples_path: str | Path = EXAMPLES_PATH, max_examples: int = 50,
                 max_new_tokens: int = 64, batch_size: int = 8, device: str = "cpu", dtype: str | None = None,
                 fallback=None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model))
        kwargs = {"dtype": getattr(torch, dtype)} if dtype else {}
        self.model = AutoModelForCausalLM.from_pretrained(str(model), **kwargs).to(device).eval()
        self.device = device
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.instruction, examples = load_examples(examples_path)
        self.examples = examples[:max_examples]
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.fallback = fallback or RuleBasedExtractor()
        config = self.model.config
        self.context = int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 0)
                           or 4096)
        self._prompt_cache: dict[int, str] = {}

    def _prompt(self, caption: str, n_examples: int) -> str:
        examples = self.examples[:n_examples]
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": self.instruction}]
            for ex in examples:
                messages += [{"role": "user", "content": ex["caption"]},
                             {"role": "assistant", "content": json.dumps({"objects": ex["objects"]})}]
            messages.append({"role": "user", "content": caption})
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        shots = "".join(f"Caption: {ex['caption']}\nJSON: {json.dumps({'objects': ex['objects']})}\n\n"
                        for ex in examples)
        return f"{self.instruction}\n\n{shots}Caption: {caption}\nJSON:"

    def _fitting_prompt(self, caption: str) -> str:
        n = len(self.examples)
        while True:
            prompt = self._prompt(caption, n)
            if n == 0 or len(self.tokenizer(prompt)["input_ids"]) + self.max_new_tokens <= self.context:
                return prompt
            n = max(0, n - max(1, n // 4))

    def __call__(self, caption: str) -> MotionPrompt:
        return self.batch([caption])[0]

    def batch(self, captions: Sequence[str]) -> list[MotionPrompt]:
        import torch

        out: list[MotionPrompt] = []
        for start in range(0, len(captions), self.batch_size):
            chunk = list(captions[start:start + self.batch_size])
            prompts = [self._fitting_prompt(c) for c in chunk]
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
            with torch.inference_mode():
                generated = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                                pad_token_id=self.tokenizer.pad_token_id)
            answers = self.tokenizer.batch_decode(generated[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for caption, answer in zip(chunk, answers):
                parsed = parse_llm_answer(answer)
                if parsed is None:
                    logger.debug("unparseable LLM answer for %r: %r", caption, answer[:200])
                    parsed = self.fallback(caption)
                    parsed.source = "rule_fallback"
                out.append(parsed)
        return out


# ------------------------------------------------------------------------------------------------- CSV → JSONL

@dataclass
class PromptRunResult:
    total: int = 0
    done: int = 0
    processed: int = 0
    bad_rows: int = 0
    sources: dict = field(default_factory=dict)


def read_done(path: Path) -> set[str]:
    """videoids already in an output JSONL (a torn last line from a kill is ignored)."""
    done = set()
    if path.is_file():
        with open(path) as f:
            for line in f:
                try:
                    done.add(json.loads(line)["videoid"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
    return done


def make_motion_prompts(csv_path: str | Path, out: str | Path, extractor, *, caption_column: str = "name",
                        batch_size: int = 32, out_csv: str | Path | None = None, limit: int | None = None,
                        progress: bool = True) -> PromptRunResult:
    """Short prompts for every row of a WebVid CSV → JSONL ``out`` (one line per videoid: videoid, caption,
    short_prompt, objects, source). Resumable: rows already in ``out`` are skipped. ``extractor`` is a
    :class:`RuleBasedExtractor`, an :class:`LLMExtractor` (batched) or any ``caption -> MotionPrompt``.
    ``out_csv``: also write the CSV with a ``short_prompt`` column (rows without a prompt get "")."""
    import pandas as pd
    from tqdm.auto import tqdm

    csv_path, out = Path(csv_path), Path(out)
    header = pd.read_csv(csv_path, nrows=0).columns
    missing = [c for c in ("videoid", caption_column) if c not in header]
    if missing:
        raise ValueError(f"{csv_path}: missing required column(s) {missing} (has {list(header)})")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, on_bad_lines="warn")
    result = PromptRunResult(total=len(table))
    done = read_done(out)
    todo = []
    for videoid, caption in zip(table["videoid"], table[caption_column]):
        if not videoid or not caption.strip():
            result.bad_rows += 1
        elif videoid in done:
            result.done += 1
        else:
            todo.append((videoid, caption))
            done.add(videoid)
    if limit is not None:
        todo = todo[:limit]
    if result.bad_rows:
        logger.warning("%s: %d row(s) without videoid or caption skipped", csv_path, result.bad_rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    run = getattr(extractor, "batch", None) or (lambda caps: [extractor(c) for c in caps])
    with open(out, "a") as f, tqdm(total=len(todo), unit="caption", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            for (videoid, caption), prompt in zip(chunk, run([c for _, c in chunk])):
                f.write(json.dumps({"videoid": videoid, "caption": caption, "short_prompt": prompt.short_prompt,
                                    "objects": prompt.objects, "source": prompt.source}) + "\n")
                result.sources[prompt.source] = result.sources.get(prompt.source, 0) + 1
            f.flush()
            os.fsync(f.fileno())
            result.processed += len(chunk)
            bar.update(len(chunk))
    if out_csv is not None:
        prompts = {}
        with open(out) as f:
            for line in f:
                try:
                    row = json.loads(line)
                    prompts[row["videoid"]] = row["short_prompt"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
        table["short_prompt"] = [prompts.get(v, "") for v in table["videoid"]]
        table.to_csv(out_csv, index=False)
    return result
