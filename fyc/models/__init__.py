"""Models: the Follow-Your-Click UNet (SD-1.5 + AnimateDiff + FYC conditioning), its parts, schedules and loading.

Knows nothing of Lightning, Hydra or files beyond diffusers' own from_pretrained / save_pretrained.
"""

from fyc.models.embeddings import ScalarConditionEmbedding
from fyc.models.first_frame_masking import FirstFrameMasking, first_frame_keep_mask, mask_first_frame_latent
from fyc.models.loading import load_fyc_unet, load_fyc_unet_from_folder
from fyc.models.motion_attention import (
    MotionAugmentedCrossAttention,
    MotionAugmentedTransformer3D,
    MotionPromptContext,
)
from fyc.models.schedulers import NOISE_SCHEDULE, make_sampling_scheduler, make_training_scheduler
from fyc.models.trainable import (
    PARAMETER_GROUPS,
    parameter_group_of,
    parameter_groups,
    select_trainable_parameters,
)
from fyc.models.unet import FYC_OPTION_NAMES, FollowYourClickUNet

__all__ = [
    "FYC_OPTION_NAMES",
    "NOISE_SCHEDULE",
    "PARAMETER_GROUPS",
    "FirstFrameMasking",
    "FollowYourClickUNet",
    "MotionAugmentedCrossAttention",
    "MotionAugmentedTransformer3D",
    "MotionPromptContext",
    "ScalarConditionEmbedding",
    "first_frame_keep_mask",
    "load_fyc_unet",
    "load_fyc_unet_from_folder",
    "make_sampling_scheduler",
    "make_training_scheduler",
    "mask_first_frame_latent",
    "parameter_group_of",
    "parameter_groups",
    "select_trainable_parameters",
]
