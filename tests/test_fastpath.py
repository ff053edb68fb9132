"""The in-memory fast path against torchvision as the oracle, and batched augmentation."""

from __future__ import annotations

import pytest
import torch

import fashion_course as fc


def _unique_images(n: int) -> torch.Tensor:
    """Synthetic uint8 images that carry their own index in two pixels, to trace any shuffle."""
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    index = torch.arange(n)
    images[:, 0, 0] = (index % 256).to(torch.uint8)
    images[:, 0, 1] = (index // 256).to(torch.uint8)
    return images


def _indices(X: torch.Tensor) -> torch.Tensor:
    """Recover the index written by ``_unique_images`` from an unnormalised batch."""
    raw = (X[:, 0, 0, :2] * 255).round().long()
    return raw[:, 0] + 256 * raw[:, 1]


@pytest.mark.parametrize("train", [False, True])
def test_in_memory_equals_torchvision_pixel_for_pixel(real_data, train):
    dataset = fc.fashion_mnist(train, root=real_data.root, transform=fc.normalize_transform())
    images, labels = fc.load_tensors(train, root=real_data.root)
    loader = fc.InMemoryLoader(images, labels, batch_size=1000)
    assert loader.num_samples == len(dataset) == (60_000 if train else 10_000)
    # 2,000 evenly spread samples of each split, the first and the last included (speed).
    step = len(dataset) // 2000
    picks = [*range(0, len(dataset), step), len(dataset) - 1]
    expected = torch.stack([dataset[i][0] for i in picks])
    expected_labels = torch.tensor([dataset[i][1] for i in picks])
    index = torch.tensor(picks)
    assert torch.equal(loader.X[index], expected)  # bit for bit: same arithmetic, same order
    assert torch.equal(loader.y[index], expected_labels)
    assert torch.equal(loader.y, torch.as_tensor(dataset.targets).long())


def test_batches_cover_the_split_in_order_without_shuffle(test_split):
    images, labels = test_split
    loader = fc.InMemoryLoader(images, labels, batch_size=64)
    batches = list(loader)
    assert len(batches) == len(loader) == 157  # 156 full batches and one of 16
    assert [len(y) for _, y in batches[-2:]] == [64, 16]
    X = torch.cat([X for X, _ in batches])
    assert X.shape == (10_000, 1, 28, 28) and X.dtype == torch.float32
    torch.testing.assert_close(X, ((images.float() / 255 - fc.MEAN) / fc.STD).unsqueeze(1))
    assert torch.equal(torch.cat([y for _, y in batches]), labels)


def test_shuffling_is_a_permutation_and_reproducible():
    images = _unique_images(1000)
    labels = torch.arange(1000) % 10

    def epoch_order(loader):
        seen = [(_indices(X), y) for X, y in loader]
        order = torch.cat([i for i, _ in seen])
        assert torch.equal(torch.cat([y for _, y in seen]), labels[order])  # labels travel along
        return order

    def make(seed):
        return fc.InMemoryLoader(
            images, labels, batch_size=96, shuffle=True, mean=0.0, std=1.0,
            generator=torch.Generator().manual_seed(seed),
        )

    loader = make(0)
    first, second = epoch_order(loader), epoch_order(loader)
    assert torch.equal(first.sort().values, torch.arange(1000))  # every sample exactly once
    assert torch.equal(second.sort().values, torch.arange(1000))
    assert not torch.equal(first, torch.arange(1000))  # really shuffled
    assert not torch.equal(first, second)  # a new order each epoch
    again = make(0)
    assert torch.equal(epoch_order(again), first) and torch.equal(epoch_order(again), second)
    assert not torch.equal(epoch_order(make(1)), first)


def test_drop_last_drops_only_the_short_batch():
    images, labels = _unique_images(100), torch.zeros(100, dtype=torch.long)
    loader = fc.InMemoryLoader(images, labels, batch_size=32, drop_last=True, mean=0.0, std=1.0)
    assert len(loader) == 3 and [len(y) for _, y in loader] == [32, 32, 32]


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="uint8"):
        fc.InMemoryLoader(torch.rand(4, 28, 28), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        fc.InMemoryLoader(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(3))


def _random_batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g)


def test_flip_is_exact_and_happens_to_about_half():
    X = _random_batch(400)
    out = fc.random_flip_shift(X, max_shift=0, generator=torch.Generator().manual_seed(0))
    assert out.shape == X.shape and out.dtype == X.dtype
    same = (out == X).flatten(1).all(1)
    flipped = (out == X.flip(3)).flatten(1).all(1)
    assert (same ^ flipped).all()  # each image is itself or its exact mirror image, never both
    assert 150 < flipped.sum() < 250


