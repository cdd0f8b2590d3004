"""Install metadata: pins agree between pyproject.toml and environment.yml; entry points and README exist."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env_pins = set(re.findall(r"^\s+- ([A-Za-z0-9_.\-\[\]]+==[^\s]+)$", (ROOT / "environment.yml").read_text(), re.M))
    assert pins == env_pins
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins
    assert all("==" in p for p in pins), "every dependency is pinned"


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
