"""Mean Teacher + ISDA, the model: the teacher is the EMA of the student,
the supervised and consistency terms, only labeled images (and confident
pseudo-labels, when asked) reach the statistics, prediction with the
teacher, no training in a runner without SemiSupervisedHook, deployment
into the stock classifier. (lambda0 = 0 against the paper's Mean Teacher:
test_semi_methods.py.)"""
import copy

import pytest
import torch
from host_syncs import count_host_syncs
from isda_reference import reference_statistics
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

import isda_mm  # noqa: F401
from isda_mm.classification.semi import isda_consistency
from isda_mm.core import ISDALoss


@MODELS.register_module(force=True)
class TinySemiNet(nn.Module):
    """conv-BN-ReLU: a (B, 4, H, W) map, no dropout (deterministic)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1),
                                    nn.BatchNorm2d(4), nn.ReLU())

    def forward(self, x):
        return (self.layers(x), )


def mean_teacher(head='ISDALinearClsHead', lambda0=0.5, **kwargs):
    head = dict(type=head, num_classes=3, in_channels=4)
    if head['type'].startswith('ISDA'):
        head['lambda0'] = lambda0
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='ISDAMeanTeacher',
        data_preprocessor=dict(mean=[127.5], std=[127.5]),
        backbone=dict(type='TinySemiNet'),
        neck=dict(type='GlobalAveragePooling'), head=head, **kwargs))
    model.init_weights()
    return model


def batch(labels, seed=0):
    g = torch.Generator().manual_seed(seed)
    views = [[torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8,
                            generator=g) for _ in labels] for _ in range(2)]
    return dict(inputs=views,
                data_samples=[DataSample().set_gt_label(y) for y in labels])


LABELS = [0, 1, 2, 0, -1, -1, -1, -1]


def train(model, steps=3, labels=LABELS):
    wrapper = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.5))
    logs, students = [], []
    for step in range(steps):
        logs.append(model.train_step(batch(labels, step), wrapper))
        model.update_teacher()  # SemiSupervisedHook's call
        students.append({k: v.detach().clone()
                         for k, v in model.named_parameters()
                         if not k.startswith('teacher.')})
    return logs, students


@pytest.mark.parametrize('warmup', [False, True])
def test_teacher_is_the_ema_of_the_student(warmup):
    model = mean_teacher(ema_decay=(0.5, 0.9), rampup_iters=2,
                         ema_warmup=warmup)
    teacher = {k: v.double() for k, v in model.named_parameters()
               if not k.startswith('teacher.')}
    _, students = train(model, steps=4)
    for k, student in enumerate(students):
        alpha = 0.5 if k < 2 else 0.9
        m = max(1 - alpha, 1 / (k + 2)) if warmup else 1 - alpha
        teacher = {n: (1 - m) * t + m * student[n].double()
                   for n, t in teacher.items()}
    for name, value in teacher.items():
        torch.testing.assert_close(
            model.teacher.module.get_parameter(name).double(), value,
            rtol=1e-5, atol=1e-6)
    assert int(model.teacher.steps) == 4


def test_teacher_buffers():
    own, copied = (mean_teacher(teacher_buffers=b) for b in ('own', 'copy'))
    for model in (own, copied):
        train(model, steps=2)
    key = 'backbone.layers.1.running_mean'
    assert torch.equal(copied.teacher.module.get_buffer(key),
                       copied.get_buffer(key))
    assert not torch.equal(own.teacher.module.get_buffer(key),
                           own.get_buffer(key))
    # the teacher carries no ISDA statistics
    assert not any('isda' in k for k in own.teacher.state_dict())


def test_unlabeled_images_never_reach_the_statistics():
    model = mean_teacher()
    seen = []
    real = model.head.isda.estimator.update
    model.head.isda.estimator.update = lambda f, y, **kw: (
        seen.append((f.detach().clone(), y.clone())), real(f, y, **kw))[1]
    train(model, steps=2)
    for features, labels in seen:
        assert (labels >= 0).all() and len(labels) == 4
    mean, cov, count = reference_statistics(seen, 3)
    est = model.head.isda.estimator
    assert est.count.tolist() == count.tolist() == [4, 2, 2]
    torch.testing.assert_close(est.covariance.double(), cov, rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize('covariance', ['full', 'diagonal'])
def test_a_step_syncs_with_the_host_three_times(covariance):
    """Loss, backward and the teacher's update wait for the GPU three
    times: which images are labeled, the head's ISDA step, the consistency
    bound's check; the teacher's step count stays on the host."""
    model = mean_teacher(head='ISDALinearClsHead')
    model.head.isda = ISDALoss(3, 4, covariance)
    train(model, steps=1)
    data = model.data_preprocessor(batch(LABELS, seed=4), True)
    with count_host_syncs() as syncs:
        losses = model.loss(**data)
        sum(v for k, v in losses.items() if k.startswith('loss')).backward()
        model.update_teacher()
    assert syncs.counts == {'tolist': 3}
    assert int(model.teacher.steps) == 2


@pytest.mark.parametrize('threshold, added', [(1e-6, 4), (1.0, 0)])
def test_pseudo_labels_above_the_threshold_only(threshold, added):
    model = mean_teacher(pseudo_label_threshold=threshold)
    logs, _ = train(model, steps=2)
    assert model.head.isda.estimator.count.sum() == 2 * (4 + added)
    assert [float(log['num_pseudo_labels']) for log in logs] == [added] * 2


@pytest.mark.parametrize('on_labeled', [True, False])
def test_labeled_only_batch(on_labeled):
    """The head's own (ISDA) loss, plus ``w`` times the batch mean of the
    consistency bound on the same images (0 without it on labeled ones)."""
    model = mean_teacher(consistency_weight=3.0,
                         consistency_on_labeled=on_labeled)
    train(model, steps=1)  # teacher != student
    twin = copy.deepcopy(model)
    data = model.data_preprocessor(batch([0, 1, 2, 0], seed=9), True)
    got = model.loss(**data)
    view, teacher_view = data['inputs']
    probs = twin.teacher.module(teacher_view).softmax(1)
    feats = twin.extract_feat(view)
    want = twin.head.loss(feats, data['data_samples'])
    features, logits, weight = twin._classifier(feats)
    bound = isda_consistency(logits, probs, weight,
                             twin.head.isda.estimator, 0.5).mean()
    assert torch.equal(got['loss_sup'], want['loss'])
    expected = 3.0 * bound if on_labeled else torch.zeros(())
    torch.testing.assert_close(got['loss_consistency'], expected)
    assert float(got['num_labeled']) == 4


def test_predict_with_teacher_or_student():
    model = mean_teacher()
    train(model, steps=2)
    model.eval()
    images = batch([0] * 3)['inputs'][0]
    x = model.data_preprocessor(dict(inputs=images))['inputs']
    teacher = model.predict(x)[0].pred_score
    assert torch.equal(teacher, model.teacher.module.predict(x)[0].pred_score)
    assert torch.equal(model(x), model.teacher.module(x))
    model.predict_with = 'student'
    assert not torch.equal(model.predict(x)[0].pred_score, teacher)


@pytest.mark.parametrize('key, value, match', [
    ('ema_decay', (0.99, 1.0), 'model.ema_decay'),
    ('consistency_covariance', 'full', 'model.consistency_covariance'),
    ('pseudo_label_threshold', 0.0, 'model.pseudo_label_threshold'),
    ('teacher_buffers', 'mine', 'model.teacher_buffers'),
])
def test_bad_settings_name_the_key(key, value, match):
    with pytest.raises(ValueError, match=match):
        mean_teacher(**{key: value})


def test_one_view_is_refused():
    model = mean_teacher()
    data = model.data_preprocessor(dict(
        inputs=batch([0, 1])['inputs'][0],
        data_samples=[DataSample().set_gt_label(y) for y in (0, 1)]), True)
    with pytest.raises(ValueError, match='MultiView'):
        model.loss(**data)


def test_training_in_a_runner_needs_the_hook(monkeypatch):
    """Inside a runner (its MessageHub has ``iter``) a step without
    SemiSupervisedHook, which alone moves the teacher, fails at once."""
    model = mean_teacher()
    hub = MessageHub.get_instance(f'semi_{id(model)}')
    hub.update_info('iter', 0)
    monkeypatch.setattr(MessageHub, 'get_current_instance',
                        classmethod(lambda cls: hub))
    data = model.data_preprocessor(batch(LABELS), True)
    with pytest.raises(RuntimeError, match=r'ISDAMeanTeacher: the teacher '
                       r'moves in SemiSupervisedHook; add custom_hooks = '
                       r"\[dict\(type='SemiSupervisedHook'\)\]"):
        model.loss(**data)
    model.semi_hook_attached = True
    model.loss(**data)
    assert int(model.teacher.steps) == 0  # only update_teacher moves it


def test_student_and_teacher_load_into_the_stock_classifier():
    model = mean_teacher()
    train(model, steps=2)
    model.eval()
    state = model.state_dict()
    stock = MODELS.build(dict(
        type='ImageClassifier',
        data_preprocessor=dict(mean=[127.5], std=[127.5]),
        backbone=dict(type='TinySemiNet'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=4))).eval()
    x = model.data_preprocessor(dict(inputs=batch([0] * 3)['inputs'][0]))[
        'inputs']
    prefix = 'teacher.module.'
    stock.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                           if k.startswith(prefix)})
    assert torch.equal(stock(x), model(x))
    stock.load_state_dict({k: v for k, v in state.items()
                           if not k.startswith('teacher.')}, strict=False)
    model.predict_with = 'student'
    assert torch.equal(stock(x), model(x))


def test_a_checkpoint_without_teacher_starts_the_teacher_from_it():
    """``load_from`` a supervised classifier: the teacher follows the
    loaded student, not the random initial weights."""
    from mmengine.runner.checkpoint import load_state_dict
    model = mean_teacher()
    trained = mean_teacher()
    train(trained, steps=2)
    student = {k: v for k, v in trained.state_dict().items()
               if not k.startswith('teacher.')}
    load_state_dict(model, student)
    model.eval()
    x = model.data_preprocessor(dict(inputs=batch([0] * 2)['inputs'][0]))[
        'inputs']
    model.predict_with = 'student'
    want = model(x)
    model.predict_with = 'teacher'
    assert torch.equal(model(x), want)
