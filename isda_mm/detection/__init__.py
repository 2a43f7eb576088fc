"""mmdet adapters: ISDA bbox heads (``ISDAShared2FCBBoxHead``, ...)."""
from .heads import BACKGROUND_MODES, SUPPORTED_HEADS, ISDABBoxHeadMixin

__all__ = ['BACKGROUND_MODES', 'ISDABBoxHeadMixin', 'SUPPORTED_HEADS']
