"""Losses and error metrics: nll options (class/example weights, lazy labels, label
propagation), regression, errors and probabilities."""

import math

import pytest
import torch
import torch.nn.functional as F

from elektronn.net.losses import (
    compute_loss,
    error_rate,
    nll_loss,
    normalised_class_weights,
    probabilities,
)


def batch(seed: int = 0, n_lab: int = 3, shape=(2, 4, 5), ignore: float = 0.3):
    """Random logits (bs, n_lab, x, y) and labels with a fraction of ignore labels (-1)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape[0], n_lab, *shape[1:], generator=g, dtype=torch.float64)
    labels = torch.randint(0, n_lab, shape, generator=g)
    labels[torch.rand(shape, generator=g) < ignore] = -1
    return logits, labels


def test_nll_is_cross_entropy_over_labelled_pixels():
    logits, labels = batch()
    expected = F.cross_entropy(logits, labels, ignore_index=-1)
    torch.testing.assert_close(compute_loss(logits, labels, "nll"), expected)


def test_labels_outside_the_classes_are_ignored_and_no_labels_give_zero():
    logits, labels = batch()
    out_of_range = labels.clone()
    out_of_range[labels == -1] = 7
    torch.testing.assert_close(nll_loss(logits, out_of_range), nll_loss(logits, labels))
    empty = torch.full_like(labels, -1)
    loss = nll_loss(logits.requires_grad_(), empty)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_mlp_outputs_use_the_same_loss():
    logits = torch.randn(6, 4, dtype=torch.float64)
    labels = torch.tensor([0, 3, 1, -1, 2, 2])
    torch.testing.assert_close(
        nll_loss(logits, labels), F.cross_entropy(logits, labels, ignore_index=-1)
    )


def test_class_weights_are_normalised():
    assert normalised_class_weights([2.0, 2.0, 2.0], 3).tolist() == [1.0, 1.0, 1.0]
    assert normalised_class_weights([1.0, 3.0], 2).tolist() == [0.5, 1.5]
    logits, labels = batch()
    torch.testing.assert_close(
        nll_loss(logits, labels, class_weights=[5, 5, 5]), nll_loss(logits, labels)
    )
    w = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    expected = F.cross_entropy(
        logits, labels, weight=w / w.sum() * 3, ignore_index=-1, reduction="sum"
    )
    expected = expected / (labels >= 0).sum()  # divided by the number of labelled pixels
    torch.testing.assert_close(nll_loss(logits, labels, class_weights=[1, 2, 5]), expected)
    with pytest.raises(ValueError, match="2 entries"):
        nll_loss(logits, labels, class_weights=[1, 2])


def test_example_weights_scale_each_pixel():
    logits, labels = batch()
    weights = torch.rand(labels.shape, dtype=torch.float64)
    per_pixel = F.cross_entropy(logits, labels, ignore_index=-1, reduction="none")
    expected = (per_pixel * weights).sum() / (labels >= 0).sum()
    torch.testing.assert_close(nll_loss(logits, labels, example_weights=weights), expected)
    scalar_logits, scalar_labels = (
        torch.randn(4, 3, dtype=torch.float64),
        torch.tensor([0, 1, 2, 1]),
    )
    per_example = torch.tensor([1.0, 0.0, 2.0, 1.0], dtype=torch.float64)
    expected = (
        F.cross_entropy(scalar_logits, scalar_labels, reduction="none") * per_example
    ).mean()
    loss = compute_loss(scalar_logits, scalar_labels, example_weights=per_example)
    torch.testing.assert_close(loss, expected)


def test_lazy_labels_with_full_info_equal_the_plain_nll_exactly():
    logits, labels = batch()
    info = (torch.ones(2, 3, dtype=torch.int16), torch.zeros(2, 3, dtype=torch.int16))
    for weights in (None, [1.0, 2.0, 3.0]):
        plain = nll_loss(logits, labels, class_weights=weights)
        lazy = nll_loss(logits, labels, class_weights=weights, info=info)
        assert torch.equal(plain, lazy)


def test_lazy_labels_unlabelled_classes_are_ignored():
    logits, labels = batch()
    labelled = torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=torch.int16)
    info = (labelled, torch.zeros(2, 3, dtype=torch.int16))
    masked = labels.clone()
    masked[0][masked[0] == 1] = -1
    torch.testing.assert_close(nll_loss(logits, labels, info=info), nll_loss(logits, masked))


def test_lazy_labels_down_vote_pushes_absent_classes_to_zero():
    logits, labels = batch(ignore=0.0)
    labels[labels == 2] = 0
    not_present = torch.tensor([[0, 0, 1], [0, 0, 0]], dtype=torch.int16)
    info = (torch.ones(2, 3, dtype=torch.int16), not_present)
    loss = nll_loss(logits, labels, info=info)
    p = torch.softmax(logits, dim=1)
    up = F.cross_entropy(logits, labels, reduction="sum")
    down = -torch.log(1 - p[0, 2] + 1e-6).sum()
    n = labels.numel() + labels[0].numel()
    torch.testing.assert_close(loss, (up + down) / n)
    x = logits.clone().requires_grad_()
    for _ in range(20):
        x.grad = None
        nll_loss(x, torch.full_like(labels, -1), info=info).backward()
        with torch.no_grad():
            x -= 20.0 * x.grad
    trained = torch.softmax(x.detach(), 1)
    assert float(trained[0, 2].max()) < float(p[0, 2].max())
    assert float(trained[0, 2].mean()) < 0.5 * float(p[0, 2].mean())
    torch.testing.assert_close(trained[1], p[1])  # nothing labelled, nothing absent


def test_label_propagation_at_or_below_half_is_disabled():
    logits, labels = batch()
    plain = nll_loss(logits, labels)
    for thresh in (None, 0.5, 0.3, 0.0):
        assert torch.equal(nll_loss(logits, labels, label_prop_thresh=thresh), plain)


def test_label_propagation_pushes_confident_unlabelled_pixels():
    logits = torch.tensor([[[4.0, 0.0]], [[0.0, 0.0]]], dtype=torch.float64)[None]  # (1, 2, 1, 2)
    labels = torch.tensor([[[-1, 0]]])
    p = torch.softmax(logits, dim=1)
    assert float(p[0, 0, 0, 0]) > 0.9
    loss = nll_loss(logits, labels, label_prop_thresh=0.9)
    expected = -(torch.log(p[0, 0, 0, 0]) + torch.log(p[0, 0, 0, 1])) / 2
    torch.testing.assert_close(loss, expected)
    unconfident = nll_loss(logits, labels, label_prop_thresh=0.99)
    torch.testing.assert_close(unconfident, -torch.log(p[0, 0, 0, 1]))


def test_regression_is_mse_broadcast_over_channels():
    out = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    y = torch.randn(2, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(compute_loss(out, y, "regression"), ((out[:, 0] - y) ** 2).mean())
    two = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    expected = ((two - y[:, None]) ** 2).mean()
    torch.testing.assert_close(compute_loss(two, y, "regression"), expected)
    scalar_out, scalar_y = torch.randn(5, 1), torch.randn(5)
    expected = ((scalar_out[:, 0] - scalar_y) ** 2).mean()
    torch.testing.assert_close(compute_loss(scalar_out, scalar_y, "regression"), expected)


def test_error_rates():
    logits = torch.tensor([[[2.0, 0.0, 0.0, 1.0]], [[0.0, 1.0, 3.0, 0.0]]])[None]  # (1,2,1,4)
    labels = torch.tensor([[[0, 0, 1, -1]]])
    assert float(error_rate(logits, labels, "nll")) == pytest.approx(1 / 3)
    assert float(error_rate(logits, torch.full_like(labels, -1), "nll")) == 0.0
    out, y = torch.zeros(2, 1, 2, 2), torch.full((2, 2, 2), 3.0)
    assert math.sqrt(float(error_rate(out, y, "regression"))) == pytest.approx(3.0)


def test_probabilities():
    logits = torch.randn(2, 3, 4, 4)
    prob = probabilities(logits, "nll")
    torch.testing.assert_close(prob.sum(dim=1), torch.ones(2, 4, 4))
    assert probabilities(logits, "regression") is logits
    with pytest.raises(ValueError, match="malis"):
        probabilities(logits, "malis")
    with pytest.raises(ValueError, match="unknown"):
        compute_loss(logits, torch.zeros(2, 4, 4), "malis")
