"""Every command in README.md's bash blocks works as written.

Cheap commands are checked as a new user would meet them: argparse scripts parse the README's exact arguments, Hydra
entry points compose the README's exact overrides, named files exist. The "pieces" chain runs for real on a tiny
scale: the toy world's held-out split is generated as the README's command does (same seed, so the same images),
the README's clicks are segmented and must land on the object the README says, and `animate.py` runs with the
README's arguments (plus one sampling step) on a tiny toy pipeline.
"""
from __future__ import annotations

import argparse
import re
import runpy
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import ROOT, compose

README = ROOT / "README.md"


def readme_commands() -> list[list[str]]:
    """The README's bash-block commands as argument lists (continuation lines joined, comments dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


COMMANDS = readme_commands()


def _python(words: list[str]) -> tuple[str, list[str]] | None:
    """(script path, its arguments) for a ``python <file>`` command, else None."""
    if words[0] == "python" and words[1].endswith(".py"):
        return words[1], words[2:]
    return None


class _Parsed(Exception):
    pass


def parse_only(script: str, args: list[str], monkeypatch) -> argparse.Namespace:
    """Run ``script`` as __main__ with ``args`` until its argparse parser has parsed them, then stop."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, argv=None, namespace=None):
        raise _Parsed(original(self, argv, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [script, *args])
    monkeypatch.syspath_prepend(str(ROOT / Path(script).parent))
    with pytest.raises(_Parsed) as parsed:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    return parsed.value.args[0]


def test_readme_has_the_commands_it_promises():
    programs = {w[1] if w[0] == "python" else w[0] for w in COMMANDS}
    assert {"scripts/make_toy_webvid.py", "scripts/make_toy_components.py", "train.py", "evaluate.py",
            "scripts/make_toy_benchmark.py", "scripts/animate.py", "scripts/app.py", "make", "jupyter"} <= programs
    assert "docs/results.md" in README.read_text()[:2500], "results page linked near the top"


@pytest.mark.parametrize("words", [w for w in COMMANDS if _python(w) and _python(w)[0] not in ("train.py", "evaluate.py")],
                         ids=lambda w: " ".join(w[1:3]))
def test_script_parses_the_readme_arguments(words, monkeypatch):
    script, args = _python(words)
    assert (ROOT / script).is_file(), f"README names {script}, which does not exist"
    if "--help" in args:
        return
    parse_only(script, args, monkeypatch)


def _hydra_overrides(args: list[str]) -> list[list[str]]:
    """A command's overrides; a ``-m`` sweep becomes one list per job."""
    args = [a for a in args if a != "-m"]
    jobs = [[]]
    for arg in args:
        key, _, value = arg.partition("=")
        values = value.split(",") if "," in value and not value.startswith("[") else [value]
        jobs = [job + [f"{key}={v}"] for job in jobs for v in values]
    return jobs


@pytest.mark.parametrize("words", [w for w in COMMANDS if _python(w) and _python(w)[0] in ("train.py", "evaluate.py")],
                         ids=lambda w: " ".join(w[1:4]))
def test_hydra_command_composes(words, tmp_path):
    script, args = _python(words)
    config = Path(script).stem
    for overrides in _hydra_overrides(args):
        overrides = [o for o in overrides if not o.startswith(("hydra.", "ckpt_path=", "...")) and "..." not in o]
        if config == "evaluate" and not any(o.startswith("pipeline_dir=") for o in overrides):
            overrides.append("pipeline_dir=/some/where")
        cfg = compose(config, [*overrides, f"paths.output_dir={tmp_path}"])
        OmegaConf.resolve(cfg)


def test_other_commands_name_what_exists():
    makefile = (ROOT / "Makefile").read_text()
    for words in COMMANDS:
        if words[0] == "make":
            assert re.search(rf"^{words[1]}:", makefile, re.M), f"no make target {words[1]}"
        elif words[0] == "sbatch":
            assert (ROOT / words[1]).is_file()
        elif words[0] == "jupyter":
            assert (ROOT / words[-1]).is_file()
        elif words[0] == "pip":
            extra = re.search(r"\[(\w+)\]", words[-1]).group(1)
            assert f"\n{extra} = [" in (ROOT / "pyproject.toml").read_text()
    assert "notebooks/quickstart_out/" in (ROOT / ".gitignore").read_text()


def _animate_commands() -> list[list[str]]:
    return [_python(w)[1] for w in COMMANDS if _python(w) and _python(w)[0] == "scripts/animate.py"]


@pytest.fixture(scope="module")
def readme_toy_world(tmp_path_factory) -> Path:
    """The README's toy world and benchmark, held-out split only (its images do not depend on --train), as `data/toy`."""
    make_world = next(_python(w)[1] for w in COMMANDS if _python(w) and _python(w)[0] == "scripts/make_toy_webvid.py")
    make_bench = next(_python(w)[1] for w in COMMANDS if _python(w) and _python(w)[0] == "scripts/make_toy_benchmark.py")
    root = tmp_path_factory.mktemp("readme") / "data" / "toy"
    images = {Path(a).name for args in _animate_commands() for a in args if a.endswith(".png")}
    last = max(int(re.search(r"(\d+)\.png", name).group(1)) % 1000 for name in images)

    def replaced(args: list[str], **values) -> list[str]:
        args = [a.replace("data/toy", str(root)) for a in args]
        for flag, value in values.items():
            args[args.index(flag) + 1] = value
        return args

    sys.path.insert(0, str(ROOT / "scripts"))
    import make_toy_webvid  # noqa: E402

    make_toy_webvid.main(replaced(make_world, **{"--train": "0", "--val": str(last + 1)}) + ["--workers", "1"])
    argv = sys.argv
    try:
        sys.argv = ["make_toy_benchmark.py", *replaced(make_bench)]
        runpy.run_path(str(ROOT / "scripts/make_toy_benchmark.py"), run_name="__main__")
    finally:
        sys.argv = argv
    return root


def test_readme_clicks_land_on_the_objects_and_animate_runs(readme_toy_world, toy_pipeline_dir, tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    import animate  # noqa: E402
    from fyc.pipelines import load_segmenter

    commands = _animate_commands()
    assert commands
    segment = load_segmenter(None)
    for args in commands:
        args = [a.replace("data/toy", str(readme_toy_world)) for a in args]
        image_path = Path(args[args.index("--image") + 1])
        assert image_path.is_file(), f"README's image {image_path.name} is not made by the commands before it"
        image = np.asarray(Image.open(image_path).convert("RGB"))
        truth = np.asarray(Image.open(image_path.parent.parent / "masks" / image_path.name)) > 0
        parsed = animate.build_parser().parse_args(args)
        clicks = [parsed.click] if parsed.click else [region.clicks for region in parsed.region]
        for k, region_clicks in enumerate(clicks):
            mask = np.asarray(segment(image, region_clicks)) > 0
            assert mask.sum() >= 10, f"click {region_clicks} segments {mask.sum()} px of {image_path.name}"
            overlap = (mask & truth).sum() / (mask | truth).sum()
            if k == 0:  # the README's first click is on the object that moves in the true video
                assert overlap > 0.7, f"click {region_clicks} misses the moving object of {image_path.name}"
            else:
                assert overlap == 0, f"click {region_clicks} should be another object than the moving one"
        out = tmp_path / Path(parsed.out).name
        args[args.index("--model") + 1] = str(toy_pipeline_dir)
        args[args.index("--out") + 1] = str(out)
        animate.main([*args, "--steps", "1"])
        assert out.is_file() and f"video: {out}" in capsys.readouterr().out
