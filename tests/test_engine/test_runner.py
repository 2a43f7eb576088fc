"""The engine layer inside a real mmengine Runner: lambda from the runner,
its logging, and an exact resume."""
import json
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from tiny_isda import NUM_CLASSES, runner_cfg

ITERS_PER_EPOCH, EPOCHS = 6, 2


def lambda_history(runner):
    return runner.message_hub.get_scalar('train/isda_lambda').data[0]


def test_lambda_follows_iterations_and_is_logged(tmp_path):
    runner = Runner(**runner_cfg(tmp_path))
    runner.train()
    total = ITERS_PER_EPOCH * EPOCHS
    expected = [0.5 * i / total for i in range(total)]
    assert lambda_history(runner).tolist() == pytest.approx(expected)
    scalars = next(Path(tmp_path).glob('*/vis_data/scalars.json'))
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    assert [r['isda_lambda'] for r in logged] == pytest.approx(
        expected, abs=1e-4)
    assert logged[-1]['isda_classes'] == NUM_CLASSES
    assert logged[-1]['isda_cov_trace'] > 0


def test_lambda_follows_epochs(tmp_path):
    runner = Runner(**runner_cfg(tmp_path, head=dict(lambda_by='epoch')))
    runner.train()
    expected = [0.5 * e / EPOCHS for e in range(EPOCHS)
                for _ in range(ITERS_PER_EPOCH)]
    assert lambda_history(runner).tolist() == pytest.approx(expected)


class Crash(Hook):
    """Stops training after the first epoch, once its checkpoint is saved."""
    priority = 'LOWEST'

    def after_train_epoch(self, runner):
        raise RuntimeError('simulated crash')


def final_state(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_resume_is_exact(tmp_path):
    whole = Runner(**runner_cfg(tmp_path / 'whole', experiment_name='w'))
    whole.train()

    cfg = runner_cfg(tmp_path / 'parts', experiment_name='p1',
                     custom_hooks=[Crash()])
    with pytest.raises(RuntimeError, match='simulated crash'):
        Runner(**cfg).train()
    resumed = Runner(**runner_cfg(tmp_path / 'parts', experiment_name='p2',
                                  resume=True))
    resumed.train()  # torch.load(weights_only=True) inside mmengine

    want, got = final_state(whole), final_state(resumed)
    assert any('isda.estimator.covariance' in k for k in got)
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key
    # The logged history is resumed too, and continues as it would have.
    assert lambda_history(resumed).tolist() == lambda_history(
        whole).tolist()
