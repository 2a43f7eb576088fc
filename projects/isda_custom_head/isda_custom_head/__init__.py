from .two_layer_head import TwoLayerISDAHead

__all__ = ['TwoLayerISDAHead']
