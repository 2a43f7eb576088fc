"""The four semi-supervised methods against references written from their
papers: with lambda0 = 0 (and a stock head) each is the plain method
(Pi-model and temporal ensembling: Laine & Aila 2017; Mean Teacher:
Tarvainen & Valpola 2017; VAT: Miyato et al. 2018), bit for bit as the
same method with an ISDA head; the ensemble's update, VAT's passes and the
settings' errors. (lambda0 > 0: test_semi_bound.py.)"""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

import isda_mm  # noqa: F401
from isda_mm.classification.semi import ISDATemporalEnsembling
from isda_mm.classification.semi.vat import direction_seed

C = 3
LABELS = [0, 1, 2, 0, -1, -1, -1, -1]
# image 3 and image 0 appear twice: a labeled copy and an unlabeled one
INDICES = [0, 1, 2, 3, 3, 4, 5, 0]
NUM_IMAGES = 6
W_MAX, RAMPUP, NOISE, ALPHA_TE, EMA = 2.0, 2, 0.1, 0.6, (0.5, 0.9)
XI, EPS, ENT = 0.5, 2.0, 0.3
METHODS = {
    'pi': dict(type='ISDAPiModel'),
    'te': dict(type='ISDATemporalEnsembling', num_images=NUM_IMAGES,
               ensemble_momentum=ALPHA_TE),
    'mt': dict(type='ISDAMeanTeacher', ema_decay=EMA),
    # xi: with 1e-6 (the default) the power iteration's gradient is mostly
    # float32 rounding, and two implementations agree in exact arithmetic
    # only; the formula is the same.
    'vat': dict(type='ISDAVAT', xi=XI, epsilon=EPS, entropy_weight=ENT),
}
VIEWS = dict(pi=2, te=1, mt=2, vat=1)


@MODELS.register_module(force=True)
class TinyNoisyNet(nn.Module):
    """conv-BN-ReLU-dropout: stochastic, with BN running statistics."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1),
                                    nn.BatchNorm2d(4), nn.ReLU(),
                                    nn.Dropout(0.25))

    def forward(self, x):
        return (self.layers(x), )


def build(method, head='ISDALinearClsHead', lambda0=0.0, **kwargs):
    head = dict(type=head, num_classes=C, in_channels=4)
    if head['type'].startswith('ISDA'):
        head['lambda0'] = lambda0
    settings = dict(consistency_weight=W_MAX, rampup_iters=RAMPUP,
                    input_noise=NOISE)
    torch.manual_seed(0)
    model = MODELS.build(dict(
        METHODS[method], data_preprocessor=dict(mean=[127.5], std=[127.5]),
        backbone=dict(type='TinyNoisyNet'),
        neck=dict(type='GlobalAveragePooling'), head=head,
        **dict(settings, **kwargs)))
    model.init_weights()
    model.semi_hook_attached = True  # the hook's part is tested elsewhere
    return model


def raw_batch(method, seed, labels=LABELS, indices=INDICES):
    """Copies of one image share its pixels, as a labeled image drawn
    again as unlabeled does."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (VIEWS[method], NUM_IMAGES, 1, 8, 8),
                           dtype=torch.uint8, generator=g)
    views = [[view[i] for i in indices] for view in images]
    samples = [DataSample(metainfo=dict(sample_idx=i)).set_gt_label(y)
               for i, y in zip(indices, labels)]
    return dict(inputs=views if VIEWS[method] == 2 else views[0],
                data_samples=samples)


@pytest.fixture
def hub(monkeypatch):
    """A MessageHub whose ``iter`` the test sets (the ramp reads it)."""
    hub = MessageHub.get_instance('semi_methods')
    monkeypatch.setattr(MessageHub, 'get_current_instance',
                        classmethod(lambda cls: hub))
    return hub


