"""Plumbing shared by the cookbook's notebooks.

The notebooks show each technique's essential calls (LoraConfig, SFTTrainer, GRPOTrainer...);
this package holds only what every recipe needs around them: run configuration, device choice,
an offline tiny model for smoke runs, small generated data, loading with clear errors, and the
metrics file each run writes.
"""

from cookbook.config import RunConfig, apply_smoke_profile
from cookbook.device import DeviceChoice, select_device
from cookbook.tracking import keep_tensorboard_in_output_dir

keep_tensorboard_in_output_dir()

__all__ = ["DeviceChoice", "RunConfig", "apply_smoke_profile", "select_device"]
