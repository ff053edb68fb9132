"""Models and the optimisation loop, with PyTorch itself as the oracle."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import fashion_course as fc


def test_mlp_is_the_study_notes_network():
    model = fc.NeuralNetwork()
    assert [type(m) for m in model.linear_relu_stack] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert isinstance(model.flatten, nn.Flatten)
    # 784*512+512 + 512*512+512 + 512*10+10
    assert fc.count_parameters(model) == 669_706
    logits = model(torch.rand(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    assert (logits < 0).any()  # raw logits: no ReLU or softmax at the end


@pytest.mark.parametrize("name, config, shapes", [
    ("mlp", {"hidden": 24, "num_classes": 7},
     {"linear_relu_stack.0.weight": (24, 784), "linear_relu_stack.2.weight": (24, 24),
      "linear_relu_stack.4.weight": (7, 24)}),
    ("cnn", {"channels": [4, 8, 12], "hidden": 20, "num_classes": 5, "dropout": 0.5,
             "feature_dropout": 0.125},
     {"features.0.0.weight": (4, 1, 3, 3), "features.1.0.weight": (8, 4, 3, 3),
      "features.2.0.weight": (12, 8, 3, 3), "classifier.2.weight": (20, 12 * 7 * 7),
      "classifier.5.weight": (5, 20)}),
])
def test_models_are_built_as_their_config_says_and_rebuild_by_name(name, config, shapes):
    model = fc.build_model(name, **config)
    assert model.config == {**fc.build_model(name).config, **config}  # every argument recorded
    state = model.state_dict()
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, config["num_classes"])
    if "dropout" in config:  # the CNN: one dropout on the flattened features, one on the hidden layer
        assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [
            config["feature_dropout"], config["dropout"]]
    again = fc.build_model(name, **model.config)  # what a checkpoint does to rebuild it
    assert again.config == model.config
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in state.items()}
    default = fc.build_model(name)
    assert {k: v.shape for k, v in default.state_dict().items()} != {k: v.shape for k, v in state.items()}


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        fc.build_model("resnet")


def _toy_loader(n=96, batch_size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, 28, 28, generator=g)
    y = (X.flatten(1)[:, 0] > 0).long()  # learnable from one pixel
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=False)


def test_train_loop_step_equals_a_manual_sgd_step():
    torch.manual_seed(0)
    model = fc.NeuralNetwork(hidden=16)
    reference = fc.NeuralNetwork(hidden=16)
    reference.load_state_dict(model.state_dict())
    loader = _toy_loader(n=64, batch_size=32)
    loss_fn = nn.CrossEntropyLoss()
    fc.train_loop(loader, model, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1))
    for X, y in loader:  # the oracle: plain autograd and a hand-written update, fresh grads
        grads = torch.autograd.grad(loss_fn(reference(X), y), list(reference.parameters()))
        with torch.no_grad():
            for p, g in zip(reference.parameters(), grads, strict=True):
                p -= 0.1 * g
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_test_loop_averages_over_batches():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):  # perfect logits for label 0, uniform for others
            logits = torch.zeros(len(x), 3)
            logits[:, 0] = x.flatten(1)[:, 0] * 100
            return logits + self.w

    X = torch.tensor([[1.0], [1.0], [1.0], [0.0]])
    y = torch.tensor([0, 0, 0, 1])
    loader = DataLoader(TensorDataset(X, y), batch_size=3)  # batches of 3 and 1
    loss, accuracy = fc.test_loop(loader, Constant(), nn.CrossEntropyLoss())
    # batch 1: loss ~0 (all right); batch 2: uniform logits -> log(3), predicted class 0 (wrong)
    assert loss == pytest.approx((0 + torch.log(torch.tensor(3.0)).item()) / 2, abs=1e-6)
    assert accuracy == pytest.approx(3 / 4)


def test_test_loop_evaluates_in_eval_mode_and_leaves_the_model_there():
    """Dropout off and batch norm on its running statistics, which the evaluation does not change."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(32, 10))
    model.train()
    with torch.no_grad():  # running statistics that differ from any batch's own
        model(torch.randn(256, 1, 28, 28) * 3 + 1)
    loader = _toy_loader(n=96, batch_size=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss_fn = nn.CrossEntropyLoss()

    model.train()  # as fit leaves it after train_loop
    loss, accuracy = fc.test_loop(loader, model, loss_fn)
    assert not model.training and not any(m.training for m in model.modules())
    for key, value in model.state_dict().items():  # batch norm did not update its statistics
        assert torch.equal(value, before[key]), key

    model.eval()  # the oracle: the same model, evaluated by hand in eval mode
    with torch.no_grad():
        losses = [loss_fn(model(X), y).item() for X, y in loader]
        correct = sum((model(X).argmax(1) == y).sum().item() for X, y in loader)
    assert loss == pytest.approx(sum(losses) / len(losses), rel=1e-6)
    assert accuracy == pytest.approx(correct / 96)
    assert fc.test_loop(loader, model.train(), loss_fn) == (loss, accuracy)  # no dropout noise


def test_fit_learns_and_records_history():
    torch.manual_seed(0)
    model = fc.NeuralNetwork(hidden=32)
    train, test = _toy_loader(seed=1), _toy_loader(seed=2)
    history = fc.fit(model, train, test, epochs=8,
                     optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    assert history.epochs == 8
    assert history.seconds == sorted(history.seconds) and history.seconds[0] > 0
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.train_accuracy[-1] == 1.0  # it memorises 96 samples
    assert "test_acc" in str(history)


def test_evaluate_confusion_matrix_matches_a_direct_count():
    torch.manual_seed(0)
    model = fc.NeuralNetwork(hidden=8)
    loader = _toy_loader(n=50, batch_size=7)
    result = fc.evaluate(model, loader)
    X = torch.cat([x for x, _ in loader])
    y = torch.cat([t for _, t in loader])
    pred = model(X).argmax(1)
    assert torch.equal(result.predictions, pred)
    for i in range(10):
        for j in range(10):
            assert result.confusion[i, j] == ((y == i) & (pred == j)).sum()
    assert result.accuracy == pytest.approx((pred == y).float().mean().item())
    assert torch.equal(result.misclassified, (pred != y).nonzero().flatten())
    assert torch.equal(fc.predict(model, X).argmax(1), pred)


def test_recipes_are_what_their_comments_say():
    older = fc.RECIPES["older"]
    assert (older.optimizer, older.lr, older.batch_size, older.epochs) == ("sgd", 1e-3, 64, 5)
    assert not older.normalize and older.schedule is None
    mlp, cnn = fc.RECIPES["mlp"], fc.RECIPES["cnn"]
    assert (mlp.optimizer, mlp.schedule, mlp.batch_size, mlp.epochs) == ("adamw", "onecycle", 256, 15)
    assert (mlp.hidden, mlp.batch_norm) == (1024, True)  # 1024 units, batch norm: the margin over 90 %
    assert (cnn.epochs, cnn.batch_size, cnn.channels, cnn.feature_dropout) == (10, 256, (16, 48, 80), None)
    model = fc.build_recipe_model(cnn)  # the narrow classifier the recipe asks for, without dropout
    assert (model.config["hidden"], model.config["dropout"]) == (128, 0.0)
    assert [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)] == [128, 10]
    assert all(m.p == 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert cnn.whitened_stem and not fc.RECIPES["cnn_best"].whitened_stem
    assert fc.RECIPES["cnn_best"].feature_dropout == 0.25  # the network its 94.5 % was measured with
    with pytest.raises(ValueError, match="unknown recipe"):
        fc.train_recipe("bogus")


def test_mlp_recipe_beats_the_older_recipe_in_one_epoch(real_data):
    """A short real-data run: the course's recipe is far ahead after one epoch."""
    fc.seed_everything(0)
    _, older = fc.train_recipe("older", epochs=1, root=real_data.root)
    _, course = fc.train_recipe("mlp", epochs=1, root=real_data.root)
    assert older.test_accuracy[0] < 0.70
    assert course.test_accuracy[0] > 0.80


@pytest.mark.parametrize("name", [n for n, r in fc.RECIPES.items() if r.model == "cnn"])
def test_a_cnn_recipe_builds_a_channels_last_cnn_that_computes_the_same(name):
    recipe = fc.RECIPES[name]
    torch.manual_seed(0)
    model = fc.build_recipe_model(recipe).eval()
    assert isinstance(model, fc.FashionCNN)
    default = fc.FashionCNN().config["channels"]
    assert model.config["channels"] == list(recipe.channels or default)
    assert [model.features[i][0].out_channels for i in range(3)] == list(recipe.channels or default)
    conv = model.features[0][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    plain = fc.FashionCNN(**model.config).eval()
    plain.load_state_dict(model.state_dict())
    assert plain.features[0][0].weight.is_contiguous()
    X = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(X), plain(X), rtol=1e-5, atol=1e-5)


def test_recipe_channels_are_for_the_cnn_only():
    with pytest.raises(ValueError, match="CNN only"):
        fc.build_recipe_model(fc.Recipe(model="mlp", channels=(8, 16, 32)))
    small = fc.build_recipe_model(fc.Recipe(model="cnn", channels=(8, 16, 32)))
    assert small.config["channels"] == [8, 16, 32]


def test_recipe_batch_norm_is_for_the_mlp_only_and_hidden_sizes_either_classifier():
    with pytest.raises(ValueError, match="MLP only"):
        fc.build_recipe_model(fc.Recipe(model="cnn", batch_norm=True))
    with pytest.raises(ValueError, match="CNN only"):
        fc.build_recipe_model(fc.Recipe(model="mlp", dropout=0.1))
    narrow = fc.build_recipe_model(fc.Recipe(model="cnn", channels=(8, 16, 32), hidden=64, dropout=0.0))
    assert narrow.config["hidden"] == 64 and narrow.config["dropout"] == 0.0
    linears = [m for m in narrow.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(32 * 7 * 7, 64), (64, 10)]
    assert [m.p for m in narrow.modules() if isinstance(m, torch.nn.Dropout)] == [0.0, 0.0]
    default = fc.build_recipe_model(fc.Recipe(model="cnn"))
    assert default.config["hidden"] == 256 and default.config["dropout"] == 0.25
    wide = fc.build_recipe_model(fc.Recipe(model="mlp", hidden=64, batch_norm=True))
    assert wide.config == {"hidden": 64, "num_classes": 10, "batch_norm": True}
    norms = [m for m in wide.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    linears = [m for m in wide.modules() if isinstance(m, torch.nn.Linear)]
    assert [n.num_features for n in norms] == [64, 64]
    assert [lin.bias is None for lin in linears] == [True, True, False]  # batch norm adds the bias
    # 784*64 + 64*64 + (64*10 + 10) weights, and a scale and a shift per batch-norm unit
    assert fc.count_parameters(wide) == 784 * 64 + 64 * 64 + 64 * 10 + 10 + 2 * 2 * 64
    plain = fc.build_recipe_model(fc.Recipe(model="mlp"))
    assert plain.config == {"hidden": 512, "num_classes": 10}  # as checkpoints always recorded it


def test_mlp_with_batch_norm_saves_and_loads_and_ignores_the_batch_in_eval(tmp_path):
    torch.manual_seed(0)
    model = fc.NeuralNetwork(hidden=32, batch_norm=True)
    X = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # moves the running statistics away from (0, 1)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), torch.arange(64) % 10).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        # In eval mode a sample's logits do not depend on the rest of its batch
        torch.testing.assert_close(model(X[:4])[0], model(X)[0], rtol=0, atol=1e-5)
        model.train()
        assert not torch.allclose(model(X[:4])[0], model(X)[0], atol=1e-3)
        model.eval()
    path = fc.save_checkpoint(tmp_path / "bn.pth", model)
    loaded = fc.load_model(path)
    assert loaded.config["batch_norm"] is True and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))


def _smooth_images(n=64, seed=0):
    """Images with correlated neighbouring pixels (blurred noise), like real ones, unlike noise."""
    noise = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    return nn.functional.avg_pool2d(noise, 3, stride=1, padding=1) * 3 + 0.5


def test_patch_whitening_whitens_every_patch_a_convolution_sees():
    images = _smooth_images()
    filters = fc.patch_whitening(images, 9, eps=0.0)  # all 9 patterns of a 3x3 patch, no damping
    assert filters.shape == (18, 1, 3, 3)
    assert torch.equal(filters[9:], -filters[:9])  # each filter with its negative
    # Known answer: the convolution's outputs over every position are uncorrelated with unit
    # variance. torch.cov of the outputs is the oracle (the function accumulates in float64).
    out = nn.functional.conv2d(images.double(), filters[:9].double(), padding=1)
    covariance = torch.cov(out.permute(1, 0, 2, 3).reshape(9, -1), correction=0)
    torch.testing.assert_close(covariance, torch.eye(9, dtype=torch.float64), atol=1e-6, rtol=0)
    # The strongest pattern comes first: with eps the first filter is the least damped one, and a
    # filter's first weight of at least half its largest magnitude is positive, so that every
    # machine orders and signs them alike
    damped = fc.patch_whitening(images, 4)
    flat = damped[:4].reshape(4, 9)
    for row in flat:
        (big,) = (row.abs() >= row.abs().max() / 2).nonzero()[0]
        assert row[big] > 0
    variances = nn.functional.conv2d(images, damped[:4], padding=1).var(dim=(0, 2, 3))
    assert torch.all(variances[:-1] >= variances[1:]) and variances[0] > 0.99
    assert torch.equal(damped, fc.patch_whitening(images, 4))  # deterministic
    with pytest.raises(ValueError, match="between 1 and 9"):
        fc.patch_whitening(images, 10)
    with pytest.raises(ValueError, match="float"):
        fc.patch_whitening((images * 255).to(torch.uint8), 4)


def test_a_whitened_stem_is_frozen_and_the_backward_pass_stops_before_it():
    torch.manual_seed(0)
    model = fc.FashionCNN((8, 16, 32), whitened_stem=True)
    assert model.config["whitened_stem"] is True and "whitened_stem" not in fc.FashionCNN().config
    stem = model.features[0][0]
    assert not stem.weight.requires_grad
    images = _smooth_images(32)
    assert model.whiten_stem(images) is model
    assert torch.equal(stem.weight, fc.patch_whitening(images, 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
    before = stem.weight.clone()
    loss = nn.functional.cross_entropy(model(images), torch.arange(32) % 10)
    loss.backward()
    optimizer.step()
    assert stem.weight.grad is None and torch.equal(stem.weight, before)  # neither learned nor decayed
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # Nothing before the first batch norm needs a gradient: no backward through the 28x28 stage
    assert not model.features[0][1](stem(images)).requires_grad
    with pytest.raises(ValueError, match="even"):
        fc.FashionCNN((9, 16, 32), whitened_stem=True)
    with pytest.raises(ValueError, match="at most 18"):
        fc.FashionCNN((20, 16, 32), whitened_stem=True)
    with pytest.raises(ValueError, match="whitened_stem=True"):
        fc.FashionCNN((8, 16, 32)).whiten_stem(images)
    with pytest.raises(ValueError, match="expects a batch of images"):
        model.whiten_stem(images[:, 0])


def test_a_whitened_stem_saves_and_loads_frozen(tmp_path):
    model = fc.FashionCNN((8, 16, 32), whitened_stem=True).whiten_stem(_smooth_images(16)).eval()
    loaded = fc.load_model(fc.save_checkpoint(tmp_path / "whitened.pth", model))
    assert loaded.config == model.config and not loaded.features[0][0].weight.requires_grad
    X = _smooth_images(4, seed=1)
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))


def test_train_recipe_whitens_the_stem_from_its_training_images(real_data):
    recipe = dataclasses.replace(fc.RECIPES["cnn"], channels=(4, 8, 8), epochs=1)
    assert recipe.whitened_stem
    model, history = fc.train_recipe(recipe, root=real_data.root, seed=0)
    train_loader, _ = fc.in_memory_loaders(recipe.batch_size, root=real_data.root)
    # Set from the 60,000 normalised training images before the first step, and not moved since
    assert torch.equal(model.features[0][0].weight, fc.patch_whitening(train_loader.X, 2))
    assert history.test_accuracy[0] > 0.5  # one epoch of a tiny network learns
    with pytest.raises(ValueError, match="CNN only"):
        fc.build_recipe_model(fc.Recipe(model="mlp", whitened_stem=True))


def test_augmentation_follows_the_recipe():
    assert fc.augmentation(fc.RECIPES["mlp"]) is None
    recipe = fc.Recipe(model="cnn", augment=True, max_shift=1)
    augment = fc.augmentation(recipe)
    dot = torch.zeros(200, 1, 28, 28)
    dot[:, 0, 10, 10] = 1.0
    moved = augment(dot, generator=torch.Generator().manual_seed(0))
    where = moved[:, 0].flatten(1).argmax(1)
    rows, cols = where // 28, where % 28
    assert (moved.flatten(1).sum(1) == 1).all()
    assert set(rows.tolist()) == {9, 10, 11}  # shifted by -1, 0 or +1 row, all three seen
    # a flip sends column 10 to 17; then a shift of at most one column
    assert set(cols.tolist()) <= {9, 10, 11, 16, 17, 18} and {10, 17} <= set(cols.tolist())


def test_a_recipe_with_erasing_erases_after_flipping_and_shifting():
    recipe = fc.Recipe(model="cnn", augment=True, max_shift=0, erase=1.0)
    X = torch.zeros(100, 1, 28, 28)
    out = fc.augmentation(recipe)(X, generator=torch.Generator().manual_seed(0))
    assert (out != 0).flatten(1).any(1).all()  # every image got its patch (p = 1)
    g = torch.Generator().manual_seed(0)
    expected = fc.random_erase(fc.random_flip_shift(X, max_shift=0, generator=g), p=1.0, generator=g)
    assert torch.equal(out, expected)
    # without erasing the recipe's augmentation is exactly the flips and shifts
    plain = fc.augmentation(fc.Recipe(model="cnn", augment=True, max_shift=1))
    X = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    assert torch.equal(plain(X, generator=torch.Generator().manual_seed(2)),
                       fc.random_flip_shift(X, max_shift=1, generator=torch.Generator().manual_seed(2)))


class _Mirrored(torch.nn.Module):
    """Scores class k by how bright column k is, or (mirror=True) column 27 - k."""

    def __init__(self, mirror: bool):
        super().__init__()
        self.mirror = mirror
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, x):
        columns = x[:, 0].mean(1)  # (N, 28)
        return (columns.flip(1) if self.mirror else columns)[:, :10] * 10