def train(model, method, steps, hub=None):
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    logs = []
    for t in range(steps):
        if hub is not None:
            hub.update_info('iter', t)
        torch.manual_seed(100 + t)
        logs.append(model.train_step(raw_batch(method, t), wrapper))
        if method == 'mt':
            model.update_teacher()  # SemiSupervisedHook's call
    return logs


# ----- the references ----------------------------------------------------
def logits_of(net, x):
    """backbone, global average pooling, linear classifier."""
    feature = F.adaptive_avg_pool2d(net.backbone(x)[0], 1).flatten(1)
    return net.head.fc(feature)


def kl(p, logits):
    """KL(p || softmax(z)), 0 log 0 = 0."""
    return (torch.special.xlogy(p, p) - p * logits.log_softmax(1)).sum(1)


def unit(d):
    """d / ||d|| per sample, as vat_tf's get_normalized_vector."""
    flat = d.flatten(1)
    flat = flat / (1e-12 + flat.abs().max(1, keepdim=True).values)
    flat = flat / (1e-6 + (flat ** 2).sum(1, keepdim=True)).sqrt()
    return flat.view_as(d)


class Reference:
    """The plain method, written from its paper, on a copy of the stock
    model's layers; its own SGD, EMA and ensemble."""

    def __init__(self, method, stock, consistency='kl'):
        self.method, self.consistency = method, consistency
        self.net = copy.deepcopy(stock)
        self.teacher = copy.deepcopy(stock.teacher.module) if (
            method == 'mt') else None
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.5)
        self.ensemble = torch.zeros(NUM_IMAGES, C)
        self.updates = [0] * NUM_IMAGES
        self.steps = 0
        self.preprocess = stock.data_preprocessor

    def target(self, views, logits, x, t):
        """p (no gradient), the logits to score, the mask."""
        method, n = self.method, len(logits)
        if method == 'mt':  # the teacher's prediction on another view
            with torch.no_grad():
                return (logits_of(self.teacher, views[1]).softmax(1),
                        logits, torch.ones(n, dtype=torch.bool))
        if method == 'pi':  # a second stochastic pass
            with torch.no_grad():
                return (logits_of(self.net, views[1]).softmax(1), logits,
                        torch.ones(n, dtype=torch.bool))
        if method == 'te':  # the bias-corrected ensemble, then its update
            p = torch.full((n, C), 1 / C)
            mask = torch.zeros(n, dtype=torch.bool)
            for i, image in enumerate(INDICES):
                if self.updates[image]:
                    p[i] = self.ensemble[image] / (
                        1 - ALPHA_TE ** self.updates[image])
                    mask[i] = True
            done = set()
            now = logits.detach().softmax(1)
            for i, image in enumerate(INDICES):
                if image not in done:  # once per image: the first copy
                    done.add(image)
                    self.ensemble[image] = ALPHA_TE * self.ensemble[
                        image] + (1 - ALPHA_TE) * now[i]
                    self.updates[image] += 1
            return p, logits, mask
        # VAT: the clean prediction; the logits at x + r_adv, r_adv from
        # one power iteration on the KL, with the clean pass's dropout
        # masks and without touching BN's running statistics
        p = logits.detach().softmax(1)
        # restored after the backward (an in-place copy now would change
        # tensors the backward needs)
        self.bn = {k: v.clone() for k, v in self.net.state_dict().items()
                   if 'running' in k or 'num_batches' in k}
        after = torch.get_rng_state()
        g = torch.Generator().manual_seed(direction_seed(100 + t, t, 0))
        d = (XI * unit(torch.randn(x.shape, generator=g))).requires_grad_()
        torch.set_rng_state(self.clean_rng)
        grad, = torch.autograd.grad(kl(p, logits_of(self.net, x + d)).sum(),
                                    d)
        torch.set_rng_state(self.clean_rng)
        adversarial = logits_of(self.net, x + EPS * unit(grad))
        torch.set_rng_state(after)
        return p, adversarial, torch.ones(n, dtype=torch.bool)

    def step(self, raw, t):
        data = self.preprocess(raw, True)
        views = data['inputs']
        views = [views] if torch.is_tensor(views) else views
        labels = torch.tensor(LABELS)
        torch.manual_seed(100 + t)
        views = [v + NOISE * torch.randn_like(v) for v in views]
        self.clean_rng = torch.get_rng_state()
        logits = logits_of(self.net, views[0])
        p, scored, mask = self.target(views, logits, views[0], t)
        n, labeled = len(labels), labels >= 0
        sup = F.cross_entropy(logits[labeled], labels[labeled],
                              reduction='sum') / n
        if self.consistency == 'kl':
            per_sample = kl(p, scored)
        else:  # the papers' squared error, mean over classes
            per_sample = ((scored.softmax(1) - p) ** 2).mean(1)
        cons = (per_sample * mask).sum() / n
        ramp = math.exp(-5 * (1 - t / RAMPUP) ** 2) if t < RAMPUP else 1.0
        loss = sup + W_MAX * ramp * cons
        if self.method == 'vat':  # + EntMin on the unlabeled images
            q = logits.softmax(1)
            loss = loss + ENT * (-(q * q.log()).sum(1)[~labeled]).sum() / n
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if self.method == 'vat':
            self.net.load_state_dict(self.bn, strict=False)
        if self.method == 'mt':  # theta' <- alpha theta' + (1 - alpha) theta
            alpha = EMA[self.steps >= RAMPUP]
            with torch.no_grad():
                for mine, theirs in zip(self.teacher.parameters(),
                                        self.net.parameters()):
                    mine.copy_(alpha * mine + (1 - alpha) * theirs)
        self.steps += 1
        return loss.detach(), cons.detach()