def test_shift_moves_pixels_by_at_most_the_stated_amount():
    # A left-right symmetric block, so a flip leaves it unchanged and only the shift moves it.
    X = torch.zeros(500, 1, 28, 28)
    X[:, :, 12:16, 12:16] = 1.0
    s = 2
    out = fc.random_flip_shift(X, max_shift=s, generator=torch.Generator().manual_seed(0))
    offsets = set()
    for image in out[:, 0]:
        rows, cols = image.nonzero(as_tuple=True)
        dy, dx = int(rows.min()) - 12, int(cols.min()) - 12
        assert -s <= dy <= s and -s <= dx <= s
        assert torch.equal(image, torch.roll(X[0, 0], (dy, dx), (0, 1)))  # moved, not altered
        offsets.add((dy, dx))
    assert len(offsets) == (2 * s + 1) ** 2  # every shift in the range occurs


def test_shift_pads_with_the_background():
    X = torch.full((200, 1, 28, 28), 0.5)
    X[:, :, 14, 14] = -0.8  # the batch minimum, like the normalised background
    out = fc.random_flip_shift(X, max_shift=3, generator=torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) <= {0.5, -0.800000011920929}
    border = torch.cat([out[..., 0, :], out[..., -1, :], out[..., :, 0], out[..., :, -1]], -1)
    assert (border == -0.8).any()  # some images were shifted, and padded with the minimum


