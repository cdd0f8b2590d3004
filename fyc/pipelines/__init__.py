"""Sampling: click → mask → video."""
from fyc.pipelines.click_to_mask import RegionGrowSegmenter, SamSegmenter, load_segmenter, region_grow_mask
from fyc.pipelines.contract import TrainingContract
from fyc.pipelines.pipeline_fyc import FollowYourClickPipeline, FollowYourClickPipelineOutput, Region

__all__ = ["FollowYourClickPipeline", "FollowYourClickPipelineOutput", "Region", "RegionGrowSegmenter",
           "SamSegmenter", "TrainingContract", "load_segmenter", "region_grow_mask"]