@pytest.mark.parametrize('method, consistency', [
    ('pi', 'kl'), ('te', 'kl'), ('mt', 'kl'), ('vat', 'kl'), ('pi', 'mse'),
    ('te', 'mse'), ('mt', 'mse')])
def test_lambda0_zero_is_the_plain_method(method, consistency, hub):
    """An ISDA head at lambda0 = 0 trains bit for bit as the stock head,
    and both as the paper's method written out (noise, dropout, the
    target, the ramp, the normalisation, the EMA, the ensemble with
    duplicates, the power iteration, BN's running statistics)."""
    steps = 3
    stock = build(method, head='LinearClsHead', consistency=consistency)
    reference = Reference(method, stock, consistency)
    if consistency == 'kl':
        isda = build(method, lambda0=0.0)
        isda.load_state_dict(stock.state_dict(), strict=False)
        logs_isda = train(isda, method, steps, hub)
    logs = train(stock, method, steps, hub)
    if consistency == 'kl':
        for a, b in zip(logs_isda, logs):
            for key in ('loss', 'loss_sup', 'loss_consistency'):
                assert torch.equal(a[key], b[key]), key
        state = isda.state_dict()
        for key, value in stock.state_dict().items():
            assert torch.equal(state[key], value), key
    for t, log in enumerate(logs):
        loss, cons = reference.step(raw_batch(method, t), t)
        torch.testing.assert_close(log['loss'], loss, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(log['consistency'], cons, rtol=1e-5,
                                   atol=1e-7)
    # weights, BN running statistics (VAT's extra passes leave them; the
    # Pi-model's second pass moves them), the teacher, the ensemble
    state = reference.net.state_dict()
    for key, value in stock.state_dict().items():
        if key == 'teacher.steps':
            assert int(value) == steps
            continue
        if key.startswith('teacher.'):
            want = reference.teacher.state_dict()[key[len('teacher.module.'):]]
        elif key.startswith('ensemble'):
            want = (reference.ensemble if key == 'ensemble' else
                    torch.tensor(reference.updates))
        else:
            want = state[key]
        torch.testing.assert_close(value, want, rtol=1e-4, atol=1e-6,
                                   msg=key)


def test_ensemble_update_takes_each_image_once():
    model = build('te')
    probs = torch.softmax(torch.randn(5, C), 1)
    model.update_ensemble(torch.tensor([2, 0, 2, 1, 0]), probs)
    want = torch.zeros(NUM_IMAGES, C)
    for image, row in ((2, 0), (0, 1), (1, 3)):
        want[image] = (1 - ALPHA_TE) * probs[row]
    assert torch.equal(model.ensemble, want)
    assert model.ensemble_updates.tolist() == [1, 1, 1, 0, 0, 0]


def test_vat_extra_passes_leave_bn_statistics():
    model = build('vat', lambda0=0.5)
    train(model, 'vat', 2)
    bn = model.backbone.layers[1]
    assert int(bn.num_batches_tracked) == 2 and bn.track_running_stats


def test_vat_entropy_term():
    model = build('vat', head='LinearClsHead')
    data = model.data_preprocessor(raw_batch('vat', 0), True)
    torch.manual_seed(1)
    log = model.loss(**data)
    twin = copy.deepcopy(model)
    torch.manual_seed(1)
    twin.entropy_weight = 0.0
    assert 'loss_entropy' not in twin.loss(**data)
    torch.manual_seed(1)
    x = data['inputs'] + NOISE * torch.randn_like(data['inputs'])
    q = logits_of(model, x).softmax(1)
    unlabeled = torch.tensor(LABELS) < 0
    want = ENT * -(q * q.log()).sum(1)[unlabeled].sum() / len(LABELS)
    torch.testing.assert_close(log['loss_entropy'], want)


# ----- settings and errors ------------------------------------------------
@pytest.mark.parametrize('method', list(METHODS))
def test_wrong_number_of_views(method):
    model = build(method)
    other = 'pi' if VIEWS[method] == 1 else 'te'
    data = model.data_preprocessor(raw_batch(other, 0), True)
    match = 'remove MultiView' if VIEWS[method] == 1 else 'num_views=2'
    with pytest.raises(ValueError, match=match):
        model.loss(**data)


@pytest.mark.parametrize('method, kwargs, match', [
    ('pi', dict(consistency='mse'), 'model.consistency'),
    ('pi', dict(consistency='l1'), 'model.consistency'),
    ('te', dict(num_images=0), 'model.num_images'),
    ('te', dict(ensemble_momentum=1.0), 'model.ensemble_momentum'),
    ('vat', dict(epsilon=None), 'model.epsilon'),
    ('vat', dict(power_iterations=-1), 'model.power_iterations'),
    ('mt', dict(rampup_iters=-1), 'model.rampup_iters'),
])
def test_bad_settings_name_the_key(method, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(method, lambda0=0.5, **kwargs)


def test_temporal_ensembling_needs_image_indices():
    model = build('te', num_images=4)
    data = model.data_preprocessor(raw_batch('te', 0), True)
    with pytest.raises(ValueError, match='image index 4 .*model.num_images'):
        model.loss(**data)
    data = model.data_preprocessor(raw_batch('te', 0), True)
    for sample in data['data_samples']:
        del sample.sample_idx
    with pytest.raises(ValueError, match='sample_idx'):
        model.loss(**data)


def test_temporal_ensembling_state_is_in_the_checkpoint():
    model = build('te')
    assert isinstance(model, ISDATemporalEnsembling)
    state = model.state_dict()
    assert state['ensemble'].shape == (NUM_IMAGES, C)
    assert state['ensemble_updates'].dtype == torch.int64


def test_pseudo_labels_skip_images_without_a_target():
    """Temporal ensembling's unseen images carry a placeholder target:
    even a threshold below 1/C adds none of them to the statistics."""
    model = build('te', lambda0=0.5, pseudo_label_threshold=0.1)
    logs = train(model, 'te', 2)
    assert [float(log['num_pseudo_labels']) for log in logs] == [0, 4]
    assert int(model.head.isda.estimator.count.sum()) == 2 * 4 + 4