@pytest.mark.parametrize("augment", [fc.random_flip_shift, fc.random_erase])
def test_augmentation_is_reproducible_with_a_seeded_generator(augment):
    X = _random_batch()
    a = augment(X, generator=torch.Generator().manual_seed(3))
    b = augment(X, generator=torch.Generator().manual_seed(3))
    c = augment(X, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augmented_batches_keep_their_labels_and_shapes():
    images = (torch.rand(300, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    labels = torch.arange(300) % 10

    def make(augment):
        return fc.InMemoryLoader(
            images, labels, batch_size=64, shuffle=True, augment=augment,
            generator=torch.Generator().manual_seed(0),
        )

    s = 2
    for (X, y), (A, z) in zip(make(None), make(fc.random_flip_shift), strict=True):
        assert A.shape == X.shape and torch.equal(y, z)
        for original, augmented in zip(X[:, 0], A[:, 0], strict=True):
            # The augmented image is one of the flips/shifts of the image its label belongs to.
            pad = torch.nn.functional.pad(original, (s, s, s, s), value=float(X.min()))
            candidates = [
                view[s - dy : s - dy + 28, s - dx : s - dx + 28]
                for view in (pad, pad.flip(1))
                for dy in range(-s, s + 1)
                for dx in range(-s, s + 1)
            ]
            assert any(torch.equal(augmented, c) for c in candidates)


def _erased(X: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """(N, H, W) masks of the pixels that augmentation changed (X is all zeros)."""
    return (out != X)[:, 0]


def test_random_erase_hides_one_rectangle_per_image_and_leaves_the_rest():
    X = torch.zeros(500, 1, 28, 28)
    out = fc.random_erase(X, p=1.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == X.shape and out.dtype == X.dtype
    assert torch.equal(X, torch.zeros_like(X))  # the input batch is not modified
    for mask in _erased(X, out):
        rows, cols = mask.nonzero(as_tuple=True)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        box = torch.zeros_like(mask)
        box[top:bottom, left:right] = True
        assert torch.equal(mask, box)  # exactly one filled axis-aligned rectangle
        area = int(mask.sum()) / (28 * 28)
        assert 0.01 <= area <= 0.30  # the scale range (0.02, 0.25), give or take rounding


def test_random_erase_matches_torchvision_random_erasing_in_distribution():
    # torchvision's RandomErasing as the oracle: the same p, scale and ratio give erased areas
    # and heights of the same distribution (torchvision loops over images; ours does not).
    from torchvision.transforms import RandomErasing

    torch.manual_seed(0)
    n = 3000
    X = torch.zeros(n, 1, 28, 28)
    ours = _erased(X, fc.random_erase(X, p=0.5, generator=torch.Generator().manual_seed(0)))
    oracle = RandomErasing(p=0.5, scale=(0.02, 0.25), ratio=(0.3, 3.3), value=1.0)
    theirs = torch.stack([oracle(x) for x in X])[:, 0] != 0
    hit_ours, hit_theirs = ours.flatten(1).any(1), theirs.flatten(1).any(1)
    assert abs(hit_ours.float().mean() - hit_theirs.float().mean()) < 0.05  # both near p = 0.5

    def mean_of(values, hit):
        return values[hit].float().mean().item()

    area = [mean_of(m.flatten(1).sum(1), h) / 784 for m, h in ((ours, hit_ours), (theirs, hit_theirs))]
    assert abs(area[0] - area[1]) < 0.01, area
    height = [mean_of(m.any(2).sum(1), h) for m, h in ((ours, hit_ours), (theirs, hit_theirs))]
    assert abs(height[0] - height[1]) < 0.5, height


def test_random_erase_probability_zero_is_the_identity_and_bad_settings_are_refused():
    X = _random_batch()
    assert torch.equal(fc.random_erase(X, p=0.0, generator=torch.Generator().manual_seed(0)), X)
    for bad in ({"p": 1.5}, {"scale": (0.3, 0.1)}, {"scale": (0.0, 0.2)}, {"ratio": (2.0, 1.0)}):
        with pytest.raises(ValueError):
            fc.random_erase(X, **bad)


def test_erasing_augmentation_flips_and_shifts_first_then_erases_and_keeps_labels():
    augment = fc.batch_augmentation(max_shift=1, erase=0.5)
    X = _random_batch(200)
    out = augment(X, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    expected = fc.random_erase(fc.random_flip_shift(X, max_shift=1, generator=g), p=0.5, generator=g)
    assert torch.equal(out, expected)
    images = (X[:, 0] * 255).to(torch.uint8)
    labels = torch.arange(200) % 10
    plain = fc.InMemoryLoader(images, labels, batch_size=50, shuffle=True,
                              generator=torch.Generator().manual_seed(0))
    erased = fc.InMemoryLoader(images, labels, batch_size=50, shuffle=True, augment=augment,
                               generator=torch.Generator().manual_seed(0))
    for (A, y), (B, z) in zip(plain, erased, strict=True):
        assert torch.equal(y, z) and A.shape == B.shape


def _mirrored_in_each_epoch(loader, epochs: int) -> torch.Tensor:
    """(epochs, N) booleans: whether the loader showed image i mirrored in each epoch.

    The images are random (never symmetric) and each label is the image's index, so every sample a
    batch yields can be traced back and compared with its original and its mirror image.
    """
    mirrored = torch.zeros(epochs, loader.num_samples, dtype=torch.bool)
    for epoch in range(epochs):
        seen = torch.zeros(loader.num_samples, dtype=torch.bool)
        for X, y in loader:
            flipped = (X == loader.X[y].flip(3)).flatten(1).all(1)
            as_is = (X == loader.X[y]).flatten(1).all(1)
            assert (flipped ^ as_is).all()  # each sample is its image, either way round
            mirrored[epoch, y], seen[y] = flipped, True
        assert seen.all()
    return mirrored


def test_alternating_flips_mirror_each_image_in_every_other_epoch():
    n = 600
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))

    def loader(seed):
        return fc.InMemoryLoader(images, torch.arange(n), batch_size=64, shuffle=True, mean=0.0, std=1.0,
                                 alternate_flips=True, generator=torch.Generator().manual_seed(seed))

    mirrored = _mirrored_in_each_epoch(loader(0), epochs=4)
    assert 0.4 < mirrored[0].float().mean() < 0.6  # a random half first
    for epoch in range(1, 4):  # then every image the other way round than the epoch before
        assert torch.equal(mirrored[epoch], ~mirrored[epoch - 1])
    assert torch.equal(_mirrored_in_each_epoch(loader(0), epochs=2), mirrored[:2])  # seeded
    assert not torch.equal(_mirrored_in_each_epoch(loader(1), epochs=1)[0], mirrored[0])
    # Random flips, for comparison: about half of the images are shown the same way twice in a row
    random = fc.InMemoryLoader(images, torch.arange(n), batch_size=64, shuffle=True, mean=0.0, std=1.0,
                               augment=fc.batch_augmentation(max_shift=0),
                               generator=torch.Generator().manual_seed(0))
    twice = _mirrored_in_each_epoch(random, epochs=2)
    assert 0.4 < (twice[0] == twice[1]).float().mean() < 0.6


def test_a_recipe_with_alternating_flips_leaves_the_flips_to_the_loader():
    recipe = fc.Recipe(model="cnn", augment=True, max_shift=0, alternate_flips=True)
    assert fc.augmentation(recipe) is None  # nothing left to do per batch
    shifting = fc.augmentation(fc.Recipe(model="cnn", augment=True, max_shift=1, alternate_flips=True))
    dot = torch.zeros(200, 1, 28, 28)
    dot[:, 0, 10, 10] = 1.0
    where = shifting(dot, generator=torch.Generator().manual_seed(0))[:, 0].flatten(1).argmax(1)
    assert set((where % 28).tolist()) == {9, 10, 11}  # shifted by at most one column, never mirrored
