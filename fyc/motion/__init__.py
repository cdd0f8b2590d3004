"""Optical flow and flow-derived motion labels, shared by data labelling (fyc.data) and evaluation (fyc.eval)."""
from fyc.motion.flow import FLOW_BACKENDS, FlowEstimator, estimate_flow
from fyc.motion.labels import MotionLabel, motion_label_from_flow
from fyc.motion.masks import pool_mask, pool_mask_np

__all__ = ["FLOW_BACKENDS", "FlowEstimator", "estimate_flow", "MotionLabel", "motion_label_from_flow", "pool_mask",
           "pool_mask_np"]
