"""mmengine pieces shared by every toolkit adapter."""
from .head import ISDAHeadMixin, register_isda_heads, register_refusals
from .safe_load import register_safe_globals
from .schedule import isda_lambda, training_progress

__all__ = [
    'ISDAHeadMixin', 'isda_lambda', 'register_isda_heads',
    'register_refusals', 'register_safe_globals', 'training_progress'
]
