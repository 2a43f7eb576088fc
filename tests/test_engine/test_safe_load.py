import builtins
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import isda_mm  # noqa: F401  (registers the safe globals)


def test_message_hub_round_trip(tmp_path):
    hub = MessageHub.get_instance('test_safe_load')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(2.5))
    hub.update_info('iter', 7)
    torch.save({'message_hub': hub.state_dict()}, tmp_path / 'ckpt.pth')
    loaded = torch.load(tmp_path / 'ckpt.pth')  # weights_only by default
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert buffer.mean() == 2.0 and buffer.current() == 2.5
    assert loaded['message_hub']['runtime_info']['iter'] == 7


class _SystemCall:
    def __reduce__(self):
        return os.system, ('echo pwned',)


class _GetattrChain:
    # How mmengine pickled HistoryBuffer's methods: an allowed class, then
    # getattr to reach anything hanging off it.
    def __reduce__(self):
        return builtins.getattr, (HistoryBuffer, '__init__')


@pytest.mark.parametrize('payload', [_SystemCall(), _GetattrChain()])
def test_malicious_checkpoint_refused(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': {}, 'meta': payload}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load'):
        torch.load(path)
