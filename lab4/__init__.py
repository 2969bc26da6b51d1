"""lab4: conditional-VAE video prediction (the lab's model, schedules, training and evaluation)."""

from lab4.config import PROFILES, Config, make_config
from lab4.util.errors import Lab4Error

__all__ = ["Config", "make_config", "PROFILES", "Lab4Error"]
__version__ = "0.1.0"
