"""mmengine pieces shared by every toolkit adapter."""
from .safe_load import register_safe_globals
from .schedule import isda_lambda, training_progress

__all__ = ['isda_lambda', 'register_safe_globals', 'training_progress']
