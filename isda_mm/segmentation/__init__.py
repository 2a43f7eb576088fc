"""mmseg adapters: ISDA decode heads (``ISDAFCNHead``, ...)."""
from .heads import SUPPORTED_HEADS, ISDADecodeHeadMixin

__all__ = ['ISDADecodeHeadMixin', 'SUPPORTED_HEADS']
