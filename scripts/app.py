"""Interactive Follow-Your-Click demo (Gradio): upload an image, click the object(s) to animate, type a short
motion prompt, set the strength, generate, watch / download the video.

    python scripts/app.py --model <pipeline dir or hub id> [--sam <SAM hub id or folder>] [--host 0.0.0.0]
        [--port 7860] [--steps 25 --frames 16]

Binds 127.0.0.1 (this machine only) unless --host says otherwise. Clicks are positive by default; switch the
"click adds" radio to "negative point" to remove what a click hits. Without --sam the offline region-growing
fallback segments the clicks (shown as such in the status line).
"""
from __future__ import annotations

import argparse
import getpass
import os
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio keeps uploads in one shared folder (<tmp>/gradio) by default: on a machine where another user created it,
# every upload fails. A folder per user avoids that; gradio reads the variable when it is imported.
os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(tempfile.gettempdir(), f"gradio-{getpass.getuser()}"))

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from fyc.data.video_io import write_video  # noqa: E402
from fyc.pipelines import FollowYourClickPipeline, load_segmenter  # noqa: E402
from fyc.pipelines.pipeline_fyc import check_number  # noqa: E402
from fyc.pipelines.visualize import overlay_masks  # noqa: E402

POSITIVE, NEGATIVE = "positive point", "negative point"


def build_app(pipeline: FollowYourClickPipeline, segmenter, steps: int = 25, frames: int = 16,
              out_dir: str | Path | None = None) -> gr.Blocks:
    """The Blocks UI around ``pipeline``; videos go to ``out_dir`` (default: a temporary folder, removed at exit;
    ``app.fyc_out_dir`` names it, ``app.fyc_cleanup()`` removes it now). The strength slider starts at the training median and videos
    are written at the training clips' effective fps, both from the pipeline's training contract."""
    temporary = out_dir is None
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="fyc_app_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    max_frames = pipeline.unet.config.motion_max_seq_length
    contract = getattr(pipeline, "training_contract", None)
    default_strength = (contract.median_strength if contract is not None else None) or 4.0

    def segment(image, points):
        if image is None or not points:
            return None, "click on the object to animate"
        positive = [p for p, label in points if label]
        negative = [p for p, label in points if not label]
        if not positive:
            return None, "add at least one positive point"
        try:
            mask = segmenter(image, positive, negative)
        except ValueError as error:
            return None, f"error: {error}"
        status = f"mask: {int(mask.sum())} px from {len(positive)}+{len(negative)} point(s) ({segmenter.name})"
        return mask, status

    def on_click(image, points, kind, evt: gr.SelectData):
        points = list(points or []) + [((float(evt.index[0]), float(evt.index[1])), kind == POSITIVE)]
        mask, status = segment(image, points)
        positive = [p for p, label in points if label]
        negative = [p for p, label in points if not label]
        overlay = overlay_masks(image, mask if mask is not None else np.zeros(image.shape[:2], bool),
                                clicks=positive, negative_clicks=negative)
        return points, overlay, status

    def on_clear(image):
        return [], image, "points cleared"

    def on_generate(image, points, prompt, strength, num_steps, num_frames, seed, progress=gr.Progress()):
        if image is None:
            raise gr.Error("upload an image first")
        mask, status = segment(image, points)
        if mask is None:
            raise gr.Error(status)
        callback = lambda pipe, i, t, kw: (progress((i + 1, int(num_steps)), desc="sampling"), {})[1]  # noqa: E731
        try:
            check_number("strength", strength)
            out = pipeline(image, mask=mask, prompt=prompt or "", strength=float(strength),
                           num_frames=int(num_frames), num_inference_steps=int(num_steps),
                           generator=torch.Generator().manual_seed(int(seed)), callback_on_step_end=callback)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        video = (out.frames[0] * 255).round().astype(np.uint8)
        if video.shape[1] % 2 or video.shape[2] % 2:
            raise gr.Error("image height and width must be even for mp4")
        path = write_video(out_dir / f"fyc_{len(list(out_dir.glob('*.mp4'))):04d}.mp4", video,
                           fps=out.fps or 8.0)
        strengths = ", ".join("none" if v is None else f"{v:g}" for v in out.strengths or [])
        return str(path), f"{status}; strength {strengths}; video: {video.shape[0]} frames"

    with gr.Blocks(title="Follow-Your-Click") as app:
        gr.Markdown("## Follow-Your-Click — click an object, describe its motion, generate")
        points = gr.State([])
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Image (click to add points)", type="numpy", image_mode="RGB",
                                 sources=["upload"], elem_id="input-image")
                kind = gr.Radio([POSITIVE, NEGATIVE], value=POSITIVE, label="click adds")
                clear = gr.Button("Clear points")
            overlay = gr.Image(label="Mask overlay", type="numpy", interactive=False, elem_id="mask-overlay")
        prompt = gr.Textbox(label="Short motion prompt", placeholder="e.g. wag tail", elem_id="prompt")
        with gr.Row():
            strength = gr.Slider(0, max(20, 2 * default_strength), value=round(default_strength, 1), step=0.5,
                                 label="Motion strength (px per frame pair)")
            num_steps = gr.Slider(1, 100, value=steps, step=1, label="Steps")
            num_frames = gr.Slider(1, max_frames, value=min(frames, max_frames), step=1, label="Frames")
            seed = gr.Number(value=0, precision=0, label="Seed")
        generate = gr.Button("Generate", variant="primary", elem_id="generate")
        status = gr.Textbox(label="Status", interactive=False, elem_id="status")
        video = gr.Video(label="Video", elem_id="video")

        image.upload(lambda img: ([], img, "image loaded: click on an object"), image, [points, overlay, status])
        image.select(on_click, [image, points, kind], [points, overlay, status])
        clear.click(on_clear, image, [points, overlay, status])
        generate.click(on_generate, [image, points, prompt, strength, num_steps, num_frames, seed], [video, status])
    app.fyc_out_dir = out_dir
    # A temporary folder is removed when the process exits (or when the app is garbage-collected, or on
    # app.fyc_cleanup()); a folder the caller named is kept.
    app.fyc_cleanup = weakref.finalize(app, shutil.rmtree, str(out_dir), True) if temporary else None
    return app


def positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value

    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="FollowYourClickPipeline folder or hub id; default: the shipped toy model (assets/toy_fyc)")
    parser.add_argument("--sam", default=None, help="SAM hub id or folder; default: region-growing fallback")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--steps", type=positive_int("--steps"), default=25)
    parser.add_argument("--frames", type=positive_int("--frames"), default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    from animate import resolve_model  # the same --model handling as the CLI

    pipeline = FollowYourClickPipeline.from_pretrained(resolve_model(parser, args.model)).to(args.device)
    pipeline.set_progress_bar_config(disable=True)
    segmenter = load_segmenter(args.sam, device=args.device)
    print(f"segmenter: {segmenter.name}", flush=True)
    app = build_app(pipeline, segmenter, steps=args.steps, frames=args.frames)
    app.queue().launch(server_name=args.host, server_port=args.port, share=False, show_error=True)


if __name__ == "__main__":
    main()
