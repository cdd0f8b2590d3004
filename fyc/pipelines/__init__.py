"""Sampling: click → mask → video."""
from fyc.pipelines.click_to_mask import region_grow_mask
from fyc.pipelines.pipeline_fyc import FollowYourClickPipeline, FollowYourClickPipelineOutput

__all__ = ["FollowYourClickPipeline", "FollowYourClickPipelineOutput", "region_grow_mask"]