def test_flip_tta_accuracy_averages_each_image_with_its_mirror():
    # Each image is bright in column k (its label) only: the plain look is always right, the
    # mirrored look sees column 27 - k instead. Known answers: 100 % for a model that reads
    # column k; the softmax average still picks k (its own look is confident, the mirror look is
    # not); and the model that reads mirrored columns sees nothing but ties in the plain look
    # (argmax takes class 0: right for the 10 images of class 0), and 100 % with TTA.
    labels = torch.arange(100) % 10
    X = torch.zeros(100, 1, 28, 28)
    X[torch.arange(100), 0, :, labels] = 1.0
    loader = fc.InMemoryLoader((X[:, 0] * 255).to(torch.uint8), labels, batch_size=32,
                               mean=0.0, std=1.0)
    assert fc.flip_tta_accuracy(_Mirrored(False), loader) == 1.0
    reading_mirrored = _Mirrored(True)
    assert fc.evaluate(reading_mirrored, loader).accuracy == pytest.approx(0.1)
    assert fc.flip_tta_accuracy(reading_mirrored, loader) == 1.0


def test_the_recipes_fused_adamw_takes_the_same_steps_as_plain_adamw():
    """make_optimizer uses fused=True (one kernel for the whole update): the same AdamW update, to
    float rounding, as torch's reference (for-loop) implementation."""
    recipe = fc.Recipe(model="cnn", channels=(4, 8, 8), optimizer="adamw", lr=3e-3,
                       weight_decay=5e-2, schedule=None)
    torch.manual_seed(0)
    fused_model = fc.build_recipe_model(recipe)
    plain_model = fc.build_recipe_model(recipe)
    plain_model.load_state_dict(fused_model.state_dict())
    initial = [p.detach().clone() for p in fused_model.parameters()]
    fused_model.eval()  # no dropout masks: the two models compute the same function
    plain_model.eval()
    fused, _ = fc.make_optimizer(recipe, fused_model, steps_per_epoch=10)
    assert fused.defaults["fused"] is True
    plain = torch.optim.AdamW(plain_model.parameters(), lr=3e-3, weight_decay=5e-2, foreach=False)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        X, y = torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
        for model, optimizer in ((fused_model, fused), (plain_model, plain)):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            optimizer.step()
    for a, b in zip(fused_model.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    moved = max((a - b).abs().max().item() for a, b in zip(fused_model.parameters(), initial, strict=True))
    assert moved > 1e-3  # the weights did change: the comparison is not of two untouched models


class _LoaderMade(Exception):
    pass


@pytest.mark.parametrize("alternate", [False, True])
@pytest.mark.parametrize("entry", ["train_recipe", "train_timed", "train_distributed"])
def test_every_training_path_gives_its_loader_the_recipes_flips(monkeypatch, entry, alternate):
    """train_recipe, the benchmark and DDP training all build the training loader the recipe asks for."""
    from fashion_course import bench, distributed, loaders

    made = []

    class Recording(loaders.InMemoryLoader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)
            if kwargs.get("shuffle"):  # the training loader: enough seen
                raise _LoaderMade

    monkeypatch.setattr(loaders, "InMemoryLoader", Recording)
    images = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    labels = torch.arange(64) % 10
    monkeypatch.setattr(loaders, "load_tensors", lambda train, root=None: (images, labels))
    recipe = fc.Recipe(model="cnn", channels=(4, 8, 8), augment=True, max_shift=0, alternate_flips=alternate)
    with pytest.raises(_LoaderMade):
        if entry == "train_recipe":
            fc.train_recipe(recipe)
        elif entry == "train_timed":
            bench.train_timed(recipe, device="cpu", data=(images, labels, images, labels))
        else:
            distributed.train_distributed(recipe, fc.DistributedContext())
    train = made[-1]
    assert (train.flip_phase is not None) == alternate
    assert (train.augment is None) == alternate  # the loader mirrors, or the batch augmentation does
