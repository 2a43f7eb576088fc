import pytest
from mmengine.logging import MessageHub

from isda_mm.engine import isda_lambda, training_progress


@pytest.fixture
def hub():
    hub = MessageHub.get_instance('test_schedule')
    yield hub
    MessageHub._instance_dict.pop('test_schedule')


def test_progress_by_iter_and_epoch(hub):
    hub.update_info('iter', 30)
    hub.update_info('max_iters', 120)
    hub.update_info('epoch', 1)
    hub.update_info('max_epochs', 4)
    assert training_progress('iter') == 0.25
    assert isda_lambda(7.5, 'iter') == 7.5 * 0.25
    assert training_progress('epoch') == 0.25


def test_outside_a_runner_lambda0_is_used():
    MessageHub.get_instance('no_runner_here')
    assert training_progress('iter') is None
    assert isda_lambda(0.5) == 0.5


def test_bad_unit():
    with pytest.raises(ValueError, match='by must be one of'):
        training_progress('step')
