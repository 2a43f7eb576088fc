"""The four semi-supervised methods with lambda0 > 0: the consistency is
ISDA's bound (DESIGN.md Sec. 7) minus H(p), checked against the float64
reference on the features the classifier really received, with the
labeled images' statistics; each image goes through the head once for the
supervised loss and the consistency together; host syncs per step."""
import pytest
import torch
from capture import layer_inputs
from host_syncs import count_host_syncs
from isda_reference import reference_soft_augment, reference_statistics
from mmengine.optim import OptimWrapper
from torch import nn

from .test_semi_methods import (
    INDICES,
    LABELS,
    METHODS,
    C,
    build,
    raw_batch,
    train,
)

FC_CALLS = dict(pi=2, te=1, mt=1, vat=3)  # vat: clean, power step, adv.


@pytest.mark.parametrize('method', list(METHODS))
def test_consistency_is_the_isda_bound(method):
    """The logged consistency is the sec. 7 bound minus H(p) on the
    logits the method scores, with the labeled features' statistics, from
    what the classifier really received; the head's classifier runs once
    per image for the supervised loss and the consistency together."""
    model = build(method, lambda0=0.5)
    fc = model.head.fc
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    labeled = torch.tensor(LABELS) >= 0
    seen_stats, past = [], None
    for t in range(2):
        weight, bias = fc.weight.detach().double(), fc.bias.detach().double()
        teacher = model.teacher.module.head.fc if method == 'mt' else None
        if teacher is not None:
            teacher_weight = teacher.weight.detach().double()
            teacher_bias = teacher.bias.detach().double()
        with layer_inputs(fc) as seen, layer_inputs(
                teacher or nn.Identity()) as seen_teacher:
            log = model.train_step(raw_batch(method, t), wrapper)
        if method == 'mt':
            model.update_teacher()
        assert len(seen) == FC_CALLS[method]
        assert all(len(a) == len(LABELS) for a in seen)
        seen_stats.append((seen[0][labeled], torch.tensor(LABELS)[labeled]))

        def z(a):
            return a.double() @ weight.T + bias
        scored = z(seen[-1] if method == 'vat' else seen[0])
        if method == 'mt':
            p = (seen_teacher[0].double() @ teacher_weight.T +
                 teacher_bias).softmax(1)
        elif method == 'pi':
            p = z(seen[1]).softmax(1)
        elif method == 'vat':
            p = z(seen[0]).softmax(1)
        else:  # the first copy's prediction at the previous step
            now = z(seen[0]).softmax(1)
            if past is None:
                past = now
                assert float(log['num_unseen']) == len(LABELS)
                continue
            first = {image: i for i, image in reversed(list(
                enumerate(INDICES)))}
            p = torch.stack([past[first[image]] for image in INDICES])
        _, cov, _ = reference_statistics(seen_stats, C)
        aug, extra = reference_soft_augment(scored, p, weight, cov, 0.5,
                                            p.argmax(1))
        bound = (torch.logsumexp(aug, 1) - (p * aug).sum(1) + extra +
                 torch.special.xlogy(p, p).sum(1))
        torch.testing.assert_close(log['consistency'].double(), bound.mean(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('method, syncs', [
    ('pi', {'tolist': 3}), ('te', {'tolist': 3, 'lift_fresh': 1}),
    ('mt', {'tolist': 3}), ('vat', {'tolist': 3})])
def test_host_syncs_per_step(method, syncs):
    """Which images are labeled, the head's ISDA step, the consistency
    bound's check; temporal ensembling also copies the image indices (host
    numbers) to the device."""
    model = build(method, lambda0=0.5)
    train(model, method, 1)
    data = model.data_preprocessor(raw_batch(method, 1), True)
    with count_host_syncs() as counted:
        losses = model.loss(**data)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        if method == 'mt':
            model.update_teacher()
    assert counted.counts == syncs


