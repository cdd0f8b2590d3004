"""notebooks/quickstart.ipynb executes top to bottom (nbclient, the venv's own python3 kernel) and writes its
videos; decord reads the mp4 back."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from fyc.data.video_io import read_video

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit it clean"
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "segmenter: region-growing fallback; mask: 100 px" in text
    assert "read back: (8, 32, 32, 3)" in text
    out = tmp_path / "quickstart_out"
    assert read_video(out / "animation.mp4").shape == (8, 32, 32, 3)
    assert read_video(out / "animation_side_by_side.mp4").shape == (8, 32, 64, 3)
    assert read_video(out / "two_objects.mp4").shape == (8, 32, 32, 3)
    assert (out / "animation.gif").stat().st_size > 0
