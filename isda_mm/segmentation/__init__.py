"""mmseg adapters: ISDA decode heads (``ISDAFCNHead``, ...), and the
refusals of heads ISDA cannot bound (``ISDAMaskFormerHead``, ...)."""
from .heads import (
    OWN_SCORING_HEADS,
    SUPPORTED_HEADS,
    ISDADecodeHeadMixin,
    ISDAOwnScoringHeadMixin,
)
from .refused import REFUSED_HEADS

__all__ = [
    'ISDADecodeHeadMixin', 'ISDAOwnScoringHeadMixin', 'OWN_SCORING_HEADS',
    'REFUSED_HEADS', 'SUPPORTED_HEADS'
]
