"""mmdet adapters: ISDA bbox heads (``ISDAShared2FCBBoxHead``, ...)."""
from .heads import BACKGROUND_MODES, SUPPORTED_HEADS, ISDABBoxHeadMixin
from .refused import REFUSED_HEADS

__all__ = [
    'BACKGROUND_MODES', 'ISDABBoxHeadMixin', 'REFUSED_HEADS',
    'SUPPORTED_HEADS'
]
